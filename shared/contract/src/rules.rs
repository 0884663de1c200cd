//! The domain rules of initiatives: defaults, lifecycle transitions, field
//! masks, what changed, what is overdue and what a filter matches. Nothing here
//! knows about gRPC or storage.

use time::Date;

use crate::dates;
use crate::error::{quote, Error, FieldViolation};
use crate::proto::{
    AmountQualifier, ApproximateDate, FundingKind, Initiative, LifecycleStatus, Milestone,
    MilestoneStatus, Sensitivity, StatusChange,
};
use crate::valid_time::first_day;
use crate::validate::Violations;

/// The writable top-level fields of an initiative, the paths an update mask may name.
pub const WRITABLE_FIELDS: &[&str] = &[
    "title",
    "summary",
    "instrument",
    "status",
    "status_date",
    "participants",
    "planned_start",
    "planned_end",
    "actual_start",
    "actual_end",
    "milestones",
    "funding",
    "related_initiatives",
    "topics",
    "sources",
    "sensitivity",
    "details",
];

/// The output-only fields: named in a mask they are an error.
pub const OUTPUT_ONLY_FIELDS: &[&str] = &[
    "name",
    "domain",
    "progress_updates",
    "create_time",
    "update_time",
    "revision",
    "etag",
    "status_history",
];

/// The writable fields of a milestone.
pub const MILESTONE_FIELDS: &[&str] = &["title", "due", "status", "date_met", "evidence_links"];

/// Fills in the documented defaults of unset enums.
pub fn apply_defaults(init: &mut Initiative) {
    if init.status == LifecycleStatus::Unspecified as i32 {
        init.status = LifecycleStatus::Proposed as i32;
    }
    if init.sensitivity == Sensitivity::Unspecified as i32 {
        init.sensitivity = Sensitivity::Public as i32;
    }
    for m in &mut init.milestones {
        milestone_defaults(m);
    }
    for f in &mut init.funding {
        if f.qualifier == AmountQualifier::Unspecified as i32 {
            f.qualifier = AmountQualifier::Exact as i32;
        }
        if f.kind == FundingKind::Unspecified as i32 {
            f.kind = FundingKind::Pledged as i32;
        }
    }
    if init.details.as_ref().is_some_and(|d| d.kind.is_none()) {
        init.details = None;
    }
}

/// Fills in the defaults of a milestone.
pub fn milestone_defaults(m: &mut Milestone) {
    if m.status == MilestoneStatus::Unspecified as i32 {
        m.status = MilestoneStatus::Scheduled as i32;
    }
}

fn status(value: i32) -> LifecycleStatus {
    LifecycleStatus::try_from(value).unwrap_or(LifecycleStatus::Unspecified)
}

/// Whether a lifecycle status may change from `from` to `to`.
pub fn transition_allowed(from: LifecycleStatus, to: LifecycleStatus) -> bool {
    use LifecycleStatus::*;
    from == to
        || matches!(
            (from, to),
            (Proposed, Announced | InProgress | Cancelled)
                | (Announced, InProgress | Completed | Suspended | Cancelled)
                | (InProgress, Completed | Suspended | Cancelled)
                | (Suspended, InProgress | Cancelled)
        )
}

/// FAILED_PRECONDITION naming the transition when it is not legal.
pub fn check_transition(from: i32, to: i32) -> Result<(), Error> {
    let (from, to) = (status(from), status(to));
    if transition_allowed(from, to) {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(format!(
            "illegal lifecycle transition {} -> {}",
            from.as_str_name().trim_start_matches("LIFECYCLE_STATUS_"),
            to.as_str_name().trim_start_matches("LIFECYCLE_STATUS_"),
        )))
    }
}

/// Whether the initiative still has work to do (not completed, not cancelled).
pub fn is_open(init: &Initiative) -> bool {
    !matches!(
        status(init.status),
        LifecycleStatus::Completed | LifecycleStatus::Cancelled
    )
}

/// Whether a milestone can still become overdue (it is scheduled).
pub fn milestone_open(m: &Milestone) -> bool {
    matches!(
        MilestoneStatus::try_from(m.status),
        Ok(MilestoneStatus::Scheduled | MilestoneStatus::Unspecified)
    )
}

/// Whether a milestone is met or partially met.
pub fn milestone_met(m: &Milestone) -> bool {
    status_met(m.status)
}

