//! `cetrack`: runs the whole system (`cetrack up`) and talks to it.

mod backup;
mod client;
mod commands;
mod error;
mod keys;
mod output;
mod seed;
mod transfer;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use cetrack_contract::Domain;
use cetrack_server::init_tracing;
use cetrack_server::tls::ClientTlsArgs;
use clap::{Parser, Subcommand};

use crate::client::Endpoints;
use crate::output::Format;
use cetrack_contract::domain::parse_domain_url;

/// Track what governments commit to in technology-cooperation dialogues.
#[derive(Debug, Parser)]
#[command(name = "cetrack", version, propagate_version = true)]
struct Cli {
    /// The gateway's address (`host:port` or URL): every command goes
    /// through it (it routes each domain's calls).
    #[arg(
        long,
        global = true,
        env = "CETRACK_ADDR",
        default_value = "http://127.0.0.1:50050"
    )]
    addr: String,
    /// A domain service's own address as NAME=URL, to talk to it directly
    /// instead of through the gateway; repeat for several.
    #[arg(long = "domain-addr", global = true, env = "CETRACK_DOMAIN_ADDRS", value_delimiter = ',', value_parser = parse_domain_url)]
    domain_addrs: Vec<(Domain, String)>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// TLS towards `https://` addresses.
    #[command(flatten)]
    tls: ClientTlsArgs,
    /// The bearer token sent with every call [default: the admin token
    /// `cetrack up` keeps in ./cetrack-data/auth/admin.token, if any].
    #[arg(long, global = true, env = "CETRACK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the seven domain services and the gateway in this process.
    Up(up::UpArgs),
    /// Check that a server answers grpc.health.v1 SERVING (exit 0) or not (exit 1).
    Health(commands::admin::HealthArgs),
    /// Every domain's summary and the totals across domains.
    Overview(commands::views::OverviewArgs),
    /// Search initiatives across domains (through the gateway).
    Search(commands::views::SearchArgs),
    /// List the initiatives of one domain.
    List(commands::records::ListArgs),
    /// Show one initiative by resource name.
    Show {
        /// `domains/{domain}/initiatives/{id}`.
        name: String,
    },
    /// Create an initiative from a JSON file (an Initiative, or a CreateInitiativeRequest).
    Create(commands::records::CreateArgs),
    /// Update an initiative from a JSON file holding the Initiative with its name and etag.
    Update(commands::records::UpdateArgs),
    /// Delete an initiative (its history stays).
    Delete(commands::records::DeleteArgs),
    /// Add a progress update to an initiative.
    Progress(commands::records::ProgressArgs),
    /// Update one milestone of an initiative.
    Milestone(commands::records::MilestoneArgs),
    /// Change an initiative's lifecycle status, dated since when it holds.
    Status(commands::records::StatusArgs),
    /// Every revision of an initiative.
    History {
        /// `domains/{domain}/initiatives/{id}`.
        name: String,
    },
    /// Everything an organization takes part in, across domains.
    Portfolio(commands::views::PortfolioArgs),
    /// Milestones due in a window (and overdue), across domains.
    Timeline(commands::views::TimelineArgs),
    /// Follow every domain's changes.
    Watch(commands::views::WatchArgs),
    /// Write the joint fact sheet, annotated with status as of a day, as Markdown.
    FactSheet(commands::views::FactSheetArgs),
    /// Load the 2023-12-08 fact sheet into a running system (what is not there yet).
    Seed,
    /// Write every initiative as JSON Lines.
    Export {
        /// Output file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only these domains [default: all].
        #[arg(long = "in")]
        domains: Vec<Domain>,
    },
    /// Back up a domain's store while its service runs (a consistent
    /// snapshot; the token must grant the admin role).
    Backup {
        /// The domain.
        domain: Domain,
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign tokens with a local key (for local use and tests).
    #[command(subcommand)]
    Token(keys::TokenCommand),
    /// Make and rotate the signing keys servers verify tokens with.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Make TLS certificates: a CA, a server certificate for the given hosts
    /// and a client certificate (for mutual TLS), with no download.
    Certs {
        /// Where to write them (keys readable only by you).
        #[arg(long)]
        dir: PathBuf,
        /// Host names and addresses the servers are reached at.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
        hosts: Vec<String>,
        /// Days the certificates stay valid.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Restore a backup into an empty data directory (no service may be using it).
    Restore {
        /// The domain.
        domain: Domain,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The domain's data directory, e.g. ./cetrack-data/quantum.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Create the initiatives of a JSON Lines file that are not there yet.
    Import {
        /// The file (`-` for standard input).
        file: PathBuf,
    },
}

/// Lets a command whose reader went away (`cetrack list ... | head`) end
/// quietly, as Unix tools do, instead of panicking on its failed print.
/// Rust ignores SIGPIPE, so a print to a closed pipe panics with "failed
/// printing to stdout: Broken pipe": that panic, and only that, ends the
/// process silently with the status of a Unix tool killed by SIGPIPE (141).
/// SIGPIPE itself stays ignored: the gRPC connections write with `writev`,
/// which would raise it when a server goes away.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_on_closed_pipe();
    if let Command::Up(args) = &cli.command {
        init_tracing(&args.common);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let token = cli.token.clone().or_else(client::local_token);
    let tls = cli.tls.load()?;
    let endpoints = Endpoints::new(&cli.addr, &cli.domain_addrs, token, tls.clone())?;
    let out = cli.output;
    let c = &endpoints;
    match cli.command {
        Command::Up(args) => up::up(args).await?,
        Command::Health(args) => {
            return commands::admin::health(&cli.addr, tls.as_ref(), args).await
        }
        Command::Overview(args) => commands::views::overview(c, out, args).await?,
        Command::Search(args) => commands::views::search(c, out, args).await?,
        Command::List(args) => commands::records::list(c, out, args).await?,
        Command::Show { name } => commands::records::show(c, out, &name).await?,
        Command::Create(args) => commands::records::create(c, out, args).await?,
        Command::Update(args) => commands::records::update(c, out, args).await?,
        Command::Delete(args) => commands::records::delete(c, args).await?,
        Command::Progress(args) => commands::records::progress(c, out, args).await?,
        Command::Milestone(args) => commands::records::milestone(c, out, args).await?,
        Command::Status(args) => commands::records::set_status(c, out, args).await?,
        Command::History { name } => commands::records::history(c, out, &name).await?,
        Command::Portfolio(args) => commands::views::portfolio(c, out, args).await?,
        Command::Timeline(args) => commands::views::timeline(c, out, args).await?,
        Command::Watch(args) => commands::views::watch(c, out, args).await?,
        Command::FactSheet(args) => commands::views::fact_sheet(c, out, args).await?,
        Command::Seed => {
            let loaded = seed::load(c, seed::FACT_SHEET_2023_12_08).await?;
            eprintln!(
                "seeded the 2023-12-08 fact sheet: {} created, {} already present, {} seeded before and deleted since (left deleted)",
                loaded.created, loaded.present, loaded.deleted_since
            );
        }
        Command::Export { out: file, domains } => {
            let domains = if domains.is_empty() {
                Domain::ALL.to_vec()
            } else {
                domains
            };
            let n = match file {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    transfer::export(c, &domains, &mut f).await?
                }
                None => transfer::export(c, &domains, &mut std::io::stdout().lock()).await?,
            };
            eprintln!("exported {n} initiatives");
        }
        Command::Backup { domain, out: file } => backup::backup(c, domain, &file).await?,
        Command::Token(command) => keys::token(command)?,
        Command::Keys(command) => keys::keys(command)?,
        Command::Certs { dir, hosts, days } => {
            cetrack_server::tls::certs::make(&dir, &hosts, days)?;
            eprintln!(
                "made {}: ca.pem (clients trust it: --tls-ca), server.pem and server.key (--tls-cert, --tls-key) for {}, client.pem and client.key (mutual TLS)",
                dir.display(),
                hosts.join(", ")
            );
        }
        Command::Restore {
            domain,
            from,
            data_dir,
        } => backup::restore(domain, &from, &data_dir)?,
        Command::Import { file } => {
            let done = if file.as_os_str() == "-" {
                transfer::import(c, &mut std::io::stdin().lock()).await?
            } else {
                let f = std::fs::File::open(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                transfer::import(c, &mut std::io::BufReader::new(f)).await?
            };
            eprintln!(
                "imported: {} created ({} of them imported before and deleted since), {} already present",
                done.created, done.recreated, done.present
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
