//! Milestones in due order: a domain's part of the timeline.
//!
//! The index holds an entry for every milestone with a due period, whatever
//! its status (`keys::due_entry`: the last day of the period, the record's
//! id, the milestone's id), so that the milestones of a window are walked in
//! the timeline's order and a page costs what it returns (and what the walk
//! passes over: milestones met, or of closed initiatives, when the timeline
//! leaves those out), not the store. Status is read from the record as it
//! stood on the window's day, as every view reads it. Versions as known on
//! a past day (record time) are not in the index: those walk the history
//! and keep the first entries (see [`Store::due_milestones`]).

use std::ops::Bound;

use time::Date;

use cetrack_contract::error::Result;
use cetrack_contract::proto::{DueMilestone, Initiative};
use cetrack_contract::rules::Filter;
use cetrack_contract::timeline::{FirstEntries, Position, Window};
use cetrack_contract::{dates, pagination};

use crate::{decode, keys, storage, Filling, Found, Store, Tree};

/// A page of a domain's part of the timeline: the entries in order, and
/// whether more follow the last.
pub type DuePage = (Vec<(Position, DueMilestone)>, bool);

impl Store {
    /// The first `limit` milestones of `window` after `start_after` (as the
    /// domain's records stood on the window's day, as known on `known_on`;
    /// without records marked RESTRICTED when `hide_restricted`), in the
    /// timeline's order, and whether more follow.
    pub fn due_milestones(
        &self,
        window: &Window,
        known_on: Option<Date>,
        hide_restricted: bool,
        start_after: Option<&Position>,
        limit: usize,
    ) -> Result<DuePage> {
        self.inner.sound()?;
        match known_on {
            None => self.due_by_index(window, hide_restricted, start_after, limit),
            Some(day) => self.due_by_scan(window, Some(day), hide_restricted, start_after, limit),
        }
    }

