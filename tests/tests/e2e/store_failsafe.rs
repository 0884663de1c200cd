//! A store that fails, fails safe: after a failed flush, a committer that
//! stopped or a poisoned write lock, every call is UNAVAILABLE (no read of
//! data that may not be on disk, no write acknowledged), health says
//! NOT_SERVING, and a restart serves again with every acknowledged write.

use std::time::Duration;

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_domain_service::{serve_store, DomainServerConfig};
use cetrack_store::{Fault, Store, StoreConfig};
use cetrack_tests::*;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const D: Domain = Domain::Biotech;

/// Opens the store in `dir` (waiting for a stopped server's lock) and
/// serves it; the store, the server and a client.
async fn start(
    dir: &std::path::Path,
) -> anyhow::Result<(Store, cetrack_server::RunningServer, Client)> {
    let config = StoreConfig {
        domain: D,
        path: dir.to_path_buf(),
        cache_capacity: 16 << 20,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let store = loop {
        match Store::open(&config) {
            Ok(s) => break s,
            // A stopped server's store lets go of its files a moment
            // after it is dropped.
            Err(cetrack_store::OpenError::Locked { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = serve_store(
        store.clone(),
        DomainServerConfig {
            domain: D,
            data_dir: dir.to_path_buf(),
            cache_capacity: 16 << 20,
            auth: test_auth(),
            tls: None,
            request_id_retention: std::time::Duration::from_secs(86_400),
        },
        listener,
        CancellationToken::new(),
    )
    .await?;
    let client = connect(server.addr).await?;
    Ok((store, server, client))
}

/// Waits (on the health Watch stream, not by polling) until the server's
/// overall status is `wanted`.
async fn health_becomes(addr: std::net::SocketAddr, wanted: ServingStatus) -> anyhow::Result<()> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(status) = stream.message().await? {
            if status.status == wanted as i32 {
                return anyhow::Ok(());
            }
        }
        anyhow::bail!("the health stream ended")
    })
    .await?
}

#[tokio::test]
async fn a_failed_store_serves_nothing_until_restarted() -> anyhow::Result<()> {
    for fault in [
        Fault::FlushFails,
        Fault::CommitterStops,
        Fault::LockPoisoned,
    ] {
        let dir = tempfile::tempdir()?;
        let (store, server, mut client) = start(dir.path()).await?;
        let kept = client
            .create_initiative(create_request(D, "kept", sample(D, "Kept", 2027)))
            .await?
            .into_inner();

        // A change stream open and following live changes.
        let mut stream = watch(&mut client, &D.parent(), 0).await?;
        assert_eq!(
            next_change(&mut stream, Duration::from_secs(10))
                .await?
                .revision,
            1
        );

        store.inject(fault);
        let status = expect_err(
            client
                .create_initiative(create_request(D, "lost", sample(D, "Lost", 2027)))
                .await,
        );
        assert_eq!(status.code(), Code::Unavailable, "{fault:?}: {status:?}");
        assert!(status.message().contains("restarted"), "{status:?}");
        // The open stream ends with the store's failure, not silence.
        let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .map_err(|_| anyhow::anyhow!("{fault:?}: the open stream went silent"))?;
        let status = ended.expect_err("a change after the failure");
        assert_eq!(status.code(), Code::Unavailable, "{fault:?}: {status:?}");
        // Nothing is read from a store that may hold unflushed writes.
        for name in ["kept", "lost"] {
            let status = expect_err(
                client
                    .get_initiative(GetInitiativeRequest {
                        name: format!("{}/initiatives/{name}", D.parent()),
                    })
                    .await,
            );
            assert_eq!(status.code(), Code::Unavailable, "{fault:?}: {status:?}");
        }
        let status = expect_err(
            client
                .list_initiatives(ListInitiativesRequest {
                    parent: D.parent(),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(status.code(), Code::Unavailable, "{fault:?}: {status:?}");
        let status = expect_err(
            client
                .create_initiative(create_request(D, "later", sample(D, "Later", 2027)))
                .await,
        );
        assert_eq!(status.code(), Code::Unavailable, "{fault:?}: {status:?}");
        health_becomes(server.addr, ServingStatus::NotServing).await?;

        // The stop reports the failure (the failed store is not flushed).
        let stopped = server.stop().await;
        assert!(
            stopped.is_err(),
            "{fault:?}: the stop reports the failed store"
        );
        drop(store);

        // A restart serves again, with the acknowledged write.
        let (store, server, mut client) = start(dir.path()).await?;
        health_becomes(server.addr, ServingStatus::Serving).await?;
        let got = client
            .get_initiative(GetInitiativeRequest {
                name: kept.name.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(got, kept, "{fault:?}");
        client
            .create_initiative(create_request(D, "after", sample(D, "After", 2027)))
            .await?;
        server.stop().await?;
        drop(store);
    }
    Ok(())
}
