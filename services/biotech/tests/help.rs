//! The `cetrack-biotech` binary answers `--help` with its options. (Having an
//! integration test also makes `cargo test --workspace` build the binary,
//! which the end-to-end tests in `tests/` start as a process.)

#[test]
fn help_lists_the_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cetrack-biotech"))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the binary: {e}"));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for option in ["--listen", "--data-dir", "--log-format", "--metrics-listen"] {
        assert!(
            text.contains(option),
            "--help does not name {option}:\n{text}"
        );
    }
}
