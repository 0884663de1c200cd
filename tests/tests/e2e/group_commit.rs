//! Group commit, counted from outside: the domain binary's own count of
//! flushes (`cetrack_store_flushes_total`) against the writes it
//! acknowledged. One writer at a time: one flush per write (each waits for
//! its own). 64 writers at once: far fewer flushes than writes, because the
//! writers that wait together share a flush.

use cetrack_contract::Domain;
use cetrack_tests::*;

const D: Domain = Domain::Energy;
const ONE_BY_ONE: usize = 40;
const WRITERS: usize = 64;
const CONCURRENT: usize = 1_280;

/// The domain's flushes and last durable revision, once the gauges show
/// revision `at` (they are refreshed after every durable write).
async fn flushes_at(metrics: std::net::SocketAddr, at: usize) -> anyhow::Result<f64> {
    let labels = [("domain", D.slug())];
    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_last_revision", &labels) == Some(at as f64)
    })
    .await?;
    require(&text, "cetrack_store_flushes_total", &labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_flushes_and_a_lone_writer_gets_one_each() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (process, metrics) = spawn_domain_with_metrics(D, dir.path()).await?;
    let mut client = connect(process.addr).await?;
    let at_start = flushes_at(metrics, 0).await?;

    for i in 0..ONE_BY_ONE {
        client
            .create_initiative(create_request(
                D,
                &format!("alone-{i}"),
                sample(D, &format!("Alone {i}"), 2030),
            ))
            .await?;
    }
    let alone = flushes_at(metrics, ONE_BY_ONE).await? - at_start;
    assert_eq!(alone, ONE_BY_ONE as f64, "one writer at a time");

    let items = (0..CONCURRENT)
        .map(|i| (format!("many-{i}"), sample(D, &format!("Many {i}"), 2030)))
        .collect();
    let created = create_concurrently(&client, D, items, WRITERS).await?;
    assert_eq!(created.len(), CONCURRENT);
    let shared = flushes_at(metrics, ONE_BY_ONE + CONCURRENT).await? - at_start - alone;
    println!(
        "{CONCURRENT} writes by {WRITERS} writers: {shared} flushes ({:.1} writes per flush)",
        CONCURRENT as f64 / shared
    );
    assert!(shared >= 1.0);
    assert!(
        shared <= (CONCURRENT / 3) as f64,
        "{shared} flushes for {CONCURRENT} concurrent writes: they do not share flushes"
    );
    let exited = process.terminate().await?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    Ok(())
}
