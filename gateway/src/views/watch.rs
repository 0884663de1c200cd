//! The merged change stream: one follower per domain, each resuming its
//! domain's WatchChanges from the last revision it delivered (also after the
//! domain restarts), merged into one stream whose events carry a cursor over
//! every domain.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{Change, DomainChange, WatchAllChangesRequest, WatchChangesRequest};
use cetrack_contract::validate::Violations;
use cetrack_contract::{Domain, Error};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::domains::{CallCtx, Domains};

/// Marks a watch cursor (as opposed to a page token).
const CURSOR_MARK: u64 = 0x6365_7477_6174_6368;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The last revision delivered per domain.
pub type Cursor = BTreeMap<Domain, u64>;

/// Encodes a cursor.
pub fn encode_cursor(cursor: &Cursor) -> String {
    pagination::encode(&PageToken {
        fingerprint: CURSOR_MARK,
        cursors: cursor
            .iter()
            .map(|(d, r)| format!("{}={r}", d.slug()))
            .collect(),
        ..Default::default()
    })
}

/// Decodes a cursor; empty is the start of every domain.
pub fn decode_cursor(text: &str, field: &str) -> Result<Cursor, cetrack_contract::FieldViolation> {
    let bad =
        || cetrack_contract::FieldViolation::new(field, "not a cursor returned by WatchAllChanges");
    let Some(token) = pagination::decode(text, CURSOR_MARK, field).map_err(|_| bad())? else {
        return Ok(Cursor::new());
    };
    token
        .cursors
        .iter()
        .map(|c| {
            let (d, r) = c.split_once('=').ok_or_else(bad)?;
            Ok((
                d.parse::<Domain>().map_err(|_| bad())?,
                r.parse::<u64>().map_err(|_| bad())?,
            ))
        })
        .collect()
}

/// A change of one domain, or why the stream ends.
type Followed = Result<(Domain, Change), tonic::Status>;

/// WatchAllChanges, on behalf of the caller whose credentials `ctx`
/// carries: each domain's stream holds what the caller may see; a domain
/// the caller may not read is not followed; when the caller's credentials
/// are refused (e.g. the token expired) the stream ends with that status.
pub fn watch_all(
    domains: Arc<Domains>,
    req: WatchAllChangesRequest,
    ctx: &CallCtx,
    shutdown: CancellationToken,
) -> Result<impl Stream<Item = Result<DomainChange, tonic::Status>> + Send + 'static, Error> {
    let mut v = Violations::default();
    let wanted = super::domains_of(&mut v, &req.domains, "domains", &domains.all());
    let cursor = decode_cursor(&req.cursor, "cursor")
        .map_err(|e| v.extend([e]))
        .unwrap_or_default();
    v.finish()?;
    let permit = domains.open_stream(&ctx.caller.sub)?;
    let (tx, rx) = mpsc::channel::<Followed>(256);
    let stop = shutdown.child_token();
    for d in wanted {
        let after = cursor.get(&d).copied().unwrap_or(0);
        tokio::spawn(follow(
            domains.clone(),
            d,
            after,
            ctx.clone(),
            tx.clone(),
            stop.clone(),
        ));
    }
    let guard = stop.drop_guard();
    let mut position = cursor;
    Ok(ReceiverStream::new(rx).map(move |followed| {
        let _keep_followers = &guard;
        let _counted = &permit;
        let (d, change) = followed?;
        position.insert(d, change.revision.unsigned_abs());
        Ok(DomainChange {
            domain: d.to_proto() as i32,
            change: Some(change),
            cursor: encode_cursor(&position),
        })
    }))
}

/// Follows one domain from revision `after`, reconnecting with a growing
/// pause while it is unreachable, until the stream's reader goes away or the
/// gateway shuts down.
async fn follow(
    domains: Arc<Domains>,
    domain: Domain,
    mut after: u64,
    ctx: CallCtx,
    tx: mpsc::Sender<Followed>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(mut client) = domains.stream_client(domain) {
            let mut req = tonic::Request::new(WatchChangesRequest {
                parent: domain.parent(),
                after_revision: i64::try_from(after).unwrap_or(i64::MAX),
            });
            if let Some(a) = &ctx.authorization {
                req.metadata_mut().insert("authorization", a.clone());
            }
            let opened = tokio::select! {
                r = client.watch_changes(req) => r,
                _ = stop.cancelled() => return,
            };
            match opened {
                Ok(response) => {
                    tracing::debug!(%domain, after, "following changes");
                    backoff = Duration::from_millis(50);
                    let mut stream = response.into_inner();
                    loop {
                        let next = tokio::select! {
                            n = stream.next() => n,
                            _ = stop.cancelled() => return,
                            _ = tx.closed() => return,
                        };
                        match next {
                            Some(Ok(change)) if change.revision.unsigned_abs() > after => {
                                after = change.revision.unsigned_abs();
                                if tx.send(Ok((domain, change))).await.is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::info!(%domain, error = %e, "change stream broke; reconnecting");
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Err(e) if e.code() == tonic::Code::Unauthenticated => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(e) if e.code() == tonic::Code::PermissionDenied => {
                    tracing::debug!(%domain, "the caller may not read this domain: not followed");
                    return;
                }
                Err(e) => tracing::debug!(%domain, error = %e, "cannot follow changes yet"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {},
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let mut c = Cursor::new();
        c.insert(Domain::Ai, 7);
        c.insert(Domain::Quantum, 12);
        assert_eq!(decode_cursor(&encode_cursor(&c), "cursor").unwrap(), c);
        assert!(decode_cursor("bogus", "cursor").is_err());
        assert_eq!(decode_cursor("", "cursor").unwrap(), Cursor::new());
    }
}
