//! The `cetrack` command end to end: `up --seed` on real ports, the client
//! commands against it, import/export and backup/restore.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cetrack_contract::proto::{FactSheet, Initiative, OrganizationPortfolio, Overview};

/// The `cetrack` binary built beside the tests.
fn cli_binary() -> std::path::PathBuf {
    cetrack_tests::binary("cetrack").unwrap_or_else(|e| panic!("{e}"))
}

/// How long one run of the command line may take before the test fails
/// (instead of hanging).
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// A command run to its end within [`COMMAND_LIMIT`]: killed and failing the
/// test past it.
trait Bounded {
    fn output_within(&mut self) -> std::io::Result<Output>;
}

impl Bounded for Command {
    fn output_within(&mut self) -> std::io::Result<Output> {
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(COMMAND_LIMIT) {
            Ok(output) => output,
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("{self:?} did not finish within {COMMAND_LIMIT:?}");
            }
        }
    }
}

const DATA: &str = include_str!("../../../cli/data/us-rok-cet-2023-12-08.jsonl");

/// Eight consecutive free ports, the first for the gateway.
fn free_base_port() -> u16 {
    for _ in 0..200 {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        if base > 65_000 {
            continue;
        }
        let all: Vec<_> = (0..8)
            .filter_map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if all.len() == 8 {
            return base;
        }
    }
    panic!("no eight free consecutive ports");
}

