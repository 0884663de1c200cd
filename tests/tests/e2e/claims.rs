//! `docs/claims.md` names, for each promise of the README and the contract,
//! the tests that prove it: every test and file it names must exist, so that
//! the table cannot point at a test that was renamed or removed.

use std::path::{Path, PathBuf};

use anyhow::Context;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every `code span` of a line.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_test_the_claims_table_names_exists() -> anyhow::Result<()> {
    let root = workspace();
    let claims =
        std::fs::read_to_string(root.join("docs/claims.md")).context("reading docs/claims.md")?;
    let mut tests = 0;
    let mut files = 0;
    let rows = claims.lines().filter(|l| l.starts_with('|'));
    for span in rows.flat_map(code_spans) {
        if let Some((place, name)) = span.rsplit_once("::") {
            // `module::test` (an e2e module) or `path::test` (a unit test).
            let file = if place.contains('/') {
                root.join(place)
            } else {
                root.join("tests/tests/e2e").join(format!("{place}.rs"))
            };
            let source = std::fs::read_to_string(&file)
                .with_context(|| format!("`{span}`: no file {}", file.display()))?;
            anyhow::ensure!(
                source.contains(&format!("fn {name}(")),
                "`{span}`: {} has no test `{name}`",
                file.display()
            );
            tests += 1;
        } else if span.starts_with(".ci/") || span.starts_with("tests/") {
            anyhow::ensure!(root.join(span).exists(), "`{span}` does not exist");
            files += 1;
        }
    }
    assert!(
        tests >= 60 && files >= 5,
        "{tests} tests and {files} files named"
    );
    Ok(())
}
