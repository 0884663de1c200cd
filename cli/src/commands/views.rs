//! The gateway's cross-domain views: `overview`, `search`, `portfolio`,
//! `timeline`, `watch`, `fact-sheet`.

use std::path::PathBuf;

use anyhow::Context;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use futures::StreamExt;

use super::*;
use crate::client::Endpoints;
use crate::error::StatusError;
use crate::output::{self, label, Format};

/// Options of `overview`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct OverviewArgs {
    /// The day counted: statuses, milestones met, due soon and overdue as
    /// they stood then [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Answer as the tracker would have at the end of this day (record
    /// time) [default: now].
    #[arg(long, value_parser = day)]
    as_known_on: Option<CalendarDate>,
    /// How many days ahead count as due soon.
    #[arg(long, default_value_t = 90)]
    due_within_days: i32,
    /// Count only this source document's commitments (its title, exactly).
    #[arg(long, default_value = "")]
    document: String,
}

/// `cetrack overview`.
pub(crate) async fn overview(c: &Endpoints, out: Format, args: OverviewArgs) -> anyhow::Result<()> {
    let o = c
        .gateway()
        .await?
        .get_overview(GetOverviewRequest {
            document: args.document,
            due_within_days: args.due_within_days,
            as_of: args.as_of,
            as_known_on: args.as_known_on,
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
pub(crate) struct SearchArgs {
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
pub(crate) async fn search(c: &Endpoints, out: Format, args: SearchArgs) -> anyhow::Result<()> {
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

/// Options of `portfolio`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PortfolioArgs {
    /// The organization's id, e.g. us-nsf.
    org: String,
    /// The day the portfolio speaks for [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Answer as the tracker would have at the end of this day (record
    /// time) [default: now].
    #[arg(long, value_parser = day)]
    as_known_on: Option<CalendarDate>,
    /// How many days ahead count as due soon.
    #[arg(long, default_value_t = 90)]
    due_within_days: i32,
}

/// `cetrack portfolio`.
pub(crate) async fn portfolio(
    c: &Endpoints,
    out: Format,
    args: PortfolioArgs,
) -> anyhow::Result<()> {
    // Every page, as one portfolio.
    let mut gateway = c.gateway().await?;
    let mut p = OrganizationPortfolio::default();
    let mut page_token = String::new();
    loop {
        let page = gateway
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: args.org.clone(),
                due_within_days: args.due_within_days,
                as_of: args.as_of,
                as_known_on: args.as_known_on,
                page_size: 0,
                page_token,
            })
            .await
            .map_err(StatusError)?
            .into_inner();
        p.entries.extend(page.entries);
        p.organization = page.organization.or(p.organization);
        for u in page.unavailable {
            if !p.unavailable.iter().any(|x| x.domain == u.domain) {
                p.unavailable.push(u);
            }
        }
        p.as_of = page.as_of;
        p.as_known_on = page.as_known_on;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
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
pub(crate) struct TimelineArgs {
    /// The last day of the window [default: a year after the as-of day].
    #[arg(long, value_parser = day)]
    until: Option<CalendarDate>,
    /// The first day of the window [default: the as-of day, or no bound
    /// when --until is before it].
    #[arg(long, value_parser = day)]
    from: Option<CalendarDate>,
    /// Also list overdue milestones.
    #[arg(long)]
    overdue: bool,
    /// Also list milestones met by the as-of day.
    #[arg(long)]
    met: bool,
    /// The day the timeline speaks for [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Answer as the tracker would have at the end of this day (record
    /// time) [default: now].
    #[arg(long, value_parser = day)]
    as_known_on: Option<CalendarDate>,
}

/// `cetrack timeline`.
pub(crate) async fn timeline(c: &Endpoints, out: Format, args: TimelineArgs) -> anyhow::Result<()> {
    let mut gateway = c.gateway().await?;
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let page = gateway
            .list_milestone_timeline(ListMilestoneTimelineRequest {
                due_after: args.from,
                due_before: args.until,
                include_overdue: args.overdue,
                include_met: args.met,
                as_of: args.as_of,
                as_known_on: args.as_known_on,
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
pub(crate) struct WatchArgs {
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
pub(crate) async fn watch(c: &Endpoints, out: Format, args: WatchArgs) -> anyhow::Result<()> {
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
pub(crate) struct FactSheetArgs {
    /// The day the status is reported as of [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Answer as the tracker would have at the end of this day (record
    /// time) [default: now].
    #[arg(long, value_parser = day)]
    as_known_on: Option<CalendarDate>,
    /// Only this source document's commitments, in its order (its title,
    /// exactly).
    #[arg(long, default_value = "")]
    document: String,
    /// Print each commitment's quoted source words.
    #[arg(long)]
    quotes: bool,
    /// Write to this file [default: standard output].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The heading [default: the document's title].
    #[arg(long, default_value = "")]
    title: String,
}

/// `cetrack fact-sheet`.
pub(crate) async fn fact_sheet(
    c: &Endpoints,
    out: Format,
    args: FactSheetArgs,
) -> anyhow::Result<()> {
    let sheet = c
        .gateway()
        .await?
        .generate_fact_sheet(GenerateFactSheetRequest {
            as_of: args.as_of,
            title: args.title,
            as_known_on: args.as_known_on,
            document: args.document,
            include_quotes: args.quotes,
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
