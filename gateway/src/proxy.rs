//! `cet.v1.DomainService` at the gateway, as a pass-through: the gateway
//! reads the first message of a call only as far as the field that names its
//! domain (`parent`, `name`, or `initiative.name`), then sends the call on to
//! that domain as it came (every header, the caller's token, deadline and
//! request id, the message bytes untouched) and the domain's answer back as
//! it came (headers, messages, status, error details and trailers): no
//! message is decoded and encoded again on either way. The domain enforces
//! who may do what. A call dropped here is reset at the domain, so a
//! cancelled call is cancelled there too.
//!
//! The gateway itself answers only what it must: a name of an unknown domain
//! (INVALID_ARGUMENT, as the domain would), an unknown method
//! (UNIMPLEMENTED), a message over the size limit (OUT_OF_RANGE, as tonic
//! does), the stream caps (RESOURCE_EXHAUSTED), and a domain it cannot reach
//! (UNAVAILABLE, naming the domain).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use cetrack_contract::auth::Caller;
use cetrack_contract::codec::{max_request_bytes, undecodable_as};
use cetrack_contract::names::{parse_parent, InitiativeName};
use cetrack_contract::proto::domain_service_server::SERVICE_NAME;
use cetrack_contract::{Domain, Error};
use cetrack_server::MAX_REQUEST_BYTES;
use http_body_util::BodyExt;
use prost::Message;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;
use tower_service::Service;

use crate::domains::Domains;
use crate::live::Followed;
use crate::onward::Received;

/// The gateway's DomainService: every call passed through to its domain.
#[derive(Debug, Clone)]
pub struct DomainProxy {
    domains: Arc<Domains>,
}

impl DomainProxy {
    /// Passes calls through to `domains`.
    pub fn new(domains: Arc<Domains>) -> Self {
        Self { domains }
    }
}

impl NamedService for DomainProxy {
    const NAME: &'static str = SERVICE_NAME;
}

