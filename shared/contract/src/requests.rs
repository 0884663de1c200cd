//! Checked requests: each `cet.v1.DomainService` request checked against the
//! domain that serves it and returned as a type whose fields are all valid,
//! so that the service's logic needs no error that cannot fire. Every check
//! reports all invalid fields at once (INVALID_ARGUMENT with field
//! violations); a name or parent of another domain is NOT_FOUND.
//!
//! The rules the gateway shares (filters, the "as of" day, the "due soon"
//! window) are here too, once.

use time::Date;

use crate::dates;
use crate::domain::Domain;
use crate::error::{Error, FieldViolation, Result};
use crate::names::{check_resource_id, parse_parent, InitiativeName};
use crate::pagination;
use crate::proto::{
    AddProgressUpdateRequest, CalendarDate, CreateInitiativeRequest, DeleteInitiativeRequest,
    GetDomainSummaryRequest, GetInitiativeRequest, Initiative, InitiativeFilter, Instrument,
    LifecycleStatus, ListDueMilestonesRequest, ListHistoryRequest, ListInitiativesRequest,
    Milestone, ProgressUpdate, UpdateInitiativeRequest, UpdateMilestoneRequest,
    WatchChangesRequest,
};
use crate::rules::{self, Filter};
use crate::summary::SummaryWindow;
use crate::timeline::{Position, Window};
use crate::validate::{self, Violations};

/// Default "due soon" window of a summary, in days.
pub const DEFAULT_DUE_WITHIN_DAYS: i32 = 90;
/// Longest "due soon" window, in days.
pub const MAX_DUE_WITHIN_DAYS: i32 = 3_660;

/// Checks a "due soon" window in days (0 means the default).
pub fn due_within(v: &mut Violations, days: i32, field: &str) -> i32 {
    match days {
        0 => DEFAULT_DUE_WITHIN_DAYS,
        n if !(0..=MAX_DUE_WITHIN_DAYS).contains(&n) => {
            v.add(field, format!("must be 0 to {MAX_DUE_WITHIN_DAYS}, is {n}"));
            DEFAULT_DUE_WITHIN_DAYS
        }
        n => n,
    }
}

/// Checks an optional "as of" day (unset: today, in UTC).
pub fn as_of(v: &mut Violations, day: Option<&CalendarDate>, field: &str) -> Date {
    match day {
        None => dates::today(),
        Some(d) => dates::calendar(d, field).unwrap_or_else(|e| {
            v.extend([e]);
            dates::today()
        }),
    }
}

/// Checks an optional "as known on" day (unset: now).
pub fn known_on(v: &mut Violations, day: Option<&CalendarDate>, field: &str) -> Option<Date> {
    day.and_then(|d| match dates::calendar(d, field) {
        Ok(d) => Some(d),
        Err(e) => {
            v.extend([e]);
            None
        }
    })
}

/// Most values in one list of enum values of a filter: more than any of
/// its enums has (a value listed twice is counted once).
pub const MAX_FILTER_VALUES: usize = 32;

