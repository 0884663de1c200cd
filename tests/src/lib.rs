//! Helpers shared by the end-to-end tests: real servers on ephemeral ports
//! with temporary data directories, in this process or as child processes of
//! the real binaries, and valid sample records for every domain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use cetrack_contract::proto::domain_details::Kind;
use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_domain_service::{start_domain, DomainServerConfig};
use cetrack_server::RunningServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

mod auth;
mod metrics;
mod process;
mod stack;
pub use auth::*;
pub use metrics::*;
pub use process::*;
pub use stack::*;

/// A gRPC client of one domain.
pub type Client = DomainServiceClient<AuthChannel>;

/// A channel to `addr` whose requests carry `token`.
pub async fn channel_as(
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> anyhow::Result<AuthChannel> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        Bearer::new(token),
    ))
}

/// Connects to a server at `addr` as the test admin (cleared for restricted
/// records).
pub async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    connect_as(addr, Some(&admin_token())).await
}

/// Connects to a domain server at `addr` sending `token`.
pub async fn connect_as(addr: std::net::SocketAddr, token: Option<&str>) -> anyhow::Result<Client> {
    Ok(DomainServiceClient::new(channel_as(addr, token).await?))
}

/// Connects to a gateway at `addr` sending `token`.
pub async fn gateway_as(
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> anyhow::Result<GatewayClient> {
    Ok(GatewayClient::new(channel_as(addr, token).await?))
}

/// A domain server running in this test process over a temporary directory.
/// [`TestDomain::stop`] stops it gracefully and waits; dropped, it begins a
/// graceful shutdown (the test's runtime ends the rest).
pub struct TestDomain {
    /// The domain.
    pub domain: Domain,
    /// The running server (None while stopped).
    pub server: Option<RunningServer>,
    /// A client of it.
    pub client: Client,
    /// Its data directory; removed when dropped, after the server and the
    /// client (fields drop in this order).
    pub dir: tempfile::TempDir,
}

impl TestDomain {
    /// Starts `domain` on an ephemeral port over a fresh temporary directory.
    pub async fn start(domain: Domain) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let server = serve(domain, dir.path()).await?;
        let client = connect(server.addr).await?;
        Ok(Self {
            domain,
            dir,
            server: Some(server),
            client,
        })
    }

    /// Stops the server gracefully and starts it again on the same data, on a
    /// new ephemeral port; the client is reconnected.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.server.take() {
            s.stop().await?;
        }
        let server = serve(self.domain, self.dir.path()).await?;
        self.client = connect(server.addr).await?;
        self.server = Some(server);
        Ok(())
    }

    /// Stops the server gracefully (calls in flight finish, the store is
    /// flushed and closed) and fails if it did not stop cleanly; the
    /// temporary directory is removed after.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.server.take() {
            s.stop().await?;
        }
        Ok(())
    }

    /// The address of the running server.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server
            .as_ref()
            .map(|s| s.addr)
            .unwrap_or_else(|| ([127, 0, 0, 1], 0).into())
    }

    /// `domains/{domain}`.
    pub fn parent(&self) -> String {
        self.domain.parent()
    }

    /// The resource name of initiative `id`.
    pub fn name(&self, id: &str) -> String {
        format!("{}/initiatives/{id}", self.domain.parent())
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.shutdown.cancel();
        }
    }
}

/// Serves `domain` over `dir` on 127.0.0.1:0 in this process, verifying
/// tokens with the test key.
pub async fn serve(domain: Domain, dir: &Path) -> anyhow::Result<RunningServer> {
    serve_with_auth(domain, dir, test_auth()).await
}

/// Serves `domain` over `dir` on 127.0.0.1:0 in this process, its callers
/// authenticated as `auth` says.
pub async fn serve_with_auth(
    domain: Domain,
    dir: &Path,
    auth: cetrack_server::auth::Auth,
) -> anyhow::Result<RunningServer> {
    serve_with(domain, dir, auth, None).await
}

/// Serves `domain` over `dir` on 127.0.0.1:0 in this process, its callers
/// authenticated as `auth` says, over TLS as `tls` says.
pub async fn serve_with(
    domain: Domain,
    dir: &Path,
    auth: cetrack_server::auth::Auth,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    start_domain(
        DomainServerConfig {
            domain,
            data_dir: dir.to_path_buf(),
            cache_capacity: 16 * 1024 * 1024,
            auth,
            tls,
            request_id_retention: Duration::from_secs(90 * 86_400),
        },
        listener,
        CancellationToken::new(),
    )
    .await
}

