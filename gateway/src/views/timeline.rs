//! The milestone timeline: scheduled milestones across domains due in a
//! window, and optionally those overdue, ordered by the end of their due
//! period (so "in 2024" sorts at 2024-12-31, after "2024-Q1").

use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{
    InitiativeFilter, ListMilestoneTimelineRequest, ListMilestoneTimelineResponse, TimelineEntry,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::{dates, requests, rules, Error};
use prost::Message;
use time::Date;

use crate::domains::{CallCtx, Domains, FanOut};

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

    let mut filters = vec![InitiativeFilter {
        due_after: Some(dates::to_calendar(after)),
        due_before: Some(dates::to_calendar(before)),
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        include_met_milestones: req.include_met,
        ..Default::default()
    }];
    if req.include_overdue {
        filters.push(InitiativeFilter {
            overdue_only: true,
            as_of: Some(dates::to_calendar(as_of)),
            as_known_on: known_on.map(dates::to_calendar),
            ..Default::default()
        });
    }
    let FanOut {
        answers,
        unavailable,
    } = domains
        .fan_out(&wanted, ctx, |d, client, ctx| {
            let filters = filters.clone();
            async move {
                let mut out = Vec::new();
                for f in filters {
                    out.extend(
                        super::walk(d, client.clone(), f, None, super::MAX_WALK, &ctx)
                            .await?
                            .0,
                    );
                }
                Ok(out)
            }
        })
        .await;
    let mut initiatives: Vec<_> = answers.into_iter().flat_map(|(_, items)| items).collect();
    initiatives.sort_by(|a, b| a.name.cmp(&b.name));
    initiatives.dedup_by(|a, b| a.name == b.name);

    let mut entries: Vec<(i32, TimelineEntry)> = Vec::new();
    for i in &initiatives {
        for m in &i.milestones {
            // Scheduled milestones of open initiatives; with include_met,
            // met ones of any initiative (in the window only).
            let (end, open) = match rules::open_milestone_due(m) {
                Some(end) if rules::is_open(i) => (end, true),
                _ if req.include_met && rules::milestone_met(m) => {
                    match m.due.as_ref().and_then(dates::period_end) {
                        Some(end) => (end, false),
                        None => continue,
                    }
                }
                _ => continue,
            };
            let overdue = open && end < as_of;
            let in_window = end >= after && end <= before;
            if in_window || (overdue && req.include_overdue) {
                entries.push((
                    dates::day_key(end),
                    TimelineEntry {
                        initiative: i.name.clone(),
                        domain: i.domain,
                        initiative_title: i.title.clone(),
                        milestone: Some(m.clone()),
                        due_end: Some(dates::to_calendar(end)),
                        overdue,
                    },
                ));
            }
        }
    }
    let key = |(day, e): &(i32, TimelineEntry)| {
        (
            *day,
            e.initiative.clone(),
            e.milestone
                .as_ref()
                .map(|m| m.id.clone())
                .unwrap_or_default(),
        )
    };
    entries.sort_by_key(key);
    if let Some(t) = &token {
        let pos = (
            t.last_revision as i32,
            t.last_id.clone(),
            t.cursors.first().cloned().unwrap_or_default(),
        );
        entries.retain(|e| key(e) > pos);
    }
    let more = entries.len() > size;
    entries.truncate(size);
    let next_page_token = match (more, entries.last()) {
        (true, Some(last)) => {
            let (day, name, milestone) = key(last);
            pagination::encode(&PageToken {
                fingerprint: fp,
                last_id: name,
                last_revision: day as u64,
                cursors: vec![milestone],
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
