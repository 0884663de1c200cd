//! Speed at scale (issue #13), measured from outside: the real binaries
//! (seven domains and the gateway) on ephemeral ports over temporary stores,
//! loaded through the public API, driven by h2load (Debian's
//! `nghttp2-client`; 2 connections x 32 streams unless said), each figure
//! against the same server's grpc.health.v1 Check in the same run. Every
//! answer is checked: one call of each kind is read back and checked before
//! it is loaded, and the server's own metrics count the calls of the run
//! that did not end OK (h2load counts HTTP 200, which a gRPC error is too).
//! Every call carries a bearer token (an admin's), as in production.
//!
//! The one address (issue #16): the same GetInitiative one call at a time
//! to the domain and through the gateway, three runs of each in turn; the
//! run with the median p50 of each is reported, and their ratio.
//!
//! The bytes of a page: GetInitiative of one record as large as the page of
//! ListInitiatives, against the same health Check; the list's rate over it
//! is how near a page is to the cost of sending its bytes.
//!
//! One document: the summary of a document that one record in a hundred
//! cites (read from the document index), one call at a time, its count
//! checked.
//!
//! Run: `cargo build --release --workspace && cargo bench -p cetrack-tests
//! --bench speed` (CETRACK_BENCH_SIZES: initiatives per domain, default
//! `1000,10000,100000`; CETRACK_BENCH_SECONDS: seconds per throughput run,
//! default 4).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use futures::StreamExt;
use prost::Message;

/// The domain every per-domain figure is measured on.
const D: Domain = Domain::Energy;
/// Calls in flight while loading.
const LOAD_IN_FLIGHT: usize = 64;
/// Topics the records spread over (a search by organization and topic
/// finds one record in this many).
const TOPICS: usize = 100;
/// Timeline pages asked for, one at a time.
const TIMELINE_CALLS: u64 = 50;
/// A document one record in [`CITING`] cites besides the fact sheet.
const SHEET: &str = "Bench sheet";
/// One record in this many cites [`SHEET`] and is planned to end in the
/// second quarter of 2028 (every other record and milestone ends in
/// 2025-2027): the due window of those months finds it.
const CITING: usize = 100;
/// Calls of the summary of [`SHEET`], one at a time.
const DOCUMENT_CALLS: u64 = 100;

/// What one h2load run saw.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Requests answered per second.
    rate: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    /// Requests answered.
    done: u64,
}

/// A request message framed as gRPC sends it, in a file h2load reads.
fn body(dir: &Path, name: &str, message: &impl Message) -> anyhow::Result<PathBuf> {
    let bytes = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    framed.extend_from_slice(&bytes);
    let path = dir.join(format!("{name}.bin"));
    std::fs::write(&path, framed)?;
    Ok(path)
}

/// How long h2load runs or how many requests it sends.
enum Load {
    Seconds(u64),
    Requests(u64),
}