/// The path of a binary built by cargo beside the test binary
/// (`target/<profile>/<name>`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("cannot locate the target directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is not built; run the tests with `cargo test --workspace` (which builds every binary)",
            path.display()
        );
    }
    Ok(path)
}

/// The field violations of an INVALID_ARGUMENT status, as (field, description).
pub fn field_violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// Just the field paths of an INVALID_ARGUMENT status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

/// An approximate date of YEAR precision.
pub fn year(y: i32) -> ApproximateDate {
    ApproximateDate {
        precision: DatePrecision::Year as i32,
        year: y,
        ..Default::default()
    }
}

/// An approximate date of QUARTER precision.
pub fn quarter(y: i32, q: i32) -> ApproximateDate {
    ApproximateDate {
        precision: DatePrecision::Quarter as i32,
        year: y,
        quarter: q,
        ..Default::default()
    }
}

/// An approximate date of MONTH precision.
pub fn month(y: i32, m: i32) -> ApproximateDate {
    ApproximateDate {
        precision: DatePrecision::Month as i32,
        year: y,
        month: m,
        ..Default::default()
    }
}

/// An approximate date of DAY precision.
pub fn on_day(y: i32, m: i32, d: i32) -> ApproximateDate {
    ApproximateDate {
        precision: DatePrecision::Day as i32,
        year: y,
        month: m,
        day: d,
        ..Default::default()
    }
}

/// A scheduled milestone `id` due in `due`.
pub fn milestone(id: &str, due: ApproximateDate) -> Milestone {
    Milestone {
        id: id.into(),
        title: format!("Milestone {id}"),
        due: Some(due),
        ..Default::default()
    }
}

/// An organization.
pub fn org(
    id: &str,
    name: &str,
    acronym: &str,
    country: &str,
    t: OrganizationType,
) -> Organization {
    Organization {
        id: id.into(),
        name: name.into(),
        acronym: acronym.into(),
        country_code: country.into(),
        r#type: t as i32,
    }
}

/// A participant.
pub fn participant(o: Organization, role: ParticipantRole) -> Participant {
    Participant {
        organization: Some(o),
        role: role as i32,
        ..Default::default()
    }
}

/// Valid details of `domain`.
pub fn details(domain: Domain) -> DomainDetails {
    let kind = match domain {
        Domain::Semiconductors => Kind::Semiconductors(SemiconductorDetails {
            segments: vec![SupplyChainSegment::Research as i32],
            technology_nodes: vec!["advanced nodes".into()],
            research_centers: vec!["National Semiconductor Technology Center".into()],
        }),
        Domain::Biotech => Kind::Biotech(BiotechDetails {
            research_areas: vec![BiotechResearchArea::Bioeconomy as i32],
            supply_chain_inputs: vec!["starting materials".into()],
        }),
        Domain::Energy => Kind::Energy(EnergyDetails {
            chemistries: vec![BatteryChemistry::SodiumIon as i32],
            applications: vec![EnergyApplication::UtilityScaleStorage as i32],
        }),
        Domain::Quantum => Kind::Quantum(QuantumDetails {
            platforms: vec![QuantumPlatform::Superconducting as i32],
            activities: vec![QuantumActivity::Research as i32],
        }),
        Domain::Ai => Kind::Ai(AiDetails {
            governance_frameworks: vec!["G7 Code of Conduct".into()],
            standards_bodies: vec!["ISO/IEC JTC 1/SC 42".into()],
        }),
        Domain::Connectivity => Kind::Connectivity(ConnectivityDetails {
            technologies: vec![ConnectivityTechnology::OpenRan as i32],
            target_regions: vec!["Southeast Asia".into()],
        }),
        Domain::Partnerships => Kind::Partnerships(PartnershipDetails {
            partner_country_codes: vec!["IN".into()],
            format: PartnershipFormat::Trilateral as i32,
        }),
    };
    DomainDetails { kind: Some(kind) }
}

