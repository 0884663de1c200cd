//! An organization's portfolio: every initiative it takes part in across
//! domains, with its role, its counterparts and its milestones due or overdue.

use cetrack_contract::proto::{
    GetOrganizationPortfolioRequest, InitiativeFilter, OrganizationPortfolio, PortfolioEntry,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::{dates, requests, rules, Error};

use crate::domains::{CallCtx, Domains, FanOut};

/// GetOrganizationPortfolio.
pub async fn portfolio(
    domains: &Domains,
    req: GetOrganizationPortfolioRequest,
    ctx: &CallCtx,
) -> Result<OrganizationPortfolio, Error> {
    let mut v = Violations::default();
    v.slug("organization_id", &req.organization_id, 2);
    let within = requests::due_within(&mut v, req.due_within_days, "due_within_days");
    let as_of = requests::as_of(&mut v, req.as_of.as_ref(), "as_of");
    let known_on = requests::known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
    v.finish()?;
    let horizon = as_of.saturating_add(time::Duration::days(within as i64));
    let filter = InitiativeFilter {
        organization_id: req.organization_id.clone(),
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        ..Default::default()
    };
    let all = domains.all();
    let FanOut {
        answers,
        unavailable,
    } = domains
        .fan_out(&all, ctx, |d, client, ctx| {
            let filter = filter.clone();
            async move { super::walk(d, client, filter, None, super::MAX_WALK, &ctx).await }
        })
        .await;
    let mut initiatives: Vec<_> = answers
        .into_iter()
        .flat_map(|(_, (items, _))| items)
        .collect();
    initiatives.sort_by(|a, b| a.name.cmp(&b.name));
    // The organization as recorded in the initiative that changed last.
    let organization = initiatives
        .iter()
        .max_by_key(|i| i.update_time.map(|t| (t.seconds, t.nanos)))
        .and_then(|i| {
            i.participants
                .iter()
                .filter_map(|p| p.organization.as_ref())
                .find(|o| o.id == req.organization_id)
                .cloned()
        });
    // NOT_FOUND is judged on the domains that answered (the contract: "takes
    // part in nothing in any available domain"); only when none answered is
    // there nothing to judge on.
    if organization.is_none() {
        if !all.is_empty() && unavailable.len() == all.len() {
            return Err(Error::Unavailable(format!(
                "no domain answered: {}",
                unavailable
                    .iter()
                    .map(|u| u.error.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let unanswered = if unavailable.is_empty() {
            String::new()
        } else {
            format!(
                " of the domains that answered ({} did not)",
                unavailable.len()
            )
        };
        return Err(Error::NotFound(format!(
            "organization `{}` takes part in no initiative{unanswered}",
            req.organization_id
        )));
    }
    let entries = initiatives
        .into_iter()
        .filter_map(|i| {
            let me = i
                .participants
                .iter()
                .find(|p| {
                    p.organization
                        .as_ref()
                        .is_some_and(|o| o.id == req.organization_id)
                })?
                .clone();
            let open = rules::is_open(&i);
            let due = |pick: &dyn Fn(time::Date) -> bool| {
                i.milestones
                    .iter()
                    .filter(|m| open && rules::open_milestone_due(m).is_some_and(pick))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            Some(PortfolioEntry {
                name: i.name.clone(),
                domain: i.domain,
                title: i.title.clone(),
                status: i.status,
                role: me.role,
                party_status: me.status,
                counterparts: i
                    .participants
                    .iter()
                    .filter(|p| {
                        p.organization
                            .as_ref()
                            .is_some_and(|o| o.id != req.organization_id)
                    })
                    .cloned()
                    .collect(),
                milestones_due: due(&|end| end >= as_of && end <= horizon),
                milestones_overdue: due(&|end| end < as_of),
            })
        })
        .collect();
    Ok(OrganizationPortfolio {
        organization,
        entries,
        unavailable,
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
    })
}
