//! One domain's initiatives: `list`, `show`, `create`, `update`, `delete`,
//! `progress`, `milestone`, `history`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use cetrack_contract::names::InitiativeName;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;

use super::*;
use crate::client::Endpoints;
use crate::error::StatusError;
use crate::output::{self, label, Format};

/// Options of `list`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ListArgs {
    /// The domain.
    #[arg(value_parser = domain_name)]
    domain: Domain,
    #[command(flatten)]
    filter: FilterArgs,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    page_size: i32,
    /// Continue from this page token.
    #[arg(long, default_value = "")]
    page_token: String,
    /// Fetch every page.
    #[arg(long)]
    all: bool,
}

/// `cetrack list`.
pub(crate) async fn list(c: &Endpoints, out: Format, args: ListArgs) -> anyhow::Result<()> {
    let mut client = c.domain(args.domain).await?;
    let mut token = args.page_token.clone();
    let mut items = Vec::new();
    loop {
        let page = client
            .list_initiatives(ListInitiativesRequest {
                parent: args.domain.parent(),
                page_size: args.page_size,
                page_token: token,
                filter: Some(args.filter.filter()),
            })
            .await
            .map_err(StatusError)?
            .into_inner();
        items.extend(page.initiatives);
        token = page.next_page_token;
        if !args.all || token.is_empty() {
            break;
        }
    }
    let response = ListInitiativesResponse {
        initiatives: items,
        next_page_token: token,
    };
    if out == Format::Json {
        return output::json(&response);
    }
    println!("{}", output::initiatives(&response.initiatives));
    if !response.next_page_token.is_empty() {
        eprintln!("more: --page-token {}", response.next_page_token);
    }
    Ok(())
}

