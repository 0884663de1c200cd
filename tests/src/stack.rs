//! The one builder of a whole system for the gateway tests: the seven
//! domains (in this process, or one of them as a child process of its real
//! binary) and the gateway over them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use cetrack_contract::proto::{Initiative, UpdateInitiativeRequest};
use cetrack_contract::Domain;
use cetrack_server::RunningServer;
use tonic::transport::Channel;

use crate::{
    create_request, domain_of, free_local_addr, mask, spawn_domain_at, start_test_gateway_with,
    Client, GatewayClient, ServerProcess, TestDomain,
};

/// How long the gateway of a stack with a child process waits for one
/// domain's answer (the caller's deadline being longer).
pub const CHILD_DOMAIN_DEADLINE: Duration = Duration::from_secs(1);

/// A domain run as a child process of its binary, on a fixed address so
/// that it can be killed and started again where the gateway expects it.
pub struct ChildDomain {
    /// The domain.
    pub domain: Domain,
    /// Where it listens, across restarts.
    pub addr: SocketAddr,
    /// The running process (killed when dropped).
    pub process: ServerProcess,
    /// A client of it that reconnects by itself after a restart.
    client: Client,
    /// Its data directory; removed when dropped, after the process is
    /// killed (fields drop in this order).
    pub dir: tempfile::TempDir,
}

/// The seven domains and the gateway over them.
pub struct Stack {
    /// The domains served in this process.
    pub domains: Vec<TestDomain>,
    /// The domain run as a child process, if any.
    pub child: Option<ChildDomain>,
    /// The gateway server (stopped when dropped with the test).
    pub gateway_server: RunningServer,
    /// A client of the gateway.
    pub gateway: GatewayClient,
}

impl Stack {
    /// The seven domains in this process and the gateway.
    pub async fn start() -> anyhow::Result<Self> {
        Self::build(None).await
    }

    /// Six domains in this process, `child` as a child process of its
    /// binary, and the gateway.
    pub async fn with_child_process(child: Domain) -> anyhow::Result<Self> {
        Self::build(Some(child)).await
    }

    async fn build(child: Option<Domain>) -> anyhow::Result<Self> {
        let in_process = Domain::ALL.into_iter().filter(|d| Some(*d) != child);
        let domains = futures::future::try_join_all(in_process.map(TestDomain::start)).await?;
        let child = match child {
            None => None,
            Some(domain) => {
                let dir = tempfile::tempdir()?;
                let addr = free_local_addr()?;
                let process = spawn_domain_at(domain, dir.path(), addr).await?;
                let channel = tonic::service::interceptor::InterceptedService::new(
                    Channel::from_shared(format!("http://{addr}"))?
                        .connect_timeout(Duration::from_secs(5))
                        .connect_lazy(),
                    crate::Bearer::new(Some(&crate::admin_token())),
                );
                Some(ChildDomain {
                    domain,
                    dir,
                    addr,
                    process,
                    client: Client::new(channel),
                })
            }
        };
        let addrs = domains
            .iter()
            .map(|t| (t.domain, t.addr()))
            .chain(child.iter().map(|c| (c.domain, c.addr)));
        // With a domain that tests kill or freeze, the gateway gives up on
        // a domain after CHILD_DOMAIN_DEADLINE: the tests' own calls carry
        // a far longer deadline and assert on the gateway's bound.
        let deadline = match child {
            Some(_) => CHILD_DOMAIN_DEADLINE,
            None => cetrack_gateway::DEFAULT_DOMAIN_DEADLINE,
        };
        let (gateway_server, gateway) = start_test_gateway_with(addrs, deadline).await?;
        Ok(Self {
            domains,
            child,
            gateway_server,
            gateway,
        })
    }

    /// A client of `domain` itself.
    pub fn domain(&self, domain: Domain) -> Client {
        match &self.child {
            Some(c) if c.domain == domain => c.client.clone(),
            _ => self
                .domains
                .iter()
                .find(|t| t.domain == domain)
                .map(|t| t.client.clone())
                .unwrap_or_else(|| panic!("{domain} runs in every stack")),
        }
    }

    /// The domain run as a child process.
    pub fn child(&mut self) -> anyhow::Result<&mut ChildDomain> {
        self.child
            .as_mut()
            .context("this stack runs no domain as a child process")
    }

    /// Starts the child's binary again over the same data, on the same port.
    pub async fn restart_child(&mut self) -> anyhow::Result<()> {
        let c = self.child()?;
        c.process = spawn_domain_at(c.domain, c.dir.path(), c.addr).await?;
        Ok(())
    }

    /// Creates initiative `id` in `domain` directly at the domain.
    pub async fn create(
        &self,
        domain: Domain,
        id: &str,
        init: Initiative,
    ) -> anyhow::Result<Initiative> {
        Ok(self
            .domain(domain)
            .create_initiative(create_request(domain, id, init))
            .await?
            .into_inner())
    }

    /// Updates the `paths` of `init` directly at its domain.
    pub async fn update(&self, init: Initiative, paths: &[&str]) -> anyhow::Result<Initiative> {
        let domain = domain_of(&init.name)?;
        Ok(self
            .domain(domain)
            .update_initiative(UpdateInitiativeRequest {
                initiative: Some(init),
                update_mask: Some(mask(paths)),
                request_id: String::new(),
                reporter: "test".into(),
            })
            .await?
            .into_inner())
    }
}
