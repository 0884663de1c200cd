//! An organization's portfolio: every initiative it takes part in across
//! domains, with its role, its counterparts and its milestones due or overdue.

use cetrack_contract::names::InitiativeName;
use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{
    GetOrganizationPortfolioRequest, Initiative, InitiativeFilter, OrganizationPortfolio,
    PortfolioEntry,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::{dates, requests, rules, Domain, Error};
use prost::Message;

use crate::domains::{CallCtx, Client, DomainError, Domains, FanOut};

/// Entries of a portfolio page when the caller asks for none in particular.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Most calls to the domains one page makes: a domain answers a short (even
/// empty) page when its filter has examined its budget of records, and the
/// portfolio page then ends too, with a token to go on.
const MAX_CALLS_PER_PAGE: usize = 8;

/// GetOrganizationPortfolio: a page of the organization's initiatives in
/// resource-name order (domain id, then initiative id), read from the
/// domains one after the other from where the token says, each asked for
/// no more than the page still needs (the domains' organization index makes
/// that cost what it returns). The gateway holds one page.
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
    let size = match req.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => pagination::page_size(n, "page_size").unwrap_or_else(|e| {
            v.extend([e]);
            0
        }),
    };
    let fp = pagination::fingerprint(&[
        b"portfolio",
        req.organization_id.as_bytes(),
        &req.due_within_days.to_be_bytes(),
        &req.as_of.map(|d| d.encode_to_vec()).unwrap_or_default(),
        &req.as_known_on
            .map(|d| d.encode_to_vec())
            .unwrap_or_default(),
    ]);
    let token = pagination::decode(&req.page_token, fp, "page_token").unwrap_or_else(|e| {
        v.extend([e]);
        None
    });
    // Where the page starts: a domain, and its own page token there.
    let position = match &token {
        None => None,
        Some(t) => match t.cursors.as_slice() {
            [domain, at] => match Domain::from_slug(domain) {
                Some(d) => Some((d, at.clone())),
                None => {
                    v.add("page_token", "not a page token returned by this API");
                    None
                }
            },
            _ => {
                v.add("page_token", "not a page token returned by this API");
                None
            }
        },
    };
    v.finish()?;
    let horizon = as_of.saturating_add(time::Duration::days(within as i64));
    let filter = InitiativeFilter {
        organization_id: req.organization_id.clone(),
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        ..Default::default()
    };
    let mut order = domains.all();
    order.sort_by_key(|d| d.slug());
    if let Some((d, _)) = &position {
        order.retain(|x| x.slug() >= d.slug());
    }

    let mut initiatives: Vec<Initiative> = Vec::new();
    let mut bytes = 0;
    let mut unavailable = Vec::new();
    let mut answered = 0;
    let mut calls = 0;
    // Where the next page starts, once this one is full.
    let mut next: Option<(Domain, String)> = None;
    'domains: for (k, d) in order.iter().copied().enumerate() {
        let mut at = match &position {
            Some((p, at)) if *p == d => at.clone(),
            _ => String::new(),
        };
        // The id of the last record of this domain put in the page, since
        // the last call to it.
        let mut taken: Option<String>;
        loop {
            if initiatives.len() >= size
                || bytes >= pagination::MAX_PAGE_BYTES
                || calls == MAX_CALLS_PER_PAGE
            {
                next = Some((d, at));
                break 'domains;
            }
            calls += 1;
            taken = None;
            let want = size - initiatives.len();
            let FanOut {
                answers,
                unavailable: down,
            } = domains
                .fan_out(&[d], ctx, |d, client, ctx| {
                    page_of(d, client, filter.clone(), at.clone(), want, ctx)
                })
                .await;
            if !down.is_empty() {
                unavailable.extend(down);
                continue 'domains;
            }
            let Some((_, (items, next_at))) = answers.into_iter().next() else {
                continue 'domains;
            };
            answered += 1;
            // The page is full in bytes before this answer is taken whole:
            // the next page resumes in this domain, after the last of its
            // records taken (or where this call began, when none was).
            let mut cut = None;
            for i in items {
                let len = i.encoded_len();
                if bytes + len > pagination::MAX_PAGE_BYTES && !initiatives.is_empty() {
                    cut = Some(taken.clone());
                    break;
                }
                bytes += len;
                taken = InitiativeName::parse(&i.name, "name").ok().map(|n| n.id);
                initiatives.push(i);
            }
            if let Some(last) = cut {
                let resume = match last {
                    Some(id) => pagination::list_token_after(&d.parent(), &filter, &id),
                    None => at,
                };
                next = Some((d, resume));
                break 'domains;
            }
            if next_at.is_empty() {
                if initiatives.len() >= size {
                    if let Some(following) = order.get(k + 1) {
                        next = Some((*following, String::new()));
                    }
                    break 'domains;
                }
                continue 'domains;
            }
            at = next_at;
        }
    }
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
    if organization.is_none() && token.is_none() && next.is_none() {
        if answered == 0 && !unavailable.is_empty() {
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
    let next_page_token = next
        .map(|(d, at)| {
            pagination::encode(&PageToken {
                fingerprint: fp,
                cursors: vec![d.slug().to_string(), at],
                ..Default::default()
            })
        })
        .unwrap_or_default();
    Ok(OrganizationPortfolio {
        organization,
        entries,
        unavailable,
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        next_page_token,
    })
}

/// One page of `domain`'s initiatives matching `filter` from its page token
/// `at`, at most `want` of them; and the domain's token to go on.
async fn page_of(
    domain: Domain,
    mut client: Client,
    filter: InitiativeFilter,
    at: String,
    want: usize,
    ctx: CallCtx,
) -> Result<(Vec<Initiative>, String), DomainError> {
    let page = super::list_page(domain, &mut client, &filter, at, want, &ctx).await?;
    Ok((page.initiatives, page.next_page_token))
}
