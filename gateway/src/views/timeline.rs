//! The milestone timeline: scheduled milestones across domains due in a
//! window, and optionally those overdue, ordered by the end of their due
//! period (so "in 2024" sorts at 2024-12-31, after "2024-Q1"). Each domain
//! answers its first page of entries after the caller's position
//! (ListDueMilestones, see `cetrack_contract::timeline`); the gateway merges
//! them.

use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{
    ListDueMilestonesRequest, ListMilestoneTimelineRequest, ListMilestoneTimelineResponse,
    TimelineEntry,
};
use cetrack_contract::timeline::{self, FirstEntries, Position};
use cetrack_contract::validate::Violations;
use cetrack_contract::{dates, requests, Error};
use prost::Message;
use time::Date;

use crate::domains::{request, CallCtx, DomainError, Domains, FanOut};

/// The window's length when no `due_before` is sent: a year after the as-of
/// day.
const DEFAULT_WINDOW_DAYS: i64 = 365;

/// Page size when the caller sends 0.
const DEFAULT_PAGE: usize = 100;

/// ListMilestoneTimeline.
pub async fn timeline(
    domains: &Domains,
    req: ListMilestoneTimelineRequest,
    ctx: &CallCtx,
) -> Result<ListMilestoneTimelineResponse, Error> {
    let mut v = Violations::default();
    let as_of = requests::as_of(&mut v, req.as_of.as_ref(), "as_of");
    let known_on = requests::known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
    let before = match &req.due_before {
        None => Some(as_of.saturating_add(time::Duration::days(DEFAULT_WINDOW_DAYS))),
        Some(d) => dates::calendar(d, "due_before")
            .map_err(|e| v.extend([e]))
            .ok(),
    };
    let after = match &req.due_after {
        // A window that ends before the as-of day starts at the beginning.
        None if before.is_some_and(|b| b < as_of) => {
            Date::from_calendar_date(dates::MIN_YEAR, time::Month::January, 1).ok()
        }
        None => Some(as_of),
        Some(d) => dates::calendar(d, "due_after")
            .map_err(|e| v.extend([e]))
            .ok(),
    };
    if let (Some(a), Some(b)) = (after, before) {
        if b < a {
            v.add("due_before", "must not be before due_after");
        }
    }
    let wanted = super::domains_of(&mut v, &req.domains, "domains", &domains.all());
    let size = match req.page_size {
        0 => DEFAULT_PAGE,
        n => pagination::page_size(n, "page_size").unwrap_or_else(|e| {
            v.extend([e]);
            0
        }),
    };
    let mut fp_req = req.clone();
    fp_req.page_token.clear();
    fp_req.page_size = 0;
    let fp = pagination::fingerprint(&[b"timeline", &fp_req.encode_to_vec()]);
    let token = pagination::decode(&req.page_token, fp, "page_token").unwrap_or_else(|e| {
        v.extend([e]);
        None
    });
    v.finish()?;
    let (Some(after), Some(before)) = (after, before) else {
        return Err(Error::invalid("due_before", "required"));
    };

    // The page's position: entries after it are the page's candidates.
    let position: Option<Position> = token.as_ref().map(|t| {
        (
            t.last_revision as i32,
            t.last_id.clone(),
            t.cursors.first().cloned().unwrap_or_default(),
        )
    });
    let start_after = position.as_ref().and_then(timeline::to_proto);
    // Each domain answers the first `size` entries after the position, and
    // whether more follow: what crosses the network is a page per domain,
    // whatever the number of records.
    let ask = ListDueMilestonesRequest {
        due_after: Some(dates::to_calendar(after)),
        due_before: Some(dates::to_calendar(before)),
        include_overdue: req.include_overdue,
        include_met: req.include_met,
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        start_after,
        page_size: size as i32,
        ..Default::default()
    };
    let FanOut {
        answers,
        unavailable,
    } = domains
        .fan_out(&wanted, ctx, |d, mut client, ctx| {
            let ask = ListDueMilestonesRequest {
                parent: d.parent(),
                ..ask.clone()
            };
            async move {
                let page = client
                    .list_due_milestones(request(ask, &ctx))
                    .await
                    .map_err(|s| DomainError::from_status(d, s))?
                    .into_inner();
                Ok((d, page))
            }
        })
        .await;
    let mut first = FirstEntries::new(position, size);
    let mut more = false;
    for (_, (d, page)) in answers {
        more |= page.more;
        for e in page.entries {
            let Some(position) = timeline::position_of(&e) else {
                continue;
            };
            first.offer(
                position,
                TimelineEntry {
                    initiative: e.initiative,
                    domain: d.to_proto() as i32,
                    initiative_title: e.initiative_title,
                    milestone: e.milestone,
                    due_end: e.due_end,
                    overdue: e.overdue,
                },
            );
        }
    }
    let (entries, dropped) = first.finish();
    let more = more || dropped;
    let next_page_token = match (more, entries.last()) {
        (true, Some(((day, name, milestone), _))) => {
            let (day, name, milestone) = (*day, name.clone(), milestone.clone());
            pagination::encode(&PageToken {
                fingerprint: fp,
                last_id: name,
                last_revision: day as u64,
                cursors: vec![milestone],
                ..Default::default()
            })
        }
        _ => String::new(),
    };
    Ok(ListMilestoneTimelineResponse {
        entries: entries.into_iter().map(|(_, e)| e).collect(),
        next_page_token,
        unavailable,
    })
}
