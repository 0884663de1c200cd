//! Valid time: an initiative as it stood on a given day by the dates its
//! record carries, whenever those dates were recorded. One rule, applied by
//! every view: a dated fact (a status, a milestone's date met, a progress
//! update's as-of date, a funding date) counts on day D once its period has
//! STARTED, its first day on or before D ("met in 2024" counts from 1
//! January 2024); due and overdue go by the END of a period (see [`rules`]).
//! An initiative whose first status takes effect after D did not exist yet
//! on D.
//!
//! [`rules`]: crate::rules

use std::collections::BTreeSet;

use time::Date;

use crate::dates;
use crate::proto::{ApproximateDate, Initiative, MilestoneStatus, StatusChange};
use crate::rules;

/// The first day of a date's period; `None` for a date that is not valid.
pub fn first_day(date: &ApproximateDate) -> Option<Date> {
    dates::period(date, "").ok().map(|(start, _)| start)
}

/// Whether an optional date has started by `day` (an unset date has).
fn started(date: Option<&ApproximateDate>, day: Date) -> bool {
    date.and_then(first_day).is_none_or(|start| start <= day)
}

/// The status history entry in force on `day`: the last one whose period
/// has started. `None` when the initiative did not exist yet; a record
/// without a status history (written before there was one) has its status
/// on every day.
fn status_on(init: &Initiative, day: Date) -> Option<Option<&StatusChange>> {
    if init.status_history.is_empty() {
        return Some(None);
    }
    init.status_history
        .iter()
        .rev()
        .find(|s| started(s.effective.as_ref(), day))
        .map(Some)
}

/// The initiative as it stood on `day` by the dates it carries: its status
/// then, its milestones met by then (a milestone met later is scheduled),
/// the progress updates and funding dated by then. `None` when it did not
/// exist yet. The etag is kept only when nothing was taken back.
pub fn on_day(init: &Initiative, day: Date) -> Option<Initiative> {
    status_on(init, day)?;
    into_day(init.clone(), day)
}

/// [`on_day`] of a record the caller owns, changed in place (a list
/// projects every record it returns: this spares copying each).
pub fn into_day(mut out: Initiative, day: Date) -> Option<Initiative> {
    let entry = status_on(&out, day)?.map(|s| (s.status, s.effective));
    let mut moved = false;
    if let Some((status, effective)) = entry {
        if out.status != status || out.status_date != effective {
            moved = true;
        }
        out.status = status;
        out.status_date = effective;
        let before = out.status_history.len();
        out.status_history
            .retain(|h| started(h.effective.as_ref(), day));
        moved |= out.status_history.len() != before;
    }
    for m in &mut out.milestones {
        if rules::milestone_met(m) && !started(m.date_met.as_ref(), day) {
            m.status = MilestoneStatus::Scheduled as i32;
            m.date_met = None;
            moved = true;
        }
    }
    let (p, f) = (out.progress_updates.len(), out.funding.len());
    out.progress_updates
        .retain(|u| started(u.as_of.as_ref(), day));
    out.funding.retain(|c| started(c.date.as_ref(), day));
    moved |= p != out.progress_updates.len() || f != out.funding.len();
    if moved {
        out.etag.clear();
    }
    Some(out)
}

/// The days on which the initiative's valid-time state changes: the first
/// days of its statuses, of its milestones' dates met, of its progress
/// updates and of its funding dates, in order.
pub fn event_days(init: &Initiative) -> BTreeSet<Date> {
    let statuses = init
        .status_history
        .iter()
        .filter_map(|s| s.effective.as_ref());
    let met = init
        .milestones
        .iter()
        .filter(|m| rules::milestone_met(m))
        .filter_map(|m| m.date_met.as_ref());
    let progress = init
        .progress_updates
        .iter()
        .filter_map(|u| u.as_of.as_ref());
    let funding = init.funding.iter().filter_map(|c| c.date.as_ref());
    statuses
        .chain(met)
        .chain(progress)
        .chain(funding)
        .filter_map(first_day)
        .collect()
}

/// What an initiative is on a day, next to the record the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDay {
    /// It did not exist yet (its first status takes effect later).
    Absent,
    /// It is the record as kept: every dated fact has started.
    AsKept,
    /// It is the record less the facts that have not started
    /// ([`into_day`] makes it).
    Projected,
}

