//! The milestone timeline: scheduled milestones across domains due in a
//! window, and optionally those overdue, ordered by the end of their due
//! period (so "in 2024" sorts at 2024-12-31, after "2024-Q1").

use std::collections::BTreeMap;

use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{
    Initiative, InitiativeFilter, ListMilestoneTimelineRequest, ListMilestoneTimelineResponse,
    TimelineEntry,
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
    // The page's position: entries after it are the page's candidates.
    let position = token.as_ref().map(|t| {
        (
            t.last_revision as i32,
            t.last_id.clone(),
            t.cursors.first().cloned().unwrap_or_default(),
        )
    });
    // Each domain's records are read page by page as they come; only the
    // first `size + 1` entries after the position are kept (by due day,
    // initiative and milestone: the two filters' answers overlap, the map
    // keeps each once), so what the gateway holds is a page per domain,
    // whatever the number of records.
    let keep = size + 1;
    let include = Include {
        after,
        before,
        as_of,
        overdue: req.include_overdue,
        met: req.include_met,
    };
    let FanOut {
        answers,
        unavailable,
    } = domains
        .fan_out(&wanted, ctx, |d, client, ctx| {
            let filters = filters.clone();
            let position = position.clone();
            async move {
                let mut best: BTreeMap<Key, TimelineEntry> = BTreeMap::new();
                for f in filters {
                    super::visit(d, client.clone(), f, &ctx, |i| {
                        for (key, entry) in include.entries(&i) {
                            if position.as_ref().is_some_and(|p| &key <= p) {
                                continue;
                            }
                            if best.len() == keep
                                && best.last_key_value().is_some_and(|(last, _)| &key >= last)
                            {
                                continue;
                            }
                            best.insert(key, entry);
                            if best.len() > keep {
                                best.pop_last();
                            }
                        }
                        true
                    })
                    .await?;
                }
                Ok(best)
            }
        })
        .await;
    let mut entries: Vec<(Key, TimelineEntry)> = Vec::new();
    for (_, best) in answers {
        entries.extend(best);
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let more = entries.len() > size;
    entries.truncate(size);
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

/// Where an entry sorts: the end of its due period (a day key), its
/// initiative's name, its milestone's id.
type Key = (i32, String, String);

/// Which milestones a timeline lists.
#[derive(Debug, Clone, Copy)]
struct Include {
    after: Date,
    before: Date,
    as_of: Date,
    overdue: bool,
    met: bool,
}

impl Include {
    /// The timeline's entries among the milestones of `i`.
    fn entries(&self, i: &Initiative) -> Vec<(Key, TimelineEntry)> {
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
        out
    }
}
