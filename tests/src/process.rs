//! Server binaries as child processes: the one way the tests start them
//! ([`spawn_server`]), signal, kill and restart them, and the process-level
//! check of a domain binary (health, reflection, a write kept across a
//! SIGTERM and a restart).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::{connect, create_request, sample};

/// The gRPC name of the domain API.
pub const DOMAIN_SERVICE: &str = "cet.v1.DomainService";

/// How long a process may take to start serving or to exit after a signal.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// A server binary running as a child process: where it serves, its
/// standard error kept (the lines up to `serving`, and the rest collected
/// until it exits).
pub struct ServerProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// Where it serves gRPC (the `addr` of its `serving` line).
    pub addr: SocketAddr,
    /// Its JSON log lines up to and including the `serving` line.
    pub startup_log: Vec<String>,
    /// Reads the rest of stderr; ends with every later line at EOF.
    log: JoinHandle<Vec<String>>,
}

/// How a child process ended and what it wrote to stderr.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Every line it wrote to stderr.
    pub stderr: Vec<String>,
}

impl Exited {
    /// Stderr as one string.
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

/// The one way the tests start a server binary: `exe` with `args` and JSON
/// logs, the environment's `CETRACK_*` logging, address and metrics
/// settings removed (so a developer's `CETRACK_LOG=warn` cannot hide the
/// `serving` line); waits (at most [`PROCESS_TIMEOUT`]) until it logs
/// `serving`, and fails with its stderr if it exits first.
pub async fn spawn_server<I, S>(exe: &Path, args: I) -> anyhow::Result<ServerProcess>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .args(crate::jwt_args())
        .args(["--log-format", "json"])
        .env_remove("CETRACK_LOG")
        .env_remove("CETRACK_METRICS_LISTEN")
        .env_remove("CETRACK_LISTEN")
        .env_remove("CETRACK_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut startup_log = Vec::new();
    let addr = tokio::time::timeout(PROCESS_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            let addr = logged(&line, "serving");
            startup_log.push(line);
            if let Some(addr) = addr {
                return Ok(addr);
            }
        }
        bail!(
            "{} ended before serving; stderr:\n{}",
            exe.display(),
            startup_log.join("\n")
        )
    })
    .await
    .with_context(|| format!("{} did not start serving in time", exe.display()))??;
    let log = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    Ok(ServerProcess {
        child,
        addr,
        startup_log,
        log,
    })
}

/// The `addr` of a JSON log line whose message is `message`.
fn logged(line: &str, message: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != message {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}

/// Starts the domain binary `exe` on 127.0.0.1:0 over `dir`.
pub async fn spawn_service(exe: &Path, dir: &Path) -> anyhow::Result<ServerProcess> {
    spawn_server(
        exe,
        [
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ],
    )
    .await
}

/// Starts the binary of `domain` on 127.0.0.1:0 over `dir`.
pub async fn spawn_domain(domain: Domain, dir: &Path) -> anyhow::Result<ServerProcess> {
    spawn_service(&crate::binary(&domain.binary())?, dir).await
}

/// Starts the binary of `domain` on 127.0.0.1:0 over `dir` with its
/// Prometheus endpoint on 127.0.0.1:0; the process and where it serves
/// metrics.
pub async fn spawn_domain_with_metrics(
    domain: Domain,
    dir: &Path,
) -> anyhow::Result<(ServerProcess, SocketAddr)> {
    let process = spawn_server(
        &crate::binary(&domain.binary())?,
        [
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--metrics-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ],
    )
    .await?;
    let metrics = process.logged_addr("serving metrics")?;
    Ok((process, metrics))
}

/// Starts the gateway binary over the domains at `domains`, on 127.0.0.1:0
/// with its Prometheus endpoint on 127.0.0.1:0, no dashboard, and the test
/// gateways' own identity (so that it follows the domains' change streams
/// and answers the overview of today from memory); the process and where it
/// serves metrics.
pub async fn spawn_gateway_with_metrics(
    domains: impl IntoIterator<Item = (Domain, SocketAddr)>,
) -> anyhow::Result<(ServerProcess, SocketAddr)> {
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "off".into(),
        "--metrics-listen".into(),
        "127.0.0.1:0".into(),
        "--service-token-file".into(),
        crate::gateway_service_token_file().display().to_string(),
    ];
    for (d, a) in domains {
        args.extend(["--domain".to_string(), format!("{d}=http://{a}")]);
    }
    let process = spawn_server(&crate::binary("cetrack-gateway")?, args).await?;
    let metrics = process.logged_addr("serving metrics")?;
    Ok((process, metrics))
}

