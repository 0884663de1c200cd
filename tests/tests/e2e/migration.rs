//! Operators upgrade in place: a store written by an earlier release (schema
//! version 1, `tests/fixtures/v1-store/`, schema version 2,
//! `tests/fixtures/v2-store/`, schema version 3, `tests/fixtures/v3-store/`,
//! schema version 4, `tests/fixtures/v4-store/`, schema version 5,
//! `tests/fixtures/v5-store/`, and the previous release's schema version 6,
//! `tests/fixtures/v6-store/`,
//! each made by that release's own binary) opens
//! under this build with every record, history entry, request id and counter
//! intact; each record gains the status history its changes tell (the first
//! status from its dated source, each later one from the day it was
//! recorded), the counters answer for any "as of" day, and the milestones
//! are in the due index (a timeline read from it answers what reading every
//! record answers), the records of each source document in the document
//! index (a list and a summary of one document read from it answer what
//! filtering every record answers), and each record by the end of its
//! planned end period in that index (a list of a due window read from it
//! and the due index answers what reading every record answers), and each
//! record is kept with its spans (a list and a read of one record, which
//! pass it on by them, answer what it was: the restricted record hidden
//! from a caller without clearance); and a
//! kill -9 at any moment of the migration loses nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cetrack_contract::auth::{is_restricted, Clearance, Role};
use cetrack_contract::dates;
use cetrack_contract::proto::*;
use cetrack_contract::summary::{recount, LastChange, SummaryWindow};
use cetrack_contract::Domain;
use cetrack_tests::*;

const D: Domain = Domain::Biotech;

/// The fixtures, by the schema version of the release that wrote them.
const FIXTURES: [&str; 6] = [
    "v1-store", "v2-store", "v3-store", "v4-store", "v5-store", "v6-store",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The records the earlier release served from the fixture.
fn served_before(name: &str) -> anyhow::Result<Vec<Initiative>> {
    std::fs::read_to_string(fixture(name).join("biotech.jsonl"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// A copy of the fixture store in a temporary directory.
fn copy_of_fixture(name: &str) -> anyhow::Result<tempfile::TempDir> {
    fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), target)?;
            }
        }
        Ok(())
    }
    let dir = tempfile::tempdir()?;
    copy(&fixture(name).join("biotech"), dir.path())?;
    Ok(dir)
}

