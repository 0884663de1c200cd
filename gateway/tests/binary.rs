//! The `cetrack-gateway` binary as a process: it serves health and
//! reflection, answers the overview with every domain unavailable when none is
//! running, rejects a malformed `--domain`, and exits 0 on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use cetrack_shared::proto::gateway_service_client::GatewayServiceClient;
use cetrack_shared::proto::GetOverviewRequest;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

const BIN: &str = env!("CARGO_BIN_EXE_cetrack-gateway");

#[tokio::test]
async fn gateway_binary_serves_degrades_and_stops_cleanly() -> anyhow::Result<()> {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--domain-timeout-ms", "500"])
        // Every domain points at a port nothing listens on.
        .env("CETRACK_DOMAINS", "semiconductors=http://127.0.0.1:9,biotech=http://127.0.0.1:9,energy=http://127.0.0.1:9,quantum=http://127.0.0.1:9,ai=http://127.0.0.1:9,connectivity=http://127.0.0.1:9,partnerships=http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("gateway serving") {
                let start = line.find("\"addr\":\"").map(|i| i + 8);
                if let Some(start) = start {
                    let end = start + line[start..].find('"').unwrap_or(0);
                    return anyhow::Ok(line[start..end].to_string());
                }
            }
        }
        anyhow::bail!("the gateway ended before serving")
    })
    .await??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "cet.v1.GatewayService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of `{service}`");
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let mut services = Vec::new();
    while let Some(r) = responses.message().await? {
        if let Some(MessageResponse::ListServicesResponse(list)) = r.message_response {
            services.extend(list.service.into_iter().map(|s| s.name));
        }
    }
    services.sort();
    assert_eq!(
        services,
        [
            "cet.v1.GatewayService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );

    let overview = GatewayServiceClient::new(channel)
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    assert_eq!(overview.domains.len(), 7);
    assert!(overview
        .domains
        .iter()
        .all(|d| !d.available && !d.error.is_empty()));
    assert!(!overview.totals.expect("totals").complete);

    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
    assert!(status.success(), "exit status {status}");
    Ok(())
}

#[tokio::test]
async fn a_malformed_domain_address_is_refused() -> anyhow::Result<()> {
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--domain",
            "chemistry=http://127.0.0.1:1",
        ])
        .output()
        .await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown domain `chemistry`"));
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--domain", "quantum=ftp://x"])
        .output()
        .await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an http:// or https:// URL"));
    Ok(())
}
