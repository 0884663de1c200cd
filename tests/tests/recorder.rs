//! The process-wide metrics recorder: servers started in one process share
//! it, and every endpoint of the process shows them all. A test binary of its
//! own: once a recorder is installed, every server of the process records,
//! so the counts it asserts must not be shared with other tests.

use std::time::Duration;

use anyhow::Context;
use cetrack_contract::Domain;
use cetrack_server::metrics::{install_recorder, start_metrics};
use cetrack_tests::*;
use tokio_util::sync::CancellationToken;

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
        t.stop().await?;
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