/// The parts of an initiative's encoding that decide what it is on a day
/// and who may see it, read from the encoding without the rest (the
/// fields keep the tags of `cet.v1.Initiative`; every other field is
/// skipped): the store derives a record's [`Spans`] from these when it
/// writes it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Facets {
    /// `status`.
    #[prost(int32, tag = "6")]
    pub status: i32,
    /// `milestones`, their status and date met.
    #[prost(message, repeated, tag = "12")]
    pub milestones: Vec<MilestoneFacets>,
    /// `funding`, the date of each.
    #[prost(message, repeated, tag = "13")]
    pub funding: Vec<FundingFacets>,
    /// `progress_updates`, the date of each.
    #[prost(message, repeated, tag = "14")]
    pub progress_updates: Vec<ProgressFacets>,
    /// `sensitivity`.
    #[prost(int32, tag = "18")]
    pub sensitivity: i32,
    /// `status_date`.
    #[prost(message, optional, tag = "24")]
    pub status_date: Option<ApproximateDate>,
    /// `status_history`.
    #[prost(message, repeated, tag = "25")]
    pub status_history: Vec<StatusChange>,
}

/// The facets of a `cet.v1.Milestone`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MilestoneFacets {
    /// `status`.
    #[prost(int32, tag = "4")]
    pub status: i32,
    /// `date_met`.
    #[prost(message, optional, tag = "5")]
    pub date_met: Option<ApproximateDate>,
}

/// The facets of a `cet.v1.FundingCommitment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FundingFacets {
    /// `date`.
    #[prost(message, optional, tag = "6")]
    pub date: Option<ApproximateDate>,
}

/// The facets of a `cet.v1.ProgressUpdate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProgressFacets {
    /// `as_of`.
    #[prost(message, optional, tag = "2")]
    pub as_of: Option<ApproximateDate>,
}

impl Facets {
    /// Whether the record is marked RESTRICTED.
    pub fn restricted(&self) -> bool {
        self.sensitivity == crate::proto::Sensitivity::Restricted as i32
    }
}

/// When a record is what on a day: the answer of [`into_day`] for every
/// day at once, in three numbers the store keeps beside the record
/// (so that a list need not read its facets). Days are [`dates::day_key`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spans {
    /// Whether the record is marked RESTRICTED.
    pub restricted: bool,
    /// The first day it exists (its first status has started);
    /// `i32::MIN`: every day.
    pub exists_from: i32,
    /// The first day it is as kept (every dated fact has started);
    /// `i32::MAX`: never (its status is not the last of its history).
    pub kept_from: i32,
}

impl Spans {
    /// What the record is on `day`: the same answer as [`into_day`] gives
    /// of the whole record (`None`: absent; the record unchanged: as kept).
    pub fn on_day(&self, day: Date) -> OnDay {
        let day = dates::day_key(day);
        if day < self.exists_from {
            OnDay::Absent
        } else if day >= self.kept_from {
            OnDay::AsKept
        } else {
            OnDay::Projected
        }
    }
}

impl From<&Facets> for Spans {
    fn from(f: &Facets) -> Self {
        // The first day of a dated fact; `None` for one that counts on
        // every day (unset, or not a valid date).
        let start = |d: Option<&ApproximateDate>| d.and_then(first_day).map(dates::day_key);
        let exists_from = if f.status_history.is_empty() {
            i32::MIN
        } else {
            // It exists once any entry has started: from the earliest; an
            // entry counting on every day makes it exist on every day.
            f.status_history
                .iter()
                .map(|s| start(s.effective.as_ref()))
                .try_fold(i32::MAX, |min, d| d.map(|d| min.min(d)))
                .unwrap_or(i32::MIN)
        };
        // Once every fact has started, the entry in force is the last: the
        // record is as kept only if its status is that entry's.
        let consistent = f
            .status_history
            .last()
            .is_none_or(|last| f.status == last.status && f.status_date == last.effective);
        let kept_from = if consistent {
            let statuses = f.status_history.iter().map(|s| s.effective.as_ref());
            let met = f
                .milestones
                .iter()
                .filter(|m| rules::status_met(m.status))
                .map(|m| m.date_met.as_ref());
            let progress = f.progress_updates.iter().map(|u| u.as_of.as_ref());
            let funding = f.funding.iter().map(|c| c.date.as_ref());
            statuses
                .chain(met)
                .chain(progress)
                .chain(funding)
                .filter_map(start)
                .max()
                .unwrap_or(i32::MIN)
        } else {
            i32::MAX
        };
        Spans {
            restricted: f.restricted(),
            exists_from,
            kept_from,
        }
    }
}

