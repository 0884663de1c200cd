//! The milestone timeline: which milestones it shows and in what order (the
//! last day of their due period, then initiative name, then milestone id).
//! A domain answers its part (ListDueMilestones) and the gateway merges the
//! domains' parts (ListMilestoneTimeline): both order by [`Position`].

use std::collections::BTreeMap;

use time::Date;

use crate::dates;
use crate::proto::{DueMilestone, DueMilestonePosition, Initiative};
use crate::rules::{self, Filter};

/// Where an entry sorts: the last day of its due period (a day key), its
/// initiative's name, its milestone's id.
pub type Position = (i32, String, String);

/// Which milestones a timeline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Due periods ending on or after this day.
    pub after: Date,
    /// Due periods ending on or before this day.
    pub before: Date,
    /// The day the timeline speaks for (valid time).
    pub as_of: Date,
    /// Also scheduled milestones of open initiatives overdue on `as_of`.
    pub overdue: bool,
    /// Also milestones met by `as_of` (in the window only).
    pub met: bool,
}

impl Window {
    /// The initiative filters whose records hold every entry of the window
    /// (as of its day, as known on `known_on`): records with a milestone due
    /// in it, and with `overdue` the overdue ones. Records may match both.
    pub fn filters(&self, known_on: Option<Date>, hide_restricted: bool) -> Vec<Filter> {
        let base = Filter {
            as_of: Some(self.as_of),
            known_on,
            hide_restricted,
            ..Filter::default()
        };
        let mut filters = vec![Filter {
            due_after: Some(self.after),
            due_before: Some(self.before),
            include_met_milestones: self.met,
            ..base.clone()
        }];
        if self.overdue {
            filters.push(Filter {
                overdue_only: true,
                ..base
            });
        }
        filters
    }

    /// The entries among the milestones of `i`, as it stands on the
    /// window's day.
    pub fn entries(&self, i: &Initiative) -> Vec<(Position, DueMilestone)> {
        let mut out = Vec::new();
        for m in &i.milestones {
            // Scheduled milestones of open initiatives; with `met`, met ones
            // of any initiative (in the window only).
            let (end, open) = match rules::open_milestone_due(m) {
                Some(end) if rules::is_open(i) => (end, true),
                _ if self.met && rules::milestone_met(m) => {
                    match m.due.as_ref().and_then(dates::period_end) {
                        Some(end) => (end, false),
                        None => continue,
                    }
                }
                _ => continue,
            };
            let overdue = open && end < self.as_of;
            let in_window = end >= self.after && end <= self.before;
            if in_window || (overdue && self.overdue) {
                out.push((
                    (dates::day_key(end), i.name.clone(), m.id.clone()),
                    DueMilestone {
                        initiative: i.name.clone(),
                        initiative_title: i.title.clone(),
                        milestone: Some(m.clone()),
                        due_end: Some(dates::to_calendar(end)),
                        overdue,
                    },
                ));
            }
        }
        out
    }
}

/// The first entries of a timeline after a position: offered entries in
/// any order, it keeps the `keep` first after `after`, so that what it
/// holds is a page whatever the number offered. An entry offered twice is
/// kept once.
#[derive(Debug)]
pub struct FirstEntries<T> {
    after: Option<Position>,
    keep: usize,
    best: BTreeMap<Position, T>,
    /// Whether an entry after the kept ones was offered (and dropped).
    more: bool,
}

impl<T> FirstEntries<T> {
    /// Keeps the first `keep` entries after `after`.
    pub fn new(after: Option<Position>, keep: usize) -> Self {
        Self {
            after,
            keep,
            best: BTreeMap::new(),
            more: false,
        }
    }

    /// Offers an entry.
    pub fn offer(&mut self, key: Position, entry: T) {
        if self.after.as_ref().is_some_and(|p| &key <= p) || self.best.contains_key(&key) {
            return;
        }
        if self.best.len() == self.keep
            && self
                .best
                .last_key_value()
                .is_none_or(|(last, _)| &key > last)
        {
            self.more = true;
            return;
        }
        self.best.insert(key, entry);
        if self.best.len() > self.keep {
            self.best.pop_last();
            self.more = true;
        }
    }

    /// The entries kept, in order, and whether an entry after them was
    /// offered.
    pub fn finish(self) -> (Vec<(Position, T)>, bool) {
        (self.best.into_iter().collect(), self.more)
    }
}

/// Where entry `e` sorts (None when its due end is not a day).
pub fn position_of(e: &DueMilestone) -> Option<Position> {
    let day = dates::calendar(e.due_end.as_ref()?, "due_end").ok()?;
    let milestone = e
        .milestone
        .as_ref()
        .map(|m| m.id.clone())
        .unwrap_or_default();
    Some((dates::day_key(day), e.initiative.clone(), milestone))
}

/// The position of entry `e` as a DueMilestonePosition, to ask for the
/// entries after it.
pub fn after(e: &DueMilestone) -> DueMilestonePosition {
    DueMilestonePosition {
        due_end: e.due_end,
        initiative: e.initiative.clone(),
        milestone: e
            .milestone
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default(),
    }
}

/// A position as a DueMilestonePosition.
pub fn to_proto(p: &Position) -> Option<DueMilestonePosition> {
    let day = Date::from_julian_day(p.0).ok()?;
    Some(DueMilestonePosition {
        due_end: Some(dates::to_calendar(day)),
        initiative: p.1.clone(),
        milestone: p.2.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(day: i32, name: &str) -> Position {
        (day, name.to_string(), "m".to_string())
    }

    #[test]
    fn the_first_entries_after_a_position_are_kept_whatever_their_order() {
        let mut first = FirstEntries::new(Some(key(10, "b")), 3);
        for (day, name) in [
            (40, "a"),
            (10, "a"),
            (10, "b"),
            (12, "z"),
            (11, "a"),
            (10, "c"),
            (11, "a"),
            (50, "a"),
        ] {
            first.offer(key(day, name), name.to_string());
        }
        let (kept, more) = first.finish();
        let keys: Vec<Position> = kept.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [key(10, "c"), key(11, "a"), key(12, "z")]);
        assert!(more, "40 and 50 were dropped");

        let mut all = FirstEntries::new(None, 3);
        all.offer(key(2, "a"), ());
        all.offer(key(1, "a"), ());
        all.offer(key(1, "a"), ());
        let (kept, more) = all.finish();
        assert_eq!(kept.len(), 2);
        assert!(!more, "nothing dropped: the repeat is the same entry");
    }
}
