//! WatchChanges: a watch resumed after a disconnect delivers every change
//! exactly once, in order; a watch that is open while writes happen gets
//! them live, also from many concurrent writers and past the server's read
//! batch.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

/// How long a change may take to arrive before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// The writes of a test and the changes they must produce, in order.
struct Writer {
    t: TestDomain,
    client: Client,
    /// (revision, type, name) of every write made.
    expected: Vec<(i64, ChangeType, String)>,
}

impl Writer {
    fn new(t: TestDomain) -> Self {
        let client = t.client.clone();
        Self {
            t,
            client,
            expected: Vec::new(),
        }
    }

    fn record(&mut self, revision: i64, kind: ChangeType, name: &str) {
        if let Some((last, _, _)) = self.expected.last() {
            assert_eq!(revision, last + 1, "writes are serial here");
        }
        self.expected.push((revision, kind, name.to_string()));
    }

    async fn create(&mut self, id: &str) -> anyhow::Result<Initiative> {
        let domain = self.t.domain;
        let init = self
            .client
            .create_initiative(create_request(domain, id, sample(domain, id, 2027)))
            .await?
            .into_inner();
        self.record(init.revision, ChangeType::Created, &init.name);
        Ok(init)
    }

    async fn retitle(&mut self, id: &str) -> anyhow::Result<Initiative> {
        let init = self
            .client
            .update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    name: self.t.name(id),
                    title: format!("{id}, retitled"),
                    ..Default::default()
                }),
                update_mask: Some(mask(&["title"])),
                ..Default::default()
            })
            .await?
            .into_inner();
        self.record(init.revision, ChangeType::Updated, &init.name);
        Ok(init)
    }

    async fn report(&mut self, id: &str) -> anyhow::Result<Initiative> {
        let init = self
            .client
            .add_progress_update(AddProgressUpdateRequest {
                name: self.t.name(id),
                progress_update: Some(ProgressUpdate {
                    as_of: Some(year(2025)),
                    reporting_organization_id: "kr-msit".into(),
                    text: "On track".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        self.record(init.revision, ChangeType::ProgressAdded, &init.name);
        Ok(init)
    }

    async fn meet(&mut self, id: &str) -> anyhow::Result<Initiative> {
        let init = self
            .client
            .update_milestone(UpdateMilestoneRequest {
                name: self.t.name(id),
                milestone: Some(Milestone {
                    id: "launch".into(),
                    status: MilestoneStatus::Met as i32,
                    ..Default::default()
                }),
                update_mask: Some(mask(&["status"])),
                ..Default::default()
            })
            .await?
            .into_inner();
        self.record(init.revision, ChangeType::MilestoneUpdated, &init.name);
        Ok(init)
    }

    async fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        let name = self.t.name(id);
        self.client
            .delete_initiative(DeleteInitiativeRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await?;
        let last = summary_at(&mut self.client, &self.t.parent(), calendar(2026, 1, 1), 0)
            .await?
            .last_revision;
        self.record(last, ChangeType::Deleted, &name);
        Ok(())
    }

    fn last_revision(&self) -> i64 {
        self.expected.last().map(|e| e.0).unwrap_or(0)
    }
}

fn summarize(changes: &[Change]) -> Vec<(i64, ChangeType, String)> {
    changes
        .iter()
        .map(|c| {
            (
                c.revision,
                ChangeType::try_from(c.r#type).unwrap_or_default(),
                c.name.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_resumed_watch_delivers_every_change_exactly_once_on_every_domain() -> anyhow::Result<()>
{
    for domain in Domain::ALL {
        resume(domain)
            .await
            .with_context(|| format!("the {domain} domain"))?;
    }
    Ok(())
}

async fn resume(domain: Domain) -> anyhow::Result<()> {
    let mut w = Writer::new(TestDomain::start(domain).await?);
    let parent = w.t.parent();
    for id in ["a", "b", "c"] {
        w.create(id).await?;
    }
    w.retitle("a").await?;
    w.report("b").await?;
    w.meet("c").await?;
    w.delete("b").await?;

    // Read part of the backlog, then disconnect.
    let mut received = Vec::new();
    {
        let mut first = watch(&mut w.client, &parent, 0).await?;
        received.extend(next_changes(&mut first, 4, WAIT).await?);
    }
    let resume_after = received.last().context("nothing received")?.revision;

    // More writes while nobody watches.
    w.create("d").await?;
    w.create("e").await?;
    w.retitle("d").await?;
    w.report("e").await?;
    w.delete("a").await?;

    // Resume after the last revision received: the rest, then live writes.
    let mut resumed = watch(&mut w.client, &parent, resume_after).await?;
    let backlog = (w.last_revision() - resume_after) as usize;
    received.extend(next_changes(&mut resumed, backlog, WAIT).await?);
    w.meet("e").await?;
    received.push(next_change(&mut resumed, WAIT).await?);
    w.create("f").await?;
    received.push(next_change(&mut resumed, WAIT).await?);

    assert_eq!(summarize(&received), w.expected);
    let revisions: Vec<i64> = received.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (1..=w.last_revision()).collect::<Vec<_>>());
    for c in &received {
        let init = c
            .initiative
            .as_ref()
            .context("a change without its initiative")?;
        assert_eq!(init.name, c.name);
        if c.r#type == ChangeType::Deleted as i32 {
            assert!(
                init.revision < c.revision,
                "a deletion shows the last version"
            );
        } else {
            assert_eq!(init.revision, c.revision);
        }
    }
    // The history of each initiative is its part of the stream.
    for id in ["a", "b", "c", "d", "e", "f"] {
        let name = w.t.name(id);
        let mine: Vec<Change> = received
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect();
        assert_eq!(history_all(&mut w.client, &name, 0).await?, mine, "{id}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_watch_keeps_up_with_concurrent_writers() -> anyhow::Result<()> {
    const TASKS: usize = 16;
    const WRITES: usize = 320;
    let domain = Domain::Quantum;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let mut live = watch(&mut c, &t.parent(), 0).await?;

    // 320 creates from 16 concurrent callers, read live meanwhile.
    let items = (0..WRITES)
        .map(|n| (format!("q{n:03}"), sample(domain, &format!("Q {n}"), 2027)))
        .collect();
    let writer = t.client.clone();
    let writers =
        tokio::spawn(async move { create_concurrently(&writer, domain, items, TASKS).await });
    let changes = next_changes(&mut live, WRITES, WAIT).await?;
    let created = writers.await??;

    // Every write once, in revision order with no gap, whatever the order
    // in which the concurrent writes were acknowledged.
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (1..=WRITES as i64).collect::<Vec<_>>());
    let streamed: BTreeSet<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    let written: BTreeSet<&str> = created.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(streamed, written);
    for change in &changes {
        let init = change
            .initiative
            .as_ref()
            .with_context(|| format!("revision {} without its initiative", change.revision))?;
        let acknowledged = created
            .iter()
            .find(|i| i.name == change.name)
            .context("unknown name")?;
        assert_eq!(init, acknowledged);
    }

    // A watch from the start reads the same backlog, longer than one read
    // batch of the server; a watch from 300 reads only the last 20.
    let mut replay = watch(&mut c, &t.parent(), 0).await?;
    assert_eq!(next_changes(&mut replay, WRITES, WAIT).await?, changes);
    let mut tail = watch(&mut c, &t.parent(), 300).await?;
    assert_eq!(next_changes(&mut tail, 20, WAIT).await?, changes[300..]);

    // All three then get the next write live, and nothing else.
    let next = c
        .create_initiative(create_request(domain, "last", sample(domain, "Last", 2027)))
        .await?
        .into_inner();
    for stream in [&mut live, &mut replay, &mut tail] {
        let change = next_change(stream, WAIT).await?;
        assert_eq!(
            (change.revision, change.initiative.as_ref()),
            (next.revision, Some(&next))
        );
    }
    // Nothing else: a later write is the very next change of each stream
    // (a change delivered twice would come before it).
    let sentinel = c
        .create_initiative(create_request(
            domain,
            "sentinel",
            sample(domain, "Sentinel", 2027),
        ))
        .await?
        .into_inner();
    for stream in [&mut live, &mut replay, &mut tail] {
        let change = next_change(stream, WAIT).await?;
        assert_eq!(
            change.revision, sentinel.revision,
            "a change was delivered twice"
        );
    }
    Ok(())
}

/// Each durable change is read from the store once for every change stream
/// that follows live changes (the feed), not once per stream: once 50
/// streams have read their backlog (one change each), 20 more changes cost
/// exactly 20 reads of the change log (counted by the binary's own metrics),
/// where reading per stream would cost 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_change_is_read_once_for_all_streams() -> anyhow::Result<()> {
    const STREAMS: usize = 50;
    const WRITES: usize = 20;
    let domain = Domain::Semiconductors;
    let dir = tempfile::tempdir()?;
    let (process, metrics) = spawn_domain_with_metrics(domain, dir.path()).await?;
    let mut client = connect(process.addr).await?;
    let write = |n: usize| {
        create_request(
            domain,
            &format!("w{n}"),
            sample(domain, &format!("W{n}"), 2027),
        )
    };
    client.create_initiative(write(0)).await?;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut stream = watch(&mut client, &domain.parent(), 0).await?;
        assert_eq!(next_change(&mut stream, WAIT).await?.revision, 1);
        streams.push(stream);
    }
    let labels = [("domain", domain.slug())];
    let live = [("domain", domain.slug()), ("state", "live")];
    let read = |t: &str| value(t, "cetrack_store_changes_read_total", &labels);
    // Every stream follows live changes, having read the first change from
    // the store; the feed read it once.
    let setup = (1 + STREAMS) as f64;
    scrape_until(metrics, |t| {
        value(t, "cetrack_change_streams", &live) == Some(STREAMS as f64) && read(t) == Some(setup)
    })
    .await?;

    for n in 1..=WRITES {
        client.create_initiative(write(n)).await?;
    }
    for stream in &mut streams {
        let revisions: Vec<i64> = next_changes(stream, WRITES, WAIT)
            .await?
            .iter()
            .map(|c| c.revision)
            .collect();
        assert_eq!(revisions, (2..=1 + WRITES as i64).collect::<Vec<_>>());
    }
    let text = scrape_until(metrics, |t| {
        read(t).is_some_and(|n| n >= setup + WRITES as f64)
    })
    .await?;
    let reads = read(&text).unwrap_or_default() - setup;
    println!("{STREAMS} live streams, {WRITES} changes: {reads} reads of the change log");
    assert_eq!(reads, WRITES as f64, "{text}");
    drop(streams);
    let exited = process.terminate().await?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    Ok(())
}