/// Whether a milestone status counts as met (wholly or partly).
pub fn status_met(status: i32) -> bool {
    matches!(
        MilestoneStatus::try_from(status),
        Ok(MilestoneStatus::Met | MilestoneStatus::PartiallyMet)
    )
}

/// The last day of an open milestone's due period.
pub fn open_milestone_due(m: &Milestone) -> Option<Date> {
    if milestone_open(m) {
        m.due.as_ref().and_then(dates::period_end)
    } else {
        None
    }
}

/// The last day of an open initiative's planned end period.
pub fn open_planned_end(init: &Initiative) -> Option<Date> {
    if is_open(init) {
        init.planned_end.as_ref().and_then(dates::period_end)
    } else {
        None
    }
}

/// Whether the initiative is overdue on `as_of`: its planned end or an open
/// milestone's due period ended before that day.
pub fn is_overdue(init: &Initiative, as_of: Date) -> bool {
    open_planned_end(init).is_some_and(|end| end < as_of)
        || (is_open(init)
            && init
                .milestones
                .iter()
                .filter_map(open_milestone_due)
                .any(|end| end < as_of))
}

/// Copies the fields named by `paths` from `source` into `target`. The paths
/// must have been checked with [`check_mask`].
pub fn apply_mask(target: &mut Initiative, source: &Initiative, paths: &[String]) {
    let all = paths.iter().any(|p| p == "*");
    let named = |f: &str| all || paths.iter().any(|p| p == f);
    macro_rules! copy {
        ($($field:ident),*) => {
            $(if named(stringify!($field)) {
                target.$field = source.$field.clone();
            })*
        };
    }
    copy!(
        title,
        summary,
        instrument,
        status,
        status_date,
        participants,
        planned_start,
        planned_end,
        actual_start,
        actual_end,
        milestones,
        funding,
        related_initiatives,
        topics,
        sources,
        sensitivity,
        details
    );
}

/// Most bytes of one stored initiative (its protobuf encoding): a write
/// that would pass it is FAILED_PRECONDITION.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Most progress updates one initiative keeps: one more is
/// FAILED_PRECONDITION.
pub const MAX_PROGRESS_UPDATES: usize = 1_000;

/// Refuses a version of an initiative larger than [`MAX_RECORD_BYTES`].
pub fn check_size(record: &Initiative) -> Result<(), Error> {
    let size = prost::Message::encoded_len(record);
    if size > MAX_RECORD_BYTES {
        return Err(Error::FailedPrecondition(format!(
            "the initiative would take {size} bytes, more than the {MAX_RECORD_BYTES} one record may: send shorter texts, fewer milestones or links"
        )));
    }
    Ok(())
}

/// Most paths in one update mask: more than there are fields to name.
pub const MAX_MASK_PATHS: usize = 30;

/// Checks the paths of an update mask against the writable fields (`field` is
/// the mask's path in the request); a mask of more than [`MAX_MASK_PATHS`]
/// is refused before any path is looked at.
pub fn check_mask(
    paths: &[String],
    writable: &[&str],
    output_only: &[&str],
    field: &str,
) -> Vec<FieldViolation> {
    let mut v = Vec::new();
    if paths.len() > MAX_MASK_PATHS {
        v.push(FieldViolation::new(
            format!("{field}.paths"),
            format!(
                "at most {MAX_MASK_PATHS} paths, has {} (each writable field once, or `*`)",
                paths.len()
            ),
        ));
        return v;
    }
    if paths.is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.paths"),
            format!(
                "required: name the fields to change ({}), or `*`",
                writable.join(", ")
            ),
        ));
    }
    for (i, p) in paths.iter().enumerate() {
        if p == "*" || writable.contains(&p.as_str()) {
            continue;
        }
        let why = if output_only.contains(&p.as_str()) {
            format!("{} is output only", quote(p))
        } else {
            format!(
                "unknown field {}; writable: {}",
                quote(p),
                writable.join(", ")
            )
        };
        v.push(FieldViolation::new(format!("{field}.paths[{i}]"), why));
    }
    v
}