/// Runs h2load against `method` (`/package.Service/Method`) of `addr` with
/// `body`, `conns` connections x `streams` streams.
fn h2load(
    addr: SocketAddr,
    method: &str,
    body: &Path,
    conns: usize,
    streams: usize,
    load: Load,
) -> anyhow::Result<Run> {
    let log = body.with_extension("log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = std::process::Command::new("h2load");
    cmd.args(["-c", &conns.to_string(), "-m", &streams.to_string()]);
    match load {
        Load::Seconds(s) => cmd.args(["-D", &s.to_string(), "--warm-up-time", "1"]),
        Load::Requests(n) => cmd.args(["-n", &n.to_string()]),
    };
    let out = cmd
        .args(["-d"])
        .arg(body)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("-H")
        .arg(format!("authorization: Bearer {}", admin_token()))
        .arg("--log-file")
        .arg(&log)
        .arg(format!("http://{addr}{method}"))
        .output()
        .context("h2load did not run: install Debian's nghttp2-client")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "h2load failed: {text}");
    let number_after = |line: &str, key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?
            .parse()
            .ok()
    };
    let rate = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| number_after(l, "s,"))
        .context("no rate in h2load's output")?;
    let requests = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("no request count in h2load's output")?;
    let succeeded = number_after(requests, "done,").unwrap_or(0.0) as u64;
    let failed = number_after(requests, "succeeded,").unwrap_or(0.0) as u64;
    ensure!(failed == 0, "{failed} requests failed: {text}");
    // The log: start (us since the epoch), HTTP status, microseconds.
    // A request still in flight when a timed run ends is logged with status
    // 0 (no answer): at most one per stream.
    let mut times: Vec<u64> = Vec::new();
    let mut cut = 0;
    for line in std::fs::read_to_string(&log)?.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        ensure!(cols.len() >= 3, "a log line: {line}");
        match cols[1] {
            "200" => times.push(cols[2].parse()?),
            "0" => cut += 1,
            other => bail!("{method}: HTTP status {other}"),
        }
    }
    ensure!(
        cut <= conns * streams,
        "{method}: {cut} requests without an answer"
    );
    ensure!(!times.is_empty(), "h2load logged no request: {text}");
    times.sort_unstable();
    let at = |q: f64| Duration::from_micros(times[((times.len() - 1) as f64 * q).round() as usize]);
    let mean = Duration::from_micros(times.iter().sum::<u64>() / times.len() as u64);
    Ok(Run {
        rate,
        p50: at(0.5),
        p99: at(0.99),
        mean,
        done: succeeded,
    })
}

/// Calls of `method` at the server `service` that ended other than OK, as
/// its metrics count them.
/// The calls of `method` that did not end OK, by status code.
fn not_ok_codes(
    metrics: &str,
    service: &str,
    method: &str,
) -> std::collections::BTreeMap<String, f64> {
    let mut codes = std::collections::BTreeMap::new();
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("cetrack_grpc_requests_total{"))
        .filter(|l| {
            l.contains(&format!("service=\"{service}\""))
                && l.contains(&format!("method=\"{method}\""))
                && !l.contains("code=\"OK\"")
        })
    {
        let code = l
            .split("code=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        if let Some(n) = l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()) {
            *codes.entry(code.to_string()).or_default() += n;
        }
    }
    codes
}

/// How many calls of `method` did not end OK.
fn not_ok(metrics: &str, service: &str, method: &str) -> f64 {
    not_ok_codes(metrics, service, method).values().sum()
}

