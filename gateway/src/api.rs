//! The thin gRPC layer of the gateway.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::names::InitiativeName;
use cetrack_contract::proto::*;
use cetrack_contract::served::gateway_service_server::GatewayService;
use cetrack_contract::wire;
use cetrack_contract::Error;
use futures::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use cetrack_server::auth::caller;

use crate::deadline::domain_deadline;
use crate::domains::{request, CallCtx, DomainError, Domains};
use crate::views;

/// The gateway's gRPC service.
#[derive(Debug, Clone)]
pub struct GatewayApi {
    domains: Arc<Domains>,
    default_deadline: Duration,
    shutdown: CancellationToken,
}

impl GatewayApi {
    /// Serves the views over `domains`; a call to a domain waits at most
    /// `default_deadline` (less when the caller's deadline is shorter).
    pub fn new(
        domains: Arc<Domains>,
        default_deadline: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            domains,
            default_deadline,
            shutdown,
        }
    }

    /// What the calls to the domains made for request `r` carry: their
    /// deadline and the verified caller's credentials.
    fn ctx<T>(&self, r: &Request<T>) -> Result<CallCtx, Status> {
        let who = caller(r)?;
        Ok(CallCtx::new(
            domain_deadline(r.metadata(), self.default_deadline),
            r.metadata(),
            who,
        ))
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The answer of a handler: `call`'s value, or its error as a status.
async fn reply<T, E>(call: impl std::future::Future<Output = Result<T, E>>) -> Reply<T>
where
    Status: From<E>,
{
    call.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl GatewayService for GatewayApi {
    async fn get_overview(&self, r: Request<GetOverviewRequest>) -> Reply<wire::Overview> {
        let ctx = self.ctx(&r)?;
        let view = views::overview::overview_encoded(&self.domains, r.into_inner(), &ctx);
        reply(view).await
    }

    async fn search_initiatives(
        &self,
        r: Request<SearchInitiativesRequest>,
    ) -> Reply<SearchInitiativesResponse> {
        let ctx = self.ctx(&r)?;
        let view = views::search::search(&self.domains, r.into_inner(), &ctx);
        reply(view).await
    }

    async fn get_organization_portfolio(
        &self,
        r: Request<GetOrganizationPortfolioRequest>,
    ) -> Reply<OrganizationPortfolio> {
        let ctx = self.ctx(&r)?;
        let view = views::portfolio::portfolio(&self.domains, r.into_inner(), &ctx);
        reply(view).await
    }

    async fn list_milestone_timeline(
        &self,
        r: Request<ListMilestoneTimelineRequest>,
    ) -> Reply<ListMilestoneTimelineResponse> {
        let ctx = self.ctx(&r)?;
        let view = views::timeline::timeline(&self.domains, r.into_inner(), &ctx);
        reply(view).await
    }

    async fn get_initiative(&self, r: Request<GetInitiativeRequest>) -> Reply<wire::Initiative> {
        let answer = self.initiative(r).await?;
        Ok(Response::new(wire::Initiative::from(&answer)))
    }

    type WatchAllChangesStream =
        Pin<Box<dyn Stream<Item = Result<DomainChange, Status>> + Send + 'static>>;

    async fn watch_all_changes(
        &self,
        r: Request<WatchAllChangesRequest>,
    ) -> Reply<Self::WatchAllChangesStream> {
        let ctx = self.ctx(&r)?;
        let stream = views::watch::watch_all(
            self.domains.clone(),
            r.into_inner(),
            &ctx,
            self.shutdown.clone(),
        )?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn generate_fact_sheet(&self, r: Request<GenerateFactSheetRequest>) -> Reply<FactSheet> {
        let ctx = self.ctx(&r)?;
        let view = views::factsheet::fact_sheet(&self.domains, r.into_inner(), &ctx);
        reply(view).await
    }
}

impl GatewayApi {
    /// GetInitiative: asks the initiative's domain; its errors pass through
    /// but for UNKNOWN and INTERNAL, and an unreachable domain is UNAVAILABLE.
    async fn initiative(&self, r: Request<GetInitiativeRequest>) -> Result<Initiative, Status> {
        let ctx = self.ctx(&r)?;
        let req = r.into_inner();
        let name = InitiativeName::parse(&req.name, "name")
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let answer = self
            .domains
            .call(name.domain, &ctx, |mut c, ctx| async move {
                c.get_initiative(request(req, &ctx)).await
            })
            .await;
        match answer {
            Ok(i) => Ok(i),
            Err(DomainError::Status {
                code,
                message,
                details,
                ..
            }) if !matches!(code, tonic::Code::Unknown | tonic::Code::Internal) => {
                Err(Status::with_details(code, message, details))
            }
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}