/// `cetrack up` running as a child process.
struct System {
    child: Child,
    base: u16,
    /// The data directory (its `auth/` holds the admin token the command
    /// line finds by itself).
    data: std::path::PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl System {
    /// `cetrack up` on eight free consecutive ports. Ports found free may be
    /// taken by another test before `cetrack up` binds them: then it says
    /// so and exits, and this starts it again on other ports (five tries).
    fn start(data: &Path, seed: bool) -> System {
        for _ in 0..5 {
            if let Some(system) = Self::try_start(data, seed) {
                return system;
            }
        }
        panic!("cetrack up found no free ports in five tries");
    }

    fn try_start(data: &Path, seed: bool) -> Option<System> {
        let base = free_base_port();
        let mut cmd = Command::new(cli_binary());
        cmd.env_remove("CETRACK_TOKEN")
            .env_remove("CETRACK_AUTH")
            .args([
                "up",
                "--base-port",
                &base.to_string(),
                "--http-port",
                "0",
                "--data-dir",
            ])
            .arg(data)
            .args(["--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if seed {
            cmd.arg("--seed");
        }
        let mut child = cmd.spawn().expect("spawn cetrack up");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let system = System {
            child,
            base,
            data: data.to_path_buf(),
            stderr: rx,
        };
        let mut seen = Vec::new();
        loop {
            match system.stderr.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("cetrack is up") => return Some(system),
                Ok(line) if line.contains("cannot listen") => return None,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no `cetrack is up` from cetrack up ({e}); it said: {seen:#?}"),
            }
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        let domains: Vec<String> = cetrack_contract::Domain::ALL
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{}=127.0.0.1:{}", d.slug(), self.base + 1 + i as u16))
            .collect();
        Command::new(cli_binary())
            .env_remove("CETRACK_TOKEN")
            .env("CETRACK_DATA_DIR", &self.data)
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.base))
            .arg("--domain-addr")
            .arg(domains.join(","))
            .args(args)
            .output_within()
            .expect("run cetrack")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "cetrack {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("json output")
    }

    /// SIGTERM, then the exit status must be success.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        // Polls for the exit (std has no wait with a timeout), bounded.
        let deadline = std::time::Instant::now() + COMMAND_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cetrack up did not exit within {COMMAND_LIMIT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "cetrack up exited with {status}");
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seed_lines() -> usize {
    DATA.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Clears what the server assigns, so records from two systems compare.
fn comparable(mut i: Initiative) -> Initiative {
    i.create_time = None;
    i.update_time = None;
    i.revision = 0;
    i.etag.clear();
    for p in &mut i.progress_updates {
        p.record_time = None;
    }
    for s in &mut i.status_history {
        s.record_time = None;
    }
    i
}

fn records(jsonl: &str) -> Vec<Initiative> {
    let mut v: Vec<Initiative> = jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("initiative line"))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[test]
fn up_seeds_serves_every_port_and_a_second_start_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = System::start(dir.path(), true);
    for port in system.base..system.base + 8 {
        let out = system.cli(&["health", "--addr", &format!("127.0.0.1:{port}")]);
        assert!(out.status.success(), "port {port} is not serving: {out:?}");
    }
    let overview: Overview = system.json(&["overview"]);
    let totals = overview.totals.expect("totals");
    assert_eq!(totals.initiative_count as usize, seed_lines());
    assert!(totals.complete);
    for d in &overview.domains {
        assert!(
            d.summary.as_ref().expect("summary").initiative_count > 0,
            "domain {} is empty",
            d.domain
        );
    }

    // NSF appears in several domains under one id; its portfolio lists all of them.
    let nsf_records: Vec<&str> = DATA.lines().filter(|l| l.contains("\"us-nsf\"")).collect();
    let portfolio: OrganizationPortfolio = system.json(&["portfolio", "us-nsf"]);
    assert_eq!(portfolio.entries.len(), nsf_records.len());
    let domains: std::collections::BTreeSet<i32> =
        portfolio.entries.iter().map(|e| e.domain).collect();
    assert!(domains.len() >= 2, "NSF is in {} domain(s)", domains.len());

    // The regenerated fact sheet has every domain section and every seeded commitment.
    let sheet: FactSheet = system.json(&["fact-sheet"]);
    for d in cetrack_contract::Domain::ALL {
        assert!(
            sheet.markdown.contains(&format!("## {}", d.title())),
            "no section for {d}"
        );
    }
    for line in DATA.lines().filter(|l| !l.trim().is_empty()) {
        let req: cetrack_contract::proto::CreateInitiativeRequest =
            serde_json::from_str(line).expect("seed line");
        let title = req.initiative.expect("initiative").title;
        assert!(
            sheet.markdown.contains(&format!("**{title}**")),
            "fact sheet lacks {title}"
        );
    }
    assert_eq!(sheet.initiative_count as usize, seed_lines());
    let files = tempfile::tempdir().expect("tempdir");
    let first = files.path().join("first.jsonl");
    system.ok(&["export", "--out", first.to_str().expect("path")]);
    system.stop();

    // Seeding again writes nothing: every record as it was, to its revision
    // and etag.
    let again = System::start(dir.path(), true);
    let overview: Overview = again.json(&["overview"]);
    assert_eq!(
        overview.totals.expect("totals").initiative_count as usize,
        seed_lines()
    );
    let second = files.path().join("second.jsonl");
    again.ok(&["export", "--out", second.to_str().expect("path")]);
    again.stop();
    let read = |p: &Path| std::fs::read_to_string(p).expect("export");
    assert_eq!(records(&read(&second)), records(&read(&first)));
}

#[test]
fn export_import_export_is_lossless() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let a = System::start(a_dir.path(), true);
    // Progress, a met milestone and a dated status change make the records
    // more than the seed (the dialogue itself comes with two statuses).
    let name = "domains/biotech/initiatives/nsf-msit-bioeconomy-rd";
    a.ok(&["status", name, "in-progress", "--since", "2024-Q2"]);
    a.ok(&["status", name, "suspended", "--since", "2025-03"]);
    a.ok(&[
        "progress",
        name,
        "--org",
        "us-nsf",
        "--as-of",
        "2024-06",
        "--text",
        "First joint call",
        "--assessment",
        "limited",
    ]);
    a.ok(&[
        "progress",
        name,
        "--org",
        "kr-msit",
        "--as-of",
        "2024-09-30",
        "--text",
        "Awards made",
    ]);
    let files = tempfile::tempdir().expect("tempdir");
    let first = files.path().join("a.jsonl");
    a.ok(&["export", "--out", first.to_str().expect("path")]);

    let b = System::start(b_dir.path(), false);
    b.ok(&["import", first.to_str().expect("path")]);
    let second = files.path().join("b.jsonl");
    b.ok(&["export", "--out", second.to_str().expect("path")]);
    // A second import changes nothing.
    b.ok(&["import", first.to_str().expect("path")]);
    let third = files.path().join("c.jsonl");
    b.ok(&["export", "--out", third.to_str().expect("path")]);

    let original = records(&std::fs::read_to_string(&first).expect("read"));
    let moved = original
        .iter()
        .find(|i| i.name == name)
        .expect("the record moved");
    assert_eq!(moved.status_history.len(), 3, "{moved:?}");
    let copy = records(&std::fs::read_to_string(&second).expect("read"));
    assert_eq!(original.len(), seed_lines());
    assert_eq!(
        original.into_iter().map(comparable).collect::<Vec<_>>(),
        copy.clone().into_iter().map(comparable).collect::<Vec<_>>()
    );
    assert_eq!(
        copy,
        records(&std::fs::read_to_string(&third).expect("read"))
    );

    // Deleted after its import, a record comes back with a third import,
    // progress updates included: the first import's request ids answer with
    // a replay (cetrack-replayed), and the import does not count a replay as
    // created.
    b.ok(&["delete", name]);
    let out = b.cli(&["import", first.to_str().expect("path")]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("imported: 1 created (1 of them imported before and deleted since)"),
        "{said}"
    );
    let fourth = files.path().join("d.jsonl");
    b.ok(&["export", "--out", fourth.to_str().expect("path")]);
    assert_eq!(
        copy.into_iter().map(comparable).collect::<Vec<_>>(),
        records(&std::fs::read_to_string(&fourth).expect("read"))
            .into_iter()
            .map(comparable)
            .collect::<Vec<_>>()
    );
    a.stop();
    b.stop();
}

#[test]
fn backup_of_a_running_store_restores_into_an_empty_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let a = System::start(dir.path(), true);
    let name = "domains/quantum/initiatives/nist-kriss-superconducting-quantum";
    let exists = a.cli(&["show", name]).status.success();
    let target = if exists {
        name.to_string()
    } else {
        let listed: cetrack_contract::proto::ListInitiativesResponse = a.json(&["list", "quantum"]);
        listed.initiatives[0].name.clone()
    };
    a.ok(&[
        "progress",
        &target,
        "--org",
        "us-nist",
        "--as-of",
        "2024",
        "--text",
        "Joint work began",
    ]);
    let backup = files.path().join("quantum.bak");
    // Backups hold every record: a token without the admin role gets none.
    let viewer = a.ok(&["token", "issue", "--sub", "reader", "--roles", "viewer"]);
    let denied = a.cli(&[
        "--token",
        viewer.trim(),
        "backup",
        "quantum",
        "--out",
        backup.to_str().expect("path"),
    ]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("PermissionDenied"),
        "{denied:?}"
    );
    assert!(!backup.exists());
    a.ok(&["backup", "quantum", "--out", backup.to_str().expect("path")]);
    let before = a.ok(&["export", "--in", "quantum"]);
    let history_before = a.ok(&["--output", "json", "history", &target]);
    a.stop();