/// The top-level fields that differ between two versions of an initiative
/// (all set fields when there is no old version).
pub fn changed_fields(old: Option<&Initiative>, new: &Initiative) -> Vec<String> {
    let blank = Initiative::default();
    let old = old.unwrap_or(&blank);
    let mut out = Vec::new();
    macro_rules! diff {
        ($($field:ident),*) => {
            $(if old.$field != new.$field {
                out.push(stringify!($field).to_string());
            })*
        };
    }
    diff!(
        title,
        summary,
        instrument,
        status,
        status_date,
        participants,
        planned_start,
        planned_end,
        actual_start,
        actual_end,
        milestones,
        funding,
        progress_updates,
        related_initiatives,
        topics,
        sources,
        sensitivity,
        details
    );
    out
}

/// Most status changes one initiative keeps: one more is
/// FAILED_PRECONDITION.
pub const MAX_STATUS_CHANGES: usize = 100;

/// The earliest dated source of an initiative: the day it was committed to.
pub fn committed_on(init: &Initiative) -> Option<ApproximateDate> {
    init.sources
        .iter()
        .filter_map(|s| s.date)
        .filter_map(|d| first_day(&d).map(|start| (start, d)))
        .min_by_key(|(start, _)| *start)
        .map(|(_, d)| d)
}

/// Checks that a dated fact has not started after `today` (`field` names it).
fn not_after(v: &mut Violations, field: &str, date: &ApproximateDate, today: Date) {
    if first_day(date).is_some_and(|start| start > today) {
        v.add(
            field,
            format!(
                "{} starts after today ({today}): record a fact once it has happened",
                dates::display(date)
            ),
        );
    }
}

/// Dates a milestone met or partially met without a date met: the day it is
/// recorded. A date met must not start after that day. `field` is the
/// milestone's path.
pub fn date_milestone(v: &mut Violations, field: &str, m: &mut Milestone, today: Date) {
    if milestone_met(m) {
        match &m.date_met {
            None => m.date_met = Some(dates::as_day(today)),
            Some(d) => not_after(v, &format!("{field}.date_met"), d, today),
        }
    }
}

/// Dates the facts of `next`, the version about to be written over
/// `current` (`None`: a creation), on `today` at `now`:
/// - the status history (output only) is carried over, and gains an entry
///   when the status changes, effective from `status_date` when the caller
///   sent one (`status_date_sent`), else from the day it is recorded (for a
///   creation: the earliest dated source, else that day); a `status_date`
///   sent without a new status corrects the date of the current status;
/// - a milestone newly met without a date met gets the day it is recorded.
///
/// A status date must not start after today, nor before the date of the
/// status it follows: INVALID_ARGUMENT. More than [`MAX_STATUS_CHANGES`]:
/// FAILED_PRECONDITION. `field` is the record's path in the request.
pub fn date_facts(
    current: Option<&Initiative>,
    next: &mut Initiative,
    status_date_sent: bool,
    today: Date,
    now: pbjson_types::Timestamp,
    field: &str,
) -> Result<(), Error> {
    let mut v = Violations::default();
    for (i, m) in next.milestones.iter_mut().enumerate() {
        let before = current.and_then(|c| c.milestones.iter().find(|o| o.id == m.id));
        if before.is_some_and(|b| b.status == m.status && b.date_met == m.date_met) {
            continue;
        }
        date_milestone(&mut v, &format!("{field}.milestones[{i}]"), m, today);
    }
    let mut history = current
        .map(|c| c.status_history.clone())
        .unwrap_or_default();
    let recorded = |effective: ApproximateDate| StatusChange {
        status: next.status,
        effective: Some(effective),
        record_time: Some(now),
    };
    let sent = if status_date_sent {
        next.status_date
    } else {
        None
    };
    let today_day = dates::as_day(today);
    let amend = match current {
        None => {
            // Sent, else the earliest dated source (unless it lies ahead),
            // else the day recorded.
            let effective = next
                .status_date
                .or_else(|| committed_on(next).filter(|c| first_day(c).is_some_and(|d| d <= today)))
                .unwrap_or(today_day);
            history = vec![recorded(effective)];
            false
        }
        Some(c) if c.status != next.status => {
            history.push(recorded(sent.unwrap_or(today_day)));
            false
        }
        Some(c) if sent.is_some_and(|d| Some(d) != c.status_date) => {
            let effective = sent.unwrap_or(today_day);
            match history.last_mut() {
                Some(last) => {
                    last.effective = Some(effective);
                    last.record_time = Some(now);
                }
                None => history.push(recorded(effective)),
            }
            true
        }
        Some(c) => {
            next.status_date = c.status_date;
            next.status_history = history;
            return v.finish();
        }
    };
    let status_field = format!("{field}.status_date");
    if let Some(last) = history.last().and_then(|h| h.effective) {
        v.date(&status_field, Some(&last));
        not_after(&mut v, &status_field, &last, today);
        let follows = history
            .len()
            .checked_sub(2)
            .and_then(|i| history.get(i))
            .and_then(|h| h.effective);
        if let (Some(prev), Some(start)) = (follows, first_day(&last)) {
            if first_day(&prev).is_some_and(|p| start < p) {
                v.add(
                    &status_field,
                    format!(
                        "{} starts before the date of the status it follows ({})",
                        dates::display(&last),
                        dates::display(&prev)
                    ),
                );
            }
        }
        next.status_date = Some(last);
    }
    v.finish()?;
    if history.len() > MAX_STATUS_CHANGES && !amend {
        return Err(Error::FailedPrecondition(format!(
            "the initiative has changed status {} times, the most one record keeps",
            MAX_STATUS_CHANGES
        )));
    }
    next.status_history = history;
    Ok(())
}

