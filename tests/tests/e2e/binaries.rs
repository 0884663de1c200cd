//! Each domain binary as a process: `--help`, health, reflection, a write
//! that survives a SIGTERM (exit 0) and a restart.

use cetrack_contract::Domain;

async fn check(domain: Domain) -> anyhow::Result<()> {
    cetrack_tests::check_service_binary(domain, &cetrack_tests::binary(&domain.binary())?).await
}

#[tokio::test]
async fn semiconductors_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Semiconductors).await
}

#[tokio::test]
async fn biotech_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Biotech).await
}

#[tokio::test]
async fn energy_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Energy).await
}

#[tokio::test]
async fn quantum_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Quantum).await
}

#[tokio::test]
async fn ai_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Ai).await
}

#[tokio::test]
async fn connectivity_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Connectivity).await
}

#[tokio::test]
async fn partnerships_binary_serves_stops_cleanly_and_keeps_writes() -> anyhow::Result<()> {
    check(Domain::Partnerships).await
}
