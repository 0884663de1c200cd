//! An honest caller under attack, measured from outside against the real
//! binaries (a domain service and the gateway in front of it, release
//! builds): the honest caller's GetInitiative and CreateInitiative through
//! the gateway, their p50 and p99 without an attack, then while attackers
//!
//! - hold 1,000 idle change streams through the gateway (10 callers x 100,
//!   the gateway's and the domain's caps),
//! - send oversized and pathological requests (4 million filter values, a
//!   500,000-path update mask, a create with thousands of mistakes), and
//! - flood GetOverview,
//!
//! reported as ratios of the p99 under attack over the p99 without, measured
//! in the same run (this machine is shared and noisy: the ratio is the
//! figure). Every honest answer is checked, and so is every refusal. The
//! attackers run in this process, on the same two cores as the servers: the
//! ratio includes the CPU their own clients take.
//!
//! First, the latency of one GetInitiative at a time through the gateway
//! against the same call to the domain (the one address's cost), and of the
//! dashboard's overview page against GetOverview over gRPC.
//!
//! Run: `cargo build --release --workspace && cargo bench -p cetrack-tests
//! --bench pressure` (CETRACK_BENCH_CALLS sets the honest calls per phase;
//! default 2000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tokio_util::sync::CancellationToken;
use tonic::Code;

const D: Domain = Domain::Energy;
/// Honest callers at once.
const HONEST: usize = 2;
/// Idle change streams the attackers hold, and how many callers hold them.
const IDLE_STREAMS: usize = 1_000;
const STREAM_CALLERS: usize = 10;
/// Attackers sending pathological requests, and flooding GetOverview.
const ABUSERS: usize = 2;
const FLOODERS: usize = 4;

/// Latencies of one kind of call, sorted.
#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn quantile(&mut self, q: f64) -> Duration {
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0.get(i).copied().unwrap_or_default()
    }
}

/// The honest caller: `calls` calls through the gateway by [`HONEST`] tasks,
/// three reads to one create; every answer checked.
async fn honest(
    gateway: std::net::SocketAddr,
    calls: usize,
    phase: &str,
) -> anyhow::Result<(Latencies, Latencies)> {
    let name = format!("{}/initiatives/honest-read", D.parent());
    let mut tasks = Vec::new();
    for h in 0..HONEST {
        let mut client = connect(gateway).await?;
        let (name, phase) = (name.clone(), phase.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut gets, mut creates) = (Latencies::default(), Latencies::default());
            for n in (h..calls).step_by(HONEST) {
                let start = Instant::now();
                if n % 4 == 3 {
                    let id = format!("{phase}-{n}");
                    let made = client
                        .create_initiative(create_request(D, &id, sample(D, &id, 2027)))
                        .await?
                        .into_inner();
                    creates.0.push(start.elapsed());
                    ensure!(made.name.ends_with(&id), "created {}", made.name);
                } else {
                    let got = client
                        .get_initiative(GetInitiativeRequest { name: name.clone() })
                        .await?
                        .into_inner();
                    gets.0.push(start.elapsed());
                    ensure!(got.name == name, "got {}", got.name);
                }
            }
            anyhow::Ok((gets, creates))
        }));
    }
    let (mut gets, mut creates) = (Latencies::default(), Latencies::default());
    for t in tasks {
        let (g, c) = t.await??;
        gets.0.extend(g.0);
        creates.0.extend(c.0);
    }
    Ok((gets, creates))
}