/// A list filter, checked and ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<i32>,
    /// Any of these instruments (empty: any).
    pub instruments: Vec<i32>,
    /// This organization takes part.
    pub organization_id: Option<String>,
    /// A participant from this country.
    pub country_code: Option<String>,
    /// Carries this topic.
    pub topic: Option<String>,
    /// A planned end or open milestone ends on or after this day.
    pub due_after: Option<Date>,
    /// A planned end or open milestone ends on or before this day.
    pub due_before: Option<Date>,
    /// Only overdue initiatives.
    pub overdue_only: bool,
    /// Lower-cased text to find in title or summary.
    pub text: Option<String>,
    /// The day the filter speaks for (valid time; unset: today).
    pub as_of: Option<Date>,
    /// Versions as known at the end of this day (record time; unset: now).
    pub known_on: Option<Date>,
    /// A source names exactly this document.
    pub document: Option<String>,
    /// The due window counts met milestones too (in any initiative).
    pub include_met_milestones: bool,
    /// Leave out records marked RESTRICTED (for callers without clearance).
    pub hide_restricted: bool,
}

impl Filter {
    /// The day the filter speaks for.
    pub fn day(&self) -> Date {
        self.as_of.unwrap_or_else(dates::today)
    }

    /// Whether records may be found by their current status (in an index
    /// of it): the filter speaks for today or later, when the status of
    /// every record is its current one (no status takes effect in the
    /// future).
    pub fn current_status_applies(&self) -> bool {
        self.known_on.is_none() && self.as_of.is_none_or(|d| d >= dates::today())
    }

    /// Whether a record must be read whole to know whether it passes: the
    /// filter has a part besides its days and the caller's clearance (which
    /// a record's [`Spans`](crate::valid_time::Spans), kept beside it, answer).
    pub fn reads_records(&self) -> bool {
        // Every field named, so that a part added later is weighed here.
        let Filter {
            statuses,
            instruments,
            organization_id,
            country_code,
            topic,
            due_after,
            due_before,
            overdue_only,
            text,
            as_of: _,
            known_on: _,
            document,
            include_met_milestones: _,
            hide_restricted: _,
        } = self;
        !statuses.is_empty()
            || !instruments.is_empty()
            || organization_id.is_some()
            || country_code.is_some()
            || topic.is_some()
            || due_after.is_some()
            || due_before.is_some()
            || *overdue_only
            || text.is_some()
            || document.is_some()
    }

    /// The initiative as it stood on the filter's day, if it existed then
    /// and passes every part of the filter.
    pub fn select(&self, init: Initiative) -> Option<Initiative> {
        // Checked again by `matches`; here it spares projecting a record
        // the caller may not see.
        if self.hide_restricted && crate::auth::is_restricted(&init) {
            return None;
        }
        let init = crate::valid_time::into_day(init, self.day())?;
        self.matches(&init).then_some(init)
    }

