//! The `cetrack-semiconductors` binary as a process: health, reflection, a write that
//! survives a SIGTERM (exit 0) and a restart, `--help`.

#[tokio::test]
async fn binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    cetrack_tests::check_service_binary(
        cetrack_shared::Domain::Semiconductors,
        std::path::Path::new(env!("CARGO_BIN_EXE_cetrack-semiconductors")),
    )
    .await
}
