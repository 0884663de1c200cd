//! Backups through StoreAdminService against a live domain: taken while
//! writers create and change records, each backup is the store exactly as it
//! was at its header's revision (restored, served, and compared with the
//! live store's history at that revision); a server without authentication
//! (local development) serves a backup to a caller without a token.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use cetrack_contract::proto::store_admin_service_client::StoreAdminServiceClient;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_server::auth::Auth;
use cetrack_tests::*;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const D: Domain = Domain::Connectivity;
const START: usize = 40;
const WRITERS: usize = 8;
const BACKUPS: usize = 3;
const WAIT: Duration = Duration::from_secs(60);

/// Every chunk of a backup of `D` taken at `addr` as `token`.
async fn take_backup(
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> anyhow::Result<Vec<BackupChunk>> {
    let mut admin = StoreAdminServiceClient::new(channel_as(addr, token).await?);
    let mut stream = admin
        .backup_store(BackupStoreRequest { parent: D.parent() })
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, stream.message()).await?? {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// Restores `chunks` into a new directory and serves it; every record of
/// the restored store by name, and its last revision.
async fn restored(chunks: Vec<BackupChunk>) -> anyhow::Result<(BTreeMap<String, Initiative>, i64)> {
    let dir = tempfile::tempdir()?;
    let backup = cetrack_store::backup::assemble(chunks)?;
    let revision = cetrack_store::backup::restore(D, dir.path(), backup)?;
    let server = serve(D, dir.path()).await?;
    let mut client = connect(server.addr).await?;
    let records = list_all(&mut client, &D.parent(), None, 100)
        .await?
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let last = last_revision(&mut client, D).await?;
    assert_eq!(last as u64, revision);
    drop(client);
    server.stop().await?;
    Ok((records, last))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_writes_go_on_is_the_store_at_its_revision() -> anyhow::Result<()> {
    let t = TestDomain::start(D).await?;
    let items = (0..START)
        .map(|i| (format!("start-{i}"), sample(D, &format!("Start {i}"), 2030)))
        .collect();
    create_concurrently(&t.client, D, items, 8).await?;

    // Writers create records and retitle existing ones until stopped.
    let stop = CancellationToken::new();
    let (written, mut progress) = tokio::sync::watch::channel(0usize);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (mut client, stop, written) = (t.client.clone(), stop.clone(), written.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.is_cancelled() {
                    if i % 2 == 0 {
                        client
                            .create_initiative(create_request(
                                D,
                                &format!("w{w}-{i}"),
                                sample(D, &format!("Writer {w} #{i}"), 2031),
                            ))
                            .await?;
                    } else {
                        let target =
                            format!("{}/initiatives/start-{}", D.parent(), (w * 7 + i) % START);
                        client
                            .update_initiative(UpdateInitiativeRequest {
                                initiative: Some(Initiative {
                                    name: target,
                                    title: format!("Retitled by {w} at {i}"),
                                    ..Default::default()
                                }),
                                update_mask: Some(mask(&["title"])),
                                request_id: String::new(),
                                reporter: "us-nsf".into(),
                            })
                            .await?;
                    }
                    written.send_modify(|n| *n += 1);
                    i += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();

    // Backups one after the other while the writes go on (the first once
    // they have begun: on a busy machine the writers may start late).
    tokio::time::timeout(WAIT, progress.wait_for(|n| *n >= WRITERS))
        .await
        .context("the writers did not start")??;
    let mut backups = Vec::new();
    let mut watcher = t.client.clone();
    for _ in 0..BACKUPS {
        let chunks = take_backup(t.addr(), Some(&admin_token())).await?;
        let at = chunks
            .first()
            .and_then(|c| c.header)
            .context("a backup without a header")?
            .revision;
        backups.push(chunks);
        // The store moves past this backup's revision before the next one
        // (checked at each acknowledged write).
        tokio::time::timeout(WAIT, async {
            loop {
                progress.changed().await?;
                let now = last_revision(&mut watcher, D).await?;
                if now > at + WRITERS as i64 {
                    return anyhow::Ok(());
                }
            }
        })
        .await
        .context("the writers stalled")??;
    }
    stop.cancel();
    for w in writers {
        tokio::time::timeout(WAIT, w).await???;
    }

    // The live store's history: every record's versions by revision.
    let mut client = t.client.clone();
    let live = list_all(&mut client, &D.parent(), None, 100).await?;
    let mut versions: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for record in &live {
        versions.insert(
            record.name.clone(),
            history_all(&mut client, &record.name, 100).await?,
        );
    }
    let last = last_revision(&mut client, D).await?;

    let mut revisions = Vec::new();
    for chunks in backups {
        let header = chunks
            .first()
            .and_then(|c| c.header)
            .context("a backup without a header")?;
        let (records, revision) = restored(chunks).await?;
        assert_eq!(revision, header.revision);
        // What the live store held at that revision: each record's last
        // version at or before it; records created later absent.
        let expected: BTreeMap<String, Initiative> = versions
            .iter()
            .filter_map(|(name, changes)| {
                let at = changes.iter().rfind(|c| c.revision <= revision)?;
                Some((name.clone(), at.initiative.clone()?))
            })
            .collect();
        assert_eq!(
            records.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "the records of the backup at revision {revision}"
        );
        assert_eq!(records, expected, "the backup at revision {revision}");
        revisions.push(revision);
    }
    // Taken while writes went on: each at a later revision, none at the end.
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]) && revisions[0] > START as i64,
        "{revisions:?}"
    );
    assert!(
        *revisions.last().unwrap_or(&0) < last,
        "{revisions:?} {last}"
    );
    println!("backups at revisions {revisions:?} of {last}");
    Ok(())
}

#[tokio::test]
async fn a_server_without_authentication_serves_backups_to_any_caller() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = serve_with_auth(D, dir.path(), Auth::Off).await?;
    let mut client = connect_as(server.addr, None).await?;
    let created = client
        .create_initiative(create_request(D, "open", sample(D, "Open", 2030)))
        .await?
        .into_inner();
    let chunks = take_backup(server.addr, None).await?;
    let (records, revision) = restored(chunks).await?;
    assert_eq!(revision, 1);
    assert_eq!(records.into_values().collect::<Vec<_>>(), vec![created]);
    drop(client);
    server.stop().await?;
    Ok(())
}

/// A client of `addr` as the test admin whose HTTP/2 windows hold 64 KiB:
/// a backup it does not read stops at the server after a few chunks.
async fn slow_reader(
    addr: std::net::SocketAddr,
) -> anyhow::Result<StoreAdminServiceClient<AuthChannel>> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await?;
    Ok(StoreAdminServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(
            channel,
            Bearer::new(Some(&admin_token())),
        ),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_at_once_are_capped_and_a_finished_one_frees_its_place() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = serve(D, dir.path()).await?;
    let client = connect(server.addr).await?;
    // Some megabytes of store: a backup is several chunks of about 1 MiB.
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..2_500)
        .map(|n| {
            let mut c = client.clone();
            async move {
                c.create_initiative(create_request(
                    D,
                    &format!("r{n:05}"),
                    sample(D, &format!("Record {n}"), 2030),
                ))
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;

    // Backups whose callers read nothing hold their places.
    let mut held = Vec::new();
    for _ in 0..cetrack_domain_service::MAX_BACKUPS {
        let mut admin = slow_reader(server.addr).await?;
        let stream = admin
            .backup_store(BackupStoreRequest { parent: D.parent() })
            .await?
            .into_inner();
        held.push((admin, stream));
    }
    let mut admin = slow_reader(server.addr).await?;
    let refused = admin
        .backup_store(BackupStoreRequest { parent: D.parent() })
        .await
        .err()
        .context("one backup more than the cap was taken")?;
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("backups"), "{refused:?}");

    // A caller that goes away frees its place: a backup is taken again, and
    // read to its end it is whole.
    drop(held.pop());
    let started = std::time::Instant::now();
    let chunks = loop {
        match take_backup(server.addr, Some(&admin_token())).await {
            Ok(chunks) => break chunks,
            Err(e) => {
                let exhausted = e
                    .downcast_ref::<tonic::Status>()
                    .is_some_and(|s| s.code() == tonic::Code::ResourceExhausted);
                anyhow::ensure!(exhausted && started.elapsed() < WAIT, "{e:?}");
            }
        }
    };
    let (records, _) = restored(chunks).await?;
    assert_eq!(records.len(), 2_500);
    drop(held);
    drop(client);
    server.stop().await?;
    Ok(())
}