/// The record as it stands after every dated fact: what the counters of
/// "today" hold when no fact is dated in the future.
pub fn at_the_end(init: &Initiative) -> Option<Initiative> {
    on_day(init, Date::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        DatePrecision, FundingCommitment, LifecycleStatus, Milestone, ProgressUpdate,
    };
    use time::macros::date;

    fn month(year: i32, month: i32) -> ApproximateDate {
        ApproximateDate {
            precision: DatePrecision::Month as i32,
            year,
            month,
            ..Default::default()
        }
    }

    fn quarter(year: i32, quarter: i32) -> ApproximateDate {
        ApproximateDate {
            precision: DatePrecision::Quarter as i32,
            year,
            quarter,
            ..Default::default()
        }
    }

    fn bioeconomy() -> Initiative {
        Initiative {
            status: LifecycleStatus::InProgress as i32,
            status_date: Some(quarter(2024, 2)),
            status_history: vec![
                StatusChange {
                    status: LifecycleStatus::Announced as i32,
                    effective: Some(dates::day(2023, 12, 8)),
                    record_time: None,
                },
                StatusChange {
                    status: LifecycleStatus::InProgress as i32,
                    effective: Some(quarter(2024, 2)),
                    record_time: None,
                },
            ],
            milestones: vec![Milestone {
                id: "launch".into(),
                status: MilestoneStatus::Met as i32,
                date_met: Some(month(2024, 6)),
                ..Default::default()
            }],
            progress_updates: vec![ProgressUpdate {
                as_of: Some(month(2024, 9)),
                ..Default::default()
            }],
            funding: vec![
                FundingCommitment::default(),
                FundingCommitment {
                    date: Some(month(2025, 3)),
                    ..Default::default()
                },
            ],
            etag: "\"r5\"".into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_fact_counts_from_the_first_day_of_its_period() {
        let i = bioeconomy();
        assert_eq!(on_day(&i, date!(2023 - 12 - 07)), None, "not yet committed");
        let announced = on_day(&i, date!(2023 - 12 - 08)).unwrap();
        assert_eq!(announced.status, LifecycleStatus::Announced as i32);
        assert_eq!(announced.status_history.len(), 1);
        assert_eq!(
            announced.milestones[0].status,
            MilestoneStatus::Scheduled as i32
        );
        assert!(announced.milestones[0].date_met.is_none());
        assert!(announced.progress_updates.is_empty());
        assert_eq!(
            announced.funding.len(),
            1,
            "undated money counts from the start"
        );
        assert!(
            announced.etag.is_empty(),
            "a past version is not the record to update"
        );

        let april = on_day(&i, date!(2024 - 04 - 01)).unwrap();
        assert_eq!(
            april.status,
            LifecycleStatus::InProgress as i32,
            "Q2 has started"
        );
        assert_eq!(
            april.milestones[0].status,
            MilestoneStatus::Scheduled as i32
        );
        let june = on_day(&i, date!(2024 - 06 - 01)).unwrap();
        assert_eq!(june.milestones[0].status, MilestoneStatus::Met as i32);
        assert!(june.progress_updates.is_empty());
        let later = on_day(&i, date!(2025 - 01 - 15)).unwrap();
        assert_eq!(later.progress_updates.len(), 1);
        assert_eq!(later.funding.len(), 1);
        let now = on_day(&i, date!(2026 - 01 - 01)).unwrap();
        assert_eq!(now, i, "after every fact: the record itself, etag kept");
        assert_eq!(at_the_end(&i), Some(i.clone()));
        assert_eq!(
            event_days(&i).into_iter().collect::<Vec<_>>(),
            vec![
                date!(2023 - 12 - 08),
                date!(2024 - 04 - 01),
                date!(2024 - 06 - 01),
                date!(2024 - 09 - 01),
                date!(2025 - 03 - 01)
            ]
        );
    }

    /// The spans the store keeps of the facets read from a record's
    /// encoding say what [`into_day`] does to it, on every day around
    /// its facts, for records with and without history, with a status out
    /// of step with its history, with undated, invalid and out-of-order
    /// entries, and with each kind of fact dated later than the rest.
    #[test]
    fn the_facets_of_an_encoding_agree_with_the_projection() {
        use prost::Message;
        let mut records = vec![bioeconomy()];
        let mut no_history = bioeconomy();
        no_history.status_history.clear();
        records.push(no_history);
        let mut out_of_step = bioeconomy();
        out_of_step.status = LifecycleStatus::Completed as i32;
        records.push(out_of_step);
        let mut other_date = bioeconomy();
        other_date.status_date = Some(month(2024, 5));
        records.push(other_date);
        let mut late_met = bioeconomy();
        late_met.milestones[0].date_met = Some(month(2027, 1));
        late_met.milestones.push(Milestone {
            id: "open".into(),
            status: MilestoneStatus::Scheduled as i32,
            date_met: Some(month(2030, 1)),
            ..Default::default()
        });
        records.push(late_met);
        let mut partly = bioeconomy();
        partly.milestones[0].status = MilestoneStatus::PartiallyMet as i32;
        records.push(partly);
        let mut late_progress = bioeconomy();
        late_progress.progress_updates[0].as_of = Some(quarter(2028, 3));
        records.push(late_progress);
        let mut late_money = bioeconomy();
        late_money.funding[1].date = Some(month(2029, 12));
        records.push(late_money);
        let mut restricted = bioeconomy();
        restricted.sensitivity = crate::proto::Sensitivity::Restricted as i32;
        records.push(restricted);
        let mut undated_entry = bioeconomy();
        undated_entry.status_history[0].effective = None;
        records.push(undated_entry);
        let mut invalid_entry = bioeconomy();
        invalid_entry.status_history[0].effective = Some(ApproximateDate::default());
        records.push(invalid_entry);
        let mut out_of_order = bioeconomy();
        out_of_order.status_history.reverse();
        out_of_order.status = LifecycleStatus::Announced as i32;
        out_of_order.status_date = out_of_order.status_history[1].effective;
        records.push(out_of_order);
        let mut met_undated = bioeconomy();
        met_undated.milestones[0].date_met = None;
        records.push(met_undated);
        records.push(Initiative::default());
        // Every day from 2023 to 2030, and a few far from the facts.
        let mut days = vec![
            date!(1999 - 01 - 01),
            date!(2023 - 12 - 07),
            date!(2023 - 12 - 08),
            date!(2024 - 04 - 01),
            date!(2024 - 05 - 31),
            date!(2024 - 06 - 01),
            date!(2025 - 03 - 01),
            date!(2026 - 01 - 01),
            date!(2027 - 01 - 01),
            date!(2028 - 07 - 01),
            date!(2029 - 12 - 01),
            date!(2031 - 01 - 01),
        ];
        let mut d = date!(2023 - 01 - 01);
        while d < date!(2031 - 01 - 01) {
            days.push(d);
            d = d.next_day().unwrap();
        }
        let (mut absent, mut kept, mut projected) = (0, 0, 0);
        for record in &records {
            let encoded = record.encode_to_vec();
            let facets = Facets::decode(encoded.as_slice()).unwrap();
            assert_eq!(facets.restricted(), crate::auth::is_restricted(record));
            let spans = Spans::from(&facets);
            assert_eq!(spans.restricted, facets.restricted());
            for &day in &days {
                let expected = match into_day(record.clone(), day) {
                    None => OnDay::Absent,
                    Some(r) if &r == record => OnDay::AsKept,
                    Some(_) => OnDay::Projected,
                };
                assert_eq!(
                    spans.on_day(day),
                    expected,
                    "{spans:?} of {record:?} on {day}"
                );
                match expected {
                    OnDay::Absent => absent += 1,
                    OnDay::AsKept => kept += 1,
                    OnDay::Projected => projected += 1,
                }
            }
        }
        assert!(
            absent > 0 && kept > 0 && projected > 0,
            "{absent} {kept} {projected}"
        );
    }

    #[test]
    fn a_record_without_status_history_exists_on_every_day() {
        let mut i = bioeconomy();
        i.status_history.clear();
        let early = on_day(&i, date!(1999 - 01 - 01)).unwrap();
        assert_eq!(early.status, LifecycleStatus::InProgress as i32);
        assert_eq!(
            early.milestones[0].status,
            MilestoneStatus::Scheduled as i32
        );
    }
}