/// Checks a filter's list of values of enum `E` (each known and specified,
/// at most [`MAX_FILTER_VALUES`], checked before any is looked at); the set
/// of them, sorted, each once.
fn enum_set<E: TryFrom<i32>>(v: &mut Violations, values: &[i32], field: &str) -> Vec<i32> {
    let values = v.capped(field, values, MAX_FILTER_VALUES);
    for (i, x) in values.iter().enumerate() {
        v.enum_value::<E>(&format!("{field}[{i}]"), *x, false);
    }
    let mut set = values.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

/// Checks a filter and makes it ready to apply; `field` is its path.
pub fn filter(v: &mut Violations, f: &InitiativeFilter, field: &str) -> Filter {
    let mut out = Filter {
        statuses: enum_set::<LifecycleStatus>(v, &f.statuses, &format!("{field}.statuses")),
        instruments: enum_set::<Instrument>(v, &f.instruments, &format!("{field}.instruments")),
        ..Filter::default()
    };
    if !f.organization_id.is_empty() {
        v.slug(&format!("{field}.organization_id"), &f.organization_id, 2);
        out.organization_id = Some(f.organization_id.clone());
    }
    if !f.country_code.is_empty() {
        v.country(&format!("{field}.country_code"), &f.country_code, true);
        out.country_code = Some(f.country_code.clone());
    }
    if !f.topic.is_empty() {
        v.slug(&format!("{field}.topic"), &f.topic, 1);
        out.topic = Some(f.topic.clone());
    }
    let day = |v: &mut Violations, d: &Option<CalendarDate>, name: &str| {
        d.as_ref()
            .and_then(|d| match dates::calendar(d, &format!("{field}.{name}")) {
                Ok(d) => Some(d),
                Err(e) => {
                    v.extend([e]);
                    None
                }
            })
    };
    out.due_after = day(v, &f.due_after, "due_after");
    out.due_before = day(v, &f.due_before, "due_before");
    if let (Some(a), Some(b)) = (out.due_after, out.due_before) {
        if b < a {
            v.add(
                format!("{field}.due_before"),
                "must not be before due_after",
            );
        }
    }
    out.as_of = day(v, &f.as_of, "as_of");
    out.known_on = day(v, &f.as_known_on, "as_known_on");
    v.text(&format!("{field}.document"), &f.document, false, 500);
    if !f.document.is_empty() {
        out.document = Some(f.document.clone());
    }
    out.overdue_only = f.overdue_only;
    out.include_met_milestones = f.include_met_milestones;
    v.text(&format!("{field}.text"), &f.text, false, 200);
    if !f.text.trim().is_empty() {
        out.text = Some(f.text.trim().to_lowercase());
    }
    out
}

/// The domain whose requests are checked.
#[derive(Debug, Clone, Copy)]
pub struct Served(pub Domain);

impl Served {
    /// Checks that `parent` names this domain: a malformed parent is a
    /// violation, another domain's NOT_FOUND.
    fn parent(self, v: &mut Violations, parent: &str, field: &str) -> Result<()> {
        match parse_parent(parent, field) {
            Err(e) => v.extend([e]),
            Ok(d) if d != self.0 => return Err(self.elsewhere(parent)),
            Ok(_) => {}
        }
        Ok(())
    }

    /// Parses the name of an initiative of this domain. A malformed name is
    /// a violation (the name returned then is a placeholder the caller never
    /// sees: the check fails); another domain's name is NOT_FOUND.
    fn name(self, v: &mut Violations, name: &str, field: &str) -> Result<InitiativeName> {
        match InitiativeName::parse(name, field) {
            Err(e) => {
                v.extend([e]);
                Ok(InitiativeName::new(self.0, String::new()))
            }
            Ok(n) if n.domain != self.0 => Err(self.elsewhere(name)),
            Ok(n) => Ok(n),
        }
    }

    fn elsewhere(self, name: &str) -> Error {
        Error::NotFound(format!(
            "`{name}` is not served here: this is the {} service",
            self.0
        ))
    }

    /// CreateInitiativeRequest: the record to create, normalised (name,
    /// domain, server-set fields cleared, defaults applied).
    pub fn create(
        self,
        req: &CreateInitiativeRequest,
        generated_id: &str,
    ) -> Result<CheckedCreate> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let id = if req.initiative_id.is_empty() {
            generated_id.to_string()
        } else {
            if let Err(e) = check_resource_id(&req.initiative_id) {
                v.add("initiative_id", e);
            }
            req.initiative_id.clone()
        };
        let name = InitiativeName::new(self.0, id.clone()).to_string();
        match &req.initiative {
            None => v.add("initiative", "required"),
            Some(init) => validate::initiative(&mut v, "initiative", init, self.0, Some(&name)),
        }
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let mut record = req.initiative.clone().unwrap_or_default();
        record.name = name;
        record.domain = self.0.to_proto() as i32;
        record.progress_updates.clear();
        record.create_time = None;
        record.update_time = None;
        record.revision = 0;
        record.etag.clear();
        rules::apply_defaults(&mut record);
        Ok(CheckedCreate { id, record })
    }

    /// GetInitiativeRequest: the name.
    pub fn get(self, req: &GetInitiativeRequest) -> Result<InitiativeName> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        v.finish()?;
        Ok(name)
    }

    /// ListInitiativesRequest: filter, page size and position.
    pub fn list(self, req: &ListInitiativesRequest) -> Result<CheckedList> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let page_size = checked(&mut v, pagination::page_size(req.page_size, "page_size"), 0);
        let filter_msg = req.filter.clone().unwrap_or_default();
        let filter = filter(&mut v, &filter_msg, "filter");
        let fingerprint = pagination::list_fingerprint(&req.parent, &filter_msg);
        let token = checked(
            &mut v,
            pagination::decode(&req.page_token, fingerprint, "page_token"),
            None,
        );
        v.finish()?;
        Ok(CheckedList {
            filter,
            page_size,
            after_id: token.as_ref().map(|t| t.last_id.clone()),
            sealed_after: token.map(|t| t.sealed).unwrap_or_default(),
            fingerprint,
        })
    }

    /// ListDueMilestonesRequest: the window, the record time, where the page
    /// starts and its size (0: [`DEFAULT_TIMELINE_PAGE`]).
    pub fn due_milestones(self, req: &ListDueMilestonesRequest) -> Result<CheckedDueMilestones> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let mut required = |d: &Option<CalendarDate>, field: &str| match d {
            None => {
                v.add(field, "required");
                None
            }
            Some(d) => dates::calendar(d, field).map_err(|e| v.extend([e])).ok(),
        };
        let after = required(&req.due_after, "due_after");
        let before = required(&req.due_before, "due_before");
        if let (Some(a), Some(b)) = (after, before) {
            if b < a {
                v.add("due_before", "must not be before due_after");
            }
        }
        let as_of = as_of(&mut v, req.as_of.as_ref(), "as_of");
        let known_on = known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
        let start_after = req.start_after.as_ref().and_then(|p| {
            let day = match &p.due_end {
                None => {
                    v.add("start_after.due_end", "required");
                    None
                }
                Some(d) => dates::calendar(d, "start_after.due_end")
                    .map_err(|e| v.extend([e]))
                    .ok(),
            };
            v.text("start_after.initiative", &p.initiative, false, 500);
            v.text("start_after.milestone", &p.milestone, false, 500);
            day.map(|d| (dates::day_key(d), p.initiative.clone(), p.milestone.clone()))
        });
        let page_size = match req.page_size {
            0 => DEFAULT_TIMELINE_PAGE,
            n => checked(&mut v, pagination::page_size(n, "page_size"), 0),
        };
        v.finish()?;
        let (Some(after), Some(before)) = (after, before) else {
            return Err(Error::invalid("due_after", "required"));
        };
        Ok(CheckedDueMilestones {
            window: Window {
                after,
                before,
                as_of,
                overdue: req.include_overdue,
                met: req.include_met,
            },
            known_on,
            start_after,
            page_size,
        })
    }

    /// UpdateInitiativeRequest: the name, the values sent and the mask. The
    /// values of the masked fields are checked now, so that a request with a
    /// bad mask and bad values hears of both at once; the merged record is
    /// checked again against the stored one when it is written.
    pub fn update(self, req: &UpdateInitiativeRequest) -> Result<CheckedUpdate> {
        let mut v = Violations::default();
        let Some(input) = req.initiative.clone() else {
            v.add("initiative", "required");
            return Err(Error::InvalidArgument(v.into_vec()));
        };
        let name = self.name(&mut v, &input.name, "initiative.name")?;
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        v.extend(rules::check_mask(
            &paths,
            rules::WRITABLE_FIELDS,
            rules::OUTPUT_ONLY_FIELDS,
            "update_mask",
        ));
        // The values of the masked fields only (a mask past its cap names
        // none).
        let masks: Vec<String> = if paths.len() > rules::MAX_MASK_PATHS {
            Vec::new()
        } else {
            paths.iter().map(|p| format!("initiative.{p}")).collect()
        };
        let mut values = Violations::only(move |field: &str| {
            masks.iter().any(|m| {
                m == "initiative.*"
                    || field == m
                    || field
                        .strip_prefix(m.as_str())
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            })
        });
        validate::initiative(&mut values, "initiative", &input, self.0, Some(&input.name));
        v.absorb(values);
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        Ok(CheckedUpdate { name, input, paths })
    }

    /// DeleteInitiativeRequest: the name.
    pub fn delete(self, req: &DeleteInitiativeRequest) -> Result<InitiativeName> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        Ok(name)
    }

    /// AddProgressUpdateRequest: the name and the update.
    pub fn add_progress_update(self, req: &AddProgressUpdateRequest) -> Result<CheckedProgress> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        match &req.progress_update {
            None => v.add("progress_update", "required"),
            Some(p) => validate::progress_update(&mut v, "progress_update", p),
        }
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        Ok(CheckedProgress {
            name,
            update: req.progress_update.clone().unwrap_or_default(),
        })
    }

    /// UpdateMilestoneRequest: the name, the milestone's values and the mask.
    pub fn update_milestone(self, req: &UpdateMilestoneRequest) -> Result<CheckedMilestone> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        match &req.milestone {
            None => v.add("milestone", "required"),
            Some(m) => v.slug("milestone.id", &m.id, 1),
        }
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        v.extend(rules::check_mask(
            &paths,
            rules::MILESTONE_FIELDS,
            &["id"],
            "update_mask",
        ));
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        Ok(CheckedMilestone {
            name,
            input: req.milestone.clone().unwrap_or_default(),
            paths,
        })
    }

    /// GetDomainSummaryRequest: the window counted, the record-time day to
    /// count as known on (unset: now) and the document counted (unset: all).
    pub fn summary(self, req: &GetDomainSummaryRequest) -> Result<CheckedSummary> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let due_within_days = due_within(&mut v, req.due_within_days, "due_within_days");
        let as_of = as_of(&mut v, req.as_of.as_ref(), "as_of");
        let known_on = known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
        v.text("document", &req.document, false, 500);
        v.finish()?;
        Ok(CheckedSummary {
            window: SummaryWindow {
                as_of,
                due_within_days,
            },
            known_on,
            document: Some(req.document.clone()).filter(|d| !d.is_empty()),
        })
    }

    /// ListHistoryRequest: the name, page size and position.
    pub fn history(self, req: &ListHistoryRequest) -> Result<CheckedHistory> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        let page_size = checked(&mut v, pagination::page_size(req.page_size, "page_size"), 0);
        let fingerprint = pagination::fingerprint(&[req.name.as_bytes()]);
        let token = checked(
            &mut v,
            pagination::decode(&req.page_token, fingerprint, "page_token"),
            None,
        );
        v.finish()?;
        Ok(CheckedHistory {
            name,
            page_size,
            after_revision: token.as_ref().map(|t| t.last_revision),
            fingerprint,
        })
    }

    /// WatchChangesRequest: the revision to follow from.
    pub fn watch(self, req: &WatchChangesRequest) -> Result<u64> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        if req.after_revision < 0 {
            v.add("after_revision", "must not be negative");
        }
        v.finish()?;
        Ok(req.after_revision.unsigned_abs())
    }

    /// BackupStoreRequest: its parent.
    pub fn backup(self, parent: &str) -> Result<()> {
        let mut v = Violations::default();
        self.parent(&mut v, parent, "parent")?;
        v.finish()
    }
}

