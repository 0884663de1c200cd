//! The dashboard's pages: each handler asks the view the gRPC API answers
//! with, on behalf of the viewer, and renders it with a maud template (every
//! printed value escaped). Every page takes `as_of` and `as_known_on`
//! (YYYY-MM-DD) as query parameters, so a URL says what it shows.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use cetrack_contract::names::InitiativeName;
use cetrack_contract::proto::*;
use cetrack_contract::{dates, valid_time, Domain, Error};
use futures::StreamExt;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use super::feed::FeedEvent;
use super::{charts, Peer, Refused, Shared, Viewer, TOKEN_COOKIE};
use crate::domains::{request, DomainError};
use crate::views::{self, words};

/// The stylesheet.
const STYLE: &str = include_str!("assets/style.css");
/// The script: live updates only; every page works without it.
const SCRIPT: &str = include_str!("assets/app.js");
/// The icon.
const ICON: &str = include_str!("assets/icon.svg");
/// How long a sign-in lasts (the token's own expiry applies too).
const SIGN_IN_SECONDS: u64 = 12 * 3600;

/// Percent-encodes a query parameter value (or a path segment).
pub fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The two times every page takes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Times {
    /// The day the page speaks for (valid time).
    #[serde(default)]
    pub as_of: String,
    /// The record-time day (as the tracker knew it then).
    #[serde(default)]
    pub as_known_on: String,
}

/// A day typed as YYYY-MM-DD; empty: unset.
fn day(text: &str, field: &str) -> Result<Option<CalendarDate>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    dates::parse_day(text)
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "a day of the calendar as YYYY-MM-DD"))
}

impl Times {
    fn parse(&self) -> Result<(Option<CalendarDate>, Option<CalendarDate>), Error> {
        Ok((
            day(&self.as_of, "as_of")?,
            day(&self.as_known_on, "as_known_on")?,
        ))
    }

    /// The query string that keeps these times on a link.
    fn query(&self) -> String {
        let mut q = Vec::new();
        if !self.as_of.trim().is_empty() {
            q.push(format!("as_of={}", encode(self.as_of.trim())));
        }
        if !self.as_known_on.trim().is_empty() {
            q.push(format!("as_known_on={}", encode(self.as_known_on.trim())));
        }
        q.join("&")
    }

    /// Whether the page shows now (live updates make sense).
    fn now(&self) -> bool {
        self.as_of.trim().is_empty() && self.as_known_on.trim().is_empty()
    }
}

/// A link to `path` keeping `times`.
fn link(path: &str, times: &Times) -> String {
    let q = times.query();
    if q.is_empty() {
        path.to_string()
    } else if path.contains('?') {
        format!("{path}&{q}")
    } else {
        format!("{path}?{q}")
    }
}

fn domain_title(domain: i32) -> String {
    Domain::from_proto(domain)
        .map(|d| d.title().to_string())
        .unwrap_or_else(|| "Unknown domain".into())
}

/// When something happened, `seconds_ago` before now: the UTC time and how
/// long ago.
fn since(seconds_ago: i64) -> String {
    let then = time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds_ago);
    format!(
        "{} {:02}:{:02}:{:02} UTC, {seconds_ago} s ago",
        then.date(),
        then.hour(),
        then.minute(),
        then.second()
    )
}

