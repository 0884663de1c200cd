//! The dialogue overview: every domain's summary with its availability and
//! totals across domains, built from the domain summaries only.

use std::collections::BTreeMap;

use cetrack_contract::proto::{
    DomainOverview, GetDomainSummaryRequest, GetOverviewRequest, InstrumentCount, MilestoneCounts,
    OrganizationCount, Overview, OverviewTotals, StatusCount,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::{dates, requests, summary, wire, Domain, Error};
use time::Date;

use crate::domains::{request, CallCtx, DomainError, Domains, FanOut};

/// What a GetOverview request asks, checked.
struct Asked {
    due_within_days: i32,
    as_of: Date,
    known_on: Option<Date>,
    /// The overview of today (no record-time day, no document).
    today: bool,
}

impl Asked {
    fn check(req: &GetOverviewRequest) -> Result<Asked, Error> {
        let mut v = Violations::default();
        let due_within_days = requests::due_within(&mut v, req.due_within_days, "due_within_days");
        let as_of = requests::as_of(&mut v, req.as_of.as_ref(), "as_of");
        let known_on = requests::known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
        v.text("document", &req.document, false, 500);
        v.finish()?;
        Ok(Asked {
            due_within_days,
            as_of,
            known_on,
            today: known_on.is_none() && req.document.is_empty() && as_of == dates::today(),
        })
    }
}

/// GetOverview as the gateway answers it over gRPC, encoded: the overview
/// of today to a caller who may read every domain, when every domain's
/// summary is kept in memory and current (see `crate::live`), is kept
/// encoded and answered again while those summaries stay current (a
/// change, a reopened stream or a write through the gateway moves their
/// generation); any other is built by [`overview`] and encoded once.
pub async fn overview_encoded(
    domains: &Domains,
    req: GetOverviewRequest,
    ctx: &CallCtx,
) -> Result<wire::Overview, Error> {
    let asked = Asked::check(&req)?;
    let all = domains.all();
    let live = domains.live();
    let every = asked.today && all.iter().all(|d| ctx.caller.check_read(*d).is_ok());
    let kept = |live: &crate::live::Live| {
        every
            .then(|| live.generations(&all, asked.as_of, ctx.cleared, asked.due_within_days))
            .flatten()
    };
    let before = kept(live);
    if let Some(generations) = &before {
        if let Some(rest) = live.kept_overview(
            &all,
            asked.as_of,
            ctx.cleared,
            asked.due_within_days,
            generations,
        ) {
            return Ok(wire::Overview::encoded(rest, Some(dates::now())));
        }
    }
    let view = overview(domains, req, ctx).await?;
    let complete = view.totals.as_ref().is_some_and(|t| t.complete);
    let sent = wire::Overview::from(view);
    // Kept only if built from the summaries kept under the same
    // generations (nothing moved while it was built) and complete.
    if let Some(generations) = before {
        if complete && kept(live).as_ref() == Some(&generations) {
            live.keep_overview(
                asked.as_of,
                ctx.cleared,
                asked.due_within_days,
                generations,
                sent.rest().clone(),
            );
        }
    }
    Ok(sent)
}

/// GetOverview.
pub async fn overview(
    domains: &Domains,
    req: GetOverviewRequest,
    ctx: &CallCtx,
) -> Result<Overview, Error> {
    let Asked {
        due_within_days,
        as_of,
        known_on,
        today,
    } = Asked::check(&req)?;
    let document = req.document.clone();
    let all = domains.all();
    // Today's summaries kept in memory answer without a call; the other
    // domains are asked (see `crate::live`).
    let mut kept = Vec::new();
    let mut ask = Vec::new();
    for d in all.iter().copied() {
        let from_memory = (today && ctx.caller.check_read(d).is_ok())
            .then(|| {
                domains
                    .live()
                    .kept_today(d, as_of, ctx.cleared, due_within_days)
            })
            .flatten();
        match from_memory {
            Some(s) => kept.push((d, s)),
            None => ask.push(d),
        }
    }
    let FanOut {
        mut answers,
        unavailable,
    } = domains
        .fan_out(&ask, ctx, |d, mut client, ctx| {
            let document = document.clone();
            async move {
                // Today's, kept fresh from the domain's change stream, to a
                // caller who may read the domain (see `crate::live`).
                if today && ctx.caller.check_read(d).is_ok() {
                    let kept = domains.live().today(
                        domains,
                        d,
                        as_of,
                        ctx.cleared,
                        due_within_days,
                        ctx.deadline,
                    );
                    if let Some(s) = kept.await {
                        return Ok(s);
                    }
                }
                // Beside the caller's call, the gateway's own (at most once a
                // second): the last-known summaries it keeps across callers.
                let (answer, ()) = tokio::join!(
                    client.get_domain_summary(request(
                        GetDomainSummaryRequest {
                            parent: d.parent(),
                            due_within_days,
                            as_of: Some(dates::to_calendar(as_of)),
                            public_only: false,
                            as_known_on: known_on.map(dates::to_calendar),
                            document,
                        },
                        &ctx,
                    )),
                    domains.refresh_summaries(d, ctx.deadline),
                );
                answer
                    .map(|r| r.into_inner())
                    .map_err(|s| DomainError::from_status(d, s))
            }
        })
        .await;
    // In the domains' order, kept or asked: the first domain to name an
    // organization gives its label in the totals.
    answers.extend(kept);
    answers.sort_by_key(|(d, _)| all.iter().position(|a| a == d));

    let mut totals = OverviewTotals {
        milestones: Some(MilestoneCounts::default()),
        complete: true,
        ..Default::default()
    };
    let mut by_status: BTreeMap<i32, i64> = BTreeMap::new();
    let mut by_instrument: BTreeMap<i32, i64> = BTreeMap::new();
    let mut funding = BTreeMap::new();
    let mut orgs: BTreeMap<String, OrganizationCount> = BTreeMap::new();
    let mut out = Vec::new();
    for (d, s) in answers {
        totals.initiative_count += s.initiative_count;
        for c in &s.by_status {
            *by_status.entry(c.status).or_default() += c.count;
        }
        for c in &s.by_instrument {
            *by_instrument.entry(c.instrument).or_default() += c.count;
        }
        if let (Some(t), Some(m)) = (totals.milestones.as_mut(), s.milestones.as_ref()) {
            t.due_soon += m.due_soon;
            t.overdue += m.overdue;
            t.met += m.met;
            t.total += m.total;
        }
        totals.overdue_initiatives += s.overdue_initiatives;
        summary::add_funding(&mut funding, &s.funding);
        for o in &s.organizations {
            orgs.entry(o.organization_id.clone())
                .and_modify(|e| e.initiative_count += o.initiative_count)
                .or_insert_with(|| o.clone());
        }
        out.push(DomainOverview {
            domain: d.to_proto() as i32,
            available: true,
            summary: Some(s),
            summary_age: Some(pbjson_types::Duration::default()),
            error: String::new(),
        });
    }
    for u in unavailable {
        totals.complete = false;
        // The last summary a domain sent, to a caller who may read that
        // domain (a caller scoped to other domains learns nothing of it).
        // Kept for today and every document: shown only for such a view.
        let last = Domain::from_proto(u.domain)
            .filter(|d| today && ctx.caller.check_read(*d).is_ok())
            .and_then(|d| domains.last_summary(d, ctx.cleared));
        out.push(DomainOverview {
            domain: u.domain,
            available: false,
            summary_age: last.as_ref().map(|(_, age)| pbjson_types::Duration {
                seconds: age.as_secs() as i64,
                nanos: age.subsec_nanos() as i32,
            }),
            summary: last.map(|(s, _)| s),
            error: u.error,
        });
    }
    // Domains in the order of `Domain::ALL`, answered or not.
    out.sort_by_key(|o| {
        Domain::ALL
            .iter()
            .position(|d| d.to_proto() as i32 == o.domain)
    });
    totals.by_status = by_status
        .into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect();
    totals.by_instrument = by_instrument
        .into_iter()
        .map(|(instrument, count)| InstrumentCount { instrument, count })
        .collect();
    totals.funding = funding
        .into_iter()
        .map(
            |((currency, qualifier), (sum, count))| cetrack_contract::proto::FundingTotal {
                total: Some(summary::money(currency, sum)),
                qualifier,
                commitment_count: count,
            },
        )
        .collect();
    totals.organizations = orgs.into_values().collect();
    Ok(Overview {
        domains: out,
        totals: Some(totals),
        as_of: Some(dates::to_calendar(as_of)),
        generate_time: Some(dates::now()),
        as_known_on: known_on.map(dates::to_calendar),
        document: req.document,
    })
}
