//! The gateway's views, each answering one cross-domain question from the
//! domain services.

pub mod factsheet;
pub mod overview;
pub mod portfolio;
pub mod search;
pub mod timeline;
pub mod watch;

use std::time::Duration;

use cetrack_shared::core::{DEFAULT_DUE_WITHIN_DAYS, MAX_DUE_WITHIN_DAYS};
use cetrack_shared::proto::{CalendarDate, Initiative, InitiativeFilter, ListInitiativesRequest};
use cetrack_shared::validate::Violations;
use cetrack_shared::{dates, pagination, Domain};

use crate::domains::{request, status_error, Client, DomainError};

/// The most initiatives a view reads from one domain.
pub const MAX_WALK: usize = 100_000;

/// Checks a list of domains (empty: all); unknown values are violations.
pub fn domains_of(v: &mut Violations, values: &[i32], field: &str, all: &[Domain]) -> Vec<Domain> {
    if values.is_empty() {
        return all.to_vec();
    }
    let mut out = Vec::new();
    for (i, x) in values.iter().enumerate() {
        match Domain::from_proto(*x) {
            Some(d) if all.contains(&d) => {
                if !out.contains(&d) {
                    out.push(d)
                }
            }
            Some(d) => v.add(
                format!("{field}[{i}]"),
                format!("the gateway has no address for {d}"),
            ),
            None => v.add(format!("{field}[{i}]"), format!("unknown domain {x}")),
        }
    }
    out
}

/// Checks a "due soon" window (0 means the default).
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

/// Checks an optional as-of day (unset: today).
pub fn as_of(v: &mut Violations, d: Option<&CalendarDate>, field: &str) -> time::Date {
    match d {
        None => dates::today(),
        Some(d) => dates::calendar(d, field).unwrap_or_else(|e| {
            v.extend([e]);
            dates::today()
        }),
    }
}

/// Reads every initiative of `domain` matching `filter` after `after_id`,
/// page by page.
pub async fn walk(
    domain: Domain,
    mut client: Client,
    filter: InitiativeFilter,
    after_id: Option<String>,
    limit: usize,
    deadline: Duration,
) -> Result<(Vec<Initiative>, bool), DomainError> {
    let parent = domain.parent();
    let mut token = after_id
        .map(|id| pagination::list_token_after(&parent, &filter, &id))
        .unwrap_or_default();
    let mut out = Vec::new();
    loop {
        let want = (limit - out.len()).min(pagination::MAX_PAGE_SIZE);
        let page = client
            .list_initiatives(request(
                ListInitiativesRequest {
                    parent: parent.clone(),
                    page_size: want as i32,
                    page_token: token,
                    filter: Some(filter.clone()),
                },
                deadline,
            ))
            .await
            .map_err(|s| status_error(domain, s))?
            .into_inner();
        out.extend(page.initiatives);
        if page.next_page_token.is_empty() {
            return Ok((out, false));
        }
        if out.len() >= limit {
            return Ok((out, true));
        }
        token = page.next_page_token;
    }
}
