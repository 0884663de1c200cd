//! The thin gRPC layer: maps requests to [`DomainCore`] and errors to
//! canonical status codes with google.rpc details.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::core::DomainCore;
use crate::error::Error;
use crate::proto::domain_service_server::DomainService;
use crate::proto::{
    AddProgressUpdateRequest, Change, CreateInitiativeRequest, DeleteInitiativeRequest,
    DomainSummary, GetDomainSummaryRequest, GetInitiativeRequest, Initiative, ListHistoryRequest,
    ListHistoryResponse, ListInitiativesRequest, ListInitiativesResponse, UpdateInitiativeRequest,
    UpdateMilestoneRequest, WatchChangesRequest,
};
use crate::telemetry::observe;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(violations) => {
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::Aborted(_) => Status::aborted(message),
            Error::FailedPrecondition(m) => {
                let details =
                    ErrorDetails::with_precondition_failure_violation("STATE", "initiative", m);
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::Storage(_) => {
                tracing::error!(error = %message, "storage error");
                Status::internal(message)
            }
            Error::Corrupt(_) => {
                tracing::error!(error = %message, "damaged data");
                Status::data_loss(message)
            }
        }
    }
}

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

    /// Handles a call of `method` with its metrics, labelled with the
    /// domain's slug as the service (see [`observe`]).
    async fn observed<T, E>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Reply<T>
    where
        Status: From<E>,
    {
        observe(self.core.domain().slug(), method, call).await
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl DomainService for DomainApi {
    async fn create_initiative(&self, r: Request<CreateInitiativeRequest>) -> Reply<Initiative> {
        self.observed("CreateInitiative", self.core.create(r.into_inner()))
            .await
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<Initiative> {
        self.observed("GetInitiative", self.core.get(r.into_inner()))
            .await
    }

    async fn list_initiatives(
        &self,
        r: Request<ListInitiativesRequest>,
    ) -> Reply<ListInitiativesResponse> {
        self.observed("ListInitiatives", self.core.list(r.into_inner()))
            .await
    }

    async fn update_initiative(&self, r: Request<UpdateInitiativeRequest>) -> Reply<Initiative> {
        self.observed("UpdateInitiative", self.core.update(r.into_inner()))
            .await
    }

    async fn delete_initiative(
        &self,
        r: Request<DeleteInitiativeRequest>,
    ) -> Reply<pbjson_types::Empty> {
        let deleted = self.core.delete(r.into_inner());
        self.observed("DeleteInitiative", async {
            deleted.await.map(|()| pbjson_types::Empty::default())
        })
        .await
    }

    async fn add_progress_update(&self, r: Request<AddProgressUpdateRequest>) -> Reply<Initiative> {
        let call = self.core.add_progress_update(r.into_inner());
        self.observed("AddProgressUpdate", call).await
    }

    async fn update_milestone(&self, r: Request<UpdateMilestoneRequest>) -> Reply<Initiative> {
        let call = self.core.update_milestone(r.into_inner());
        self.observed("UpdateMilestone", call).await
    }

    async fn get_domain_summary(
        &self,
        r: Request<GetDomainSummaryRequest>,
    ) -> Reply<DomainSummary> {
        self.observed("GetDomainSummary", self.core.summary(r.into_inner()))
            .await
    }

    async fn list_history(&self, r: Request<ListHistoryRequest>) -> Reply<ListHistoryResponse> {
        self.observed("ListHistory", self.core.history(r.into_inner()))
            .await
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send + 'static>>;

    async fn watch_changes(
        &self,
        r: Request<WatchChangesRequest>,
    ) -> Reply<Self::WatchChangesStream> {
        self.observed("WatchChanges", async {
            let deadline = grpc_timeout(r.metadata());
            let stream = self
                .core
                .watch(r.into_inner(), self.shutdown.clone())?
                .map(|c| c.map_err(Status::from));
            let stream: Self::WatchChangesStream = match deadline {
                None => Box::pin(stream),
                Some(after) => Box::pin(until_deadline(stream, after)),
            };
            Ok::<_, Error>(stream)
        })
        .await
    }
}

/// The caller's deadline from the `grpc-timeout` header (gRPC over HTTP/2:
/// at most 8 digits and a unit, `H`, `M`, `S`, `m`, `u` or `n`).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
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
impl crate::proto::store_admin_service_server::StoreAdminService for StoreAdminApi {
    type BackupStoreStream =
        Pin<Box<dyn Stream<Item = Result<crate::proto::BackupChunk, Status>> + Send + 'static>>;

    async fn backup_store(
        &self,
        r: Request<crate::proto::BackupStoreRequest>,
    ) -> Reply<Self::BackupStoreStream> {
        let service = self.core.domain().slug();
        observe(service, "BackupStore", async {
            self.authorize(&r)?;
            let chunks = self.core.backup(r.into_inner()).await?;
            let stream: Self::BackupStoreStream =
                Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)));
            Ok::<_, Error>(stream)
        })
        .await
    }
}
