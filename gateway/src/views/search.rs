//! Cross-domain search: the ListInitiatives filters over several domains,
//! merged in resource-name order (domain id, then initiative id) and paged
//! with one token holding the last name returned. The domains are asked in
//! that order, for no more than the page still needs.

use cetrack_contract::names::InitiativeName;
use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{SearchInitiativesRequest, SearchInitiativesResponse};
use cetrack_contract::requests;
use cetrack_contract::validate::Violations;
use cetrack_contract::{Domain, Error};
use prost::Message;

use crate::domains::{CallCtx, DomainError, Domains, FanOut};

/// SearchInitiatives.
pub async fn search(
    domains: &Domains,
    req: SearchInitiativesRequest,
    ctx: &CallCtx,
) -> Result<SearchInitiativesResponse, Error> {
    let mut v = Violations::default();
    let mut wanted = super::domains_of(&mut v, &req.domains, "domains", &domains.all());
    let filter = req.filter.clone().unwrap_or_default();
    requests::filter(&mut v, &filter, "filter");
    let size = pagination::page_size(req.page_size, "page_size").unwrap_or_else(|e| {
        v.extend([e]);
        0
    });
    let mut domain_bytes = Vec::new();
    for d in &req.domains {
        domain_bytes.extend_from_slice(&d.to_be_bytes());
    }
    let fp = pagination::fingerprint(&[b"search", &domain_bytes, &filter.encode_to_vec()]);
    let token = pagination::decode(&req.page_token, fp, "page_token").unwrap_or_else(|e| {
        v.extend([e]);
        None
    });
    let position = match &token {
        None => None,
        Some(t) => match InitiativeName::parse(&t.last_id, "page_token") {
            Ok(n) => Some(n),
            Err(_) => {
                v.add("page_token", "not a page token returned by this API");
                None
            }
        },
    };
    v.finish()?;

    // Resource-name order is domain id order, then initiative id.
    wanted.sort_by_key(|d| d.slug());
    if let Some(p) = &position {
        wanted.retain(|d| d.slug() >= p.domain.slug());
    }
    // The first domain in order alone, then the others together, each
    // asked only for what the page still needs: a page the first domain
    // fills costs one domain's page (and no more), a sparse one two round
    // trips.
    let (first, rest) = wanted.split_at(wanted.len().min(1));
    let mut initiatives = Vec::new();
    let mut unavailable = Vec::new();
    let mut more = false;
    // Both waves share the one deadline: the first domain has half of it
    // (one that hangs leaves the others time to answer), the others what
    // the first left.
    let started = std::time::Instant::now();
    for (k, wave) in [first, rest].into_iter().enumerate() {
        if wave.is_empty() {
            continue;
        }
        let left = match k {
            0 if !rest.is_empty() => ctx.deadline / 2,
            _ => ctx.deadline.saturating_sub(started.elapsed()),
        };
        if left.is_zero() {
            unavailable.extend(wave.iter().map(|d| {
                DomainError::Timeout {
                    domain: *d,
                    millis: ctx.deadline.as_millis(),
                }
                .unavailable(*d)
            }));
            break;
        }
        let ctx = &CallCtx {
            deadline: left,
            ..ctx.clone()
        };
        let need = size - initiatives.len();
        let FanOut {
            answers,
            unavailable: down,
        } = domains
            .fan_out(wave, ctx, |d, client, ctx| {
                let filter = filter.clone();
                let after = position
                    .as_ref()
                    .filter(|p| p.domain == d)
                    .map(|p| p.id.clone());
                async move { super::walk(d, client, filter, after, need, &ctx).await }
            })
            .await;
        unavailable.extend(down);
        for (_, (items, domain_more)) in answers {
            more |= domain_more;
            initiatives.extend(items);
        }
        if initiatives.len() >= size {
            // Domains not asked may hold more.
            more |= k == 0 && !rest.is_empty();
            break;
        }
    }
    if initiatives.len() > size {
        initiatives.truncate(size);
        more = true;
    }
    let next_page_token = match (more, initiatives.last()) {
        (true, Some(last)) => pagination::encode(&PageToken {
            fingerprint: fp,
            last_id: last.name.clone(),
            ..Default::default()
        }),
        _ => String::new(),
    };
    Ok(SearchInitiativesResponse {
        initiatives,
        next_page_token,
        unavailable,
    })
}

/// The domain of a search result.
pub fn domain_of(name: &str) -> Option<Domain> {
    InitiativeName::parse(name, "name").ok().map(|n| n.domain)
}
