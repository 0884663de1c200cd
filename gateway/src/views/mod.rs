//! The gateway's views, each answering one cross-domain question from the
//! domain services.

pub mod factsheet;
pub mod overview;
pub mod portfolio;
pub mod search;
pub mod timeline;
pub mod watch;
pub mod words;

use cetrack_contract::proto::{
    Initiative, InitiativeFilter, ListInitiativesRequest, ListInitiativesResponse,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::{pagination, Domain};

use crate::domains::{request, CallCtx, Client, DomainError};

/// Checks a list of domains (empty: all; at most
/// [`MAX_FILTER_VALUES`](cetrack_contract::requests::MAX_FILTER_VALUES)
/// values, each once in the answer); unknown values are violations.
pub fn domains_of(v: &mut Violations, values: &[i32], field: &str, all: &[Domain]) -> Vec<Domain> {
    if values.is_empty() {
        return all.to_vec();
    }
    let mut out = Vec::new();
    let values = v.capped(field, values, cetrack_contract::requests::MAX_FILTER_VALUES);
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

/// Reads every initiative of `domain` matching `filter` after `after_id`,
/// page by page.
pub async fn walk(
    domain: Domain,
    mut client: Client,
    filter: InitiativeFilter,
    after_id: Option<String>,
    limit: usize,
    ctx: &CallCtx,
) -> Result<(Vec<Initiative>, bool), DomainError> {
    let parent = domain.parent();
    let mut token = after_id
        .map(|id| pagination::list_token_after(&parent, &filter, &id))
        .unwrap_or_default();
    let mut out = Vec::new();
    loop {
        let want = (limit - out.len()).min(pagination::MAX_PAGE_SIZE);
        let page = list_page(domain, &mut client, &filter, token, want, ctx).await?;
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

/// Hands every initiative of `domain` matching `filter` to `each`, page by
/// page as they come (nothing is kept here), until `each` answers `false`
/// or the domain has no more.
pub async fn visit(
    domain: Domain,
    mut client: Client,
    filter: InitiativeFilter,
    ctx: &CallCtx,
    mut each: impl FnMut(Initiative) -> bool,
) -> Result<(), DomainError> {
    let mut token = String::new();
    loop {
        let page = list_page(
            domain,
            &mut client,
            &filter,
            token,
            pagination::MAX_PAGE_SIZE,
            ctx,
        )
        .await?;
        for i in page.initiatives {
            if !each(i) {
                return Ok(());
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        token = page.next_page_token;
    }
}

/// One ListInitiatives page of `domain`: at most `size` initiatives matching
/// `filter` from the domain's page token `token`.
pub async fn list_page(
    domain: Domain,
    client: &mut Client,
    filter: &InitiativeFilter,
    token: String,
    size: usize,
    ctx: &CallCtx,
) -> Result<ListInitiativesResponse, DomainError> {
    Ok(client
        .list_initiatives(request(
            ListInitiativesRequest {
                parent: domain.parent(),
                page_size: size.min(pagination::MAX_PAGE_SIZE) as i32,
                page_token: token,
                filter: Some(filter.clone()),
            },
            ctx,
        ))
        .await
        .map_err(|s| DomainError::from_status(domain, s))?
        .into_inner())
}