/// Everything the previous release served is there, unchanged: records,
/// their history, their request ids, and counters equal to a recount (for a
/// cleared caller over every record, for an uncleared one over the public
/// records only).
async fn assert_intact(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<()> {
    let before = served_before(name)?;
    anyhow::ensure!(
        before.iter().any(is_restricted),
        "the fixture holds a restricted record"
    );
    let mut admin = connect(addr).await?;
    let now = list_all(&mut admin, &D.parent(), None, 7).await?;
    let without_status_history = |records: &[Initiative]| -> Vec<Initiative> {
        records
            .iter()
            .map(|i| Initiative {
                status_date: None,
                status_history: vec![],
                ..i.clone()
            })
            .collect()
    };
    if ["v3-store", "v4-store", "v5-store", "v6-store"].contains(&name) {
        assert_eq!(
            now, before,
            "{name}: the records exactly, status histories too"
        );
    }
    // (Releases before schema version 3 served no status history; the
    // status histories are checked below.)
    assert_eq!(
        without_status_history(&now),
        without_status_history(&before),
        "{name}: the records as the earlier release served them"
    );
    for record in &now {
        let history = &record.status_history;
        let last = history.last().expect("every record has a status history");
        assert_eq!(last.status, record.status, "{}", record.name);
        assert_eq!(record.status_date, last.effective, "{}", record.name);
        assert_eq!(
            history[0].effective,
            Some(dates::day(2023, 12, 8)),
            "{}: the first status from the record's dated source",
            record.name
        );
    }
    // The v2 to v6 fixtures' bioeconomy collaboration was moved to IN_PROGRESS by
    // the earlier release on the day the fixture was made.
    if let Some(moved) = now
        .iter()
        .find(|i| i.status == LifecycleStatus::InProgress as i32)
    {
        let statuses: Vec<i32> = moved.status_history.iter().map(|h| h.status).collect();
        assert_eq!(
            statuses,
            vec![
                LifecycleStatus::Announced as i32,
                LifecycleStatus::InProgress as i32
            ],
            "{}",
            moved.name
        );
        let recorded = moved.status_history[1]
            .record_time
            .expect("recorded at a time");
        let day = time::OffsetDateTime::from_unix_timestamp(recorded.seconds)?.date();
        assert_eq!(
            moved.status_history[1].effective,
            Some(dates::as_day(day)),
            "a later status takes effect the day it was recorded"
        );
    } else {
        assert_eq!(name, "v1-store", "the {name} fixture holds a status change");
    }

    // The milestones are in the due index: the timeline's part read from it
    // (now) is what reading every record (as known at the end of today)
    // answers.
    let due = ListDueMilestonesRequest {
        parent: D.parent(),
        due_after: Some(calendar(2020, 1, 1)),
        due_before: Some(calendar(2040, 12, 31)),
        include_overdue: true,
        include_met: true,
        as_of: Some(calendar(2025, 1, 15)),
        page_size: 1_000,
        ..Default::default()
    };
    let indexed = admin.list_due_milestones(due.clone()).await?.into_inner();
    let read = admin
        .list_due_milestones(ListDueMilestonesRequest {
            as_known_on: Some(dates::to_calendar(dates::today())),
            ..due
        })
        .await?
        .into_inner();
    assert!(
        !indexed.entries.is_empty(),
        "{name}: the records' milestones"
    );
    assert_eq!(indexed, read, "{name}: the due index holds every milestone");

    // The records of each source document are in the document index: a
    // list of one document (read from it) is every record that cites it,
    // and so is its summary; a title no record cites finds none.
    let mut documents: Vec<&str> = now
        .iter()
        .flat_map(|i| i.sources.iter().map(|s| s.document.as_str()))
        .collect();
    documents.sort_unstable();
    documents.dedup();
    anyhow::ensure!(!documents.is_empty(), "{name}: the records cite documents");
    for document in documents.iter().copied().chain(["A sheet no one cited"]) {
        let citing: Vec<Initiative> = now
            .iter()
            .filter(|i| i.sources.iter().any(|s| s.document == document))
            .cloned()
            .collect();
        let filter = InitiativeFilter {
            document: document.to_string(),
            ..Default::default()
        };
        let listed = list_all(&mut admin, &D.parent(), Some(filter), 3).await?;
        assert_eq!(listed, citing, "{name}: the records of {document:?}");
        let counted = admin
            .get_domain_summary(GetDomainSummaryRequest {
                parent: D.parent(),
                document: document.to_string(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(
            counted.initiative_count,
            citing.len() as i64,
            "{name}: the summary of {document:?}"
        );
    }

    // The records in a due window are found from the planned end and
    // milestone indexes: a list of each window (read from them) is what
    // reading every record, as known at the end of today, answers.
    let mut found = 0;
    for (after, before) in [
        (Some(2023), Some(2023)),
        (Some(2024), Some(2024)),
        (Some(2025), Some(2026)),
        (None, Some(2024)),
        (Some(2025), None),
    ] {
        for (include_met_milestones, as_of) in [(false, None), (true, Some(calendar(2024, 6, 30)))]
        {
            let filter = InitiativeFilter {
                due_after: after.map(|y| calendar(y, 1, 1)),
                due_before: before.map(|y| calendar(y, 12, 31)),
                include_met_milestones,
                as_of,
                ..Default::default()
            };
            let indexed = list_all(&mut admin, &D.parent(), Some(filter.clone()), 2).await?;
            let read = InitiativeFilter {
                as_known_on: Some(dates::to_calendar(dates::today())),
                ..filter
            };
            let read = list_all(&mut admin, &D.parent(), Some(read), 2).await?;
            assert_eq!(
                indexed, read,
                "{name}: the records due {after:?}-{before:?} (met too: {include_met_milestones})"
            );
            found += indexed.len();
        }
    }
    anyhow::ensure!(found > 0, "{name}: records in the due windows");

    // The last revision: a record's last change, or a deletion since.
    let last_revision = cetrack_tests::last_revision(&mut admin, D).await?;
    for record in &now {
        let history = history_all(&mut admin, &record.name, 3).await?;
        let last = history.last().expect("every record has a history");
        assert_eq!(last.revision, record.revision, "{}", record.name);
        assert_eq!(
            last.initiative.as_ref(),
            Some(record),
            "{name}: {}",
            record.name
        );
        assert!(record.revision <= last_revision);
    }

    // A replayed request returns the first answer and writes nothing.
    // The seed request as the earlier release's seed sent it.
    let seed: CreateInitiativeRequest = serde_json::from_str(&std::fs::read_to_string(
        fixture(name).join("replayed-request.json"),
    )?)?;
    let name = format!("{}/initiatives/{}", seed.parent, seed.initiative_id);
    let first = history_all(&mut admin, &name, 50).await?;
    let created = first.first().and_then(|c| c.initiative.clone());
    let replayed = admin.create_initiative(seed).await?.into_inner();
    // The first answer: the version it wrote, as the history keeps it (with
    // the status history the migration gave it; the request id now keeps
    // only the request's hash and that revision).
    assert_eq!(
        Some(replayed),
        created,
        "the replay answers as the first create did"
    );

    let window = SummaryWindow {
        as_of: time::macros::date!(2025 - 01 - 15),
        due_within_days: 365,
    };
    for cleared in [true, false] {
        let token = token(
            "counter",
            None,
            &[Role::Viewer],
            None,
            if cleared {
                Clearance::Restricted
            } else {
                Clearance::Public
            },
        );
        let mut c = connect_as(addr, Some(&token)).await?;
        let got = summary_at(
            &mut c,
            &D.parent(),
            dates::to_calendar(window.as_of),
            window.due_within_days,
        )
        .await?;
        assert_eq!(got.last_revision, last_revision, "no revision was written");
        let seen: Vec<&Initiative> = now
            .iter()
            .filter(|i| cleared || !is_restricted(i))
            .collect();
        // A list and a read of one record go by the spans kept beside
        // each: what the caller may see, as it was.
        let listed = list_all(&mut c, &D.parent(), None, 7).await?;
        let expected: Vec<Initiative> = seen.iter().map(|i| (*i).clone()).collect();
        assert_eq!(
            listed, expected,
            "{name}: the list of a caller (cleared: {cleared})"
        );
        for record in &now {
            let read = c
                .get_initiative(GetInitiativeRequest {
                    name: record.name.clone(),
                })
                .await;
            match read {
                Ok(r) => assert!(
                    (cleared || !is_restricted(record)) && &r.into_inner() == record,
                    "{name}: {} read by a caller (cleared: {cleared})",
                    record.name
                ),
                Err(status) => assert!(
                    !cleared && is_restricted(record) && status.code() == tonic::Code::NotFound,
                    "{name}: {} refused to a caller (cleared: {cleared}): {status:?}",
                    record.name
                ),
            }
        }
        let want = recount(
            D,
            seen,
            window,
            LastChange {
                revision: got.last_revision as u64,
                time: got.last_change_time,
            },
        );
        assert_eq!(
            got,
            want,
            "the counters of a caller {} clearance",
            if cleared { "with" } else { "without" }
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_store_of_an_earlier_release_is_migrated_on_open_with_everything_intact(
) -> anyhow::Result<()> {
    for name in FIXTURES {
        let dir = copy_of_fixture(name)?;
        let server = serve(D, dir.path()).await?;
        assert_intact(server.addr, name).await?;
        server.stop().await?;
        // Opened again (already migrated), it is still intact.
        let server = serve(D, dir.path()).await?;
        assert_intact(server.addr, name).await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_kill_9_during_the_migration_loses_nothing() -> anyhow::Result<()> {
    let exe = binary(&D.binary())?;
    // Kills at moments spread over the start: before, during and after the
    // migration (it logs `store migrated` when done).
    for (delay_ms, name) in [0u64, 2, 5, 10, 20, 40, 80]
        .into_iter()
        .flat_map(|d| FIXTURES.map(|f| (d, f)))
    {
        eprintln!("{name}: killed after {delay_ms} ms");
        let dir = copy_of_fixture(name)?;
        let mut child = tokio::process::Command::new(&exe)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(jwt_args())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        // Fault injection at a chosen moment, not a wait for a state.
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.start_kill()?;
        wait_exit(&mut child, PROCESS_TIMEOUT).await?;
        let server = spawn_service(&exe, dir.path()).await?;
        assert_intact(server.addr, name).await?;
        let exited = server.terminate().await?;
        assert!(exited.status.success(), "{}", exited.stderr_text());
    }
    Ok(())
}
