//! The `main` of a server binary and the options every binary shares:
//! logging, signals, the metrics endpoint and exit codes.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::ValueEnum;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::serve::RunningServer;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Log format.
    #[arg(long, env = "CETRACK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `cetrack_store=debug`).
    #[arg(long, env = "CETRACK_LOG", default_value = "info")]
    pub log: String,
}

/// Starts logging to standard error.
pub fn init_tracing(args: &CommonArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Fires `token` on SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
        tracing::info!("signal received");
        token.cancel();
    });
}

/// Most threads a server keeps for blocking work (list and scan reads,
/// change-log reads, a backup for as long as it streams); more such work
/// waits for one. Each thread keeps memory of its own in the allocator:
/// with Tokio's default of 512, 64 concurrent lists grew a domain by 25 MiB
/// (the system allocator; 250 MiB with mimalloc), and two cores run no more
/// than a few at once anyway. Room is left for a few long backups.
pub const MAX_BLOCKING_THREADS: usize = 32;

/// The `main` of a server binary: starts the Tokio runtime, listens on
/// `listen`, serves metrics on `metrics_listen` when set, starts the server
/// with `start`, and waits until SIGTERM or SIGINT has shut it down. Exit 0
/// after a clean shutdown, 2 when the address, the metrics endpoint or the
/// server cannot start (e.g. a damaged store), 1 on any other failure.
pub fn serve_main<F, Fut>(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    start: F,
) -> ExitCode
where
    F: FnOnce(TcpListener, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<RunningServer>>,
{
    crate::tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%listen, error = %e, "cannot listen");
                return ExitCode::from(2);
            }
        };
        let shutdown = CancellationToken::new();
        cancel_on_signals(shutdown.clone());
        let metrics = match metrics_listen {
            None => None,
            Some(at) => match crate::metrics::start_metrics(at, shutdown.clone()).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve metrics");
                    return ExitCode::from(2);
                }
            },
        };
        let server = match start(listener, shutdown.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(2);
            }
        };
        let code = match server.task.await {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                ExitCode::FAILURE
            }
        };
        if let Some(m) = metrics {
            shutdown.cancel();
            let _ = m.task.await;
        }
        code
    })
}