/// Records the violation of `r`, if any, and goes on with `placeholder`
/// (never seen by a caller: the check then fails).
fn checked<T>(v: &mut Violations, r: std::result::Result<T, FieldViolation>, placeholder: T) -> T {
    r.unwrap_or_else(|e| {
        v.extend([e]);
        placeholder
    })
}

/// A checked GetDomainSummaryRequest.
#[derive(Debug, Clone)]
pub struct CheckedSummary {
    /// The day and window counted.
    pub window: SummaryWindow,
    /// Count as known at the end of this day (record time); `None`: now.
    pub known_on: Option<Date>,
    /// Count only the records of this document.
    pub document: Option<String>,
}

/// A checked CreateInitiativeRequest.
#[derive(Debug, Clone)]
pub struct CheckedCreate {
    /// The initiative id (the caller's, or generated).
    pub id: String,
    /// The record to store, normalised.
    pub record: Initiative,
}

/// A checked ListInitiativesRequest.
#[derive(Debug, Clone)]
pub struct CheckedList {
    /// The filter, ready to apply.
    pub filter: Filter,
    /// The page size, defaulted and capped.
    pub page_size: usize,
    /// The last id of the previous page (empty when it is sealed).
    pub after_id: Option<String>,
    /// The position of the previous page's end, sealed by the service
    /// (empty when it is not).
    pub sealed_after: Vec<u8>,
    /// The fingerprint the next page token carries.
    pub fingerprint: u64,
}

