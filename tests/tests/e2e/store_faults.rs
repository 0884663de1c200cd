//! A store the binary cannot use is refused with a clear error and a nonzero
//! exit, never a panic: a data directory holding another domain's store
//! (exit 2, the message names both domains) and sled files overwritten with
//! garbage after a clean shutdown.

use std::path::Path;

use anyhow::{ensure, Context};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

/// A deterministic stream of pseudo-random bytes (xorshift64*).
struct Garbage(u64);

impl Garbage {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

/// Writes `records` initiatives to a store of `domain` in `dir` through the
/// binary, stops it with SIGTERM, then starts and stops it once more so that
/// sled writes a snapshot file too. Returns what was written.
async fn populated_store(
    domain: Domain,
    dir: &Path,
    records: usize,
    snapshot: bool,
) -> anyhow::Result<Vec<Initiative>> {
    let exe = binary(&domain.binary())?;
    let server = spawn_service(&exe, dir).await?;
    let mut client = connect(server.addr).await?;
    let mut written = Vec::new();
    for i in 0..records {
        written.push(
            client
                .create_initiative(create_request(
                    domain,
                    &format!("kept-{i}"),
                    sample(domain, &format!("Kept {i}"), 2026),
                ))
                .await?
                .into_inner(),
        );
    }
    drop(client);
    let exited = server.terminate().await?;
    ensure!(exited.status.code() == Some(0), "{exited:?}");
    if snapshot {
        let exited = spawn_service(&exe, dir).await?.terminate().await?;
        ensure!(exited.status.code() == Some(0), "{exited:?}");
    }
    Ok(written)
}

/// Runs the binary of `domain` over `dir` until it exits.
async fn start_expecting_exit(domain: Domain, dir: &Path) -> anyhow::Result<ProcessOutput> {
    run_to_exit(
        &binary(&domain.binary())?,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ],
    )
    .await
}

#[tokio::test]
async fn a_store_of_another_domain_is_refused_with_exit_code_2() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let written = populated_store(Domain::Energy, dir.path(), 3, true).await?;
    let out = start_expecting_exit(Domain::Ai, dir.path()).await?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("holds the energy domain, not ai"),
        "stderr does not name the domains:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // The refused start left the store as it was.
    let server = spawn_service(&binary(&Domain::Energy.binary())?, dir.path()).await?;
    let mut client = connect(server.addr).await?;
    let listed = list_all(&mut client, &Domain::Energy.parent(), None, 100).await?;
    assert_eq!(listed, written, "every record as written");
    drop(client);
    assert_eq!(server.terminate().await?.status.code(), Some(0));
    Ok(())
}

/// How a case damages the files it picks.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Overwrite with pseudo-random bytes (at least 64).
    Random,
    /// Overwrite with zeros, keeping the length.
    Zeros,
    /// Truncate to nothing.
    Emptied,
}

/// Which files of a store a case damages, by name.
type Files = fn(&str) -> bool;

#[tokio::test]
async fn garbage_sled_files_are_refused_without_a_panic() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let db = |f: &str| f == "db";
    let conf = |f: &str| f == "conf";
    let snap = |f: &str| f.starts_with("snap.");
    let every = |f: &str| f == "db" || f == "conf" || f.starts_with("snap.");
    // (whether sled has written a snapshot file, which files, how)
    let cases: [(bool, Files, Damage); 8] = [
        // Without a snapshot sled reads an unreadable log as an empty
        // database: the store must not come up empty.
        (false, db, Damage::Random),
        (false, db, Damage::Zeros),
        (false, db, Damage::Emptied),
        (false, conf, Damage::Random),
        (true, every, Damage::Random),
        (true, db, Damage::Random),
        (true, conf, Damage::Random),
        (true, snap, Damage::Random),
    ];
    let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
    for (snapshot, damaged, how) in cases {
        let dir = tempfile::tempdir()?;
        populated_store(domain, dir.path(), 5, snapshot).await?;
        let mut overwritten = Vec::new();
        for entry in std::fs::read_dir(dir.path())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && damaged(&name) {
                let len = entry.metadata()?.len() as usize;
                let bytes = match how {
                    Damage::Random => garbage.bytes(len.max(64)),
                    Damage::Zeros => vec![0; len],
                    Damage::Emptied => Vec::new(),
                };
                std::fs::write(entry.path(), bytes)
                    .with_context(|| format!("overwriting {name}"))?;
                overwritten.push(name);
            }
        }
        let case = format!("{how:?} {overwritten:?} (snapshot: {snapshot})");
        ensure!(!overwritten.is_empty(), "{case}: no file to damage");
        let out = start_expecting_exit(domain, dir.path())
            .await
            .with_context(|| format!("{case}: the binary did not exit"))?;
        assert!(!out.status.success(), "{case}: {out:?}");
        assert!(
            !out.stderr.contains("panicked"),
            "{case}: panicked:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("is damaged and cannot be opened"),
            "{case}: no clear error:\n{}",
            out.stderr
        );
    }
    Ok(())
}
