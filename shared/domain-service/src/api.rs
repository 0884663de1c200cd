//! The thin gRPC handlers: each passes its request to [`DomainCore`]; errors
//! become canonical status codes through the contract's one mapping, and the
//! server kit's layers measure every call.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::proto::domain_service_server::DomainService;
use cetrack_contract::proto::store_admin_service_server::StoreAdminService;
use cetrack_contract::proto::{BackupChunk, BackupStoreRequest};
use cetrack_contract::Error;
use cetrack_server::deadline::grpc_timeout;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::core::DomainCore;
use cetrack_contract::proto::{
    AddProgressUpdateRequest, Change, CreateInitiativeRequest, DeleteInitiativeRequest,
    DomainSummary, GetDomainSummaryRequest, GetInitiativeRequest, Initiative, ListHistoryRequest,
    ListHistoryResponse, ListInitiativesRequest, ListInitiativesResponse, UpdateInitiativeRequest,
    UpdateMilestoneRequest, WatchChangesRequest,
};

/// The gRPC face of one domain service.
#[derive(Debug, Clone)]
pub struct DomainApi {
    core: Arc<DomainCore>,
    shutdown: CancellationToken,
}

impl DomainApi {
    /// Serves `core`; streams end when `shutdown` fires.
    pub fn new(core: Arc<DomainCore>, shutdown: CancellationToken) -> Self {
        Self { core, shutdown }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The answer of a handler: `call`'s value, or its error as a status.
async fn reply<T>(call: impl std::future::Future<Output = Result<T, Error>>) -> Reply<T> {
    call.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl DomainService for DomainApi {
    async fn create_initiative(&self, r: Request<CreateInitiativeRequest>) -> Reply<Initiative> {
        reply(self.core.create(r.into_inner())).await
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<Initiative> {
        reply(self.core.get(r.into_inner())).await
    }

    async fn list_initiatives(
        &self,
        r: Request<ListInitiativesRequest>,
    ) -> Reply<ListInitiativesResponse> {
        reply(self.core.list(r.into_inner())).await
    }

    async fn update_initiative(&self, r: Request<UpdateInitiativeRequest>) -> Reply<Initiative> {
        reply(self.core.update(r.into_inner())).await
    }

    async fn delete_initiative(
        &self,
        r: Request<DeleteInitiativeRequest>,
    ) -> Reply<pbjson_types::Empty> {
        let deleted = self.core.delete(r.into_inner());
        reply(async { deleted.await.map(|()| pbjson_types::Empty::default()) }).await
    }

    async fn add_progress_update(&self, r: Request<AddProgressUpdateRequest>) -> Reply<Initiative> {
        reply(self.core.add_progress_update(r.into_inner())).await
    }

    async fn update_milestone(&self, r: Request<UpdateMilestoneRequest>) -> Reply<Initiative> {
        reply(self.core.update_milestone(r.into_inner())).await
    }

    async fn get_domain_summary(
        &self,
        r: Request<GetDomainSummaryRequest>,
    ) -> Reply<DomainSummary> {
        reply(self.core.summary(r.into_inner())).await
    }

    async fn list_history(&self, r: Request<ListHistoryRequest>) -> Reply<ListHistoryResponse> {
        reply(self.core.history(r.into_inner())).await
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send + 'static>>;

    async fn watch_changes(
        &self,
        r: Request<WatchChangesRequest>,
    ) -> Reply<Self::WatchChangesStream> {
        let deadline = grpc_timeout(r.metadata());
        let stream = self
            .core
            .watch(r.into_inner(), self.shutdown.clone())?
            .map(|c| c.map_err(Status::from));
        let stream: Self::WatchChangesStream = match deadline {
            None => Box::pin(stream),
            Some(after) => Box::pin(until_deadline(stream, after)),
        };
        Ok(Response::new(stream))
    }
}

/// Ends a server stream with DEADLINE_EXCEEDED once `after` has passed: the
/// server's timeout covers a call only until its response headers, not a
/// stream's body.
fn until_deadline<S>(stream: S, after: Duration) -> impl Stream<Item = Result<Change, Status>>
where
    S: Stream<Item = Result<Change, Status>> + Send + Unpin + 'static,
{
    let expiry = Box::pin(tokio::time::sleep(after));
    futures::stream::unfold(Some((stream, expiry)), move |state| async move {
        let (mut stream, mut expiry) = state?;
        tokio::select! {
            item = stream.next() => item.map(|item| (item, Some((stream, expiry)))),
            _ = &mut expiry => Some((
                Err(Status::deadline_exceeded(format!(
                    "the caller's deadline of {after:?} has passed"
                ))),
                None,
            )),
        }
    })
}

/// The gRPC face of a domain store's backups. A backup holds every record,
/// restricted ones too, so it is served only to callers presenting the admin
/// token (`authorization: Bearer <token>`); without a configured token the
/// service refuses every call.
#[derive(Clone)]
pub struct StoreAdminApi {
    core: Arc<DomainCore>,
    token: Option<String>,
}

impl std::fmt::Debug for StoreAdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreAdminApi")
            .field("domain", &self.core.domain())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl StoreAdminApi {
    /// Backs up the store of `core` for callers holding `token`.
    pub fn new(core: Arc<DomainCore>, token: Option<String>) -> Self {
        Self { core, token }
    }

    fn authorize<T>(&self, r: &Request<T>) -> Result<(), Error> {
        let Some(token) = &self.token else {
            return Err(Error::PermissionDenied(
                "store administration is disabled on this server: start it with --admin-token (CETRACK_ADMIN_TOKEN)".into(),
            ));
        };
        let presented = r
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            None => Err(Error::Unauthenticated(
                "send the admin token as `authorization: Bearer <token>`".into(),
            )),
            Some(p) if same_secret(p.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Error::PermissionDenied(
                "the admin token is not valid".into(),
            )),
        }
    }
}

#[tonic::async_trait]
impl StoreAdminService for StoreAdminApi {
    type BackupStoreStream =
        Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send + 'static>>;

    async fn backup_store(&self, r: Request<BackupStoreRequest>) -> Reply<Self::BackupStoreStream> {
        self.authorize(&r)?;
        let chunks = self.core.backup(r.into_inner()).await?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            chunks.into_iter().map(Ok),
        ))))
    }
}