/// Starts the binary of `domain` over `dir` listening on `addr` (e.g. the
/// address of a killed instance, to restart it where its clients expect it).
pub async fn spawn_domain_at(
    domain: Domain,
    dir: &Path,
    addr: SocketAddr,
) -> anyhow::Result<ServerProcess> {
    let listen = addr.to_string();
    let p = spawn_server(
        &crate::binary(&domain.binary())?,
        [
            "--listen".as_ref(),
            listen.as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ],
    )
    .await?;
    if p.addr != addr {
        bail!(
            "asked to listen on {addr}, the process serves on {}",
            p.addr
        );
    }
    Ok(p)
}

/// Sends `signal` to the process `id` of a child that has not been reaped.
pub fn send_signal(child: &tokio::process::Child, signal: Signal) -> anyhow::Result<()> {
    let id = child.id().context("the process has already been reaped")?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(id)?);
    nix::sys::signal::kill(pid, signal)?;
    Ok(())
}

/// Waits for `child` to exit, at most `timeout`.
pub async fn wait_exit(
    child: &mut tokio::process::Child,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    tokio::time::timeout(timeout, child.wait())
        .await
        .with_context(|| format!("the process did not exit within {timeout:?}"))?
        .map_err(Into::into)
}

impl ServerProcess {
    /// The address in the field `addr` of the startup log line whose message
    /// is `message` (e.g. `serving metrics`).
    pub fn logged_addr(&self, message: &str) -> anyhow::Result<SocketAddr> {
        self.startup_log
            .iter()
            .find_map(|line| logged(line, message))
            .with_context(|| {
                format!(
                    "no `{message}` line with an address in:\n{}",
                    self.startup_log.join("\n")
                )
            })
    }

    /// Sends `signal` to the process. For SIGSTOP and SIGCONT, returns once
    /// the process is really stopped (or running again), as /proc shows it:
    /// kill(2) returns once the signal is sent, not once it has taken effect,
    /// and a test must never race it.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        send_signal(&self.child, signal)?;
        let id = self.child.id().context("the process has been reaped")?;
        let want_stopped = match signal {
            Signal::SIGSTOP => true,
            Signal::SIGCONT => false,
            _ => return Ok(()),
        };
        let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{id}/stat"))?;
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
                .context("unreadable /proc stat")?;
            if (state == 'T') == want_stopped {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("process {id} is still in state {state} after {signal}");
            }
            std::thread::yield_now();
        }
    }

    /// Kills the process with SIGKILL (no chance to shut down or flush) and
    /// waits until it is gone.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        wait_exit(&mut self.child, PROCESS_TIMEOUT).await?;
        Ok(())
    }

    /// Sends SIGTERM and waits (at most [`PROCESS_TIMEOUT`]) for the process
    /// to exit.
    pub async fn terminate(self) -> anyhow::Result<Exited> {
        self.signal(Signal::SIGTERM)?;
        self.wait().await
    }

    /// Waits (at most [`PROCESS_TIMEOUT`]) for the process to exit and for
    /// its stderr to end.
    pub async fn wait(mut self) -> anyhow::Result<Exited> {
        let status = wait_exit(&mut self.child, PROCESS_TIMEOUT).await?;
        let rest = tokio::time::timeout(PROCESS_TIMEOUT, self.log)
            .await
            .context("stderr stayed open after the process exited")??;
        let mut stderr = self.startup_log;
        stderr.extend(rest);
        Ok(Exited { status, stderr })
    }
}