/// Pathological requests, each refused as the caller's mistake, until `stop`.
async fn abuse(
    gateway: std::net::SocketAddr,
    stop: CancellationToken,
    refused: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let token = token("abuser", None, &[Role::Admin], None, Clearance::Public);
    let mut client = connect_as(gateway, Some(&token)).await?;
    let mut n = 0usize;
    while !stop.is_cancelled() {
        let status = match n % 3 {
            0 => client
                .list_initiatives(ListInitiativesRequest {
                    parent: D.parent(),
                    filter: Some(InitiativeFilter {
                        statuses: vec![99; 4_000_000],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .err(),
            1 => {
                let paths = vec!["title".to_string(); 500_000];
                client
                    .update_initiative(UpdateInitiativeRequest {
                        initiative: Some(Initiative {
                            name: format!("{}/initiatives/honest-read", D.parent()),
                            ..Default::default()
                        }),
                        update_mask: Some(pbjson_types::FieldMask { paths }),
                        ..Default::default()
                    })
                    .await
                    .err()
            }
            _ => {
                let mut bad = sample(D, "", 1);
                bad.participants = vec![Participant::default(); 5_000];
                client
                    .create_initiative(create_request(D, "BAD ID", bad))
                    .await
                    .err()
            }
        };
        let status = status.context("a pathological request was accepted")?;
        ensure!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::ResourceExhausted
            ),
            "{status:?}"
        );
        refused.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
    Ok(())
}

/// GetOverview as fast as it answers, until `stop`.
async fn flood(
    gateway: std::net::SocketAddr,
    stop: CancellationToken,
    answered: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let token = token("flooder", None, &[Role::Viewer], None, Clearance::Public);
    let mut client = gateway_as(gateway, Some(&token)).await?;
    while !stop.is_cancelled() {
        let overview = client
            .get_overview(GetOverviewRequest::default())
            .await?
            .into_inner();
        ensure!(!overview.domains.is_empty(), "an empty overview");
        answered.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::var("CETRACK_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let domain = spawn_domain(D, dir.path()).await?;
    let dashboard = free_local_addr()?;
    let gateway = spawn_server(
        &binary("cetrack-gateway")?,
        [
            "--listen".to_string(),
            "127.0.0.1:0".into(),
            "--http-listen".into(),
            dashboard.to_string(),
            "--domain".into(),
            format!("{D}=http://{}", domain.addr),
        ],
    )
    .await?;
    let addr = gateway.addr;
    let mut client = connect(addr).await?;
    client
        .create_initiative(create_request(
            D,
            "honest-read",
            sample(D, "Honest read", 2027),
        ))
        .await?;

    // One address: the latency of one GetInitiative at a time through the
    // gateway binary against the same call to the domain binary, in
    // alternating rounds (real processes, measured from outside).
    let name = format!("{}/initiatives/honest-read", D.parent());
    let mut direct = connect(domain.addr).await?;
    let (mut via_gateway, mut to_domain) = (Latencies::default(), Latencies::default());
    for _ in 0..10 {
        for (client, into) in [
            (&mut client, &mut via_gateway),
            (&mut direct, &mut to_domain),
        ] {
            for _ in 0..calls / 10 {
                let start = Instant::now();
                let got = client
                    .get_initiative(GetInitiativeRequest { name: name.clone() })
                    .await?
                    .into_inner();
                into.0.push(start.elapsed());
                ensure!(got.name == name, "got {}", got.name);
            }
        }
    }
    let (g50, g99) = (via_gateway.quantile(0.5), via_gateway.quantile(0.99));
    let (d50, d99) = (to_domain.quantile(0.5), to_domain.quantile(0.99));
    println!(
        "GetInitiative, one at a time: to the domain p50 {:.3} ms p99 {:.3} ms | through the gateway p50 {:.3} ms p99 {:.3} ms | {:.2}x p50, {:.2}x p99",
        ms(d50),
        ms(d99),
        ms(g50),
        ms(g99),
        ms(g50) / ms(d50).max(1e-6),
        ms(g99) / ms(d99).max(1e-6)
    );

    // The dashboard: its overview page against GetOverview over gRPC, one
    // at a time in alternating rounds (the page asks the same view and
    // renders it).
    let web = reqwest::Client::new();
    let admin = admin_token();
    let mut grpc_gateway = gateway_as(addr, Some(&admin)).await?;
    let (mut page, mut rpc) = (Latencies::default(), Latencies::default());
    for _ in 0..10 {
        for _ in 0..calls / 20 {
            let start = Instant::now();
            let body = web
                .get(format!("http://{dashboard}/"))
                .bearer_auth(&admin)
                .send()
                .await?
                .text()
                .await?;
            page.0.push(start.elapsed());
            ensure!(body.contains("Commitments"), "not the overview page");
        }
        for _ in 0..calls / 20 {
            let start = Instant::now();
            let o = grpc_gateway
                .get_overview(GetOverviewRequest::default())
                .await?
                .into_inner();
            rpc.0.push(start.elapsed());
            ensure!(o.domains.len() == 7, "an overview of seven domains");
        }
    }
    println!(
        "overview, one at a time: GetOverview over gRPC p50 {:.3} ms | the dashboard's overview page p50 {:.3} ms | {:.2}x",
        ms(rpc.quantile(0.5)),
        ms(page.quantile(0.5)),
        ms(page.quantile(0.5)) / ms(rpc.quantile(0.5)).max(1e-6)
    );

    // Warm up, then without an attack.
    honest(addr, calls / 4, "warm").await?;
    let (mut quiet_gets, mut quiet_creates) = honest(addr, calls, "quiet").await?;

    // The attack (CETRACK_BENCH_ATTACKS picks some of `streams`, `abuse`,
    // `flood`, to see what each costs; default all three).
    let attacks =
        std::env::var("CETRACK_BENCH_ATTACKS").unwrap_or_else(|_| "streams,abuse,flood".into());
    let (streams, abusers, flooders) = (
        if attacks.contains("streams") {
            STREAM_CALLERS
        } else {
            0
        },
        if attacks.contains("abuse") {
            ABUSERS
        } else {
            0
        },
        if attacks.contains("flood") {
            FLOODERS
        } else {
            0
        },
    );
    let mut idle = Vec::new();
    for c in 0..streams {
        let token = token(
            &format!("idler-{c}"),
            None,
            &[Role::Viewer],
            None,
            Clearance::Public,
        );
        let mut idler = connect_as(addr, Some(&token)).await?;
        for _ in 0..IDLE_STREAMS / STREAM_CALLERS {
            idle.push(watch(&mut idler, &D.parent(), 1_000_000).await?);
        }
    }
    let stop = CancellationToken::new();
    let (refused, overviews) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // The attackers run on a runtime and threads of their own, as another
    // program would: building a 4 MB request must not stall the honest
    // caller's own executor (the bench would then measure itself).
    let attackers = {
        let (stop, refused, overviews) = (stop.clone(), refused.clone(), overviews.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for _ in 0..abusers {
                    tasks.push(tokio::spawn(abuse(addr, stop.clone(), refused.clone())));
                }
                for _ in 0..flooders {
                    tasks.push(tokio::spawn(flood(addr, stop.clone(), overviews.clone())));
                }
                for t in tasks {
                    t.await??;
                }
                anyhow::Ok(())
            })
        })
    };
    let attacked_at = Instant::now();
    let (mut loud_gets, mut loud_creates) = honest(addr, calls, "attacked").await?;
    let attacked_for = attacked_at.elapsed();
    stop.cancel();
    attackers
        .join()
        .map_err(|_| anyhow::anyhow!("an attacker panicked"))??;
    let held = idle.len();
    ensure!(
        held == streams * IDLE_STREAMS / STREAM_CALLERS,
        "{held} idle streams"
    );
    drop(idle);

    println!(
        "attack during the honest calls ({:.1} s): {held} idle change streams held, {} pathological requests refused, {} overviews answered",
        attacked_for.as_secs_f64(),
        refused.load(Ordering::Relaxed),
        overviews.load(Ordering::Relaxed)
    );
    for (what, quiet, loud) in [
        ("GetInitiative", &mut quiet_gets, &mut loud_gets),
        ("CreateInitiative", &mut quiet_creates, &mut loud_creates),
    ] {
        let (q50, q99) = (quiet.quantile(0.5), quiet.quantile(0.99));
        let (l50, l99) = (loud.quantile(0.5), loud.quantile(0.99));
        println!(
            "{what:<17} without attack p50 {:>7.2} ms p99 {:>7.2} ms | under attack p50 {:>7.2} ms p99 {:>7.2} ms | p99 ratio {:.2}x ({} calls each)",
            ms(q50),
            ms(q99),
            ms(l50),
            ms(l99),
            ms(l99) / ms(q99).max(1e-6),
            quiet.0.len()
        );
    }
    drop(client);
    gateway.terminate().await?;
    domain.terminate().await?;
    Ok(())
}
