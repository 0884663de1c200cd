//! The `cetrack-gateway` binary as a process: it serves health and
//! reflection, answers the overview with every domain unavailable when none is
//! running, rejects a malformed `--domain`, and exits 0 on SIGTERM.

use cetrack_contract::proto::GetOverviewRequest;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn gateway_binary_serves_degrades_and_stops_cleanly() -> anyhow::Result<()> {
    // Every domain points at a port nothing listens on.
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--domain-timeout-ms",
        "500",
    ]
    .map(String::from)
    .to_vec();
    for d in Domain::ALL {
        args.extend(["--domain".into(), format!("{d}=http://127.0.0.1:9")]);
    }
    let gateway = spawn_server(&binary("cetrack-gateway")?, &args).await?;

    for service in ["", "cet.v1.GatewayService"] {
        let status = health_status(gateway.addr, service).await?;
        assert_eq!(status, ServingStatus::Serving, "health of `{service}`");
    }
    let (mut services, _) = reflected_services(gateway.addr).await?;
    services.sort();
    assert_eq!(
        services,
        [
            "cet.v1.DomainService",
            "cet.v1.GatewayService",
            "cet.v1.StoreAdminService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );

    let overview = gateway_as(gateway.addr, Some(&admin_token()))
        .await?
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    assert_eq!(overview.domains.len(), 7);
    assert!(overview
        .domains
        .iter()
        .all(|d| !d.available && !d.error.is_empty()));
    assert!(!overview.totals.expect("totals").complete);

    let exited = gateway.terminate().await?;
    assert!(exited.status.success(), "exit status {}", exited.status);
    Ok(())
}

#[tokio::test]
async fn a_malformed_domain_address_is_refused() -> anyhow::Result<()> {
    let exe = binary("cetrack-gateway")?;
    let out = run_to_exit(
        &exe,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--domain".as_ref(),
            "chemistry=http://127.0.0.1:1".as_ref(),
        ],
    )
    .await?;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("unknown domain `chemistry`"),
        "{}",
        out.stderr
    );
    let out = run_to_exit(
        &exe,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--domain".as_ref(),
            "quantum=ftp://x".as_ref(),
        ],
    )
    .await?;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("is not an http:// or https:// URL"),
        "{}",
        out.stderr
    );
    Ok(())
}