    // Restoring into a store that is not empty is refused.
    let refused = Command::new(cli_binary())
        .args([
            "restore",
            "quantum",
            "--from",
            backup.to_str().expect("path"),
            "--data-dir",
        ])
        .arg(dir.path().join("quantum"))
        .output_within()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));

    let restored_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(cli_binary())
        .args([
            "restore",
            "quantum",
            "--from",
            backup.to_str().expect("path"),
            "--data-dir",
        ])
        .arg(restored_dir.path().join("quantum"))
        .output_within()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = System::start(restored_dir.path(), false);
    assert_eq!(
        b.ok(&["export", "--in", "quantum"]),
        before,
        "records, revisions and etags are identical"
    );
    assert_eq!(
        b.ok(&["--output", "json", "history", &target]),
        history_before
    );
    b.stop();
}

#[test]
fn errors_exit_nonzero_with_the_servers_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let s = System::start(dir.path(), false);
    let out = s.cli(&["show", "domains/quantum/initiatives/nothing-here"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{out:?}"
    );

    let bad = files.path().join("bad.json");
    std::fs::write(&bad, r#"{"title":"","instrument":"INSTRUMENT_MOU","participants":[{"organization":{"id":"us-nsf","name":"NSF","countryCode":"XX","type":"ORGANIZATION_TYPE_MINISTRY_OR_AGENCY"},"role":"PARTICIPANT_ROLE_LEAD"}]}"#).expect("write");
    let out = s.cli(&[
        "create",
        "--domain",
        "quantum",
        "--file",
        bad.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(err.contains("initiative.title"), "{err}");
    assert!(
        err.contains("initiative.participants[0].organization.country_code"),
        "{err}"
    );
    s.stop();
}

#[test]
fn a_token_is_never_sent_in_plain_text_to_another_host() {
    // Refused before any connection is made (0.0.0.0 is this machine but not
    // a loopback address, so nothing would leave it even if the check broke).
    let out = Command::new(cli_binary())
        .env_remove("CETRACK_DATA_DIR")
        .args([
            "--token",
            "secret",
            "--addr",
            "http://0.0.0.0:9",
            "overview",
        ])
        .output_within()
        .expect("run cetrack");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to send a token in plain text"),
        "{err}"
    );
}

/// The commands of the README's "Using it" block, as written: the words
/// after `cargo run --release -p cetrack --` (the build `up` made),
/// continuation lines joined, comments
/// dropped.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("## Using it")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block under `## Using it` in README.md");
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("cargo run --release -p cetrack -- ")
        })
        .map(|line| {
            // Words, with double-quoted ones kept whole; `#` starts a comment.
            let mut words = Vec::new();
            let mut word = String::new();
            let (mut quoted, mut any) = (false, false);
            for c in line.chars() {
                match c {
                    '"' => {
                        quoted = !quoted;
                        any = true;
                    }
                    '#' if !quoted && !any => break,
                    c if c.is_whitespace() && !quoted => {
                        if any {
                            words.push(std::mem::take(&mut word));
                            any = false;
                        }
                    }
                    c => {
                        word.push(c);
                        any = true;
                    }
                }
            }
            if any {
                words.push(word);
            }
            words
        })
        .collect()
}

