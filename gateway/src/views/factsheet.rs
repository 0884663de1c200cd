//! The joint fact sheet, regenerated from the records in the structure and
//! order of its source document: the document's sections in their order
//! under their own headings (`SourceReference.section_order`), the
//! commitments of a section in the order of their bullets (`bullet_order`,
//! the records split from one bullet together), each annotated with its
//! status, milestones, money and progress as of a given day (valid time)
//! and, optionally, as known on a given day (record time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cetrack_contract::proto::{
    CompletionAssessment, FactSheet, FundingKind, GenerateFactSheetRequest, Initiative,
    InitiativeFilter, ProgressUpdate, SourceReference,
};
use cetrack_contract::validate::Violations;
use cetrack_contract::Error;
use cetrack_contract::{dates, requests, rules, valid_time};
use prost::Message;
use time::Date;

use super::words;
use crate::domains::{CallCtx, Domains, FanOut};

/// The heading when no document names the records.
pub const DEFAULT_TITLE: &str =
    "Joint Fact Sheet: U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue";

/// Most commitments one fact sheet covers (a joint fact sheet has tens): past
/// it, FAILED_PRECONDITION, rather than a document of any size held in the
/// gateway's memory.
pub const MAX_COMMITMENTS: usize = 2_000;

/// Most bytes of records one fact sheet reads (records may be up to 1 MiB
/// each): past it, FAILED_PRECONDITION too.
pub const MAX_RECORD_BYTES_HELD: usize = 64 << 20;

/// Where a commitment stands in its document, for ordering: section order
/// (0, not stated, after the stated ones), then the domain (the order of
/// sections not stated), section heading, bullet order (0 last), resource
/// name.
type Place = (i32, i32, String, i32, String);

/// One source document's commitments, each with its place in it.
struct Document<'a> {
    /// The document's title; empty for records with no source.
    title: String,
    /// Its earliest date among the records' sources.
    date: Option<Date>,
    entries: Vec<(Place, &'a Initiative)>,
}

/// The source a record is printed under: the one naming `document`, else
/// its first.
fn source_of<'a>(i: &'a Initiative, document: Option<&str>) -> Option<&'a SourceReference> {
    match document {
        Some(doc) => i.sources.iter().find(|s| s.document == doc),
        None => i.sources.first(),
    }
}

fn place(i: &Initiative, source: Option<&SourceReference>) -> Place {
    let last = |n: i32| if n > 0 { n } else { i32::MAX };
    match source {
        Some(s) => (
            last(s.section_order),
            if s.section_order > 0 { 0 } else { i.domain },
            if s.section.is_empty() {
                "Other commitments".to_string()
            } else {
                s.section.clone()
            },
            last(s.bullet_order),
            i.name.clone(),
        ),
        None => (
            i32::MAX,
            i.domain,
            "Other commitments".to_string(),
            i32::MAX,
            i.name.clone(),
        ),
    }
}

