//! The thin gRPC layer: maps requests to [`DomainCore`] and errors to
//! canonical status codes with google.rpc details.

use std::pin::Pin;
use std::sync::Arc;

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
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl DomainService for DomainApi {
    async fn create_initiative(&self, r: Request<CreateInitiativeRequest>) -> Reply<Initiative> {
        Ok(Response::new(self.core.create(r.into_inner()).await?))
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<Initiative> {
        Ok(Response::new(self.core.get(r.into_inner()).await?))
    }

    async fn list_initiatives(
        &self,
        r: Request<ListInitiativesRequest>,
    ) -> Reply<ListInitiativesResponse> {
        Ok(Response::new(self.core.list(r.into_inner()).await?))
    }

    async fn update_initiative(&self, r: Request<UpdateInitiativeRequest>) -> Reply<Initiative> {
        Ok(Response::new(self.core.update(r.into_inner()).await?))
    }

    async fn delete_initiative(
        &self,
        r: Request<DeleteInitiativeRequest>,
    ) -> Reply<pbjson_types::Empty> {
        self.core.delete(r.into_inner()).await?;
        Ok(Response::new(pbjson_types::Empty::default()))
    }

    async fn add_progress_update(&self, r: Request<AddProgressUpdateRequest>) -> Reply<Initiative> {
        Ok(Response::new(
            self.core.add_progress_update(r.into_inner()).await?,
        ))
    }

    async fn update_milestone(&self, r: Request<UpdateMilestoneRequest>) -> Reply<Initiative> {
        Ok(Response::new(
            self.core.update_milestone(r.into_inner()).await?,
        ))
    }

    async fn get_domain_summary(
        &self,
        r: Request<GetDomainSummaryRequest>,
    ) -> Reply<DomainSummary> {
        Ok(Response::new(self.core.summary(r.into_inner()).await?))
    }

    async fn list_history(&self, r: Request<ListHistoryRequest>) -> Reply<ListHistoryResponse> {
        Ok(Response::new(self.core.history(r.into_inner()).await?))
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send + 'static>>;

    async fn watch_changes(
        &self,
        r: Request<WatchChangesRequest>,
    ) -> Reply<Self::WatchChangesStream> {
        let stream = self.core.watch(r.into_inner(), self.shutdown.clone())?;
        Ok(Response::new(Box::pin(
            stream.map(|c| c.map_err(Status::from)),
        )))
    }
}