/// Entries of a timeline page when the caller sends 0.
pub const DEFAULT_TIMELINE_PAGE: usize = 100;

/// A checked ListDueMilestonesRequest.
#[derive(Debug, Clone)]
pub struct CheckedDueMilestones {
    /// Which milestones, as of which day.
    pub window: Window,
    /// The record time (unset: now).
    pub known_on: Option<Date>,
    /// The entries after this position only.
    pub start_after: Option<Position>,
    /// The most entries, defaulted and capped.
    pub page_size: usize,
}

/// A checked UpdateInitiativeRequest.
#[derive(Debug, Clone)]
pub struct CheckedUpdate {
    /// The initiative's name.
    pub name: InitiativeName,
    /// The values sent.
    pub input: Initiative,
    /// The mask's paths (checked against the writable fields).
    pub paths: Vec<String>,
}

/// A checked AddProgressUpdateRequest.
#[derive(Debug, Clone)]
pub struct CheckedProgress {
    /// The initiative's name.
    pub name: InitiativeName,
    /// The update to append.
    pub update: ProgressUpdate,
}

/// A checked UpdateMilestoneRequest.
#[derive(Debug, Clone)]
pub struct CheckedMilestone {
    /// The initiative's name.
    pub name: InitiativeName,
    /// The milestone's values (its id names the milestone).
    pub input: Milestone,
    /// The mask's paths (checked against the milestone's fields).
    pub paths: Vec<String>,
}