/// The page around `body`: the navigation, who is signed in, the times the
/// page speaks for, and (for a page of now) the live-update status.
fn layout(title: &str, viewer: &Viewer, times: &Times, live: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cetrack" }
                link rel="stylesheet" href="/assets/style.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                script src="/assets/app.js" defer {}
            }
            body data-live=(if live { "on" } else { "off" }) {
                a class="skip" href="#main" { "Skip to the content" }
                header {
                    nav aria-label="Main" {
                        a href=(link("/", times)) { "Overview" }
                        a href=(link("/search", times)) { "Search" }
                        a href=(link("/timeline", times)) { "Timeline" }
                        a href=(link("/fact-sheet", times)) { "Fact sheet" }
                    }
                    div class="who" {
                        @if viewer.signed_in {
                            span { "Signed in as " (viewer.caller.sub) }
                            form method="post" action="/sign-out" {
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            span { "Public records" }
                            a href="/sign-in" { "Sign in" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    p class="times" {
                        @if times.now() {
                            "As of today, as recorded now."
                        } @else {
                            "As of " (if times.as_of.is_empty() { "today" } else { times.as_of.as_str() })
                            @if !times.as_known_on.is_empty() {
                                ", as the tracker knew it at the end of " (times.as_known_on)
                            }
                            "."
                        }
                    }
                    @if live {
                        p id="feed" class="feed" role="status" aria-live="polite" { "Live updates need JavaScript; reload to see changes." }
                    }
                    (body)
                }
            }
        }
    }
}

/// The form of the two times, for a page at `path` (other fields of the
/// page's own form are added by the page).
fn times_fields(times: &Times) -> Markup {
    html! {
        label { "As of " input type="date" name="as_of" value=(times.as_of); }
        label { "As known on " input type="date" name="as_known_on" value=(times.as_known_on); }
    }
}

/// An error as a page: a caller's mistake is 400 naming the fields, a
/// missing thing 404, a refused one 403, anything else 502 (the domains).
fn error_page(e: Error) -> Response {
    let (code, title) = match &e {
        Error::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "Check what was asked"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        Error::ResourceExhausted(_) => (StatusCode::TOO_MANY_REQUESTS, "Too many at once"),
        Error::PermissionDenied(_) | Error::Unauthenticated(_) => {
            (StatusCode::FORBIDDEN, "Not allowed")
        }
        _ => (StatusCode::BAD_GATEWAY, "The tracker could not answer"),
    };
    let items: Vec<String> = match &e {
        Error::InvalidArgument(v) => v
            .iter()
            .map(|f| format!("{}: {}", f.field, f.description))
            .collect(),
        other => vec![other.to_string()],
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cetrack" }
                link rel="stylesheet" href="/assets/style.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            }
            body {
                main id="main" {
                    h1 { (title) }
                    ul { @for i in &items { li { (i) } } }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        }
    };
    (code, Html(page.into_string())).into_response()
}

fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// `/`: every domain's summary, totals, a chart of status by domain.
pub async fn overview(state: Shared, viewer: Viewer, Query(times): Query<Times>) -> Response {
    let (as_of, as_known_on) = match times.parse() {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let req = GetOverviewRequest {
        due_within_days: 0,
        as_of,
        as_known_on,
        document: String::new(),
    };
    let o = match views::overview::overview(&state.domains, req, &viewer.ctx).await {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    let totals = o.totals.clone().unwrap_or_default();
    let ms = totals.milestones.unwrap_or_default();
    let bars: Vec<charts::Bar> = o
        .domains
        .iter()
        .filter_map(|d| {
            let s = d.summary.as_ref()?;
            Some(charts::Bar {
                label: domain_title(d.domain),
                parts: s
                    .by_status
                    .iter()
                    .map(|c| (words::status(c.status), c.count))
                    .collect(),
            })
        })
        .collect();
    let body = html! {
        section aria-labelledby="totals" {
            h2 id="totals" { "Across domains" }
            @if !totals.complete {
                p class="warn" { "Some domains did not answer: the totals leave them out." }
            }
            dl class="figures" {
                div { dt { "Commitments" } dd { (totals.initiative_count) } }
                div { dt { "Milestones due within 90 days" } dd { (ms.due_soon) } }
                div { dt { "Milestones overdue" } dd { (ms.overdue) } }
                div { dt { "Milestones met" } dd { (ms.met) " of " (ms.total) } }
                div { dt { "Commitments past their planned end" } dd { (totals.overdue_initiatives) } }
            }
            @if !totals.funding.is_empty() {
                h3 { "Money, by currency and qualifier (never added across them)" }
                ul {
                    @for f in &totals.funding {
                        @if let Some(m) = &f.total {
                            li { (words::qualifier(f.qualifier)) (words::money(m)) " (" (f.commitment_count) " commitments)" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="by-status" {
            h2 id="by-status" { "Status by domain" }
            (charts::stacked_bars("Commitments by lifecycle status in each domain", &bars))
        }
        section aria-labelledby="domains" {
            h2 id="domains" { "Domains" }
            table {
                caption { "Each domain's summary" }
                thead { tr {
                    th scope="col" { "Domain" }
                    th scope="col" { "Commitments" }
                    th scope="col" { "By status" }
                    th scope="col" { "Due soon" }
                    th scope="col" { "Overdue" }
                    th scope="col" { "Met" }
                    th scope="col" { "Money" }
                } }
                tbody {
                    @for d in &o.domains {
                        tr {
                            th scope="row" { (domain_title(d.domain)) }
                            @match (&d.summary, d.available) {
                                (Some(s), available) => {
                                    @let m = s.milestones.unwrap_or_default();
                                    td {
                                        (s.initiative_count)
                                        @if !available {
                                            " " span class="warn" { "(unavailable since its last answer, "
                                                (since(d.summary_age.map(|a| a.seconds).unwrap_or(0))) "; the figures are from then)" }
                                        }
                                    }
                                    td { @for c in &s.by_status { span class="tag" { (words::status(c.status)) ": " (c.count) } " " } }
                                    td { (m.due_soon) }
                                    td { (m.overdue) }
                                    td { (m.met) " of " (m.total) }
                                    td { @for f in &s.funding { @if let Some(t) = &f.total { span class="tag" { (words::qualifier(f.qualifier)) (words::money(t)) } " " } } }
                                }
                                (None, _) => {
                                    td colspan="6" class="warn" { "Unavailable since the gateway started (no answer yet): " (d.error) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(layout("Overview", &viewer, &times, times.now(), body))
}

/// The search form's fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchForm {
    #[serde(flatten)]
    times: Times,
    #[serde(default)]
    text: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    document: String,
    #[serde(default)]
    instrument: String,
    #[serde(default)]
    due_after: String,
    #[serde(default)]
    due_before: String,
    #[serde(default)]
    page_token: String,
}

/// `/search`: SearchInitiatives with its filters, a page at a time.
pub async fn search(state: Shared, viewer: Viewer, Query(form): Query<SearchForm>) -> Response {
    let (as_of, as_known_on) = match form.times.parse() {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let (due_after, due_before) = match (
        day(&form.due_after, "due_after"),
        day(&form.due_before, "due_before"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    let instruments = match form.instrument.trim() {
        "" => vec![],
        s => match Instrument::from_str_name(s) {
            Some(v) => vec![v as i32],
            None => return error_page(Error::invalid("instrument", "not an instrument")),
        },
    };
    let statuses = match form.status.trim() {
        "" => vec![],
        s => match LifecycleStatus::from_str_name(s) {
            Some(v) => vec![v as i32],
            None => return error_page(Error::invalid("status", "not a lifecycle status")),
        },
    };
    let domains = match form.domain.trim() {
        "" => vec![],
        s => match s.parse::<Domain>() {
            Ok(d) => vec![d.to_proto() as i32],
            Err(_) => return error_page(Error::invalid("domain", "not a domain")),
        },
    };
    let req = SearchInitiativesRequest {
        domains,
        filter: Some(InitiativeFilter {
            statuses,
            instruments,
            due_after,
            due_before,
            organization_id: form.org.trim().to_string(),
            country_code: form.country.trim().to_string(),
            topic: form.topic.trim().to_string(),
            overdue_only: form.overdue == "on",
            text: form.text.clone(),
            as_of,
            as_known_on,
            document: form.document.clone(),
            include_met_milestones: false,
        }),
        page_size: 50,
        page_token: form.page_token.clone(),
    };
    let r = match views::search::search(&state.domains, req, &viewer.ctx).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    let next = if r.next_page_token.is_empty() {
        None
    } else {
        let mut q = vec![];
        for (k, v) in [
            ("text", &form.text),
            ("org", &form.org),
            ("country", &form.country),
            ("topic", &form.topic),
            ("status", &form.status),
            ("domain", &form.domain),
            ("overdue", &form.overdue),
            ("document", &form.document),
            ("instrument", &form.instrument),
            ("due_after", &form.due_after),
            ("due_before", &form.due_before),
            ("as_of", &form.times.as_of),
            ("as_known_on", &form.times.as_known_on),
        ] {
            if !v.is_empty() {
                q.push(format!("{k}={}", encode(v)));
            }
        }
        q.push(format!("page_token={}", encode(&r.next_page_token)));
        Some(format!("/search?{}", q.join("&")))
    };
    let statuses = [
        LifecycleStatus::Proposed,
        LifecycleStatus::Announced,
        LifecycleStatus::InProgress,
        LifecycleStatus::Completed,
        LifecycleStatus::Suspended,
        LifecycleStatus::Cancelled,
    ];
    let body = html! {
        form method="get" action="/search" class="filters" {
            label { "Text " input type="search" name="text" value=(form.text); }
            label { "Organization id " input name="org" value=(form.org) placeholder="us-nsf"; }
            label { "Country " input name="country" value=(form.country) placeholder="KR" maxlength="2"; }
            label { "Topic " input name="topic" value=(form.topic); }
            label { "Status "
                select name="status" {
                    option value="" { "Any" }
                    @for s in statuses {
                        option value=(s.as_str_name()) selected[form.status == s.as_str_name()] { (words::status(s as i32)) }
                    }
                }
            }
            label { "Domain "
                select name="domain" {
                    option value="" { "Any" }
                    @for d in Domain::ALL {
                        option value=(d.slug()) selected[form.domain == d.slug()] { (d.title()) }
                    }
                }
            }
            label { "Instrument "
                select name="instrument" {
                    option value="" { "Any" }
                    @for i in 1..=11 {
                        @if let Ok(v) = Instrument::try_from(i) {
                            option value=(v.as_str_name()) selected[form.instrument == v.as_str_name()] { (words::instrument(v as i32)) }
                        }
                    }
                }
            }
            label { "Due from " input type="date" name="due_after" value=(form.due_after); }
            label { "Due until " input type="date" name="due_before" value=(form.due_before); }
            label { input type="checkbox" name="overdue" checked[form.overdue == "on"]; " Only overdue" }
            label { "Document " input name="document" value=(form.document); }
            (times_fields(&form.times))
            button type="submit" { "Search" }
        }
        @for u in &r.unavailable {
            p class="warn" { "Not searched: " (u.error) }
        }
        (initiative_table(&r.initiatives, &form.times))
        @if let Some(next) = next {
            p { a href=(next) rel="next" { "Next page" } }
        }
    };
    page(layout("Search", &viewer, &form.times, false, body))
}

/// A table of initiatives, each linking to its page.
fn initiative_table(items: &[Initiative], times: &Times) -> Markup {
    html! {
        @if items.is_empty() {
            p { "No commitments match." }
        } @else {
            table {
                caption { (items.len()) " commitments" }
                thead { tr {
                    th scope="col" { "Commitment" }
                    th scope="col" { "Domain" }
                    th scope="col" { "Status" }
                    th scope="col" { "Participants" }
                } }
                tbody {
                    @for i in items {
                        tr {
                            td { a href=(link(&format!("/{}", i.name), times)) { (i.title) } }
                            td { (domain_title(i.domain)) }
                            td { (words::status(i.status)) }
                            td {
                                @for p in &i.participants {
                                    @if let Some(o) = &p.organization {
                                        a class="tag" href=(link(&format!("/organizations/{}", encode(&o.id)), times)) {
                                            (if o.acronym.is_empty() { o.name.as_str() } else { o.acronym.as_str() })
                                        } " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The timeline form's fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TimelineForm {
    #[serde(flatten)]
    times: Times,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    met: String,
}

/// The names of the initiatives `org` takes part in (as of the filter's
/// days), through SearchInitiatives.
async fn names_of(
    state: &Shared,
    viewer: &Viewer,
    org: &str,
    as_of: Option<CalendarDate>,
    as_known_on: Option<CalendarDate>,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let mut names = std::collections::BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let r = views::search::search(
            &state.domains,
            SearchInitiativesRequest {
                domains: vec![],
                filter: Some(InitiativeFilter {
                    organization_id: org.to_string(),
                    as_of,
                    as_known_on,
                    ..Default::default()
                }),
                page_size: 1_000,
                page_token,
            },
            &viewer.ctx,
        )
        .await?;
        names.extend(r.initiatives.into_iter().map(|i| i.name));
        if r.next_page_token.is_empty() {
            return Ok(names);
        }
        page_token = r.next_page_token;
    }
}

/// `/timeline`: milestones on a time axis by due period.
pub async fn timeline(state: Shared, viewer: Viewer, Query(form): Query<TimelineForm>) -> Response {
    let parsed = (|| {
        Ok::<_, Error>((
            form.times.parse()?,
            day(&form.from, "from")?,
            day(&form.until, "until")?,
        ))
    })();
    let ((as_of, as_known_on), from, until) = match parsed {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let domains = match form.domain.trim() {
        "" => vec![],
        s => match s.parse::<Domain>() {
            Ok(d) => vec![d.to_proto() as i32],
            Err(_) => return error_page(Error::invalid("domain", "not a domain")),
        },
    };
    // Overdue ones too unless the form says otherwise (a first visit).
    let include_overdue = form.overdue != "off";
    let include_met = form.met != "off";
    let req = ListMilestoneTimelineRequest {
        due_after: from,
        due_before: until,
        include_overdue,
        as_of,
        domains,
        page_size: 1_000,
        page_token: String::new(),
        as_known_on,
        include_met,
    };
    let mut r = match views::timeline::timeline(&state.domains, req, &viewer.ctx).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    // One organization's milestones: those of the initiatives it takes
    // part in.
    if !form.org.trim().is_empty() {
        match names_of(&state, &viewer, form.org.trim(), as_of, as_known_on).await {
            Ok(names) => r.entries.retain(|e| names.contains(&e.initiative)),
            Err(e) => return error_page(e),
        }
    }
    let spans: Vec<charts::Span> = r
        .entries
        .iter()
        .filter_map(|e| {
            let m = e.milestone.as_ref()?;
            let due = m.due.as_ref()?;
            let (start, end) = dates::period(due, "").ok()?;
            Some(charts::Span {
                label: format!("{}: {}", e.initiative_title, m.title),
                start,
                end,
                state: if e.overdue {
                    charts::State::Overdue
                } else if cetrack_contract::rules::milestone_met(m) {
                    charts::State::Met
                } else {
                    charts::State::Scheduled
                },
            })
        })
        .collect();
    let body = html! {
        form method="get" action="/timeline" class="filters" {
            label { "Due from " input type="date" name="from" value=(form.from); }
            label { "Due until " input type="date" name="until" value=(form.until); }
            label { "Domain "
                select name="domain" {
                    option value="" { "Any" }
                    @for d in Domain::ALL {
                        option value=(d.slug()) selected[form.domain == d.slug()] { (d.title()) }
                    }
                }
            }
            label { "Organization id " input name="org" value=(form.org) placeholder="us-nsf"; }
            label { "Overdue ones "
                select name="overdue" {
                    option value="on" selected[include_overdue] { "Included" }
                    option value="off" selected[!include_overdue] { "Left out" }
                }
            }
            label { "Met ones "
                select name="met" {
                    option value="on" selected[include_met] { "Included" }
                    option value="off" selected[!include_met] { "Left out" }
                }
            }
            (times_fields(&form.times))
            button type="submit" { "Show" }
        }
        @for u in &r.unavailable {
            p class="warn" { "Not shown: " (u.error) }
        }
        (charts::timeline("Milestones by due period: scheduled, overdue (dashed, marked !) and met (marked ✓)", &spans))
        @if r.entries.is_empty() {
            p { "No milestone is due in this window." }
        } @else {
            table {
                caption { (r.entries.len()) " milestones, by the end of their due period" }
                thead { tr {
                    th scope="col" { "Due" }
                    th scope="col" { "Milestone" }
                    th scope="col" { "Commitment" }
                    th scope="col" { "State" }
                } }
                tbody {
                    @for e in &r.entries {
                        @if let Some(m) = &e.milestone {
                            tr {
                                td { (m.due.as_ref().map(dates::display).unwrap_or_default()) }
                                td { (m.title) }
                                td { a href=(link(&format!("/{}", e.initiative), &form.times)) { (e.initiative_title) } }
                                td {
                                    @if e.overdue { strong { "Overdue" } } @else { (words::milestone_status(m.status)) }
                                    @if let Some(d) = &m.date_met { " (" (dates::display(d)) ")" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(layout("Timeline", &viewer, &form.times, false, body))
}

/// The query of the portfolio page.
#[derive(Debug, Default, Deserialize)]
pub struct PortfolioQuery {
    #[serde(flatten)]
    times: Times,
    #[serde(default)]
    page_token: String,
}

/// `/organizations/{id}`: an organization's portfolio across domains, a
/// page at a time.
pub async fn portfolio(
    state: Shared,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<PortfolioQuery>,
) -> Response {
    let PortfolioQuery { times, page_token } = query;
    let (as_of, as_known_on) = match times.parse() {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let req = GetOrganizationPortfolioRequest {
        organization_id: id.clone(),
        due_within_days: 0,
        as_of,
        as_known_on,
        page_size: 0,
        page_token,
    };
    let p = match views::portfolio::portfolio(&state.domains, req, &viewer.ctx).await {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let org = p.organization.clone().unwrap_or_default();
    let title = if org.acronym.is_empty() {
        org.name.clone()
    } else {
        format!("{} ({})", org.name, org.acronym)
    };
    let body = html! {
        @if p.next_page_token.is_empty() {
            p { "Country " (org.country_code) "; " (p.entries.len()) " commitments." }
        } @else {
            p { "Country " (org.country_code) "; " (p.entries.len()) " commitments on this page." }
        }
        @for u in &p.unavailable {
            p class="warn" { "Not shown: " (u.error) }
        }
        table {
            caption { "Its commitments and counterparts" }
            thead { tr {
                th scope="col" { "Commitment" }
                th scope="col" { "Domain" }
                th scope="col" { "Status" }
                th scope="col" { "Role" }
                th scope="col" { "Counterparts" }
                th scope="col" { "Due soon" }
                th scope="col" { "Overdue" }
            } }
            tbody {
                @for e in &p.entries {
                    tr {
                        td { a href=(link(&format!("/{}", e.name), &times)) { (e.title) } }
                        td { (domain_title(e.domain)) }
                        td { (words::status(e.status)) }
                        td { (words::role(e.role)) }
                        td {
                            @for c in &e.counterparts {
                                @if let Some(o) = &c.organization {
                                    a class="tag" href=(link(&format!("/organizations/{}", encode(&o.id)), &times)) { (o.name) } " "
                                }
                            }
                        }
                        td { (e.milestones_due.len()) }
                        td { (e.milestones_overdue.len()) }
                    }
                }
            }
        }
    };
    let next = (!p.next_page_token.is_empty()).then(|| {
        link(
            &format!(
                "/organizations/{}?page_token={}",
                encode(&id),
                encode(&p.next_page_token)
            ),
            &times,
        )
    });
    let body = html! {
        (body)
        @if let Some(next) = next {
            p { a href=(next) rel="next" { "Next page" } }
        }
    };
    page(layout(&title, &viewer, &times, false, body))
}

/// `/domains/{domain}/initiatives/{id}`: one initiative, as of a day.
pub async fn initiative(
    state: Shared,
    viewer: Viewer,
    Path((domain, id)): Path<(String, String)>,
    Query(times): Query<Times>,
) -> Response {
    let (as_of, as_known_on) = match times.parse() {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let name = format!("domains/{domain}/initiatives/{id}");
    let parsed = match InitiativeName::parse(&name, "name") {
        Ok(n) => n,
        Err(v) => return error_page(Error::InvalidArgument(vec![v])),
    };
    // The record, or as known on a day the last version recorded by then
    // (from its history); then as it stood on the as-of day.
    let found = match as_known_on {
        None => {
            let req = GetInitiativeRequest { name: name.clone() };
            state
                .domains
                .call(parsed.domain, &viewer.ctx, |mut c, ctx| async move {
                    c.get_initiative(request(req, &ctx)).await
                })
                .await
                .map(Some)
        }
        Some(k) => known_version(&state, &viewer, parsed.domain, &name, k).await,
    };
    let i = match found {
        Ok(Some(i)) => i,
        Ok(None) => {
            return error_page(Error::NotFound(format!(
                "`{name}` did not exist then, or is not there"
            )))
        }
        Err(DomainError::Status {
            code: tonic::Code::NotFound,
            message,
            ..
        }) => return error_page(Error::NotFound(message)),
        Err(DomainError::Status {
            code: tonic::Code::InvalidArgument,
            message,
            ..
        }) => return error_page(Error::invalid("name", message)),
        Err(e) => return error_page(Error::Unavailable(e.to_string())),
    };
    // As it stood on the as-of day (today: the record itself).
    let day = as_of
        .and_then(|d| dates::calendar(&d, "as_of").ok())
        .unwrap_or_else(dates::today);
    let Some(shown) = valid_time::on_day(&i, day) else {
        return error_page(Error::NotFound(format!(
            "`{name}` was not committed to yet on {day}"
        )));
    };
    let body = initiative_body(&shown, &times, day);
    page(layout(&shown.title, &viewer, &times, times.now(), body))
}

fn party_status(status: i32) -> String {
    match ParticipantStatus::try_from(status).unwrap_or(ParticipantStatus::Unspecified) {
        ParticipantStatus::Unspecified => "Not assessed".into(),
        s => words::label(s.as_str_name(), "PARTICIPANT_STATUS_"),
    }
}

fn initiative_body(i: &Initiative, times: &Times, day: time::Date) -> Markup {
    let overdue = |m: &Milestone| {
        cetrack_contract::rules::is_open(i)
            && cetrack_contract::rules::open_milestone_due(m).is_some_and(|end| end < day)
    };
    let org_name = |id: &str| -> String {
        i.participants
            .iter()
            .filter_map(|p| p.organization.as_ref())
            .find(|o| o.id == id)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    html! {
        p class="lead" { (i.summary) }
        dl class="facts" {
            div { dt { "Domain" } dd { (domain_title(i.domain)) } }
            div { dt { "Status" } dd {
                (words::status(i.status))
                @if let Some(d) = &i.status_date { " since " (dates::display(d)) }
            } }
            div { dt { "Instrument" } dd { (words::instrument(i.instrument)) } }
            @if let Some(d) = &i.planned_start { div { dt { "Planned start" } dd { (dates::display(d)) } } }
            @if let Some(d) = &i.planned_end { div { dt { "Planned end" } dd { (dates::display(d)) } } }
        }
        section aria-labelledby="participants" {
            h2 id="participants" { "Participants" }
            table {
                caption { "Who takes part, and each party's own standing" }
                thead { tr { th scope="col" { "Organization" } th scope="col" { "Country" } th scope="col" { "Role" } th scope="col" { "Own status" } } }
                tbody {
                    @for p in &i.participants {
                        @if let Some(o) = &p.organization {
                            tr {
                                td { a href=(link(&format!("/organizations/{}", encode(&o.id)), times)) { (o.name) } }
                                td { (o.country_code) }
                                td { (words::role(p.role)) }
                                td { (party_status(p.status)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="milestones" {
            h2 id="milestones" { "Milestones" }
            @if i.milestones.is_empty() { p { "None recorded." } } @else {
                ul {
                    @for m in &i.milestones {
                        li {
                            strong { (m.title) }
                            @if let Some(d) = &m.due { ", due " (dates::display(d)) }
                            ": " (words::milestone_status(m.status))
                            @if let Some(d) = &m.date_met { " (" (dates::display(d)) ")" }
                            @if overdue(m) { " — " strong { "overdue" } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { "Status history" }
            ol {
                @for h in &i.status_history {
                    li {
                        (words::status(h.status))
                        @if let Some(d) = &h.effective { " from " (dates::display(d)) }
                        @if let Some(t) = &h.record_time {
                            " (recorded " (time::OffsetDateTime::from_unix_timestamp(t.seconds).map(|t| t.date().to_string()).unwrap_or_default()) ")"
                        }
                    }
                }
            }
        }
        section aria-labelledby="progress" {
            h2 id="progress" { "Progress" }
            @if i.progress_updates.is_empty() { p { "No progress reported." } } @else {
                ul {
                    @for p in &i.progress_updates {
                        li {
                            strong { (p.as_of.as_ref().map(dates::display).unwrap_or_default()) }
                            ", " (org_name(&p.reporting_organization_id)) ": " (p.text)
                        }
                    }
                }
            }
        }
        section aria-labelledby="money" {
            h2 id="money" { "Money" }
            @if i.funding.is_empty() { p { "None recorded." } } @else {
                ul {
                    @for f in &i.funding {
                        @if let Some(m) = &f.amount {
                            li {
                                (words::qualifier(f.qualifier)) (words::money(m))
                                @if !f.committing_organization_id.is_empty() { ", by " (org_name(&f.committing_organization_id)) }
                                @if let Some(d) = &f.date { ", " (dates::display(d)) }
                            }
                        }
                    }
                }
            }
        }
        @if !i.related_initiatives.is_empty() {
            section aria-labelledby="related" {
                h2 id="related" { "Related commitments" }
                ul { @for r in &i.related_initiatives { li { a href=(link(&format!("/{r}"), times)) { (r) } } } }
            }
        }
        section aria-labelledby="sources" {
            h2 id="sources" { "Sources" }
            @for s in &i.sources {
                figure {
                    @if !s.quote.is_empty() { blockquote { (s.quote) } }
                    figcaption {
                        (s.document)
                        @if let Some(d) = &s.date { ", " (dates::display(d)) }
                        @if !s.section.is_empty() { ", " (s.section) }
                    }
                }
            }
        }
    }
}

/// The fact sheet's fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SheetForm {
    #[serde(flatten)]
    times: Times,
    #[serde(default)]
    document: String,
    #[serde(default)]
    quotes: String,
}

async fn sheet(state: &Shared, viewer: &Viewer, form: &SheetForm) -> Result<FactSheet, Error> {
    let (as_of, as_known_on) = form.times.parse()?;
    views::factsheet::fact_sheet(
        &state.domains,
        GenerateFactSheetRequest {
            as_of,
            title: String::new(),
            as_known_on,
            document: form.document.clone(),
            include_quotes: form.quotes == "on",
        },
        &viewer.ctx,
    )
    .await
}

/// Markdown as HTML, with any HTML in it shown as text (record text is
/// untrusted).
fn markdown_html(md: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    use pulldown_cmark::{Tag, TagEnd};
    // Record text is not markup: raw HTML is shown as text, and links and
    // images written in it are shown as their words (the sheet itself makes
    // none).
    let events = Parser::new(md).filter_map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link { .. } | Tag::Image { .. })
        | Event::End(TagEnd::Link | TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// `/fact-sheet`: the fact sheet as HTML, with its Markdown download.
pub async fn fact_sheet(state: Shared, viewer: Viewer, Query(form): Query<SheetForm>) -> Response {
    let f = match sheet(&state, &viewer, &form).await {
        Ok(f) => f,
        Err(e) => return error_page(e),
    };
    let mut download = vec![];
    for (k, v) in [
        ("document", &form.document),
        ("quotes", &form.quotes),
        ("as_of", &form.times.as_of),
        ("as_known_on", &form.times.as_known_on),
    ] {
        if !v.is_empty() {
            download.push(format!("{k}={}", encode(v)));
        }
    }
    let body = html! {
        form method="get" action="/fact-sheet" class="filters" {
            label { "Document " input name="document" value=(form.document); }
            label { input type="checkbox" name="quotes" checked[form.quotes == "on"]; " The source's words" }
            (times_fields(&form.times))
            button type="submit" { "Show" }
        }
        p { a href=(format!("/fact-sheet.md?{}", download.join("&"))) download="fact-sheet.md" { "Download as Markdown" } }
        article class="sheet" { (PreEscaped(markdown_html(&f.markdown))) }
    };
    page(layout("Fact sheet", &viewer, &form.times, false, body))
}

/// `/fact-sheet.md`: the fact sheet as a Markdown download.
pub async fn fact_sheet_markdown(
    state: Shared,
    viewer: Viewer,
    Query(form): Query<SheetForm>,
) -> Response {
    match sheet(&state, &viewer, &form).await {
        Ok(f) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/markdown; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"fact-sheet.md\""),
                ),
            ],
            f.markdown,
        )
            .into_response(),
        Err(e) => error_page(e),
    }
}

/// `/events`: server-sent events, one `change` per change the viewer may
/// see (its resource name), from now on; a comment every 15 s keeps the
/// connection open. The script reloads the page on a change.
pub async fn events(state: Shared, viewer: Viewer, Peer(peer): Peer) -> Response {
    if !viewer.signed_in {
        return public_events(state, viewer, peer).await;
    }
    // From now: each domain's last revision the viewer's overview gives.
    let o =
        match views::overview::overview(&state.domains, GetOverviewRequest::default(), &viewer.ctx)
            .await
        {
            Ok(o) => o,
            Err(e) => return error_page(e),
        };
    let cursor: BTreeMap<Domain, u64> = o
        .domains
        .iter()
        .filter_map(|d| {
            let domain = Domain::from_proto(d.domain)?;
            Some((
                domain,
                d.summary
                    .as_ref()
                    .map(|s| s.last_revision)
                    .unwrap_or(0)
                    .max(0) as u64,
            ))
        })
        .collect();
    let req = WatchAllChangesRequest {
        cursor: views::watch::encode_cursor(&cursor),
        domains: vec![],
    };
    let stream = match views::watch::watch_all(
        state.domains.clone(),
        req,
        &viewer.ctx,
        state.shutdown.clone(),
    ) {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let events = stream.map(|c| -> Result<Event, Infallible> {
        Ok(match c {
            Ok(c) => Event::default()
                .event("change")
                .data(c.change.map(|c| c.name).unwrap_or_default()),
            Err(s) => Event::default().event("interrupted").data(s.message()),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `/events` of an anonymous visitor: the feed they all share (see
/// [`super::feed`]), capped per address.
async fn public_events(state: Shared, viewer: Viewer, peer: Option<std::net::IpAddr>) -> Response {
    let peer = peer.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let (rx, visit) = match state
        .public_feed
        .join(peer, &state.domains, &viewer.ctx, &state.shutdown)
        .await
    {
        Ok(joined) => joined,
        Err(e) => return error_page(e),
    };
    let events = tokio_stream::wrappers::BroadcastStream::new(rx).map(move |e| {
        let _place = &visit;
        Ok::<_, Infallible>(match e {
            Ok(FeedEvent::Change(name)) => Event::default().event("change").data(name),
            Ok(FeedEvent::Interrupted(why)) => Event::default().event("interrupted").data(why),
            // Fallen behind: a reload shows where things stand.
            Err(_) => Event::default().event("change").data(""),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The sign-in form's fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path of this site only.
fn local_path(next: &str) -> &str {
    // Printable ASCII only (browsers drop tabs and newlines from a URL, so
    // `/<TAB>/host` would become `//host`), no backslash, and not `//`.
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    }
}

/// Whether a state-changing request comes from this site's own pages:
/// browsers say where a request comes from (`Sec-Fetch-Site`, else
/// `Origin`); a request from another site is refused (no cross-site sign-in
/// or sign-out). A client that says neither (a script) is not a browser
/// carrying the viewer's cookie.
fn same_site(headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
    }
}

/// The sign-in page (with `error`, answered with `code`).
pub fn sign_in_page(error: Option<&str>, next: &str, code: StatusCode) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · cetrack" }
                link rel="stylesheet" href="/assets/style.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            }
            body {
                main id="main" {
                    h1 { "Sign in" }
                    @if let Some(e) = error { p class="warn" role="alert" { "The token was refused: " (e) } }
                    p { "Paste the bearer token your agency issued you. It is kept in a cookie of this site only, out of reach of scripts." }
                    form method="post" action="/sign-in" {
                        input type="hidden" name="next" value=(local_path(next));
                        label for="token" { "Token" }
                        textarea id="token" name="token" rows="4" required autocomplete="off" {}
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    };
    (code, Html(markup.into_string())).into_response()
}

/// The `next` query parameter of the sign-in page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// `GET /sign-in`.
pub async fn sign_in(Query(q): Query<Next>) -> Response {
    sign_in_page(None, &q.next, StatusCode::OK)
}

/// `POST /sign-in`: verifies the token and keeps it in an HttpOnly,
/// Secure, SameSite=Strict cookie.
pub async fn sign_in_post(
    state: Shared,
    headers: axum::http::HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    if !same_site(&headers) {
        return error_page(Error::PermissionDenied(
            "a sign-in from another site is refused".into(),
        ));
    }
    let token = f.token.trim().to_string();
    let next = local_path(&f.next).to_string();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        return sign_in_page(Some("not a token"), &next, StatusCode::BAD_REQUEST);
    }
    if let Err(Refused::BadToken(why)) = state.viewer(Some(token.clone()), &next) {
        return sign_in_page(Some(&why), &next, StatusCode::UNAUTHORIZED);
    }
    let cookie = format!(
        "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={SIGN_IN_SECONDS}"
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /sign-out`: forgets the cookie.
pub async fn sign_out(headers: axum::http::HeaderMap) -> Response {
    if !same_site(&headers) {
        return error_page(Error::PermissionDenied(
            "a sign-out from another site is refused".into(),
        ));
    }
    let mut r = Redirect::to("/sign-in").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "cetrack_token=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// `/assets/style.css`.
pub async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLE,
    )
        .into_response()
}

/// `/assets/app.js`.
pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        SCRIPT,
    )
        .into_response()
}

/// `/assets/icon.svg` (also answered for `/favicon.ico`).
pub async fn icon() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        ICON,
    )
        .into_response()
}

/// Anything else.
pub async fn not_found() -> Response {
    error_page(Error::NotFound("no such page".into()))
}

/// The version of initiative `name` recorded by the end of day `k` (from
/// its history); `None` when it did not exist then or was deleted.
async fn known_version(
    state: &Shared,
    viewer: &Viewer,
    domain: Domain,
    name: &str,
    k: CalendarDate,
) -> Result<Option<Initiative>, DomainError> {
    let end = dates::calendar(&k, "as_known_on")
        .ok()
        .and_then(|d| d.next_day())
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(i64::MAX);
    let mut token = String::new();
    let mut version = None;
    loop {
        let req = ListHistoryRequest {
            name: name.to_string(),
            page_size: 1_000,
            page_token: token,
        };
        let page = state
            .domains
            .call(domain, &viewer.ctx, |mut c, ctx| async move {
                c.list_history(request(req, &ctx)).await
            })
            .await?;
        for c in page.changes {
            if c.change_time.is_some_and(|t| t.seconds >= end) {
                return Ok(version);
            }
            version = if c.r#type == ChangeType::Deleted as i32 {
                None
            } else {
                c.initiative
            };
        }
        if page.next_page_token.is_empty() {
            return Ok(version);
        }
        token = page.next_page_token;
    }
}
