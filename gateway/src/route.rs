//! One address for every caller: the gateway serves `cet.v1.DomainService`
//! and `cet.v1.StoreAdminService` itself, routing each call to the domain
//! its `parent` or `name` names, with the caller's token and deadline; the
//! domain's answer, status and error details come back unchanged (the
//! domain enforces who may do what). A cancelled call is cancelled at the
//! domain too: dropping the call here resets the stream there.

use std::pin::Pin;
use std::sync::Arc;

use cetrack_contract::names::{parse_parent, InitiativeName};
use cetrack_contract::proto::domain_service_server::DomainService;
use cetrack_contract::proto::store_admin_service_client::StoreAdminServiceClient;
use cetrack_contract::proto::store_admin_service_server::StoreAdminService;
use cetrack_contract::proto::*;
use cetrack_contract::{Domain, Error};
use cetrack_server::deadline::grpc_timeout;
use cetrack_server::MAX_RESPONSE_BYTES;
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::domains::{Client, Domains};

/// The domain a `parent` names (`domains/{domain}`); a malformed or
/// unknown one is INVALID_ARGUMENT.
fn by_parent(parent: &str) -> Result<Domain, Status> {
    parse_parent(parent, "parent").map_err(|v| Error::InvalidArgument(vec![v]).into())
}

/// The domain an initiative's `name` names.
fn by_name(name: &str, field: &str) -> Result<Domain, Status> {
    InitiativeName::parse(name, field)
        .map(|n| n.domain)
        .map_err(|v| Error::InvalidArgument(vec![v]).into())
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

/// The gateway's DomainService: every call routed to its domain.
#[derive(Debug, Clone)]
pub struct DomainRouter {
    domains: Arc<Domains>,
}

impl DomainRouter {
    /// Routes to `domains`.
    pub fn new(domains: Arc<Domains>) -> Self {
        Self { domains }
    }

    fn client(&self, d: Domain) -> Result<Client, Status> {
        self.domains.client(d).ok_or_else(|| {
            Status::unavailable(format!("the gateway has no address for the {d} service"))
        })
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Calls `$method` of the domain `$domain` with the request `$r` sent on.
macro_rules! route {
    ($self:ident, $domain:expr, $r:ident, $method:ident) => {{
        let domain = $domain;
        let mut client = $self.client(domain)?;
        client
            .$method(onward($r))
            .await
            .map_err(|s| back(domain, s))
    }};
}

#[tonic::async_trait]
impl DomainService for DomainRouter {
    async fn create_initiative(&self, r: Request<CreateInitiativeRequest>) -> Reply<Initiative> {
        route!(self, by_parent(&r.get_ref().parent)?, r, create_initiative)
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<Initiative> {
        route!(self, by_name(&r.get_ref().name, "name")?, r, get_initiative)
    }

    async fn list_initiatives(
        &self,
        r: Request<ListInitiativesRequest>,
    ) -> Reply<ListInitiativesResponse> {
        route!(self, by_parent(&r.get_ref().parent)?, r, list_initiatives)
    }

    async fn update_initiative(&self, r: Request<UpdateInitiativeRequest>) -> Reply<Initiative> {
        let name = r
            .get_ref()
            .initiative
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        route!(
            self,
            by_name(name, "initiative.name")?,
            r,
            update_initiative
        )
    }

    async fn delete_initiative(
        &self,
        r: Request<DeleteInitiativeRequest>,
    ) -> Reply<pbjson_types::Empty> {
        route!(
            self,
            by_name(&r.get_ref().name, "name")?,
            r,
            delete_initiative
        )
    }

    async fn add_progress_update(&self, r: Request<AddProgressUpdateRequest>) -> Reply<Initiative> {
        route!(
            self,
            by_name(&r.get_ref().name, "name")?,
            r,
            add_progress_update
        )
    }

    async fn update_milestone(&self, r: Request<UpdateMilestoneRequest>) -> Reply<Initiative> {
        route!(
            self,
            by_name(&r.get_ref().name, "name")?,
            r,
            update_milestone
        )
    }

    async fn get_domain_summary(
        &self,
        r: Request<GetDomainSummaryRequest>,
    ) -> Reply<DomainSummary> {
        route!(self, by_parent(&r.get_ref().parent)?, r, get_domain_summary)
    }

    async fn list_history(&self, r: Request<ListHistoryRequest>) -> Reply<ListHistoryResponse> {
        route!(self, by_name(&r.get_ref().name, "name")?, r, list_history)
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send + 'static>>;

    async fn watch_changes(
        &self,
        r: Request<WatchChangesRequest>,
    ) -> Reply<Self::WatchChangesStream> {
        let domain = by_parent(&r.get_ref().parent)?;
        let caller = cetrack_server::auth::caller(&r)?;
        let permit = self.domains.open_stream(&caller.sub)?;
        // On the domain's stream connection (see `Domains::streams`).
        let mut client = self.domains.stream_client(domain).ok_or_else(|| {
            Status::unavailable(format!(
                "the gateway has no address for the {domain} service"
            ))
        })?;
        let stream = client
            .watch_changes(onward(r))
            .await
            .map_err(|s| back(domain, s))?
            .into_inner();
        let stream: Self::WatchChangesStream = Box::pin(stream.map(move |c| {
            let _counted = &permit;
            c.map_err(|s| back(domain, s))
        }));
        Ok(Response::new(stream))
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