    /// Walks the due index from the window's first day (or from the first
    /// day of all, for overdue milestones) or the position, whichever is
    /// later.
    fn due_by_index(
        &self,
        window: &Window,
        hide_restricted: bool,
        start_after: Option<&Position>,
        limit: usize,
    ) -> Result<DuePage> {
        let s = &*self.inner;
        let filter = Filter {
            as_of: Some(window.as_of),
            hide_restricted,
            ..Filter::default()
        };
        let on_day = Filling::new(&filter, 1, pagination::MAX_EXAMINED);
        // Overdue milestones end before the as-of day, whatever the window.
        let (first, last) = if window.overdue {
            let before_as_of = window.as_of.previous_day().unwrap_or(window.as_of);
            (i32::MIN, dates::day_key(window.before.max(before_as_of)))
        } else {
            (dates::day_key(window.after), dates::day_key(window.before))
        };
        let prefix = format!("{}/initiatives/", s.domain.parent());
        let start = match start_after {
            None => Bound::Included(keys::due_prefix(first)),
            Some((day, name, milestone)) => match name.strip_prefix(prefix.as_str()) {
                Some(id) => Bound::Excluded(keys::due_entry(*day, id, milestone)),
                // A position in another domain: every record of this one
                // sorts after it on its day, or before it.
                None if name.as_str() < prefix.as_str() => Bound::Included(keys::due_prefix(*day)),
                None => Bound::Included(keys::due_prefix(day.saturating_add(1))),
            },
        };
        let start = match start {
            Bound::Included(k) | Bound::Excluded(k) if k < keys::due_prefix(first) => {
                Bound::Included(keys::due_prefix(first))
            }
            other => other,
        };
        let end = Bound::Excluded(keys::due_prefix(last.saturating_add(1)));
        let mut out = Vec::new();
        for kv in s.tree(Tree::Index).range::<Vec<u8>, _>((start, end)) {
            let (k, _) = kv.map_err(storage)?;
            let Some((day, id, milestone)) = keys::parse_due(&k) else {
                continue;
            };
            // The record may have changed since the index entry was read.
            let Some(kept) = s.tree(Tree::Records).get(id).map_err(storage)? else {
                continue;
            };
            let Some(encoded) = on_day.pick(Found::Kept(kept))? else {
                continue;
            };
            let record: Initiative = decode(&encoded)?;
            for (position, entry) in window.entries(&record) {
                if position.0 != day || position.2 != milestone {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push((position, entry));
            }
        }
        Ok((out, false))
    }

    /// Reads every record of the window (as known on `known_on`) and keeps
    /// the first entries.
    fn due_by_scan(
        &self,
        window: &Window,
        known_on: Option<Date>,
        hide_restricted: bool,
        start_after: Option<&Position>,
        limit: usize,
    ) -> Result<DuePage> {
        let mut first = FirstEntries::new(start_after.cloned(), limit);
        for filter in window.filters(known_on, hide_restricted) {
            let mut after: Option<String> = None;
            loop {
                let page = self.list(&filter, after.as_deref(), pagination::MAX_PAGE_SIZE)?;
                for encoded in &page.items {
                    let record: Initiative = decode(encoded)?;
                    for (position, entry) in window.entries(&record) {
                        first.offer(position, entry);
                    }
                }
                match (page.more, page.resume_after) {
                    (true, Some(id)) => after = Some(id),
                    _ => break,
                }
            }
        }
        Ok(first.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::open;
    use crate::Plan;
    use cetrack_contract::domain::Domain;
    use cetrack_contract::proto::{
        ApproximateDate, ChangeType, DatePrecision, LifecycleStatus, Milestone, MilestoneStatus,
        Sensitivity,
    };

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn due(rng: &mut Rng) -> ApproximateDate {
        let year = 2023 + rng.below(4) as i32;
        match rng.below(3) {
            0 => ApproximateDate {
                precision: DatePrecision::Year as i32,
                year,
                ..Default::default()
            },
            1 => ApproximateDate {
                precision: DatePrecision::Quarter as i32,
                year,
                quarter: 1 + rng.below(4) as i32,
                ..Default::default()
            },
            _ => ApproximateDate {
                precision: DatePrecision::Month as i32,
                year,
                month: 1 + rng.below(12) as i32,
                ..Default::default()
            },
        }
    }

    fn record(rng: &mut Rng, n: usize) -> Initiative {
        let milestones = (0..rng.below(4))
            .map(|m| {
                let met = rng.below(3) == 0;
                Milestone {
                    id: format!("m{m}"),
                    title: format!("Milestone {m}"),
                    due: Some(due(rng)),
                    status: if met {
                        MilestoneStatus::Met as i32
                    } else {
                        MilestoneStatus::Scheduled as i32
                    },
                    date_met: met.then(|| due(rng)),
                    ..Default::default()
                }
            })
            .collect();
        let status = [
            LifecycleStatus::Announced,
            LifecycleStatus::InProgress,
            LifecycleStatus::Completed,
            LifecycleStatus::Cancelled,
        ][rng.below(4) as usize];
        Initiative {
            name: format!("domains/ai/initiatives/r{n:03}"),
            title: format!("Record {n}"),
            status: status as i32,
            sensitivity: if rng.below(5) == 0 {
                Sensitivity::Restricted as i32
            } else {
                Sensitivity::Public as i32
            },
            milestones,
            ..Default::default()
        }
    }

    fn day(y: i32, m: u8, d: u8) -> Date {
        time::Month::try_from(m)
            .ok()
            .and_then(|m| Date::from_calendar_date(y, m, d).ok())
            .expect("a day")
    }

    /// The index walk answers what reading every record answers, for
    /// windows with and without overdue and met milestones, pages of every
    /// size from every position, with and without clearance, also from
    /// positions in other domains.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_due_index_walk_answers_what_reading_every_record_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(Domain::Ai, dir.path()).unwrap();
        let mut rng = Rng(0x5eed_1234_abcd);
        for n in 0..120 {
            let r = record(&mut rng, n);
            store
                .write(&format!("r{n:03}"), None, "test", move |_| {
                    Ok(Plan::Put {
                        record: r.clone(),
                        change_type: ChangeType::Created,
                    })
                })
                .await
                .unwrap();
        }
        // Some deleted, some changed: the index follows.
        for n in (0..120).step_by(7) {
            store
                .write(&format!("r{n:03}"), None, "test", |_| Ok(Plan::Delete))
                .await
                .unwrap();
        }
        let windows = [
            (day(2024, 1, 1), day(2024, 12, 31), day(2024, 6, 1)),
            (day(2023, 1, 1), day(2026, 12, 31), day(2030, 1, 1)),
            (day(2025, 3, 1), day(2025, 3, 31), day(2023, 2, 1)),
            // Overdue ones well before the window, and after it.
            (day(2025, 3, 1), day(2025, 3, 31), day(2030, 1, 1)),
            (day(2024, 1, 1), day(2024, 3, 31), day(2025, 8, 15)),
        ];
        let mut compared = 0;
        for (after, before, as_of) in windows {
            for (overdue, met) in [(false, false), (true, false), (false, true), (true, true)] {
                let window = Window {
                    after,
                    before,
                    as_of,
                    overdue,
                    met,
                };
                for hide in [false, true] {
                    let (all, more) = store
                        .due_by_scan(&window, None, hide, None, 10_000)
                        .unwrap();
                    assert!(!more);
                    let (indexed, more) = store
                        .due_milestones(&window, None, hide, None, 10_000)
                        .unwrap();
                    assert!(!more);
                    assert_eq!(indexed, all, "{window:?} hide {hide}");
                    compared += all.len();
                    // Every position, every page size.
                    let mut positions: Vec<Option<Position>> =
                        all.iter().map(|(p, _)| Some(p.clone())).collect();
                    positions.push(None);
                    let first_day = all.first().map(|(p, _)| p.0).unwrap_or(0);
                    positions.push(Some((first_day, "domains/aaa".into(), "m0".into())));
                    positions.push(Some((first_day, "domains/zzz".into(), "m0".into())));
                    for p in &positions {
                        for limit in [1, 3] {
                            let want = store
                                .due_by_scan(&window, None, hide, p.as_ref(), limit)
                                .unwrap();
                            let got = store
                                .due_milestones(&window, None, hide, p.as_ref(), limit)
                                .unwrap();
                            assert_eq!(got, want, "{window:?} after {p:?} limit {limit}");
                        }
                    }
                }
            }
        }
        assert!(compared > 100, "the windows hold entries: {compared}");
    }
}
