//! `cet.v1.StoreAdminService` at the gateway: a backup is routed to the
//! domain its `parent` names, with the caller's token and deadline; the
//! domain's chunks, status and error details come back unchanged (the domain
//! serves backups to admins only). `cet.v1.DomainService` is passed through
//! by [`crate::proxy`].

use std::pin::Pin;
use std::sync::Arc;

use cetrack_contract::names::parse_parent;
use cetrack_contract::proto::store_admin_service_client::StoreAdminServiceClient;
use cetrack_contract::proto::store_admin_service_server::StoreAdminService;
use cetrack_contract::proto::*;
use cetrack_contract::{Domain, Error};
use cetrack_server::deadline::grpc_timeout;
use cetrack_server::MAX_RESPONSE_BYTES;
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::domains::Domains;

type Reply<T> = Result<Response<T>, Status>;

/// The domain a `parent` names (`domains/{domain}`); a malformed or
/// unknown one is INVALID_ARGUMENT.
fn by_parent(parent: &str) -> Result<Domain, Status> {
    parse_parent(parent, "parent").map_err(|v| Error::InvalidArgument(vec![v]).into())
}

/// The request to send on: the same message, the caller's token and
/// deadline.
fn onward<T>(r: Request<T>) -> Request<T> {
    let timeout = grpc_timeout(r.metadata());
    let authorization = r.metadata().get("authorization").cloned();
    let mut out = Request::new(r.into_inner());
    if let Some(t) = timeout {
        out.set_timeout(t);
    }
    if let Some(a) = authorization {
        out.metadata_mut().insert("authorization", a);
    }
    out
}

/// The domain's status as is, but for a failure to reach the domain at all
/// (a transport error): UNAVAILABLE, naming the domain.
fn back(domain: Domain, s: Status) -> Status {
    if std::error::Error::source(&s).is_some() {
        Status::unavailable(format!(
            "the {domain} service is unavailable: {}",
            s.message()
        ))
    } else {
        s
    }
}

/// The gateway's StoreAdminService: backups streamed from the domain (which
/// serves them to admins only).
#[derive(Debug, Clone)]
pub struct StoreAdminRouter {
    domains: Arc<Domains>,
}

impl StoreAdminRouter {
    /// Routes to `domains`.
    pub fn new(domains: Arc<Domains>) -> Self {
        Self { domains }
    }
}

#[tonic::async_trait]
impl StoreAdminService for StoreAdminRouter {
    type BackupStoreStream =
        Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send + 'static>>;

    async fn backup_store(&self, r: Request<BackupStoreRequest>) -> Reply<Self::BackupStoreStream> {
        let domain = by_parent(&r.get_ref().parent)?;
        let channel = self.domains.streams(domain).ok_or_else(|| {
            Status::unavailable(format!(
                "the gateway has no address for the {domain} service"
            ))
        })?;
        let mut client =
            StoreAdminServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let stream = client
            .backup_store(onward(r))
            .await
            .map_err(|s| back(domain, s))?
            .into_inner();
        let stream: Self::BackupStoreStream =
            Box::pin(stream.map(move |c| c.map_err(|s| back(domain, s))));
        Ok(Response::new(stream))
    }
}
