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