/// GenerateFactSheet.
pub async fn fact_sheet(
    domains: &Domains,
    req: GenerateFactSheetRequest,
    ctx: &CallCtx,
) -> Result<FactSheet, Error> {
    let mut v = Violations::default();
    let as_of = requests::as_of(&mut v, req.as_of.as_ref(), "as_of");
    let known_on = requests::known_on(&mut v, req.as_known_on.as_ref(), "as_known_on");
    v.text("title", &req.title, false, 300);
    v.text("document", &req.document, false, 500);
    v.finish()?;
    let document = Some(req.document.as_str()).filter(|d| !d.is_empty());
    let filter = InitiativeFilter {
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
        document: req.document.clone(),
        ..Default::default()
    };
    let all = domains.all();
    // What the gateway holds is bounded: the walk stops at the first record
    // past the cap, across domains.
    let held = std::sync::atomic::AtomicUsize::new(0);
    let held_bytes = std::sync::atomic::AtomicUsize::new(0);
    let FanOut {
        answers,
        unavailable,
    } = domains
        .fan_out(&all, ctx, |d, client, ctx| {
            let filter = filter.clone();
            let (held, held_bytes) = (&held, &held_bytes);
            async move {
                let mut items = Vec::new();
                super::visit(d, client, filter, &ctx, |i| {
                    let n = held.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let bytes = held_bytes
                        .fetch_add(i.encoded_len(), std::sync::atomic::Ordering::Relaxed)
                        + i.encoded_len();
                    items.push(i);
                    n <= MAX_COMMITMENTS && bytes <= MAX_RECORD_BYTES_HELD
                })
                .await?;
                Ok(items)
            }
        })
        .await;
    if held.load(std::sync::atomic::Ordering::Relaxed) > MAX_COMMITMENTS
        || held_bytes.load(std::sync::atomic::Ordering::Relaxed) > MAX_RECORD_BYTES_HELD
    {
        return Err(Error::FailedPrecondition(format!(
            "the fact sheet would cover more than {MAX_COMMITMENTS} commitments or {} MiB of records; name one document (`document`)",
            MAX_RECORD_BYTES_HELD >> 20
        )));
    }
    let items: Vec<Initiative> = answers.into_iter().flat_map(|(_, items)| items).collect();

    // Documents by title, each with its earliest date; then places in them.
    let mut grouped: BTreeMap<String, Document> = BTreeMap::new();
    for i in &items {
        let source = source_of(i, document);
        let doc = source.map(|s| s.document.clone()).unwrap_or_default();
        let date = source
            .and_then(|s| s.date.as_ref())
            .and_then(valid_time::first_day);
        let entry = grouped.entry(doc.clone()).or_insert_with(|| Document {
            title: doc,
            date: None,
            entries: Vec::new(),
        });
        entry.date = match (entry.date, date) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        entry.entries.push((place(i, source), i));
    }
    // Dated documents in date order, then the undated, then the records
    // with no source.
    let mut by_document: Vec<Document> = grouped.into_values().collect();
    by_document.sort_by_key(|d| {
        (
            d.title.is_empty(),
            d.date.is_none(),
            d.date,
            d.title.clone(),
        )
    });
    let title = if !req.title.trim().is_empty() {
        req.title.trim().to_string()
    } else if let Some(doc) = document {
        doc.to_string()
    } else if let [only] = by_document.as_slice() {
        if only.title.is_empty() {
            DEFAULT_TITLE.to_string()
        } else {
            only.title.clone()
        }
    } else {
        DEFAULT_TITLE.to_string()
    };

    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    let known = known_on
        .map(|k| format!(", as recorded by the end of {}", day(k)))
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "*Generated by cetrack from the tracked records: status and progress as of {}{known}. Words in quotation marks are the source's; the rest is the tracker's.*\n",
        day(as_of)
    );
    for u in &unavailable {
        let d = cetrack_contract::Domain::from_proto(u.domain)
            .map(|d| d.to_string())
            .unwrap_or_else(|| format!("domain {}", u.domain));
        let _ = writeln!(
            md,
            "*The {d} service did not answer; its commitments are not listed.*\n"
        );
    }
    if items.is_empty() {
        let _ = writeln!(md, "*No commitments recorded.*\n");
    }
    let several = by_document.len() > 1;
    for Document {
        date,
        title: doc,
        mut entries,
    } in by_document
    {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if several {
            let heading = if doc.is_empty() {
                "Commitments without a source".to_string()
            } else {
                match date {
                    Some(d) => format!("{doc} ({})", day(d)),
                    None => doc.clone(),
                }
            };
            let _ = writeln!(md, "## {heading}\n");
        }
        let mut section: Option<(i32, i32, String)> = None;
        for ((order, domain, heading, _, _), i) in &entries {
            let this = (*order, *domain, heading.clone());
            if section.as_ref() != Some(&this) {
                if section.is_some() {
                    md.push('\n');
                }
                let level = if several { "###" } else { "##" };
                let _ = writeln!(md, "{level} {heading}\n");
                section = Some(this);
            }
            bullet(
                &mut md,
                i,
                as_of,
                source_of(i, document),
                req.include_quotes,
            );
        }
        md.push('\n');
    }
    Ok(FactSheet {
        markdown: md,
        initiative_count: items.len() as i32,
        unavailable,
        as_of: Some(dates::to_calendar(as_of)),
        as_known_on: known_on.map(dates::to_calendar),
    })
}