/// A valid initiative of `domain`: two participants (NSF and MSIT), a
/// milestone due in `due_year`, an "at least US$10 million" pledge, a topic,
/// a source and the domain's details.
pub fn sample(domain: Domain, title: &str, due_year: i32) -> Initiative {
    Initiative {
        title: title.into(),
        summary: format!("A {domain} commitment used in tests."),
        instrument: Instrument::JointResearchProgramme as i32,
        status: LifecycleStatus::Announced as i32,
        participants: vec![
            participant(
                org("us-nsf", "National Science Foundation", "NSF", "US", OrganizationType::MinistryOrAgency),
                ParticipantRole::CoLead,
            ),
            participant(
                org("kr-msit", "Ministry of Science and ICT", "MSIT", "KR", OrganizationType::MinistryOrAgency),
                ParticipantRole::CoLead,
            ),
        ],
        planned_start: Some(year(2024)),
        planned_end: Some(year(due_year)),
        milestones: vec![Milestone {
            id: "launch".into(),
            title: "Launch".into(),
            due: Some(year(due_year)),
            ..Default::default()
        }],
        funding: vec![FundingCommitment {
            amount: Some(Money {
                currency_code: "USD".into(),
                units: 10_000_000,
                nanos: 0,
            }),
            qualifier: AmountQualifier::AtLeast as i32,
            committing_organization_id: "us-nsf".into(),
            kind: FundingKind::Pledged as i32,
            note: String::new(),
            date: None,
        }],
        topics: vec!["joint-research".into()],
        sources: vec![SourceReference {
            document: "Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue".into(),
            date: Some(ApproximateDate {
                precision: DatePrecision::Day as i32,
                year: 2023,
                month: 12,
                day: 8,
                quarter: 0,
            }),
            section: domain.title().into(),
            ..Default::default()
        }],
        details: Some(details(domain)),
        ..Default::default()
    }
}

/// A valid initiative of `domain` of about 38 kB per milestone: `milestones`
/// milestones, each with 20 evidence links of about 1,900 bytes.
pub fn heavy(domain: Domain, title: &str, milestones: usize) -> Initiative {
    let link = format!("https://example.org/{}", "a".repeat(1_900));
    let mut i = sample(domain, title, 2027);
    i.milestones = (0..milestones)
        .map(|n| Milestone {
            id: format!("m{n}"),
            title: "Milestone".into(),
            status: MilestoneStatus::Scheduled as i32,
            evidence_links: vec![link.clone(); 20],
            ..Default::default()
        })
        .collect();
    i
}

