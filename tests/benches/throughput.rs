//! Write and read throughput of one domain service over real gRPC, reported
//! as ratios against a baseline measured in the same run (this machine is
//! shared and noisy, so absolute numbers mean little):
//!
//! - baseline: GetInitiative (no disk write), 64 concurrent callers;
//! - CreateInitiative, 1 caller: each write waits for its own flush;
//! - CreateInitiative, 64 concurrent callers: writes share flushes (group commit).
//!
//! Also the resident memory after loading, against the memory before, and
//! the cost of authentication: GetInitiative with a valid bearer token
//! against the same on a server with authentication off, measured
//! alternately in the same run; and what the gateway's routing costs:
//! GetInitiative through the gateway against the same call made to the
//! domain directly, with 64 callers (throughput) and with one (the latency of
//! one call, p50 and p99).
//!
//! Run: `cargo bench -p cetrack-tests --bench throughput` (CETRACK_BENCH_WRITES
//! sets how many writes a run makes; default 2000).

use std::time::{Duration, Instant};

use cetrack_contract::proto::GetInitiativeRequest;
use cetrack_contract::Domain;
use cetrack_server::auth::Auth;
use cetrack_tests::{
    connect, create_request, sample, serve_with_auth, start_test_gateway, Client, TestDomain,
};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn creates(t: &TestDomain, writers: usize, total: usize, prefix: &str) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut client = t.client.clone();
        let domain = t.domain;
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(writers) {
                let id = format!("{prefix}-{i:06}");
                client
                    .create_initiative(create_request(domain, &id, sample(domain, &id, 2026)))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

async fn reads(t: &TestDomain, readers: usize, total: usize, id: &str) -> Duration {
    reads_from(&t.client, t.name(id), readers, total).await
}

async fn reads_from(client: &Client, name: String, readers: usize, total: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..readers {
        let mut client = client.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (r..total).step_by(readers) {
                client
                    .get_initiative(GetInitiativeRequest { name: name.clone() })
                    .await
                    .expect("get");
            }
        }));
    }
    for t in tasks {
        t.await.expect("reader");
    }
    start.elapsed()
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("CETRACK_BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let t = TestDomain::start(Domain::Quantum).await?;
    let rss_before = rss_kib();

    let single = total / 10;
    let d1 = creates(&t, 1, single, "one").await;
    let d64 = creates(&t, 64, total, "many").await;
    let dr = reads(&t, 64, total * 4, "many-000001").await;

    let w1 = per_second(single, d1);
    let w64 = per_second(total, d64);
    let r64 = per_second(total * 4, dr);
    let rss_after = rss_kib();
    println!("baseline  GetInitiative, 64 callers:    {r64:>10.0} calls/s");
    println!(
        "CreateInitiative, 1 caller:             {w1:>10.0} writes/s  = {:.3} x baseline",
        w1 / r64
    );
    println!(
        "CreateInitiative, 64 callers:           {w64:>10.0} writes/s  = {:.3} x baseline",
        w64 / r64
    );
    println!(
        "group commit gain (64 callers / 1):     {:>10.1} x",
        w64 / w1
    );
    println!(
        "resident memory after {} records: {} KiB = {:.2} x the {} KiB before loading",
        single + total,
        rss_after,
        rss_after as f64 / rss_before.max(1) as f64,
        rss_before
    );

    // Authentication's cost on a read: the same record on a server without
    // authentication, both measured in turns.
    let open_dir = tempfile::tempdir()?;
    let open = serve_with_auth(Domain::Quantum, open_dir.path(), Auth::Off).await?;
    let mut open_client = connect(open.addr).await?;
    open_client
        .create_initiative(create_request(
            Domain::Quantum,
            "read-me",
            sample(Domain::Quantum, "read-me", 2026),
        ))
        .await?;
    let mut authed_client = t.client.clone();
    authed_client
        .create_initiative(create_request(
            Domain::Quantum,
            "read-me",
            sample(Domain::Quantum, "read-me", 2026),
        ))
        .await?;
    let name = t.name("read-me");
    let (mut with_auth, mut without) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        with_auth += reads_from(&authed_client, name.clone(), 64, total * 2).await;
        without += reads_from(&open_client, name.clone(), 64, total * 2).await;
    }
    let (ra, ro) = (
        per_second(total * 6, with_auth),
        per_second(total * 6, without),
    );
    println!("GetInitiative, 64 callers, no authentication:   {ro:>10.0} calls/s");
    println!(
        "GetInitiative, 64 callers, bearer token:        {ra:>10.0} calls/s  = {:.3} x (cost {:.1}%)",
        ra / ro,
        (1.0 - ra / ro) * 100.0
    );

    // One address: the same GetInitiative through the gateway (which routes
    // it to the domain) against the call made to the domain directly.
    let (gateway, _) = start_test_gateway([(Domain::Quantum, t.addr())]).await?;
    let via_gateway = connect(gateway.addr).await?;
    let (mut routed, mut straight) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        routed += reads_from(&via_gateway, name.clone(), 64, total * 2).await;
        straight += reads_from(&authed_client, name.clone(), 64, total * 2).await;
    }
    let (rg, rd) = (
        per_second(total * 6, routed),
        per_second(total * 6, straight),
    );
    println!("GetInitiative, 64 callers, to the domain:       {rd:>10.0} calls/s");
    println!(
        "GetInitiative, 64 callers, through the gateway: {rg:>10.0} calls/s  = {:.3} x (mean latency {:.2} x)",
        rg / rd,
        rd / rg
    );
    // The same with one caller at a time: the latency of one call, not the
    // throughput of a loaded machine.
    let (mut via, mut direct) = (via_gateway.clone(), authed_client.clone());
    let (mut routed_each, mut straight_each) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        for (client, into) in [
            (&mut via, &mut routed_each),
            (&mut direct, &mut straight_each),
        ] {
            for _ in 0..total / 5 {
                let start = Instant::now();
                let got = client
                    .get_initiative(GetInitiativeRequest { name: name.clone() })
                    .await?
                    .into_inner();
                into.push(start.elapsed());
                anyhow::ensure!(got.name == name, "got {}", got.name);
            }
        }
    }
    let quantile = |v: &mut Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
    };
    let (g50, g99) = (
        quantile(&mut routed_each, 0.5),
        quantile(&mut routed_each, 0.99),
    );
    let (d50, d99) = (
        quantile(&mut straight_each, 0.5),
        quantile(&mut straight_each, 0.99),
    );
    println!(
        "GetInitiative, 1 caller, to the domain:         p50 {d50:>7.0} us  p99 {d99:>7.0} us"
    );
    println!(
        "GetInitiative, 1 caller, through the gateway:   p50 {g50:>7.0} us  p99 {g99:>7.0} us  = {:.2} x p50, {:.2} x p99",
        g50 / d50,
        g99 / d99
    );
    gateway.stop().await?;
    open.stop().await?;
    t.stop().await?;
    Ok(())
}
