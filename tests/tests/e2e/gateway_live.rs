//! The overview of today from memory (issue #13): the gateway binary, with
//! its service token, follows every domain's change stream and answers the
//! overview of today without asking the domains while nothing changed. A
//! write made at a domain reaches it through the stream; one made through
//! the gateway is read back at once; restricted records count only for a
//! cleared caller; a caller whose roles do not cover a domain is shown
//! nothing kept of it; other days go to the domains.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::{dates, Domain};
use cetrack_tests::*;
use prost::Message;

/// The domain written to.
const E: Domain = Domain::Energy;
/// How long a change made at a domain may take to reach the overview.
const ARRIVAL: Duration = Duration::from_secs(10);

/// GetDomainSummary calls `metrics` (a domain's) has counted, whatever
/// their outcome.
async fn summary_calls(metrics: SocketAddr) -> anyhow::Result<f64> {
    Ok(scrape(metrics)
        .await?
        .lines()
        .filter(|l| {
            l.starts_with("cetrack_grpc_request_duration_seconds_count{")
                && l.contains("method=\"GetDomainSummary\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

/// GetDomainSummary calls every domain has counted.
async fn all_summary_calls(domains: &[(Domain, ServerProcess, SocketAddr)]) -> anyhow::Result<f64> {
    let mut n = 0.0;
    for (_, _, m) in domains {
        n += summary_calls(*m).await?;
    }
    Ok(n)
}

/// How many initiatives the overview counts in `domain` (`None`: no summary
/// of it).
fn count(o: &Overview, domain: Domain) -> Option<i64> {
    o.domains
        .iter()
        .find(|x| x.domain == domain.to_proto() as i32)
        .and_then(|x| x.summary.as_ref())
        .map(|s| s.initiative_count)
}

async fn overview(g: &mut GatewayClient) -> anyhow::Result<Overview> {
    Ok(g.get_overview(GetOverviewRequest::default())
        .await?
        .into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_of_today_answers_from_memory_and_reads_every_write() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut domains = Vec::new();
    for d in Domain::ALL {
        let (p, metrics) = spawn_domain_with_metrics(d, &dir.path().join(d.slug())).await?;
        domains.push((d, p, metrics));
    }
    let (gateway, gateway_metrics) =
        spawn_gateway_with_metrics(domains.iter().map(|(d, p, _)| (*d, p.addr))).await?;
    // The gateway follows every domain's change stream (its metrics say so).
    scrape_until(gateway_metrics, |t| {
        Domain::ALL
            .iter()
            .all(|d| value(t, "cetrack_gateway_following", &[("domain", d.slug())]) == Some(1.0))
    })
    .await?;
    let mut admin = gateway_as(gateway.addr, Some(&admin_token())).await?;
    let public = token("viewer", None, &[Role::Viewer], None, Clearance::Public);
    let mut viewer = gateway_as(gateway.addr, Some(&public)).await?;
    let energy = domains
        .iter()
        .find(|x| x.0 == E)
        .map(|x| x.1.addr)
        .context("energy")?;
    let mut at_energy = connect(energy).await?;
    let mut through_gateway = connect(gateway.addr).await?;

    // A write made at the domain itself reaches the overview through the
    // gateway's change stream.
    at_energy
        .create_initiative(create_request(E, "direct-1", sample(E, "Direct", 2025)))
        .await?;
    let started = Instant::now();
    loop {
        if count(&overview(&mut admin).await?, E) == Some(1) {
            break;
        }
        ensure!(
            started.elapsed() < ARRIVAL,
            "the overview did not count a write made at the domain within {ARRIVAL:?}"
        );
    }

    // While nothing changes, the overview of today asks no domain: after
    // one overview of each clearance, twenty more cost no domain a call.
    overview(&mut admin).await?;
    overview(&mut viewer).await?;
    let before = all_summary_calls(&domains).await?;
    // The same overview each time (kept encoded), each with its own time.
    let untimed = |o: &Overview| Overview {
        generate_time: None,
        ..o.clone()
    };
    let time = |o: &Overview| o.generate_time.map(|t| (t.seconds, t.nanos));
    let first = overview(&mut admin).await?;
    let mut last = first.clone();
    for _ in 0..10 {
        let again = overview(&mut admin).await?;
        assert_eq!(count(&again, E), Some(1));
        assert_eq!(untimed(&again), untimed(&first));
        assert!(time(&again) > time(&last), "a time of its own: {again:?}");
        last = again;
        assert_eq!(count(&overview(&mut viewer).await?, E), Some(1));
    }
    assert_eq!(
        all_summary_calls(&domains).await?,
        before,
        "the overview of today asked the domains while nothing changed"
    );

    // A write through the gateway is read back at once, by both clearances.
    through_gateway
        .create_initiative(create_request(E, "via-gateway", sample(E, "Via", 2025)))
        .await?;
    assert_eq!(count(&overview(&mut admin).await?, E), Some(2));
    assert_eq!(count(&overview(&mut viewer).await?, E), Some(2));

    // A restricted record counts for a cleared caller only, and nothing of
    // it reaches an uncleared one (its organization carries a marker).
    let mut secret = sample(E, "Restricted", 2025);
    secret.sensitivity = Sensitivity::Restricted as i32;
    secret.participants.push(participant(
        org(
            "zqxmark-org",
            "ZQXMARK Organization",
            "ZQX",
            "KR",
            OrganizationType::Industry,
        ),
        ParticipantRole::Partner,
    ));
    through_gateway
        .create_initiative(create_request(E, "restricted-1", secret))
        .await?;
    assert_eq!(count(&overview(&mut admin).await?, E), Some(3));
    let seen = overview(&mut viewer).await?;
    assert_eq!(
        count(&seen, E),
        Some(2),
        "restricted records counted: {seen:?}"
    );
    let marked = |o: &Overview| {
        let bytes = o.encode_to_vec().to_ascii_lowercase();
        bytes.windows(7).any(|w| w == b"zqxmark")
    };
    assert!(!marked(&seen), "a restricted organization leaks: {seen:?}");
    assert!(
        marked(&overview(&mut admin).await?),
        "the data is really there"
    );
    // ... and again from memory, with a restricted write made at the domain
    // meanwhile (the viewer's count stays, the admin's moves once the
    // stream brings it).
    let mut secret = sample(E, "Restricted 2", 2025);
    secret.sensitivity = Sensitivity::Restricted as i32;
    at_energy
        .create_initiative(create_request(E, "restricted-2", secret))
        .await?;
    let started = Instant::now();
    while count(&overview(&mut admin).await?, E) != Some(4) {
        ensure!(
            started.elapsed() < ARRIVAL,
            "the restricted write did not arrive"
        );
    }
    let seen = overview(&mut viewer).await?;
    assert_eq!(count(&seen, E), Some(2));
    assert!(!marked(&seen), "a restricted organization leaks: {seen:?}");

    // A caller whose roles cover only ai sees nothing kept of energy.
    let scoped = token(
        "ai-viewer",
        None,
        &[Role::Viewer],
        Some(&["ai"]),
        Clearance::Restricted,
    );
    let mut ai_only = gateway_as(gateway.addr, Some(&scoped)).await?;
    let o = overview(&mut ai_only).await?;
    for d in &o.domains {
        let ai = d.domain == Domain::Ai.to_proto() as i32;
        assert_eq!(d.available, ai, "{d:?}");
        assert_eq!(d.summary.is_some(), ai, "{d:?}");
    }

    // Another day is asked of every domain.
    let before = all_summary_calls(&domains).await?;
    let yesterday = dates::today()
        .previous_day()
        .context("a day before today")?;
    viewer
        .get_overview(GetOverviewRequest {
            as_of: Some(dates::to_calendar(yesterday)),
            ..Default::default()
        })
        .await?;
    // (Each domain once for the caller; some also for the last-known
    // summaries the gateway refreshes at most once a second.)
    let asked = all_summary_calls(&domains).await? - before;
    assert!(asked >= 7.0, "{asked} calls for an overview of yesterday");

    gateway.terminate().await?;
    for (_, p, _) in domains {
        p.terminate().await?;
    }
    Ok(())
}
