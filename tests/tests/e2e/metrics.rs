//! Prometheus metrics: the domain and gateway binaries started with
//! `--metrics-listen` serve `/metrics` over HTTP, with request counters by
//! method and status code, latency histograms, calls in flight and the
//! store's gauges; in-process servers share one process-wide recorder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cetrack_contract::proto::gateway_service_client::GatewayServiceClient;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_server::metrics::{install_recorder, start_metrics};
use cetrack_tests::*;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// How long a gauge may take to catch up with a write.
const GAUGE_TIMEOUT: Duration = Duration::from_secs(20);

/// `GET /metrics` over a plain TCP connection (HTTP/1.0: no chunking, the
/// server closes the connection after the response); the body.
async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .context("no complete response within 10 s")??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("a response without a header block")?;
    let status = head.lines().next().unwrap_or_default();
    ensure!(status.contains(" 200 "), "GET /metrics answered {status}");
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "not Prometheus text: {head}"
    );
    Ok(body.to_string())
}

/// The value of the sample `name` whose labels are exactly `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, found) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}')?)?),
            };
            (n == name && found == wanted).then(|| v.parse().ok())?
        })
        .next()
}

/// `a="x",b="y"` (values without escapes, as all of ours are).
fn parse_labels(s: &str) -> Option<BTreeMap<&str, &str>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k, v.strip_prefix('"')?.strip_suffix('"')?))
        })
        .collect()
}

/// `value`, or a failure showing the whole scrape.
fn require(text: &str, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
    value(text, name, labels).with_context(|| format!("no sample {name}{labels:?} in:\n{text}"))
}

/// Scrapes until `ready` holds (gauges are refreshed by a task after each
/// write), for at most [`GAUGE_TIMEOUT`]; the last scrape.
async fn scrape_until(addr: SocketAddr, ready: impl Fn(&str) -> bool) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + GAUGE_TIMEOUT;
    loop {
        let text = scrape(addr).await?;
        if ready(&text) {
            return Ok(text);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the metrics did not catch up within {GAUGE_TIMEOUT:?}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The code of a failed call, or OK.
fn code_of<T>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
}

/// Sends SIGTERM and waits for a clean exit.
async fn terminate(child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let id = child.id().context("the process has been reaped")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(id)?),
        Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .context("no exit within 20 s of SIGTERM")??;
    ensure!(status.success(), "exited with {status}");
    Ok(())
}

#[tokio::test]
async fn domain_binary_serves_request_and_store_metrics() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let service = domain.slug();
    let dir = tempfile::tempdir()?;
    let mut process = spawn_server(
        &binary(&domain.binary())?,
        [
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--metrics-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
        ],
    )
    .await?;
    let metrics = process.logged_addr("serving metrics")?;
    let mut client = connect(process.addr).await?;

    // Before any write: the store gauges are there, at zero.
    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]).is_some()
    })
    .await?;
    assert_eq!(
        require(&text, "cetrack_initiatives", &[("domain", service)])?,
        0.0
    );

    for id in ["alpha", "beta", "gamma"] {
        client
            .create_initiative(create_request(domain, id, sample(domain, id, 2026)))
            .await?;
    }
    let name = |id: &str| format!("{}/initiatives/{id}", domain.parent());
    let found = client
        .get_initiative(GetInitiativeRequest { name: name("beta") })
        .await;
    assert_eq!(code_of(found), Code::Ok);
    let missing = client
        .get_initiative(GetInitiativeRequest {
            name: name("missing"),
        })
        .await;
    assert_eq!(code_of(missing), Code::NotFound);
    let duplicate = client
        .create_initiative(create_request(
            domain,
            "alpha",
            sample(domain, "alpha", 2026),
        ))
        .await;
    assert_eq!(code_of(duplicate), Code::AlreadyExists);
    client
        .list_initiatives(ListInitiativesRequest {
            parent: domain.parent(),
            ..Default::default()
        })
        .await?;

    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]) == Some(3.0)
            && value(t, "cetrack_last_revision", &[("domain", service)]) == Some(3.0)
    })
    .await?;
    let requests = |method: &str, code: &str| {
        require(
            &text,
            "cetrack_grpc_requests_total",
            &[("service", service), ("method", method), ("code", code)],
        )
    };
    assert_eq!(requests("CreateInitiative", "OK")?, 3.0);
    assert_eq!(requests("CreateInitiative", "ALREADY_EXISTS")?, 1.0);
    assert_eq!(requests("GetInitiative", "OK")?, 1.0);
    assert_eq!(requests("GetInitiative", "NOT_FOUND")?, 1.0);
    assert_eq!(requests("ListInitiatives", "OK")?, 1.0);
    assert_eq!(
        value(
            &text,
            "cetrack_grpc_requests_total",
            &[
                ("service", service),
                ("method", "ListInitiatives"),
                ("code", "NOT_FOUND")
            ],
        ),
        None
    );

    // The histogram: every finished call, in buckets up to +Inf.
    let create = [("service", service), ("method", "CreateInitiative")];
    let get = [("service", service), ("method", "GetInitiative")];
    assert_eq!(
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_count",
            &create
        )?,
        4.0
    );
    assert_eq!(
        require(&text, "cetrack_grpc_request_duration_seconds_count", &get)?,
        2.0
    );
    assert!(require(&text, "cetrack_grpc_request_duration_seconds_sum", &create)? > 0.0);
    let bucket = |le: &str| {
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_bucket",
            &[
                ("service", service),
                ("method", "GetInitiative"),
                ("le", le),
            ],
        )
    };
    assert_eq!(bucket("+Inf")?, 2.0);
    assert!(bucket("0.0005")? <= bucket("0.1")?);
    assert!(text.contains("# TYPE cetrack_grpc_request_duration_seconds histogram"));

    // Nothing is in flight once the answers are back.
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &create)?, 0.0);
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &get)?, 0.0);

    assert!(require(&text, "cetrack_store_size_bytes", &[("domain", service)])? > 0.0);

    // A delete is a write too: the gauges follow it.
    client
        .delete_initiative(DeleteInitiativeRequest {
            name: name("gamma"),
            ..Default::default()
        })
        .await?;
    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]) == Some(2.0)
    })
    .await?;
    assert_eq!(
        require(&text, "cetrack_last_revision", &[("domain", service)])?,
        4.0
    );
    assert_eq!(
        requests_of(&text, service, "DeleteInitiative", "OK"),
        Some(1.0)
    );

    // The metrics endpoint does not keep the process from shutting down.
    terminate(&mut process.child).await?;
    Ok(())
}

