//! The client commands: each sends one request to the gateway or a domain
//! service and shows the answer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use cetrack_shared::names::InitiativeName;
use cetrack_shared::proto::*;
use cetrack_shared::{dates, Domain};
use futures::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::client::{normalize, Endpoints};
use crate::error::StatusError;
use crate::output::{self, label, Format};

fn day(text: &str) -> Result<CalendarDate, String> {
    match dates::parse(text) {
        Some(d) if d.precision == DatePrecision::Day as i32 => Ok(CalendarDate {
            year: d.year,
            month: d.month,
            day: d.day,
        }),
        _ => Err(format!("`{text}` is not a day like 2024-03-15")),
    }
}

fn approx(text: &str) -> Result<ApproximateDate, String> {
    dates::parse(text)
        .ok_or_else(|| format!("`{text}` is not a date like 2024, 2024-Q1, 2024-03 or 2024-03-15"))
}

fn enum_value(
    prefix: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    let name = format!("{prefix}{}", text.trim().to_uppercase().replace('-', "_"));
    lookup(&name).ok_or_else(|| format!("unknown value `{text}`"))
}

fn status(text: &str) -> Result<i32, String> {
    enum_value("LIFECYCLE_STATUS_", text, |n| {
        LifecycleStatus::from_str_name(n).map(|v| v as i32)
    })
}

fn instrument(text: &str) -> Result<i32, String> {
    enum_value("INSTRUMENT_", text, |n| {
        Instrument::from_str_name(n).map(|v| v as i32)
    })
}

fn milestone_status(text: &str) -> Result<i32, String> {
    enum_value("MILESTONE_STATUS_", text, |n| {
        MilestoneStatus::from_str_name(n).map(|v| v as i32)
    })
}

fn assessment(text: &str) -> Result<i32, String> {
    enum_value("COMPLETION_ASSESSMENT_", text, |n| {
        CompletionAssessment::from_str_name(n).map(|v| v as i32)
    })
}

fn domain_name(text: &str) -> Result<Domain, String> {
    text.parse::<Domain>().map_err(|e| e.to_string())
}

fn initiative_name(text: &str) -> anyhow::Result<InitiativeName> {
    InitiativeName::parse(text, "name").map_err(|v| anyhow!("{}", v.description))
}

/// The filter flags of `search` and `list`.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Lifecycle status (proposed, announced, in-progress, completed, suspended, cancelled); repeatable.
    #[arg(long, value_parser = status)]
    status: Vec<i32>,
    /// Instrument (mou, working-group, joint-research-programme, ...); repeatable.
    #[arg(long, value_parser = instrument)]
    instrument: Vec<i32>,
    /// Organization id taking part, e.g. us-nsf.
    #[arg(long)]
    org: Option<String>,
    /// Country of a participant (ISO 3166-1 alpha-2).
    #[arg(long)]
    country: Option<String>,
    /// Topic.
    #[arg(long)]
    topic: Option<String>,
    /// Due (planned end or open milestone) on or after this day.
    #[arg(long, value_parser = day)]
    due_after: Option<CalendarDate>,
    /// Due on or before this day.
    #[arg(long, value_parser = day)]
    due_before: Option<CalendarDate>,
    /// Only overdue initiatives.
    #[arg(long)]
    overdue: bool,
    /// Text in the title or summary.
    #[arg(long)]
    text: Option<String>,
    /// The day "overdue" is judged against [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
}

impl FilterArgs {
    fn filter(&self) -> InitiativeFilter {
        InitiativeFilter {
            statuses: self.status.clone(),
            instruments: self.instrument.clone(),
            organization_id: self.org.clone().unwrap_or_default(),
            country_code: self.country.clone().unwrap_or_default(),
            topic: self.topic.clone().unwrap_or_default(),
            due_after: self.due_after,
            due_before: self.due_before,
            overdue_only: self.overdue,
            text: self.text.clone().unwrap_or_default(),
            as_of: self.as_of,
        }
    }
}

/// Options of `health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The service to ask about [default: the whole server].
    #[arg(long, default_value = "")]
    service: String,
    /// How long to wait for an answer, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

