//! Operating a server: `cetrack health`.

use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Options of `health`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HealthArgs {
    /// The service to ask about [default: the whole server].
    #[arg(long, default_value = "")]
    service: String,
    /// How long to wait for an answer, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

/// `cetrack health`: exit 0 when SERVING.
pub(crate) async fn health(
    addr: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
    args: HealthArgs,
) -> anyhow::Result<ExitCode> {
    let url = cetrack_contract::domain::normalize_url(addr).map_err(anyhow::Error::msg)?;
    let check = async {
        let channel = cetrack_server::tls::endpoint(&url, tls)?.connect().await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?
            .into_inner();
        anyhow::Ok(answer.status())
    };
    match tokio::time::timeout(Duration::from_millis(args.timeout_ms), check).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("{url}: SERVING");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(other)) => {
            println!("{url}: {}", other.as_str_name());
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(e)) => {
            println!("{url}: not serving: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            println!("{url}: no answer within {} ms", args.timeout_ms);
            Ok(ExitCode::FAILURE)
        }
    }
}