    /// Whether the initiative passes every part of the filter.
    pub fn matches(&self, init: &Initiative) -> bool {
        if self.hide_restricted && crate::auth::is_restricted(init) {
            return false;
        }
        if !self.statuses.is_empty() && !self.statuses.contains(&init.status) {
            return false;
        }
        if !self.instruments.is_empty() && !self.instruments.contains(&init.instrument) {
            return false;
        }
        let orgs = || {
            init.participants
                .iter()
                .filter_map(|p| p.organization.as_ref())
        };
        if let Some(id) = &self.organization_id {
            if !orgs().any(|o| &o.id == id) {
                return false;
            }
        }
        if let Some(cc) = &self.country_code {
            if !orgs().any(|o| &o.country_code == cc) {
                return false;
            }
        }
        if let Some(t) = &self.topic {
            if !init.topics.contains(t) {
                return false;
            }
        }
        if self.due_after.is_some() || self.due_before.is_some() {
            let in_window = |d: &Date| {
                self.due_after.is_none_or(|a| *d >= a) && self.due_before.is_none_or(|b| *d <= b)
            };
            let hit = open_planned_end(init).is_some_and(|d| in_window(&d))
                || (is_open(init)
                    && init
                        .milestones
                        .iter()
                        .filter_map(open_milestone_due)
                        .any(|d| in_window(&d)))
                || (self.include_met_milestones
                    && init
                        .milestones
                        .iter()
                        .filter(|m| milestone_met(m))
                        .filter_map(|m| m.due.as_ref().and_then(dates::period_end))
                        .any(|d| in_window(&d)));
            if !hit {
                return false;
            }
        }
        if self.overdue_only && !is_overdue(init, self.day()) {
            return false;
        }
        if let Some(doc) = &self.document {
            if !init.sources.iter().any(|s| &s.document == doc) {
                return false;
            }
        }
        if let Some(text) = &self.text {
            if !init.title.to_lowercase().contains(text)
                && !init.summary.to_lowercase().contains(text)
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ApproximateDate, DatePrecision};
    use time::macros::date;

    #[test]
    fn lifecycle_transitions() {
        use LifecycleStatus::*;
        assert!(transition_allowed(Proposed, Announced));
        assert!(transition_allowed(Announced, Completed));
        assert!(transition_allowed(Suspended, InProgress));
        assert!(transition_allowed(Completed, Completed));
        assert!(!transition_allowed(Completed, InProgress));
        assert!(!transition_allowed(Cancelled, Proposed));
        assert!(!transition_allowed(InProgress, Proposed));
        assert!(!transition_allowed(Proposed, Suspended));
        let e = check_transition(Completed as i32, InProgress as i32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "illegal lifecycle transition COMPLETED -> IN_PROGRESS"
        );
    }

    fn year(y: i32) -> ApproximateDate {
        ApproximateDate {
            precision: DatePrecision::Year as i32,
            year: y,
            ..Default::default()
        }
    }

    #[test]
    fn overdue_only_after_the_end_of_the_period() {
        let init = Initiative {
            status: LifecycleStatus::Announced as i32,
            planned_end: Some(year(2024)),
            ..Default::default()
        };
        assert!(!is_overdue(&init, date!(2024 - 12 - 31)));
        assert!(is_overdue(&init, date!(2025 - 01 - 01)));
        let done = Initiative {
            status: LifecycleStatus::Completed as i32,
            ..init
        };
        assert!(!is_overdue(&done, date!(2026 - 01 - 01)));
    }

    #[test]
    fn masks_copy_only_named_fields_and_reject_others() {
        let mut target = Initiative {
            title: "a".into(),
            summary: "s".into(),
            ..Default::default()
        };
        let source = Initiative {
            title: "b".into(),
            summary: "t".into(),
            ..Default::default()
        };
        apply_mask(&mut target, &source, &["title".to_string()]);
        assert_eq!((target.title.as_str(), target.summary.as_str()), ("b", "s"));
        let v = check_mask(
            &["etag".into(), "bogus".into(), "title".into()],
            WRITABLE_FIELDS,
            OUTPUT_ONLY_FIELDS,
            "update_mask",
        );
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["update_mask.paths[0]", "update_mask.paths[1]"]);
        assert_eq!(
            check_mask(&[], WRITABLE_FIELDS, OUTPUT_ONLY_FIELDS, "m")[0].field,
            "m.paths"
        );
    }

    #[test]
    fn changed_fields_lists_what_differs() {
        let a = Initiative {
            title: "a".into(),
            ..Default::default()
        };
        let b = Initiative {
            title: "b".into(),
            topics: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(changed_fields(Some(&a), &b), vec!["title", "topics"]);
        assert_eq!(changed_fields(None, &a), vec!["title"]);
    }
}