/// A measured run of `method` (`Service/Method`) at `addr`, checked: a
/// one-second probe sizes it (h2load resets the calls in flight when a timed
/// run ends, which the server counts as failed), then `seconds` worth of
/// requests run to their end, and the server's metrics (at `metrics`,
/// labelled `service`) must count every one of them OK.
#[allow(clippy::too_many_arguments)]
async fn checked(
    addr: SocketAddr,
    method: &str,
    body: &Path,
    conns: usize,
    streams: usize,
    seconds: u64,
    metrics: SocketAddr,
    service: &str,
) -> anyhow::Result<Run> {
    let path = format!("/{method}");
    let probe = h2load(addr, &path, body, conns, streams, Load::Seconds(1))?;
    let requests = ((probe.rate * seconds as f64) as u64).max(500);
    let name = method.rsplit('/').next().unwrap_or(method);
    // The calls the probe's end reset finish (and are counted) first.
    let settled = scrape_until(metrics, |t| {
        value(
            t,
            "cetrack_grpc_in_flight",
            &[("service", service), ("method", name)],
        )
        .unwrap_or(0.0)
            == 0.0
    })
    .await?;
    let before = not_ok_codes(&settled, service, name);
    let run = h2load(addr, &path, body, conns, streams, Load::Requests(requests))?;
    let mut failed = not_ok_codes(&scrape(metrics).await?, service, name);
    for (code, n) in &before {
        if let Some(after) = failed.get_mut(code) {
            *after -= n;
        }
    }
    failed.retain(|_, n| *n != 0.0);
    ensure!(
        failed.is_empty(),
        "{method}: of {requests} calls, these did not end OK: {failed:?}"
    );
    ensure!(
        run.done == requests,
        "{method}: {} of {requests} answered",
        run.done
    );
    Ok(run)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The record `n` of a domain: in the organization us-nsf (every record),
/// on one of [`TOPICS`] topics; one in [`CITING`] also cites [`SHEET`] and
/// ends in the second quarter of 2028.
fn record(d: Domain, n: usize) -> Initiative {
    let mut i = sample(d, &format!("Record {n}"), 2025 + (n % 3) as i32);
    i.topics = vec![format!("topic-{}", n % TOPICS)];
    if n.is_multiple_of(CITING) {
        let mut cited = i.sources[0].clone();
        cited.document = SHEET.into();
        i.sources.push(cited);
        i.planned_end = Some(ApproximateDate {
            precision: DatePrecision::Quarter as i32,
            year: 2028,
            quarter: 2,
            ..Default::default()
        });
    }
    i
}

/// Creates `n` records in each domain, [`LOAD_IN_FLIGHT`] at a time.
async fn load(domains: &[(Domain, SocketAddr)], n: usize) -> anyhow::Result<()> {
    let mut clients = Vec::new();
    for (d, addr) in domains {
        clients.push((*d, connect(*addr).await?));
    }
    let work: Vec<(Domain, usize)> = (0..n)
        .flat_map(|k| clients.iter().map(move |(d, _)| (*d, k)))
        .collect();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(work)
        .map(|(d, k)| {
            let mut c = clients
                .iter()
                .find(|(x, _)| *x == d)
                .map(|(_, c)| c.clone())
                .expect("a client per domain");
            async move {
                c.create_initiative(create_request(d, &format!("r{k:06}"), record(d, k)))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(LOAD_IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// One size: every figure at `n` initiatives per domain.
async fn measure(n: usize, seconds: u64) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let mut domains = Vec::new();
    let mut addrs = Vec::new();
    for d in Domain::ALL {
        let data = dir.path().join(d.slug());
        let (p, metrics) = spawn_domain_with_metrics(d, &data).await?;
        addrs.push((d, p.addr));
        domains.push((d, p, metrics, data));
    }
    let started = Instant::now();
    load(&addrs, n).await?;
    let loaded = started.elapsed();

    // Start-up: the measured domain stopped and started again over its
    // store, until it serves.
    let k = domains
        .iter()
        .position(|x| x.0 == D)
        .context("the domain")?;
    let (_, process, _, data) = domains.remove(k);
    process.terminate().await?;
    let started = Instant::now();
    let (process, metrics) = spawn_domain_with_metrics(D, &data).await?;
    let startup = started.elapsed();
    let addr = process.addr;
    let mut c = connect(addr).await?;
    ensure!(
        c.get_domain_summary(GetDomainSummaryRequest {
            parent: D.parent(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .initiative_count
            == n as i64,
        "every record after the restart"
    );
    // The gateway, over every domain (the measured one where it now is).
    // Given its own identity: it follows the domains' change streams and
    // keeps today's summaries (the overview of today from memory).
    let (gateway, gateway_metrics) = spawn_gateway_with_metrics(
        addrs
            .iter()
            .map(|(d, a)| (*d, if *d == D { addr } else { *a })),
    )
    .await?;
    let mut g = gateway_as(gateway.addr, Some(&admin_token())).await?;

    let files = tempfile::tempdir()?;
    let health = body(
        files.path(),
        "health",
        &tonic_health::pb::HealthCheckRequest::default(),
    )?;
    let name = format!("{}/initiatives/r{:06}", D.parent(), n / 2);
    let get = GetInitiativeRequest { name: name.clone() };
    ensure!(c.get_initiative(get.clone()).await?.into_inner().name == name);
    let list = ListInitiativesRequest {
        parent: D.parent(),
        page_size: 50,
        ..Default::default()
    };
    ensure!(
        c.list_initiatives(list.clone())
            .await?
            .into_inner()
            .initiatives
            .len()
            == 50.min(n)
    );
    let summary = GetDomainSummaryRequest {
        parent: D.parent(),
        ..Default::default()
    };
    let create = CreateInitiativeRequest {
        parent: D.parent(),
        initiative: Some(record(D, 7)),
        ..Default::default()
    };
    let overview = GetOverviewRequest::default();
    // Another day than today: asked of the seven domains on every call.
    let overview_yesterday = GetOverviewRequest {
        as_of: Some(cetrack_contract::dates::to_calendar(
            cetrack_contract::dates::today()
                .previous_day()
                .context("a day before today")?,
        )),
        ..Default::default()
    };
    ensure!(
        g.get_overview(overview.clone())
            .await?
            .into_inner()
            .domains
            .len()
            == 7
    );
    let search = SearchInitiativesRequest {
        filter: Some(InitiativeFilter {
            organization_id: "us-nsf".into(),
            topic: "topic-7".into(),
            ..Default::default()
        }),
        page_size: 50,
        ..Default::default()
    };
    let found = g.search_initiatives(search.clone()).await?.into_inner();
    let with_topic = (0..n).filter(|k| k % TOPICS == 7).count();
    ensure!(
        found.initiatives.len() == (7 * with_topic).min(50),
        "search found {}",
        found.initiatives.len()
    );
    let portfolio = GetOrganizationPortfolioRequest {
        organization_id: "us-nsf".into(),
        page_size: 50,
        ..Default::default()
    };
    ensure!(
        g.get_organization_portfolio(portfolio.clone())
            .await?
            .into_inner()
            .entries
            .len()
            == 50.min(7 * n)
    );
    // The milestones due in 2026 (the records of every third year), a page
    // of 100: on any day, open and in the window.
    let timeline = ListMilestoneTimelineRequest {
        due_after: Some(calendar(2026, 1, 1)),
        due_before: Some(calendar(2026, 12, 31)),
        page_size: 100,
        ..Default::default()
    };
    let due_in_2026 = (0..n).filter(|k| k % 3 == 1).count();
    let page = g
        .list_milestone_timeline(timeline.clone())
        .await?
        .into_inner();
    ensure!(
        page.unavailable.is_empty() && page.entries.len() == 100.min(7 * due_in_2026),
        "the timeline answered {} entries, {} domains unavailable",
        page.entries.len(),
        page.unavailable.len()
    );

    // The summary of one document: the records that cite it, counted.
    let of_sheet = GetDomainSummaryRequest {
        parent: D.parent(),
        document: SHEET.into(),
        ..Default::default()
    };
    let citing = (0..n).filter(|k| k.is_multiple_of(CITING)).count();
    ensure!(
        c.get_domain_summary(of_sheet.clone())
            .await?
            .into_inner()
            .initiative_count
            == citing as i64,
        "the summary of {SHEET}"
    );

    // The records due in a window of three months: the first page of 50.
    let in_window = ListInitiativesRequest {
        parent: D.parent(),
        page_size: 50,
        filter: Some(InitiativeFilter {
            due_after: Some(calendar(2028, 4, 1)),
            due_before: Some(calendar(2028, 6, 30)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let page = c.list_initiatives(in_window.clone()).await?.into_inner();
    ensure!(
        page.initiatives.len() == citing.min(50)
            && page
                .initiatives
                .iter()
                .all(|i| i.planned_end.as_ref().is_some_and(|e| e.year == 2028)),
        "the records due in the window: {}",
        page.initiatives.len()
    );

    // The bytes of a page alone: one record as large as the page of 50
    // above (plain-text progress reports added to a record of its own, dated
    // in the past, so it is sent as stored), read with GetInitiative. The
    // list's rate over this one's is the share of a page's cost that is
    // finding and checking its 50 records rather than sending their bytes.
    let page_bytes = c
        .list_initiatives(list.clone())
        .await?
        .into_inner()
        .encoded_len();
    let mut large = c
        .create_initiative(create_request(
            D,
            // After every loaded id (`r000000`...): the list's first page
            // stays those records.
            "z-as-large-as-a-page",
            sample(D, "A record as large as a page", 2025),
        ))
        .await?
        .into_inner();
    while large.encoded_len() < page_bytes {
        let text = "x".repeat((page_bytes - large.encoded_len()).clamp(100, 10_000));
        large = c
            .add_progress_update(AddProgressUpdateRequest {
                name: large.name.clone(),
                progress_update: Some(ProgressUpdate {
                    as_of: Some(ApproximateDate {
                        precision: DatePrecision::Year as i32,
                        year: 2024,
                        ..Default::default()
                    }),
                    reporting_organization_id: "us-nsf".into(),
                    text,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
    }
    let get_large = GetInitiativeRequest {
        name: large.name.clone(),
    };
    let large_bytes = large.encoded_len();
    ensure!(
        c.get_initiative(get_large.clone()).await?.into_inner() == large,
        "the record as large as a page reads back"
    );
    ensure!(
        c.list_initiatives(list.clone())
            .await?
            .into_inner()
            .encoded_len()
            == page_bytes,
        "the list's page is the same after the large record"
    );

    let health_method = "grpc.health.v1.Health/Check";
    let svc = "cet.v1.DomainService/";
    let gw = "cet.v1.GatewayService/";
    let (dm, gm, ds) = (metrics, gateway_metrics, D.slug());
    let f = files.path();
    let h = checked(addr, health_method, &health, 2, 32, seconds, dm, ds).await?;
    let get_run = checked(
        addr,
        &format!("{svc}GetInitiative"),
        &body(f, "get", &get)?,
        2,
        32,
        seconds,
        dm,
        ds,
    )
    .await?;
    let list_run = checked(
        addr,
        &format!("{svc}ListInitiatives"),
        &body(f, "list", &list)?,
        2,
        32,
        seconds,
        dm,
        ds,
    )
    .await?;
    let large_run = checked(
        addr,
        &format!("{svc}GetInitiative"),
        &body(f, "get-large", &get_large)?,
        2,
        32,
        seconds,
        dm,
        ds,
    )
    .await?;
    let summary_run = checked(
        addr,
        &format!("{svc}GetDomainSummary"),
        &body(f, "summary", &summary)?,
        2,
        32,
        seconds,
        dm,
        ds,
    )
    .await?;
    // Resident memory after the throughput runs of the reads above (the
    // store holding the `n` records and the large one); the create runs
    // below add records, and it is taken again at the end.
    let domain_rss_read = rss_mib(process.child.id().unwrap_or_default())?;
    let create_body = body(f, "create", &create)?;
    let create_64 = checked(
        addr,
        &format!("{svc}CreateInitiative"),
        &create_body,
        2,
        32,
        seconds,
        dm,
        ds,
    )
    .await?;
    let create_1 = checked(
        addr,
        &format!("{svc}CreateInitiative"),
        &create_body,
        1,
        1,
        seconds,
        dm,
        ds,
    )
    .await?;
    // One address: the same GetInitiative one call at a time, to the
    // domain and through the gateway (which routes it there), alternately
    // so that both see the same machine.
    let get_body = body(f, "get-one", &get)?;
    let (mut one_direct, mut one_routed) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        one_direct.push(
            checked(
                addr,
                &format!("{svc}GetInitiative"),
                &get_body,
                1,
                1,
                1,
                dm,
                ds,
            )
            .await?,
        );
        one_routed.push(
            checked(
                gateway.addr,
                &format!("{svc}GetInitiative"),
                &get_body,
                1,
                1,
                1,
                gm,
                "gateway",
            )
            .await?,
        );
    }
    let median_run = |runs: &mut Vec<Run>| {
        runs.sort_by_key(|r| r.p50);
        runs[runs.len() / 2]
    };
    let (one_direct, one_routed) = (median_run(&mut one_direct), median_run(&mut one_routed));
    let gh = checked(
        gateway.addr,
        health_method,
        &health,
        2,
        32,
        seconds,
        gm,
        "gateway",
    )
    .await?;
    let overview_run = checked(
        gateway.addr,
        &format!("{gw}GetOverview"),
        &body(f, "overview", &overview)?,
        2,
        32,
        seconds,
        gm,
        "gateway",
    )
    .await?;
    let overview_past_run = checked(
        gateway.addr,
        &format!("{gw}GetOverview"),
        &body(f, "overview-yesterday", &overview_yesterday)?,
        2,
        32,
        seconds,
        gm,
        "gateway",
    )
    .await?;
    let before = not_ok(&scrape(gm).await?, "gateway", "SearchInitiatives")
        + not_ok(&scrape(gm).await?, "gateway", "GetOrganizationPortfolio");
    let search_run = h2load(
        gateway.addr,
        &format!("/{gw}SearchInitiatives"),
        &body(f, "search", &search)?,
        1,
        1,
        Load::Requests(300),
    )?;
    let portfolio_run = h2load(
        gateway.addr,
        &format!("/{gw}GetOrganizationPortfolio"),
        &body(f, "portfolio", &portfolio)?,
        1,
        1,
        Load::Requests(300),
    )?;
    let timeline_run = h2load(
        gateway.addr,
        &format!("/{gw}ListMilestoneTimeline"),
        &body(f, "timeline", &timeline)?,
        1,
        1,
        Load::Requests(TIMELINE_CALLS),
    )?;
    let after = not_ok(&scrape(gm).await?, "gateway", "SearchInitiatives")
        + not_ok(&scrape(gm).await?, "gateway", "GetOrganizationPortfolio");
    ensure!(
        after == before,
        "{} searches or portfolio pages did not end OK",
        after - before
    );
    // Every domain answered each timeline call (one that did not is left
    // out of an answer that is still OK): its calls to the domains were OK.
    let domain_calls = not_ok(&scrape(dm).await?, ds, "ListDueMilestones");
    ensure!(
        domain_calls == 0.0
            && not_ok(&scrape(gm).await?, "gateway", "ListMilestoneTimeline") == 0.0,
        "timeline calls did not end OK"
    );
    let before = not_ok(&scrape(dm).await?, ds, "GetDomainSummary");
    let sheet_run = h2load(
        addr,
        &format!("/{svc}GetDomainSummary"),
        &body(f, "summary-of-sheet", &of_sheet)?,
        1,
        1,
        Load::Requests(DOCUMENT_CALLS),
    )?;
    ensure!(
        not_ok(&scrape(dm).await?, ds, "GetDomainSummary") == before,
        "summaries of {SHEET} did not end OK"
    );
    let before = not_ok(&scrape(dm).await?, ds, "ListInitiatives");
    let window_run = h2load(
        addr,
        &format!("/{svc}ListInitiatives"),
        &body(f, "list-due-window", &in_window)?,
        1,
        1,
        Load::Requests(DOCUMENT_CALLS),
    )?;
    ensure!(
        not_ok(&scrape(dm).await?, ds, "ListInitiatives") == before,
        "lists of the due window did not end OK"
    );
    let domain_rss = rss_mib(process.child.id().unwrap_or_default())?;
    let held = c
        .get_domain_summary(summary.clone())
        .await?
        .into_inner()
        .initiative_count;
    let gateway_rss = rss_mib(gateway.child.id().unwrap_or_default())?;

    let ratio = |r: &Run, base: &Run| r.rate / base.rate.max(1e-9);
    let lat = |r: &Run| format!("p50 {:.2} ms, p99 {:.2} ms", ms(r.p50), ms(r.p99));
    let rows = vec![
        format!("{n}/domain: loaded {} records in {:.1} s; start-up of the {D} domain {:.0} ms; RSS {D} {domain_rss_read} MiB after the reads, {domain_rss} MiB at the end ({held} records after the create runs), gateway {gateway_rss} MiB", 7 * n, loaded.as_secs_f64(), ms(startup)),
        format!("  health Check (domain)            {:>8.0}/s  {}", h.rate, lat(&h)),
        format!("  GetInitiative / health           {:>8.3}x  {:>8.0}/s  {}", ratio(&get_run, &h), get_run.rate, lat(&get_run)),
        format!("  ListInitiatives (50) / health    {:>8.3}x  {:>8.0}/s  {}", ratio(&list_run, &h), list_run.rate, lat(&list_run)),
        format!("  GetInitiative of {large_bytes} bytes / health {:>8.3}x  {:>8.0}/s  {} (the list's page is {page_bytes} bytes: ListInitiatives / this {:.3}x)", ratio(&large_run, &h), large_run.rate, lat(&large_run), ratio(&list_run, &large_run)),
        format!("  GetDomainSummary / health        {:>8.3}x  {:>8.0}/s  {}", ratio(&summary_run, &h), summary_run.rate, lat(&summary_run)),
        format!("  CreateInitiative 64 / health     {:>8.3}x  {:>8.0}/s  {}", ratio(&create_64, &h), create_64.rate, lat(&create_64)),
        format!("  CreateInitiative 1 in flight               {:>8.0}/s  {}", create_1.rate, lat(&create_1)),
        format!("  GetInitiative one at a time, to the domain: mean {:.0} us, p50 {:.0} us, p99 {:.0} us", us(one_direct.mean), us(one_direct.p50), us(one_direct.p99)),
        format!("  GetInitiative one at a time, through the gateway: mean {:.0} us, p50 {:.0} us, p99 {:.0} us = {:.2}x p50, {:.2}x p99 of the direct call", us(one_routed.mean), us(one_routed.p50), us(one_routed.p99), us(one_routed.p50) / us(one_direct.p50).max(1e-9), us(one_routed.p99) / us(one_direct.p99).max(1e-9)),
        format!("  health Check (gateway)           {:>8.0}/s  {}", gh.rate, lat(&gh)),
        format!("  GetOverview today / gw health    {:>8.3}x  {:>8.0}/s  mean {:.2} ms, {}", ratio(&overview_run, &gh), overview_run.rate, ms(overview_run.mean), lat(&overview_run)),
        format!("  GetOverview yesterday / gw health {:>8.3}x  {:>8.0}/s  mean {:.2} ms, {}", ratio(&overview_past_run, &gh), overview_past_run.rate, ms(overview_past_run.mean), lat(&overview_past_run)),
        format!("  SearchInitiatives org+topic, one at a time: mean {:.2} ms, {} ({} calls)", ms(search_run.mean), lat(&search_run), search_run.done),
        format!("  GetOrganizationPortfolio page of 50, one at a time: mean {:.2} ms, {} ({} calls)", ms(portfolio_run.mean), lat(&portfolio_run), portfolio_run.done),
        format!("  ListMilestoneTimeline page of 100, one at a time: mean {:.2} ms, {} ({} calls)", ms(timeline_run.mean), lat(&timeline_run), timeline_run.done),
        format!("  GetDomainSummary of one document ({citing} records), one at a time: mean {:.2} ms, {} ({} calls)", ms(sheet_run.mean), lat(&sheet_run), sheet_run.done),
        format!("  ListInitiatives of a due window ({citing} records), page of 50, one at a time: mean {:.2} ms, {} ({} calls)", ms(window_run.mean), lat(&window_run), window_run.done),
    ];
    gateway.terminate().await?;
    process.terminate().await?;
    for (_, p, _, _) in domains {
        p.terminate().await?;
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("CETRACK_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("CETRACK_BENCH_SIZES: numbers separated by commas")?;
    let seconds: u64 = std::env::var("CETRACK_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    for n in sizes {
        for row in measure(n, seconds).await? {
            println!("{row}");
        }
    }
    Ok(())
}