/// Runs `exe` with `args` to completion (at most [`PROCESS_TIMEOUT`]) with
/// JSON logs, and returns its status, stdout and stderr.
pub async fn run_to_exit(exe: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<ProcessOutput> {
    let child = tokio::process::Command::new(exe)
        .args(args)
        .args(crate::jwt_args())
        .env("CETRACK_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let out = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{} did not exit in time", exe.display()))??;
    Ok(ProcessOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// What [`run_to_exit`] returns.
#[derive(Debug)]
pub struct ProcessOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// The grpc.health.v1 status the server at `addr` reports for `service`.
pub async fn health_status(addr: SocketAddr, service: &str) -> anyhow::Result<ServingStatus> {
    let mut client = HealthClient::new(channel(addr).await?);
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?
        .into_inner();
    ServingStatus::try_from(response.status).map_err(Into::into)
}

/// The services the server at `addr` lists through server reflection v1,
/// and the number of file descriptors it returns for the symbol
/// [`DOMAIN_SERVICE`].
pub async fn reflected_services(addr: SocketAddr) -> anyhow::Result<(Vec<String>, usize)> {
    let mut client = ServerReflectionClient::new(channel(addr).await?);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(DOMAIN_SERVICE.into()),
    ]
    .map(|r| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut services = None;
    let mut files = None;
    while let Some(response) = responses.message().await? {
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                services = Some(list.service.into_iter().map(|s| s.name).collect());
            }
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                files = Some(f.file_descriptor_proto.len());
            }
            Some(MessageResponse::ErrorResponse(e)) => {
                bail!("reflection error {}: {}", e.error_code, e.error_message)
            }
            other => bail!("unexpected reflection response {other:?}"),
        }
    }
    Ok((
        services.context("no list of services")?,
        files.context("no file descriptors")?,
    ))
}

/// Checks the binary `exe` of `domain` as a process: `--help` works; over a
/// fresh data directory it serves grpc.health.v1 SERVING for the server
/// ("") and for [`DOMAIN_SERVICE`], lists [`DOMAIN_SERVICE`] through server
/// reflection v1, accepts a write; on SIGTERM it exits with code 0; started
/// again over the same directory it still holds the write, and stops cleanly
/// again.
pub async fn check_service_binary(domain: Domain, exe: &Path) -> anyhow::Result<()> {
    let help = run_to_exit(exe, &["--help".as_ref()]).await?;
    ensure!(help.status.success(), "--help failed: {help:?}");
    for option in ["--listen", "--data-dir", "--log-format"] {
        ensure!(
            help.stdout.contains(option),
            "--help does not mention {option}:\n{}",
            help.stdout
        );
    }

    let dir = tempfile::tempdir()?;
    let server = spawn_service(exe, dir.path()).await?;
    for service in ["", DOMAIN_SERVICE] {
        let status = health_status(server.addr, service).await?;
        ensure!(
            status == ServingStatus::Serving,
            "health of {service:?} is {status:?}, not SERVING"
        );
    }
    let (services, files) = reflected_services(server.addr).await?;
    ensure!(
        services.iter().any(|s| s == DOMAIN_SERVICE),
        "reflection lists {services:?}, not {DOMAIN_SERVICE}"
    );
    let mut listed = services.clone();
    listed.sort();
    ensure!(
        listed
            == [
                "cet.v1.DomainService",
                "cet.v1.StoreAdminService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
            ],
        "reflection lists {services:?}: exactly the services a domain serves are expected"
    );
    ensure!(
        files > 0,
        "reflection has no descriptor of {DOMAIN_SERVICE}"
    );

    let mut client = connect(server.addr).await?;
    let written = client
        .create_initiative(create_request(
            domain,
            "binary-check",
            sample(domain, "Written before a restart", 2027),
        ))
        .await
        .context("the write was refused")?
        .into_inner();
    ensure!(
        written.name == format!("{}/initiatives/binary-check", domain.parent()),
        "unexpected name {}",
        written.name
    );
    drop(client);

    let exited = server.terminate().await?;
    ensure!(
        exited.status.code() == Some(0),
        "after SIGTERM the process ended with {:?}; stderr:\n{}",
        exited.status,
        exited.stderr_text()
    );
    ensure!(
        !exited.stderr_text().contains("panicked"),
        "the process panicked:\n{}",
        exited.stderr_text()
    );

    let server = spawn_service(exe, dir.path()).await?;
    let mut client = connect(server.addr).await?;
    let read = client
        .get_initiative(GetInitiativeRequest {
            name: written.name.clone(),
        })
        .await
        .context("the write is gone after a restart")?
        .into_inner();
    ensure!(read == written, "after a restart the write reads {read:?}");
    drop(client);
    let exited = server.terminate().await?;
    ensure!(
        exited.status.code() == Some(0),
        "the second SIGTERM ended the process with {:?}; stderr:\n{}",
        exited.status,
        exited.stderr_text()
    );
    Ok(())
}

/// The resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib / 1024)
}