fn requests_of(text: &str, service: &str, method: &str, code: &str) -> Option<f64> {
    value(
        text,
        "cetrack_grpc_requests_total",
        &[("service", service), ("method", method), ("code", code)],
    )
}

#[tokio::test]
async fn gateway_binary_serves_request_metrics() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let dir = tempfile::tempdir()?;
    let quantum = spawn_domain(domain, dir.path()).await?;
    connect(quantum.addr)
        .await?
        .create_initiative(create_request(
            domain,
            "alpha",
            sample(domain, "Alpha", 2026),
        ))
        .await?;
    let domain_url = format!("quantum=http://{}", quantum.addr);
    let mut gateway = spawn_server(
        &binary("cetrack-gateway")?,
        [
            "--listen",
            "127.0.0.1:0",
            "--domain",
            &domain_url,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .await?;
    let metrics = gateway.logged_addr("serving metrics")?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gateway.addr))?
        .connect()
        .await?;
    let mut client = GatewayServiceClient::new(channel);
    let get = |name: &str| GetInitiativeRequest {
        name: name.to_string(),
    };
    let parent = domain.parent();
    for _ in 0..2 {
        let found = client
            .get_initiative(get(&format!("{parent}/initiatives/alpha")))
            .await;
        assert_eq!(code_of(found), Code::Ok);
    }
    let missing = client
        .get_initiative(get(&format!("{parent}/initiatives/missing")))
        .await;
    assert_eq!(code_of(missing), Code::NotFound);
    let invalid = client.get_initiative(get("not a name")).await;
    assert_eq!(code_of(invalid), Code::InvalidArgument);

    let text = scrape(metrics).await?;
    let requests = |code: &str| {
        require(
            &text,
            "cetrack_grpc_requests_total",
            &[
                ("service", "gateway"),
                ("method", "GetInitiative"),
                ("code", code),
            ],
        )
    };
    assert_eq!(requests("OK")?, 2.0);
    assert_eq!(requests("NOT_FOUND")?, 1.0);
    assert_eq!(requests("INVALID_ARGUMENT")?, 1.0);
    let labels = [("service", "gateway"), ("method", "GetInitiative")];
    assert_eq!(
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_count",
            &labels
        )?,
        4.0
    );
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &labels)?, 0.0);
    // The gateway keeps no store.
    assert!(!text.contains("cetrack_initiatives{"));

    terminate(&mut gateway.child).await?;
    Ok(())
}

#[tokio::test]
async fn in_process_servers_share_one_recorder() -> anyhow::Result<()> {
    // Two endpoints and repeated installs in one process: no panic, and both
    // endpoints show every server of the process, told apart by label.
    let shutdown = CancellationToken::new();
    let first = start_metrics(([127, 0, 0, 1], 0).into(), shutdown.clone()).await?;
    let second = start_metrics(([127, 0, 0, 1], 0).into(), shutdown.clone()).await?;
    install_recorder()?;
    let mut energy = TestDomain::start(Domain::Energy).await?;
    let mut ai = TestDomain::start(Domain::Ai).await?;
    for (t, ids) in [(&mut energy, &["a", "b"][..]), (&mut ai, &["c"][..])] {
        for id in ids {
            t.client
                .create_initiative(create_request(t.domain, id, sample(t.domain, id, 2026)))
                .await?;
        }
    }
    for endpoint in [first.addr, second.addr] {
        let text = scrape_until(endpoint, |t| {
            value(t, "cetrack_initiatives", &[("domain", "energy")]) == Some(2.0)
                && value(t, "cetrack_initiatives", &[("domain", "ai")]) == Some(1.0)
        })
        .await?;
        assert_eq!(
            requests_of(&text, "energy", "CreateInitiative", "OK"),
            Some(2.0)
        );
        assert_eq!(
            requests_of(&text, "ai", "CreateInitiative", "OK"),
            Some(1.0)
        );
    }

    // A restart on the same data picks the gauges up again.
    energy.restart().await?;
    energy
        .client
        .create_initiative(create_request(
            Domain::Energy,
            "d",
            sample(Domain::Energy, "d", 2026),
        ))
        .await?;
    scrape_until(first.addr, |t| {
        value(t, "cetrack_initiatives", &[("domain", "energy")]) == Some(3.0)
    })
    .await?;

    for t in [energy, ai] {
        if let Some(server) = t.server {
            server.stop().await?;
        }
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        first.task.await?;
        second.task.await
    })
    .await
    .context("the metrics endpoints did not stop within 10 s")??;
    Ok(())
}
