//! The `cetrack` command answers `--help` with its commands. (Having an
//! integration test also makes `cargo test --workspace` build the binary,
//! which the end-to-end tests in `tests/` run.)

#[test]
fn help_lists_the_commands() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cetrack"))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the binary: {e}"));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "up",
        "overview",
        "search",
        "backup",
        "restore",
        "fact-sheet",
    ] {
        assert!(
            text.contains(command),
            "--help does not name {command}:\n{text}"
        );
    }
}