/// The revision of `domain`'s last change, as its summary says.
pub async fn last_revision(client: &mut Client, domain: Domain) -> anyhow::Result<i64> {
    Ok(client
        .get_domain_summary(GetDomainSummaryRequest {
            parent: domain.parent(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .last_revision)
}

/// A CreateInitiativeRequest for `init` with id `id` in `domain`.
pub fn create_request(domain: Domain, id: &str, init: Initiative) -> CreateInitiativeRequest {
    CreateInitiativeRequest {
        parent: domain.parent(),
        initiative_id: id.into(),
        initiative: Some(init),
        request_id: String::new(),
        reporter: "test".into(),
    }
}

// Helpers of the domain API tests (domain_api, domain_errors,
// domain_pagination, domain_restart, domain_watch, domain_idempotency).

/// A calendar day.
pub fn calendar(year: i32, month: i32, day: i32) -> CalendarDate {
    CalendarDate { year, month, day }
}

/// A field mask naming `paths`.
pub fn mask(paths: &[&str]) -> pbjson_types::FieldMask {
    pbjson_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    }
}

/// The initiative id at the end of a resource name.
pub fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// The domain of an initiative's resource name.
pub fn domain_of(name: &str) -> anyhow::Result<Domain> {
    Ok(cetrack_contract::names::InitiativeName::parse(name, "name")
        .map_err(|v| anyhow::anyhow!("{}: {}", v.field, v.description))?
        .domain)
}

/// The ids of `initiatives`, in their order.
pub fn ids(initiatives: &[Initiative]) -> Vec<String> {
    initiatives
        .iter()
        .map(|i| id_of(&i.name).to_string())
        .collect()
}

/// Creates one initiative per `(id, initiative)` with `tasks` concurrent
/// callers, each on a clone of `client`; returns the created initiatives in
/// the order of `items`.
pub async fn create_concurrently(
    client: &Client,
    domain: Domain,
    items: Vec<(String, Initiative)>,
    tasks: usize,
) -> anyhow::Result<Vec<Initiative>> {
    let total = items.len();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(
        // Reversed, so that callers pop the items in their order.
        items.into_iter().enumerate().rev().collect::<Vec<_>>(),
    ));
    let mut handles = Vec::new();
    for _ in 0..tasks.max(1) {
        let queue = queue.clone();
        let mut client = client.clone();
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop();
                let Some((index, (id, init))) = next else {
                    return anyhow::Ok(done);
                };
                let created = client
                    .create_initiative(create_request(domain, &id, init))
                    .await
                    .with_context(|| format!("creating {id}"))?
                    .into_inner();
                done.push((index, created));
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for h in handles {
        all.extend(h.await??);
    }
    all.sort_by_key(|(index, _)| *index);
    Ok(all.into_iter().map(|(_, created)| created).collect())
}

/// Every initiative of `parent` matching `filter`, walked with `page_size`.
pub async fn list_all(
    client: &mut Client,
    parent: &str,
    filter: Option<InitiativeFilter>,
    page_size: i32,
) -> anyhow::Result<Vec<Initiative>> {
    Ok(list_pages(client, parent, filter, page_size).await?.0)
}

/// Every initiative of a list walked with `page_size`, and every page token
/// it was handed on the way.
pub async fn list_pages(
    client: &mut Client,
    parent: &str,
    filter: Option<InitiativeFilter>,
    page_size: i32,
) -> anyhow::Result<(Vec<Initiative>, Vec<String>)> {
    let (mut out, mut tokens) = (Vec::new(), Vec::new());
    let mut page_token = String::new();
    loop {
        let page = client
            .list_initiatives(ListInitiativesRequest {
                parent: parent.to_string(),
                page_size,
                page_token,
                filter: filter.clone(),
            })
            .await?
            .into_inner();
        out.extend(page.initiatives);
        if page.next_page_token.is_empty() {
            return Ok((out, tokens));
        }
        tokens.push(page.next_page_token.clone());
        page_token = page.next_page_token;
    }
}

/// Every history entry of initiative `name`, walked with `page_size`.
pub async fn history_all(
    client: &mut Client,
    name: &str,
    page_size: i32,
) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_history(ListHistoryRequest {
                name: name.to_string(),
                page_size,
                page_token,
            })
            .await?
            .into_inner();
        out.extend(page.changes);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// The summary of `parent` as of `as_of` with a "due soon" window of `days`.
pub async fn summary_at(
    client: &mut Client,
    parent: &str,
    as_of: CalendarDate,
    days: i32,
) -> anyhow::Result<DomainSummary> {
    Ok(client
        .get_domain_summary(GetDomainSummaryRequest {
            parent: parent.to_string(),
            due_within_days: days,
            as_of: Some(as_of),
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// Opens a change stream of `parent` after `after_revision`.
pub async fn watch(
    client: &mut Client,
    parent: &str,
    after_revision: i64,
) -> anyhow::Result<tonic::Streaming<Change>> {
    Ok(client
        .watch_changes(WatchChangesRequest {
            parent: parent.to_string(),
            after_revision,
        })
        .await?
        .into_inner())
}

/// The next change of a stream, failing when none comes within `within` or
/// the stream ends.
pub async fn next_change(
    stream: &mut tonic::Streaming<Change>,
    within: Duration,
) -> anyhow::Result<Change> {
    match tokio::time::timeout(within, stream.message()).await {
        Err(_) => bail!("no change arrived within {within:?}"),
        Ok(Err(status)) => bail!("the stream failed: {status}"),
        Ok(Ok(None)) => bail!("the stream ended"),
        Ok(Ok(Some(change))) => Ok(change),
    }
}

/// The next `n` changes of a stream, each within `within`.
pub async fn next_changes(
    stream: &mut tonic::Streaming<Change>,
    n: usize,
    within: Duration,
) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_change(stream, within).await?);
    }
    Ok(out)
}

/// The error of a call that must fail.
pub fn expect_err<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> tonic::Status {
    match result {
        Ok(r) => panic!(
            "the call succeeded but should have failed: {:?}",
            r.into_inner()
        ),
        Err(status) => status,
    }
}

// Helpers of the gateway tests (gateway_views, gateway_faults).

/// A gRPC client of the gateway.
pub type GatewayClient =
    cetrack_contract::proto::gateway_service_client::GatewayServiceClient<AuthChannel>;

/// Starts the seven domains in this process, each on an ephemeral port over
/// its own temporary directory, concurrently; in the order of [`Domain::ALL`].
pub async fn start_seven_domains() -> anyhow::Result<Vec<TestDomain>> {
    futures::future::try_join_all(Domain::ALL.map(TestDomain::start)).await
}

/// Starts the gateway in this process on 127.0.0.1:0, answering from the
/// domains at `addrs`, and connects a client to it.
pub async fn start_test_gateway(
    addrs: impl IntoIterator<Item = (Domain, std::net::SocketAddr)>,
) -> anyhow::Result<(RunningServer, GatewayClient)> {
    start_test_gateway_with(addrs, cetrack_gateway::DEFAULT_DOMAIN_DEADLINE).await
}

/// [`start_test_gateway`] whose calls to a domain wait at most
/// `domain_deadline` when the caller's deadline is longer.
pub async fn start_test_gateway_with(
    addrs: impl IntoIterator<Item = (Domain, std::net::SocketAddr)>,
    domain_deadline: Duration,
) -> anyhow::Result<(RunningServer, GatewayClient)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut config = cetrack_gateway::GatewayConfig::with_addrs(addrs, test_auth());
    config.service_token = Some(gateway_service_token_file());
    // These gateways answer every overview from the domains, at the moment
    // of the call: the tests read views right after writing to a domain
    // directly, stop domains and count the calls domains receive. The
    // overview from memory is tested on the binary (`gateway_live`).
    config.overview_from_memory = false;
    config.domain_deadline = domain_deadline;
    let server = cetrack_gateway::start_gateway(config, listener, CancellationToken::new()).await?;
    let client = gateway_as(server.addr, Some(&admin_token())).await?;
    Ok((server, client))
}

/// An address on 127.0.0.1 where nothing listens, and where nothing else
/// can while this value lives: a socket bound to it that never listens, so
/// a connection to it is refused (a port merely found free could be taken
/// by another test's server in the meantime).
pub struct DeadAddr {
    /// The address.
    pub addr: std::net::SocketAddr,
    _socket: std::os::fd::OwnedFd,
}

/// A [`DeadAddr`].
pub fn dead_local_addr() -> anyhow::Result<DeadAddr> {
    use nix::sys::socket::{
        bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(socket.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0))?;
    let bound: SockaddrIn = getsockname(socket.as_raw_fd())?;
    Ok(DeadAddr {
        addr: std::net::SocketAddr::from((bound.ip(), bound.port())),
        _socket: socket,
    })
}

/// An address on 127.0.0.1 that was free a moment ago: a port the system
/// chose for a listener that is closed again, for a child process that must
/// come back on the same port after a restart.
pub fn free_local_addr() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Reads events of a WatchAllChanges stream until `done` holds for all read
/// so far; fails when the stream fails or ends, or when no event comes
/// within `within`.
pub async fn read_merged_until(
    stream: &mut tonic::Streaming<DomainChange>,
    within: Duration,
    mut done: impl FnMut(&[DomainChange]) -> bool,
) -> anyhow::Result<Vec<DomainChange>> {
    let mut out = Vec::new();
    while !done(&out) {
        match tokio::time::timeout(within, stream.message()).await {
            Err(_) => bail!("no change within {within:?}; got {:?}", merged_keys(&out)),
            Ok(Err(status)) => bail!("the stream failed: {status}"),
            Ok(Ok(None)) => bail!("the stream ended"),
            Ok(Ok(Some(event))) => out.push(event),
        }
    }
    Ok(out)
}

/// Each event of a merged stream as (domain, revision); panics when an event
/// has no change or its domain does not hold the changed initiative.
pub fn merged_keys(events: &[DomainChange]) -> Vec<(Domain, i64)> {
    events
        .iter()
        .map(|e| {
            let change = e.change.as_ref().expect("an event without a change");
            let d = Domain::from_proto(e.domain).expect("an event without a domain");
            assert!(
                change.name.starts_with(&format!("{}/", d.parent())),
                "an event of {d} carries a change of {}",
                change.name
            );
            (d, change.revision)
        })
        .collect()
}

/// The revisions of a merged stream per domain, in the order they arrived.
pub fn merged_revisions(events: &[DomainChange]) -> std::collections::BTreeMap<Domain, Vec<i64>> {
    let mut out = std::collections::BTreeMap::<Domain, Vec<i64>>::new();
    for (d, r) in merged_keys(events) {
        out.entry(d).or_default().push(r);
    }
    out
}
