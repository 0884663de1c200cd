//! The thin gRPC handlers: each passes its request to [`DomainCore`]; errors
//! become canonical status codes through the contract's one mapping, and the
//! server kit's layers measure every call.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::proto::store_admin_service_server::StoreAdminService;
use cetrack_contract::proto::{BackupChunk, BackupStoreRequest};
use cetrack_contract::served::domain_service_server::DomainService;
use cetrack_contract::wire::{self, ListInitiativesResponse};
use cetrack_contract::Error;
use cetrack_server::auth::caller;
use cetrack_server::deadline::grpc_timeout;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::core::{DomainCore, Written};
use cetrack_contract::proto::{
    AddProgressUpdateRequest, Change, CreateInitiativeRequest, DeleteInitiativeRequest,
    DomainSummary, GetDomainSummaryRequest, GetInitiativeRequest, ListDueMilestonesRequest,
    ListDueMilestonesResponse, ListHistoryRequest, ListHistoryResponse, ListInitiativesRequest,
    UpdateInitiativeRequest, UpdateMilestoneRequest, WatchChangesRequest,
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

/// The answer of a write: the initiative, with `cetrack-replayed: true` when
/// it is the replayed answer of an earlier request.
async fn written(
    call: impl std::future::Future<Output = Result<Written, Error>>,
) -> Reply<wire::Initiative> {
    let w = call.await.map_err(Status::from)?;
    let answer = wire::Initiative::from(&w.initiative);
    Ok(replayed(Response::new(answer), w.replayed))
}

/// `response`, marked as replayed if it is.
fn replayed<T>(mut response: Response<T>, replayed: bool) -> Response<T> {
    if replayed {
        response.metadata_mut().insert(
            cetrack_contract::headers::REPLAYED,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    response
}

#[tonic::async_trait]
impl DomainService for DomainApi {
    async fn create_initiative(
        &self,
        r: Request<CreateInitiativeRequest>,
    ) -> Reply<wire::Initiative> {
        let who = caller(&r)?;
        written(self.core.create(&who, r.into_inner())).await
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<wire::Initiative> {
        let who = caller(&r)?;
        reply(self.core.get(&who, r.into_inner())).await
    }

    async fn list_initiatives(
        &self,
        r: Request<ListInitiativesRequest>,
    ) -> Reply<ListInitiativesResponse> {
        let who = caller(&r)?;
        reply(self.core.list(&who, r.into_inner())).await
    }

    async fn update_initiative(
        &self,
        r: Request<UpdateInitiativeRequest>,
    ) -> Reply<wire::Initiative> {
        let who = caller(&r)?;
        written(self.core.update(&who, r.into_inner())).await
    }

    async fn delete_initiative(
        &self,
        r: Request<DeleteInitiativeRequest>,
    ) -> Reply<pbjson_types::Empty> {
        let who = caller(&r)?;
        let was_replayed = self
            .core
            .delete(&who, r.into_inner())
            .await
            .map_err(Status::from)?;
        Ok(replayed(
            Response::new(pbjson_types::Empty::default()),
            was_replayed,
        ))
    }

    async fn add_progress_update(
        &self,
        r: Request<AddProgressUpdateRequest>,
    ) -> Reply<wire::Initiative> {
        let who = caller(&r)?;
        written(self.core.add_progress_update(&who, r.into_inner())).await
    }

    async fn update_milestone(
        &self,
        r: Request<UpdateMilestoneRequest>,
    ) -> Reply<wire::Initiative> {
        let who = caller(&r)?;
        written(self.core.update_milestone(&who, r.into_inner())).await
    }

    async fn get_domain_summary(
        &self,
        r: Request<GetDomainSummaryRequest>,
    ) -> Reply<DomainSummary> {
        let who = caller(&r)?;
        reply(self.core.summary(&who, r.into_inner())).await
    }

    async fn list_history(&self, r: Request<ListHistoryRequest>) -> Reply<ListHistoryResponse> {
        let who = caller(&r)?;
        reply(self.core.history(&who, r.into_inner())).await
    }

    async fn list_due_milestones(
        &self,
        r: Request<ListDueMilestonesRequest>,
    ) -> Reply<ListDueMilestonesResponse> {
        let who = caller(&r)?;
        reply(self.core.due_milestones(&who, r.into_inner())).await
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send + 'static>>;

    async fn watch_changes(
        &self,
        r: Request<WatchChangesRequest>,
    ) -> Reply<Self::WatchChangesStream> {
        let deadline = grpc_timeout(r.metadata());
        let stream = self
            .core
            .watch(&*caller(&r)?, r.into_inner(), self.shutdown.clone())?
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
/// restricted ones too, so it is served only to admins.
#[derive(Debug, Clone)]
pub struct StoreAdminApi {
    core: Arc<DomainCore>,
}

impl StoreAdminApi {
    /// Backs up the store of `core`.
    pub fn new(core: Arc<DomainCore>) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl StoreAdminService for StoreAdminApi {
    type BackupStoreStream =
        Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send + 'static>>;

    async fn backup_store(&self, r: Request<BackupStoreRequest>) -> Reply<Self::BackupStoreStream> {
        let chunks = self.core.backup(&*caller(&r)?, r.into_inner()).await?;
        Ok(Response::new(Box::pin(
            chunks.map(|c| c.map_err(Status::from)),
        )))
    }
}
