//! Operators upgrade in place: a store written by the previous release
//! (schema version 1, `tests/fixtures/v1-store/`, made by that release's own
//! binary) opens under this build with every record, history entry, request
//! id and counter intact, its counters now kept per visibility; and a kill -9
//! at any moment of the migration loses nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cetrack_contract::auth::{is_restricted, Clearance, Role};
use cetrack_contract::dates;
use cetrack_contract::proto::*;
use cetrack_contract::summary::{recount, LastChange, SummaryWindow};
use cetrack_contract::Domain;
use cetrack_tests::*;

const D: Domain = Domain::Biotech;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-store")
}

/// The records the previous release served from the fixture.
fn served_before() -> anyhow::Result<Vec<Initiative>> {
    std::fs::read_to_string(fixture().join("biotech.jsonl"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// A copy of the fixture store in a temporary directory.
fn copy_of_fixture() -> anyhow::Result<tempfile::TempDir> {
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
    copy(&fixture().join("biotech"), dir.path())?;
    Ok(dir)
}

/// Everything the previous release served is there, unchanged: records,
/// their history, their request ids, and counters equal to a recount (for a
/// cleared caller over every record, for an uncleared one over the public
/// records only).
async fn assert_intact(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let before = served_before()?;
    anyhow::ensure!(
        before.iter().any(is_restricted),
        "the fixture holds a restricted record"
    );
    let mut admin = connect(addr).await?;
    let now = list_all(&mut admin, &D.parent(), None, 7).await?;
    assert_eq!(
        now, before,
        "the records as the previous release served them"
    );

    let mut last_revision = 0;
    for record in &now {
        let history = history_all(&mut admin, &record.name, 3).await?;
        let last = history.last().expect("every record has a history");
        assert_eq!(last.revision, record.revision, "{}", record.name);
        assert_eq!(last.initiative.as_ref(), Some(record), "{}", record.name);
        last_revision = last_revision.max(record.revision);
    }

    // A replayed request returns the first answer and writes nothing.
    let seed = include_str!("../../../cli/data/us-rok-cet-2023-12-08.jsonl")
        .lines()
        .map(serde_json::from_str::<CreateInitiativeRequest>)
        .find(|r| r.as_ref().is_ok_and(|r| r.parent == D.parent()))
        .expect("a biotech line in the seed")?;
    let name = format!("{}/initiatives/{}", seed.parent, seed.initiative_id);
    let first = history_all(&mut admin, &name, 50).await?;
    let created = first.first().and_then(|c| c.initiative.clone());
    let replayed = admin.create_initiative(seed).await?.into_inner();
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
async fn a_store_of_the_previous_release_is_migrated_on_open_with_everything_intact(
) -> anyhow::Result<()> {
    let dir = copy_of_fixture()?;
    let server = serve(D, dir.path()).await?;
    assert_intact(server.addr).await?;
    server.stop().await?;
    // Opened again (already migrated), it is still intact.
    let server = serve(D, dir.path()).await?;
    assert_intact(server.addr).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_kill_9_during_the_migration_loses_nothing() -> anyhow::Result<()> {
    let exe = binary(&D.binary())?;
    // Kills at moments spread over the start: before, during and after the
    // migration (it logs `store migrated` when done).
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let dir = copy_of_fixture()?;
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
        assert_intact(server.addr).await?;
        let exited = server.terminate().await?;
        assert!(exited.status.success(), "{}", exited.stderr_text());
    }
    Ok(())
}