#[test]
fn the_readme_commands_run_as_written() {
    let commands = readme_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("cetrack-data");
    let system = System::start(&data, true);
    // `cetrack up` gave its gateway an identity of its own.
    assert!(data.join("auth/gateway.token").exists());
    for args in &commands {
        let mut cmd = Command::new(cli_binary());
        // Where this system runs, as a user elsewhere would set it; the
        // command's own words unchanged.
        cmd.env_remove("CETRACK_TOKEN")
            .env_remove("CETRACK_DOMAIN_ADDRS")
            .env("CETRACK_ADDR", format!("127.0.0.1:{}", system.base))
            .current_dir(work.path())
            .args(args);
        if args[0] == "watch" {
            // Runs until stopped: it must print the first change.
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn watch");
            let stdout = child.stdout.take().expect("stdout");
            let first = BufReader::new(stdout).lines().next();
            assert!(
                matches!(first, Some(Ok(ref l)) if !l.is_empty()),
                "watch printed {first:?}"
            );
            assert!(child.try_wait().expect("wait").is_none(), "watch stopped");
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        let out = cmd.output_within().expect("run cetrack");
        assert!(
            out.status.success(),
            "README: cetrack {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(work.path().join("fact-sheet.md").exists());
    assert!(work.path().join("all.jsonl").exists());
    system.stop();
}

/// A command whose reader went away (`cetrack ... | head`) ends quietly with
/// the status of a Unix tool killed by SIGPIPE (141), instead of panicking on
/// its failed print.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::Read;
    let keys = tempfile::tempdir().expect("tempdir");
    let made = Command::new(cli_binary())
        .args(["keys", "init", "--dir"])
        .arg(keys.path())
        .output_within()
        .expect("run");
    assert!(made.status.success(), "{made:?}");
    // The reader is gone before the command starts: its stdout is a pipe
    // whose reading end is already closed (dropping the reader after the
    // spawn raced with the command's print on a loaded machine).
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    let mut child = Command::new(cli_binary())
        .args([
            "token", "issue", "--sub", "reader", "--roles", "viewer", "--keys",
        ])
        .arg(keys.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    let mut err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut stderr = String::new();
        let _ = err.read_to_string(&mut stderr);
        let _ = tx.send((stderr, child.wait()));
    });
    let (stderr, status) = rx
        .recv_timeout(COMMAND_LIMIT)
        .expect("the command did not end");
    let status = status.expect("wait");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(141), "{status:?} {stderr}");
}