/// `cetrack show`.
pub(crate) async fn show(c: &Endpoints, out: Format, name: &str) -> anyhow::Result<()> {
    initiative_name(name)?;
    let i = c
        .gateway()
        .await?
        .get_initiative(GetInitiativeRequest {
            name: name.to_string(),
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// Options of `create`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CreateArgs {
    /// A JSON file: an Initiative (with --domain, and --id or its `name`), or a
    /// full CreateInitiativeRequest.
    #[arg(long)]
    file: PathBuf,
    /// The domain, when the file holds an Initiative without a name.
    #[arg(long, value_parser = domain_name)]
    domain: Option<Domain>,
    /// The initiative id [default: from the file's name, or generated].
    #[arg(long)]
    id: Option<String>,
    /// Idempotency key: a retry with the same key creates nothing more.
    #[arg(long)]
    request_id: Option<String>,
    /// Who makes the change.
    #[arg(long, default_value = "cli")]
    reporter: String,
}

fn read_json(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `cetrack create`.
pub(crate) async fn create(c: &Endpoints, out: Format, args: CreateArgs) -> anyhow::Result<()> {
    let value = read_json(&args.file)?;
    let mut req: CreateInitiativeRequest = if value.get("initiative").is_some() {
        serde_json::from_value(value)?
    } else {
        let init: Initiative = serde_json::from_value(value)?;
        let from_name = InitiativeName::parse(&init.name, "name").ok();
        let domain = args
            .domain
            .or(from_name.as_ref().map(|n| n.domain))
            .context("say which domain with --domain (or give the initiative a name)")?;
        CreateInitiativeRequest {
            parent: domain.parent(),
            initiative_id: from_name.map(|n| n.id).unwrap_or_default(),
            initiative: Some(init),
            request_id: String::new(),
            reporter: String::new(),
        }
    };
    if let Some(id) = args.id {
        req.initiative_id = id;
    }
    if let Some(r) = args.request_id {
        req.request_id = r;
    }
    if req.reporter.is_empty() {
        req.reporter = args.reporter;
    }
    let domain = cetrack_contract::names::parse_parent(&req.parent, "parent")
        .map_err(|v| anyhow!("{}", v.description))?;
    let i = c
        .domain(domain)
        .await?
        .create_initiative(req)
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// Options of `update`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpdateArgs {
    /// A JSON file holding the Initiative with its `name`, the new values and
    /// the `etag` last read (empty etag: unconditional).
    #[arg(long)]
    file: PathBuf,
    /// The fields to change, comma-separated (e.g. status,milestones), or `*`.
    #[arg(long, value_delimiter = ',', required = true)]
    mask: Vec<String>,
    /// Idempotency key.
    #[arg(long, default_value = "")]
    request_id: String,
    /// Who makes the change.
    #[arg(long, default_value = "cli")]
    reporter: String,
}

/// `cetrack update`.
pub(crate) async fn update(c: &Endpoints, out: Format, args: UpdateArgs) -> anyhow::Result<()> {
    let init: Initiative = serde_json::from_value(read_json(&args.file)?)?;
    let name = initiative_name(&init.name)?;
    let i = c
        .domain(name.domain)
        .await?
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(init),
            update_mask: Some(pbjson_types::FieldMask { paths: args.mask }),
            request_id: args.request_id,
            reporter: args.reporter,
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// Options of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeleteArgs {
    /// `domains/{domain}/initiatives/{id}`.
    name: String,
    /// The etag last read (empty: unconditional).
    #[arg(long, default_value = "")]
    etag: String,
    /// Who makes the change.
    #[arg(long, default_value = "cli")]
    reporter: String,
}

/// `cetrack delete`.
pub(crate) async fn delete(c: &Endpoints, args: DeleteArgs) -> anyhow::Result<()> {
    let name = initiative_name(&args.name)?;
    c.domain(name.domain)
        .await?
        .delete_initiative(DeleteInitiativeRequest {
            name: args.name.clone(),
            etag: args.etag,
            reporter: args.reporter,
            request_id: String::new(),
        })
        .await
        .map_err(StatusError)?;
    eprintln!("deleted {}", args.name);
    Ok(())
}

/// Options of `progress`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProgressArgs {
    /// `domains/{domain}/initiatives/{id}`.
    name: String,
    /// The reporting organization's id.
    #[arg(long)]
    org: String,
    /// What happened.
    #[arg(long)]
    text: String,
    /// The date the report speaks for (2024, 2024-Q1, 2024-03, 2024-03-15).
    #[arg(long, value_parser = approx)]
    as_of: ApproximateDate,
    /// Completion (not-started, limited, substantial, complete).
    #[arg(long, value_parser = assessment)]
    assessment: Option<i32>,
    /// Evidence links; repeatable.
    #[arg(long)]
    evidence: Vec<String>,
    /// The etag last read (empty: unconditional).
    #[arg(long, default_value = "")]
    etag: String,
    /// Idempotency key.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// `cetrack progress`.
pub(crate) async fn progress(c: &Endpoints, out: Format, args: ProgressArgs) -> anyhow::Result<()> {
    let name = initiative_name(&args.name)?;
    let i = c
        .domain(name.domain)
        .await?
        .add_progress_update(AddProgressUpdateRequest {
            name: args.name,
            progress_update: Some(ProgressUpdate {
                as_of: Some(args.as_of),
                reporting_organization_id: args.org,
                text: args.text,
                assessment: args.assessment.unwrap_or_default(),
                evidence_links: args.evidence,
                ..Default::default()
            }),
            etag: args.etag,
            request_id: args.request_id,
            reporter: String::new(),
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// Options of `milestone`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MilestoneArgs {
    /// `domains/{domain}/initiatives/{id}`.
    name: String,
    /// The milestone's id.
    milestone: String,
    /// New status (scheduled, met, partially-met, not-met, cancelled).
    #[arg(long, value_parser = milestone_status)]
    status: Option<i32>,
    /// When it was met.
    #[arg(long, value_parser = approx)]
    date_met: Option<ApproximateDate>,
    /// New due date.
    #[arg(long, value_parser = approx)]
    due: Option<ApproximateDate>,
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// Evidence links (replace the list); repeatable.
    #[arg(long)]
    evidence: Vec<String>,
    /// The etag last read (empty: unconditional).
    #[arg(long, default_value = "")]
    etag: String,
    /// Who makes the change.
    #[arg(long, default_value = "cli")]
    reporter: String,
}

/// `cetrack milestone`.
pub(crate) async fn milestone(
    c: &Endpoints,
    out: Format,
    args: MilestoneArgs,
) -> anyhow::Result<()> {
    let name = initiative_name(&args.name)?;
    let mut paths = Vec::new();
    let mut m = Milestone {
        id: args.milestone.clone(),
        ..Default::default()
    };
    if let Some(s) = args.status {
        m.status = s;
        paths.push("status".to_string());
    }
    if let Some(d) = args.date_met {
        m.date_met = Some(d);
        paths.push("date_met".into());
    }
    if let Some(d) = args.due {
        m.due = Some(d);
        paths.push("due".into());
    }
    if let Some(t) = args.title {
        m.title = t;
        paths.push("title".into());
    }
    if !args.evidence.is_empty() {
        m.evidence_links = args.evidence;
        paths.push("evidence_links".into());
    }
    if paths.is_empty() {
        bail!("say what to change: --status, --date-met, --due, --title or --evidence");
    }
    let i = c
        .domain(name.domain)
        .await?
        .update_milestone(UpdateMilestoneRequest {
            name: args.name,
            milestone: Some(m),
            update_mask: Some(pbjson_types::FieldMask { paths }),
            etag: args.etag,
            request_id: String::new(),
            reporter: args.reporter,
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// Options of `status`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StatusArgs {
    /// `domains/{domain}/initiatives/{id}`.
    name: String,
    /// The new lifecycle status (proposed, announced, in-progress, completed,
    /// suspended, cancelled).
    #[arg(value_parser = status)]
    status: i32,
    /// Since when it holds in the world, at any precision (2024, 2024-Q2,
    /// 2024-06, 2024-06-15) [default: the day it is recorded]. With the
    /// status the initiative already has, corrects that status's date.
    #[arg(long, value_parser = approx)]
    since: Option<ApproximateDate>,
    /// The etag last read (empty: unconditional).
    #[arg(long, default_value = "")]
    etag: String,
}

/// `cetrack status`.
pub(crate) async fn set_status(c: &Endpoints, out: Format, args: StatusArgs) -> anyhow::Result<()> {
    let name = initiative_name(&args.name)?;
    let mut paths = vec!["status".to_string()];
    if args.since.is_some() {
        paths.push("status_date".into());
    }
    let i = c
        .domain(name.domain)
        .await?
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                name: args.name,
                status: args.status,
                status_date: args.since,
                etag: args.etag,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask { paths }),
            request_id: String::new(),
            reporter: String::new(),
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    print_initiative(&i, out)
}

/// `cetrack history`.
pub(crate) async fn history(c: &Endpoints, out: Format, name: &str) -> anyhow::Result<()> {
    let n = initiative_name(name)?;
    let mut client = c.domain(n.domain).await?;
    let mut token = String::new();
    let mut changes = Vec::new();
    loop {
        let page = client
            .list_history(ListHistoryRequest {
                name: name.to_string(),
                page_size: 1000,
                page_token: token,
            })
            .await
            .map_err(StatusError)?
            .into_inner();
        changes.extend(page.changes);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    if out == Format::Json {
        return output::json(&ListHistoryResponse {
            changes,
            next_page_token: String::new(),
        });
    }
    let mut t = output::table(&["revision", "time", "change", "by", "fields"]);
    for ch in &changes {
        let kind = ChangeType::try_from(ch.r#type).unwrap_or(ChangeType::Unspecified);
        t.add_row(vec![
            ch.revision.to_string(),
            ch.change_time.map(|t| timestamp(&t)).unwrap_or_default(),
            label(kind.as_str_name(), "CHANGE_TYPE_"),
            ch.reporter.clone(),
            ch.changed_fields.join(", "),
        ]);
    }
    println!("{t}");
    Ok(())
}