fn day(d: Date) -> String {
    format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// An organization of the record by name (and acronym), or its id when the
/// record does not describe it.
fn organization(i: &Initiative, id: &str) -> String {
    i.participants
        .iter()
        .filter_map(|p| p.organization.as_ref())
        .find(|o| o.id == id)
        .map(|o| {
            if o.acronym.is_empty() {
                o.name.clone()
            } else {
                format!("{} ({})", o.name, o.acronym)
            }
        })
        .unwrap_or_else(|| id.to_string())
}

fn bullet(
    md: &mut String,
    i: &Initiative,
    as_of: Date,
    source: Option<&SourceReference>,
    quotes: bool,
) {
    let _ = writeln!(md, "-   **{}**", i.title);
    if quotes {
        if let Some(q) = source.map(|s| s.quote.trim()).filter(|q| !q.is_empty()) {
            let _ = writeln!(md, "    -   Source: \u{201c}{q}\u{201d}");
        }
    }
    if !i.summary.is_empty() {
        let _ = writeln!(md, "    -   Tracked as: {}", i.summary);
    }
    let people: Vec<String> = i
        .participants
        .iter()
        .filter_map(|p| {
            let o = p.organization.as_ref()?;
            Some(format!(
                "{}, {}: {}",
                organization(i, &o.id),
                o.country_code,
                words::role(p.role)
            ))
        })
        .collect();
    if !people.is_empty() {
        let _ = writeln!(md, "    -   Participants: {}.", people.join("; "));
    }
    let mut status = format!(
        "    -   Status as of {}: **{}**",
        day(as_of),
        words::status(i.status)
    );
    if let Some(since) = &i.status_date {
        let _ = write!(status, " since {}", dates::display(since));
    }
    let _ = write!(status, " ({})", words::instrument(i.instrument));
    if let Some(p) = &i.planned_start {
        let _ = write!(status, "; planned start {}", dates::display(p));
    }
    if let Some(p) = &i.planned_end {
        let _ = write!(status, "; planned end {}", dates::display(p));
    }
    if rules::is_overdue(i, as_of) {
        status.push_str("; **overdue**");
    }
    let _ = writeln!(md, "{status}.");
    for f in &i.funding {
        let Some(m) = &f.amount else { continue };
        let q = words::qualifier(f.qualifier);
        let kind = FundingKind::try_from(f.kind).unwrap_or(FundingKind::Unspecified);
        let by = if f.committing_organization_id.is_empty() {
            String::new()
        } else {
            format!(", by {}", organization(i, &f.committing_organization_id))
        };
        let when = f
            .date
            .as_ref()
            .map(|d| format!(", {}", dates::display(d)))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "    -   Funding: {q}{} {} ({}{by}{when}).",
            m.currency_code,
            words::with_thousands(m.units),
            words::label(kind.as_str_name(), "FUNDING_KIND_").to_lowercase()
        );
    }
    for m in &i.milestones {
        let mut line = format!("    -   Milestone: {}", m.title);
        if let Some(due) = &m.due {
            let _ = write!(line, ", due {}", dates::display(due));
        }
        let _ = write!(
            line,
            ": {}",
            words::milestone_status(m.status).to_lowercase()
        );
        if let Some(met) = &m.date_met {
            let _ = write!(line, " ({})", dates::display(met));
        }
        if rules::is_open(i) && rules::open_milestone_due(m).is_some_and(|end| end < as_of) {
            line.push_str(", **overdue**");
        }
        let _ = writeln!(md, "{line}.");
    }
    // The records hold the progress dated by `as_of` only (valid time).
    let latest: Option<&ProgressUpdate> = i.progress_updates.iter().max_by_key(|p| {
        p.as_of
            .as_ref()
            .and_then(valid_time::first_day)
            .unwrap_or(Date::MIN)
    });
    if let Some(p) = latest {
        let assessment = CompletionAssessment::try_from(p.assessment)
            .ok()
            .filter(|a| *a as i32 != 0)
            .map(|a| {
                format!(
                    ", {}",
                    words::label(a.as_str_name(), "COMPLETION_ASSESSMENT_").to_lowercase()
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "    -   Latest progress ({}, {}{assessment}): {}",
            p.as_of.as_ref().map(dates::display).unwrap_or_default(),
            organization(i, &p.reporting_organization_id),
            p.text
        );
    }
}
