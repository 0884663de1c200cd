//! The client commands, by concern: each sends one request to the gateway or
//! a domain service and shows the answer.
//!
//! - [`records`]: one domain's initiatives (list, show, create, update,
//!   delete, progress, milestone, history);
//! - [`views`]: the cross-domain views of the gateway (overview, search,
//!   portfolio, timeline, watch, fact sheet);
//! - [`admin`]: operating a server (health).
//!
//! This module holds what they share: argument parsers, the filter flags,
//! how an initiative and a time are printed.

pub(crate) mod admin;
pub(crate) mod records;
pub(crate) mod views;

use anyhow::anyhow;
use cetrack_contract::names::InitiativeName;
use cetrack_contract::proto::*;
use cetrack_contract::{dates, Domain};

use crate::output::{self, label, Format};

fn day(text: &str) -> Result<CalendarDate, String> {
    dates::parse_day(text).ok_or_else(|| format!("`{text}` is not a day like 2024-03-15"))
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
pub(crate) struct FilterArgs {
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
    /// The day the filters speak for: status, milestones met and overdue as
    /// they stood then [default: today].
    #[arg(long, value_parser = day)]
    as_of: Option<CalendarDate>,
    /// Answer as the tracker would have at the end of this day (record
    /// time) [default: now].
    #[arg(long, value_parser = day)]
    as_known_on: Option<CalendarDate>,
    /// Only commitments of this source document (its title, exactly).
    #[arg(long)]
    document: Option<String>,
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
            as_known_on: self.as_known_on,
            document: self.document.clone().unwrap_or_default(),
            include_met_milestones: false,
        }
    }
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
        "  status: {} since {}  instrument: {}  planned: {} .. {}  revision: {}  etag: {}",
        label(status.as_str_name(), "LIFECYCLE_STATUS_"),
        output::date(i.status_date.as_ref()),
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
    if i.status_history.len() > 1 {
        let steps: Vec<String> = i
            .status_history
            .iter()
            .map(|h| {
                let st =
                    LifecycleStatus::try_from(h.status).unwrap_or(LifecycleStatus::Unspecified);
                format!(
                    "{} since {}",
                    label(st.as_str_name(), "LIFECYCLE_STATUS_"),
                    output::date(h.effective.as_ref())
                )
            })
            .collect();
        println!("  status history: {}", steps.join(", then "));
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

fn timestamp(t: &pbjson_types::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