/// A checked ListHistoryRequest.
#[derive(Debug, Clone)]
pub struct CheckedHistory {
    /// The initiative's name.
    pub name: InitiativeName,
    /// The page size, defaulted and capped.
    pub page_size: usize,
    /// The last revision of the previous page; `None` on the first page.
    pub after_revision: Option<u64>,
    /// The fingerprint the next page token carries.
    pub fingerprint: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_name_and_a_bad_page_are_reported_together() {
        let served = Served(Domain::Ai);
        let err = served
            .history(&ListHistoryRequest {
                name: "nope".into(),
                page_size: -1,
                page_token: "garbage".into(),
            })
            .err();
        let Some(Error::InvalidArgument(v)) = err else {
            panic!("expected INVALID_ARGUMENT, got {err:?}");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "page_size", "page_token"]);
    }

    #[test]
    fn another_domains_name_is_not_found() {
        let err = Served(Domain::Ai)
            .get(&GetInitiativeRequest {
                name: "domains/quantum/initiatives/x".into(),
            })
            .err();
        assert!(matches!(err, Some(Error::NotFound(_))), "{err:?}");
    }

    #[test]
    fn windows_default_and_are_bounded() {
        let mut v = Violations::default();
        assert_eq!(due_within(&mut v, 0, "d"), DEFAULT_DUE_WITHIN_DAYS);
        assert_eq!(due_within(&mut v, 30, "d"), 30);
        assert!(v.is_empty());
        due_within(&mut v, MAX_DUE_WITHIN_DAYS + 1, "d");
        due_within(&mut v, -1, "d");
        assert_eq!(v.into_vec().len(), 2);
    }
}