/// `cetrack health`: exit 0 when SERVING.
pub async fn health(addr: &str, args: HealthArgs) -> anyhow::Result<ExitCode> {
    let url = normalize(addr);
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?
            .connect()
            .await?;
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

/// Options of `overview`.
#[derive(Debug, Clone, clap::Args)]
pub struct OverviewArgs {
    /// The day "due soon" and "overdue" are judged against [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// How many days ahead count as due soon.
    #[arg(long, default_value_t = 90)]
    due_within_days: i32,
}

/// `cetrack overview`.
pub async fn overview(c: &Endpoints, out: Format, args: OverviewArgs) -> anyhow::Result<()> {
    let o = c
        .gateway()
        .await?
        .get_overview(GetOverviewRequest {
            due_within_days: args.due_within_days,
            as_of: args.as_of,
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    if out == Format::Json {
        return output::json(&o);
    }
    let mut t = output::table(&[
        "domain",
        "available",
        "initiatives",
        "due soon",
        "overdue",
        "met",
        "last change",
    ]);
    for d in &o.domains {
        let s = d.summary.clone().unwrap_or_default();
        let m = s.milestones.unwrap_or_default();
        let domain = Domain::from_proto(d.domain)
            .map(|d| d.slug().to_string())
            .unwrap_or_default();
        let available = if d.available {
            "yes".to_string()
        } else {
            format!("NO ({})", d.error)
        };
        t.add_row(vec![
            domain,
            available,
            s.initiative_count.to_string(),
            m.due_soon.to_string(),
            m.overdue.to_string(),
            m.met.to_string(),
            s.last_revision.to_string(),
        ]);
    }
    println!("{t}");
    if let Some(totals) = &o.totals {
        let m = totals.milestones.unwrap_or_default();
        println!(
            "Totals{}: {} initiatives, {} organizations, milestones {} due soon / {} overdue / {} met, {} initiatives overdue",
            if totals.complete { "" } else { " (some domains unavailable)" },
            totals.initiative_count,
            totals.organizations.len(),
            m.due_soon,
            m.overdue,
            m.met,
            totals.overdue_initiatives
        );
        for f in &totals.funding {
            let q = AmountQualifier::try_from(f.qualifier).unwrap_or(AmountQualifier::Unspecified);
            println!(
                "Funding: {} {} ({} commitments)",
                label(q.as_str_name(), "AMOUNT_QUALIFIER_"),
                output::money(f.total.as_ref()),
                f.commitment_count
            );
        }
    }
    Ok(())
}

/// Options of `search`.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only these domains; repeatable [default: all].
    #[arg(long = "in", value_parser = domain_name)]
    domains: Vec<Domain>,
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

/// `cetrack search`.
pub async fn search(c: &Endpoints, out: Format, args: SearchArgs) -> anyhow::Result<()> {
    let mut gateway = c.gateway().await?;
    let mut token = args.page_token.clone();
    let mut items = Vec::new();
    let mut unavailable = Vec::new();
    loop {
        let page = gateway
            .search_initiatives(SearchInitiativesRequest {
                domains: args.domains.iter().map(|d| d.to_proto() as i32).collect(),
                filter: Some(args.filter.filter()),
                page_size: args.page_size,
                page_token: token,
            })
            .await
            .map_err(StatusError)?
            .into_inner();
        items.extend(page.initiatives);
        unavailable.extend(page.unavailable);
        token = page.next_page_token;
        if !args.all || token.is_empty() {
            break;
        }
    }
    let response = SearchInitiativesResponse {
        initiatives: items,
        next_page_token: token,
        unavailable,
    };
    if out == Format::Json {
        return output::json(&response);
    }
    println!("{}", output::initiatives(&response.initiatives));
    for u in &response.unavailable {
        eprintln!("unavailable: {}", u.error);
    }
    if !response.next_page_token.is_empty() {
        eprintln!("more: --page-token {}", response.next_page_token);
    }
    Ok(())
}

/// Options of `list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
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
pub async fn list(c: &Endpoints, out: Format, args: ListArgs) -> anyhow::Result<()> {
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

fn print_initiative(i: &Initiative, out: Format) -> anyhow::Result<()> {
    if out == Format::Json {
        return output::json(i);
    }
    let status = LifecycleStatus::try_from(i.status).unwrap_or(LifecycleStatus::Unspecified);
    let instrument = Instrument::try_from(i.instrument).unwrap_or(Instrument::Unspecified);
    println!("{}\n  {}", i.name, i.title);
    if !i.summary.is_empty() {
        println!("  {}", i.summary);
    }
    println!(
        "  status: {}  instrument: {}  planned: {} .. {}  revision: {}  etag: {}",
        label(status.as_str_name(), "LIFECYCLE_STATUS_"),
        label(instrument.as_str_name(), "INSTRUMENT_"),
        output::date(i.planned_start.as_ref()),
        output::date(i.planned_end.as_ref()),
        i.revision,
        i.etag
    );
    let mut t = output::table(&["participant", "country", "role", "party status"]);
    for p in &i.participants {
        let o = p.organization.clone().unwrap_or_default();
        let role = ParticipantRole::try_from(p.role).unwrap_or(ParticipantRole::Unspecified);
        let st = ParticipantStatus::try_from(p.status).unwrap_or(ParticipantStatus::Unspecified);
        t.add_row(vec![
            format!("{} ({})", o.name, o.id),
            o.country_code,
            label(role.as_str_name(), "PARTICIPANT_ROLE_"),
            label(st.as_str_name(), "PARTICIPANT_STATUS_"),
        ]);
    }
    println!("{t}");
    if !i.milestones.is_empty() {
        let mut t = output::table(&["milestone", "title", "due", "status", "met"]);
        for m in &i.milestones {
            let st = MilestoneStatus::try_from(m.status).unwrap_or(MilestoneStatus::Unspecified);
            t.add_row(vec![
                m.id.clone(),
                m.title.clone(),
                output::date(m.due.as_ref()),
                label(st.as_str_name(), "MILESTONE_STATUS_"),
                output::date(m.date_met.as_ref()),
            ]);
        }
        println!("{t}");
    }
    for f in &i.funding {
        let q = AmountQualifier::try_from(f.qualifier).unwrap_or(AmountQualifier::Unspecified);
        println!(
            "  funding: {} {} by {}",
            label(q.as_str_name(), "AMOUNT_QUALIFIER_"),
            output::money(f.amount.as_ref()),
            if f.committing_organization_id.is_empty() {
                "-"
            } else {
                &f.committing_organization_id
            }
        );
    }
    for p in &i.progress_updates {
        println!(
            "  progress {} ({}, {}): {}",
            p.id,
            output::date(p.as_of.as_ref()),
            p.reporting_organization_id,
            p.text
        );
    }
    Ok(())
}

/// `cetrack show`.
pub async fn show(c: &Endpoints, out: Format, name: &str) -> anyhow::Result<()> {
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
pub struct CreateArgs {
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
pub async fn create(c: &Endpoints, out: Format, args: CreateArgs) -> anyhow::Result<()> {
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
    let domain = cetrack_shared::names::parse_parent(&req.parent, "parent")
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
pub struct UpdateArgs {
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
pub async fn update(c: &Endpoints, out: Format, args: UpdateArgs) -> anyhow::Result<()> {
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
pub struct DeleteArgs {
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
pub async fn delete(c: &Endpoints, args: DeleteArgs) -> anyhow::Result<()> {
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
pub struct ProgressArgs {
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
pub async fn progress(c: &Endpoints, out: Format, args: ProgressArgs) -> anyhow::Result<()> {
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
pub struct MilestoneArgs {
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
pub async fn milestone(c: &Endpoints, out: Format, args: MilestoneArgs) -> anyhow::Result<()> {
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

/// `cetrack history`.
pub async fn history(c: &Endpoints, out: Format, name: &str) -> anyhow::Result<()> {
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

fn timestamp(t: &pbjson_types::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Options of `portfolio`.
#[derive(Debug, Clone, clap::Args)]
pub struct PortfolioArgs {
    /// The organization's id, e.g. us-nsf.
    org: String,
    /// The day "due soon" and "overdue" are judged against [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// How many days ahead count as due soon.
    #[arg(long, default_value_t = 90)]
    due_within_days: i32,
}

/// `cetrack portfolio`.
pub async fn portfolio(c: &Endpoints, out: Format, args: PortfolioArgs) -> anyhow::Result<()> {
    let p = c
        .gateway()
        .await?
        .get_organization_portfolio(GetOrganizationPortfolioRequest {
            organization_id: args.org,
            due_within_days: args.due_within_days,
            as_of: args.as_of,
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    if out == Format::Json {
        return output::json(&p);
    }
    if let Some(o) = &p.organization {
        println!("{} ({}, {})", o.name, o.id, o.country_code);
    }
    let mut t = output::table(&[
        "initiative",
        "status",
        "role",
        "counterparts",
        "due soon",
        "overdue",
    ]);
    for e in &p.entries {
        let role = ParticipantRole::try_from(e.role).unwrap_or(ParticipantRole::Unspecified);
        let status = LifecycleStatus::try_from(e.status).unwrap_or(LifecycleStatus::Unspecified);
        let counterparts: Vec<String> = e
            .counterparts
            .iter()
            .filter_map(|c| c.organization.as_ref().map(|o| o.id.clone()))
            .collect();
        t.add_row(vec![
            format!("{}\n{}", e.title, e.name),
            label(status.as_str_name(), "LIFECYCLE_STATUS_"),
            label(role.as_str_name(), "PARTICIPANT_ROLE_"),
            counterparts.join(", "),
            e.milestones_due.len().to_string(),
            e.milestones_overdue.len().to_string(),
        ]);
    }
    println!("{t}");
    for u in &p.unavailable {
        eprintln!("unavailable: {}", u.error);
    }
    Ok(())
}

/// Options of `timeline`.
#[derive(Debug, Clone, clap::Args)]
pub struct TimelineArgs {
    /// The last day of the window.
    #[arg(long, value_parser = day)]
    until: CalendarDate,
    /// The first day of the window [default: the as-of day].
    #[arg(long, value_parser = day)]
    from: Option<CalendarDate>,
    /// Also list overdue milestones.
    #[arg(long)]
    overdue: bool,
    /// The day "overdue" is judged against [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
}

/// `cetrack timeline`.
pub async fn timeline(c: &Endpoints, out: Format, args: TimelineArgs) -> anyhow::Result<()> {
    let mut gateway = c.gateway().await?;
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let page = gateway
            .list_milestone_timeline(ListMilestoneTimelineRequest {
                due_after: args.from,
                due_before: Some(args.until),
                include_overdue: args.overdue,
                as_of: args.as_of,
                domains: vec![],
                page_size: 1000,
                page_token: token,
            })
            .await
            .map_err(StatusError)?
            .into_inner();
        entries.extend(page.entries);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    if out == Format::Json {
        return output::json(&ListMilestoneTimelineResponse {
            entries,
            next_page_token: String::new(),
            unavailable: vec![],
        });
    }
    let mut t = output::table(&["due by", "milestone", "initiative", "overdue"]);
    for e in &entries {
        let m = e.milestone.clone().unwrap_or_default();
        let d = e.due_end.unwrap_or_default();
        t.add_row(vec![
            format!(
                "{}-{:02}-{:02} ({})",
                d.year,
                d.month,
                d.day,
                output::date(m.due.as_ref())
            ),
            m.title,
            format!("{}\n{}", e.initiative_title, e.initiative),
            if e.overdue {
                "OVERDUE".into()
            } else {
                String::new()
            },
        ]);
    }
    println!("{t}");
    Ok(())
}

/// Options of `watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Resume after this cursor (printed with every change).
    #[arg(long, default_value = "")]
    cursor: String,
    /// Only these domains; repeatable [default: all].
    #[arg(long = "in", value_parser = domain_name)]
    domains: Vec<Domain>,
    /// Stop after this many changes.
    #[arg(long)]
    limit: Option<usize>,
}

/// `cetrack watch`.
pub async fn watch(c: &Endpoints, out: Format, args: WatchArgs) -> anyhow::Result<()> {
    let mut stream = c
        .gateway()
        .await?
        .watch_all_changes(WatchAllChangesRequest {
            cursor: args.cursor,
            domains: args.domains.iter().map(|d| d.to_proto() as i32).collect(),
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    let mut seen = 0;
    while let Some(event) = stream.next().await {
        let event = event.map_err(StatusError)?;
        if out == Format::Json {
            println!("{}", serde_json::to_string(&event)?);
        } else if let Some(ch) = &event.change {
            let kind = ChangeType::try_from(ch.r#type).unwrap_or(ChangeType::Unspecified);
            println!(
                "{} r{} {} {} [{}] by {}  cursor={}",
                ch.change_time.map(|t| timestamp(&t)).unwrap_or_default(),
                ch.revision,
                label(kind.as_str_name(), "CHANGE_TYPE_"),
                ch.name,
                ch.changed_fields.join(","),
                ch.reporter,
                event.cursor
            );
        }
        seen += 1;
        if args.limit.is_some_and(|l| seen >= l) {
            break;
        }
    }
    Ok(())
}

/// Options of `fact-sheet`.
#[derive(Debug, Clone, clap::Args)]
pub struct FactSheetArgs {
    /// The day the status is reported as of [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Write to this file [default: standard output].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The document's title.
    #[arg(long, default_value = "")]
    title: String,
}

/// `cetrack fact-sheet`.
pub async fn fact_sheet(c: &Endpoints, out: Format, args: FactSheetArgs) -> anyhow::Result<()> {
    let sheet = c
        .gateway()
        .await?
        .generate_fact_sheet(GenerateFactSheetRequest {
            as_of: args.as_of,
            title: args.title,
        })
        .await
        .map_err(StatusError)?
        .into_inner();
    match args.out {
        None if out == Format::Json => output::json(&sheet)?,
        Some(path) => {
            std::fs::write(&path, &sheet.markdown)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} initiatives to {}",
                sheet.initiative_count,
                path.display()
            );
        }
        None => print!("{}", sheet.markdown),
    }
    for u in &sheet.unavailable {
        eprintln!("unavailable: {}", u.error);
    }
    Ok(())
}