impl Service<http::Request<Body>> for DomainProxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let domains = self.domains.clone();
        Box::pin(async move {
            Ok(match pass(&domains, request).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

/// The field 1 of a request, when it is a string (`parent` or `name`): all
/// the gateway reads of most requests. Other fields are skipped unread.
#[derive(Clone, PartialEq, Message)]
struct FirstString {
    #[prost(string, tag = "1")]
    value: String,
}

/// An UpdateInitiativeRequest read as far as `initiative.name`.
#[derive(Clone, PartialEq, Message)]
struct UpdateName {
    #[prost(message, optional, tag = "1")]
    initiative: Option<FirstString>,
}

/// The domain a `parent` names (`domains/{domain}`); a malformed or unknown
/// one is INVALID_ARGUMENT.
fn by_parent(parent: &str) -> Result<Domain, Status> {
    parse_parent(parent, "parent").map_err(|v| Error::InvalidArgument(vec![v]).into())
}

/// The domain an initiative's `name` names.
fn by_name(name: &str, field: &str) -> Result<Domain, Status> {
    InitiativeName::parse(name, field)
        .map(|n| n.domain)
        .map_err(|v| Error::InvalidArgument(vec![v]).into())
}

/// The domain the request `message` of `method` names.
fn domain_of(method: &str, message: &[u8]) -> Result<Domain, Status> {
    let first = |request: &str| {
        FirstString::decode(message)
            .map(|f| f.value)
            .map_err(|e| undecodable_as(request, &e.to_string()))
    };
    match method {
        "CreateInitiative" => by_parent(&first("CreateInitiativeRequest")?),
        "ListInitiatives" => by_parent(&first("ListInitiativesRequest")?),
        "GetDomainSummary" => by_parent(&first("GetDomainSummaryRequest")?),
        "WatchChanges" => by_parent(&first("WatchChangesRequest")?),
        "ListDueMilestones" => by_parent(&first("ListDueMilestonesRequest")?),
        "GetInitiative" => by_name(&first("GetInitiativeRequest")?, "name"),
        "DeleteInitiative" => by_name(&first("DeleteInitiativeRequest")?, "name"),
        "AddProgressUpdate" => by_name(&first("AddProgressUpdateRequest")?, "name"),
        "UpdateMilestone" => by_name(&first("UpdateMilestoneRequest")?, "name"),
        "ListHistory" => by_name(&first("ListHistoryRequest")?, "name"),
        "UpdateInitiative" => {
            let r = UpdateName::decode(message)
                .map_err(|e| undecodable_as("UpdateInitiativeRequest", &e.to_string()))?;
            by_name(
                r.initiative
                    .as_ref()
                    .map(|i| i.value.as_str())
                    .unwrap_or_default(),
                "initiative.name",
            )
        }
        _ => Err(Status::unimplemented(format!(
            "{SERVICE_NAME} has no method `{method}`"
        ))),
    }
}

/// Reads `body` until it holds the whole first message (its 5-byte prefix
/// and its bytes) of `method`; what was read, and the message's length. A
/// message longer than a valid request of its type can be is refused on its
/// prefix, before its bytes are read (as the domain would refuse it).
async fn first_message(body: &mut Body, method: &str) -> Result<(BytesMut, usize), Status> {
    let request = format!("{method}Request");
    let most = max_request_bytes(&request);
    let mut head = BytesMut::new();
    loop {
        if let Some(prefix) = head.get(..5) {
            if prefix[0] != 0 {
                return Err(Status::unimplemented(
                    "compressed messages are not accepted (grpc-encoding: identity only)",
                ));
            }
            let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            if len > MAX_REQUEST_BYTES {
                // tonic's answer to a message over its decode limit.
                return Err(Status::out_of_range(format!(
                    "Error, decoded message length too large: found {len} bytes, the limit is: {MAX_REQUEST_BYTES} bytes"
                )));
            }
            if let Some(most) = most.filter(|most| len > *most) {
                return Err(Status::invalid_argument(format!(
                    "the {request} is {len} bytes; a valid one is at most {most} bytes"
                )));
            }
            if head.len() >= 5 + len {
                return Ok((head, len));
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    head.extend_from_slice(&data);
                }
            }
            Some(Err(status)) => return Err(status),
            None => {
                return Err(Status::invalid_argument(
                    "the call ended before its request message was complete",
                ))
            }
        }
    }
}

/// Passes one call through to its domain.
async fn pass(
    domains: &Domains,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Status> {
    let method = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let (mut parts, mut body) = request.into_parts();
    let (head, len) = first_message(&mut body, &method).await?;
    let domain = domain_of(&method, &head[5..5 + len])?;
    let unreachable = || {
        Status::unavailable(format!(
            "the gateway has no address for the {domain} service"
        ))
    };
    // Every DomainService call sends one message: the request to the domain
    // is that message as it came, complete at once. (Forwarding the rest of
    // the caller's body would keep the request open until the caller's end
    // of stream arrived; a domain that answered first would then reset the
    // stream with NO_ERROR, which the client side can report as a broken
    // pipe instead of the answer.)
    let mut head = head;
    head.truncate(5 + len);
    let message = head.freeze();
    // The request sent on: the caller's headers (token, deadline, request
    // id) with exactly the one message.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let caller = parts.extensions.remove::<Arc<Caller>>();
    parts.extensions = http::Extensions::new();
    let down = |e: &dyn std::fmt::Display| {
        Status::unavailable(format!("the {domain} service is unavailable: {e}"))
    };
    // A change stream: counted against the caps, on a connection of its own
    // (see `Domains::streams`).
    if method == "WatchChanges" {
        let caller = caller.ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        let permit = domains.open_stream(&caller.sub)?;
        let mut channel = domains.streams(domain).ok_or_else(unreachable)?;
        let request =
            http::Request::from_parts(parts, Body::new(http_body_util::Full::new(message)));
        futures::future::poll_fn(|cx| channel.poll_ready(cx))
            .await
            .map_err(|e| down(&e))?;
        let response = channel.call(request).await.map_err(|e| down(&e))?;
        drop(body);
        return Ok(response.map(|body| answer_body(domain, body, Some(permit), None)));
    }
    // Any other call: on the domain's connection for unary calls.
    let onward = domains.onward(domain).ok_or_else(unreachable)?;
    // A write: today's summary the gateway keeps of the domain is out of
    // date from before it reaches the domain, again when its answer (or an
    // error: the write may have happened) comes, and as each part of the
    // answer passes, so that no overview asked after the caller has the
    // answer is older than the write (see `crate::live`).
    let wrote = matches!(
        method.as_str(),
        "CreateInitiative"
            | "UpdateInitiative"
            | "DeleteInitiative"
            | "AddProgressUpdate"
            | "UpdateMilestone"
    );
    let live = wrote.then(|| domains.live().followed(domain)).flatten();
    let touch = || {
        if let Some(f) = &live {
            f.touch();
        }
    };
    touch();
    let response = onward.call(parts, message).await;
    touch();
    let response = response.map_err(|e| down(&e))?;
    // The caller's body was kept until the answer came (by then its end of
    // stream has arrived).
    drop(body);
    Ok(response.map(|body| answer_body(domain, Body::new(Received::new(body)), None, live)))
}

/// The domain's answer as it comes, but for a failure while it comes (the
/// domain went away mid-answer): that ends the answer with UNAVAILABLE
/// naming the domain, in the trailers, instead of a reset stream. A change
/// stream's `permit` counts until the body is dropped.
fn answer_body(
    domain: Domain,
    body: Body,
    permit: Option<cetrack_server::streams::StreamPermit>,
    wrote: Option<Arc<Followed>>,
) -> Body {
    Body::new(Answer {
        inner: body,
        domain,
        ended: false,
        _permit: permit,
        wrote,
    })
}

/// See [`answer_body`]. It keeps the inner body's end of stream as it is, so
/// that a trailers-only answer stays one HEADERS frame with END_STREAM
/// (strict clients, grpc-core's among them, refuse a trailers-only answer
/// followed by an empty DATA frame).
struct Answer {
    inner: Body,
    domain: Domain,
    /// A failure's trailers were sent: nothing follows.
    ended: bool,
    _permit: Option<cetrack_server::streams::StreamPermit>,
    /// The answer of a write: touched as each part passes.
    wrote: Option<Arc<Followed>>,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(_), Some(f)) = (&frame, &self.wrote) {
            f.touch();
        }
        match frame {
            Poll::Ready(Some(Err(failed))) => {
                self.ended = true;
                let status = Status::unavailable(format!(
                    "the {} service is unavailable: {}",
                    self.domain,
                    failed.message()
                ));
                let mut trailers = http::HeaderMap::new();
                if status.add_header(&mut trailers).is_err() {
                    return Poll::Ready(Some(Err(failed)));
                }
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
