//! Charts as SVG drawn on the server, a few shapes each: text stays text
//! (selectable, read by screen readers), every chart has a title and a
//! description, and every series is told apart by more than its colour:
//! bars by their lightness, a legend and each part's own title (and the
//! table beside the chart gives every number), overdue milestones by a
//! dashed outline and a written mark.

use maud::{html, Markup};
use time::Date;

/// One bar of a stacked bar chart: its label and its parts.
#[derive(Debug, Clone)]
pub struct Bar {
    /// What the bar is (a domain).
    pub label: String,
    /// Each part's name and size.
    pub parts: Vec<(String, i64)>,
}

/// The fill classes, in order (the stylesheet gives each a colour and a
/// pattern).
const FILLS: [&str; 6] = ["s1", "s2", "s3", "s4", "s5", "s6"];

/// Horizontal stacked bars, one per `bars`, with a legend; `title` says what
/// the chart shows.
pub fn stacked_bars(title: &str, bars: &[Bar]) -> Markup {
    let names: Vec<String> = {
        let mut n: Vec<String> = Vec::new();
        for b in bars {
            for (p, _) in &b.parts {
                if !n.contains(p) {
                    n.push(p.clone());
                }
            }
        }
        n
    };
    let max = bars
        .iter()
        .map(|b| b.parts.iter().map(|(_, v)| *v).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, row_h) = (500.0, 420.0, 28.0);
    let height = row_h * bars.len() as f64 + 40.0;
    let description: String = bars
        .iter()
        .map(|b| {
            let parts: Vec<String> = b.parts.iter().map(|(n, v)| format!("{n} {v}")).collect();
            format!("{}: {}", b.label, parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        figure class="chart" {
            svg role="img" aria-labelledby="bars-title bars-desc" viewBox=(format!("0 0 {} {height}", label_w + bar_w + 60.0)) width="100%" {
                title id="bars-title" { (title) }
                desc id="bars-desc" { (description) }
                @for (row, b) in bars.iter().enumerate() {
                    @let y = row as f64 * row_h + 4.0;
                    @let segments = segments(b, &names, label_w, bar_w / max as f64);
                    @let end = segments.last().map(|g| g.x + g.width).unwrap_or(label_w);
                    text x=(label_w - 8.0) y=(y + 17.0) text-anchor="end" { (b.label) }
                    @for g in &segments {
                        rect class=(g.fill) x=(g.x) y=(y) width=(g.width) height=(row_h - 8.0) {
                            title { (b.label) ", " (g.name) ": " (g.value) }
                        }
                    }
                    text x=(end + 6.0) y=(y + 17.0) { (b.parts.iter().map(|(_, v)| *v).sum::<i64>()) }
                }
            }
            figcaption {
                ul class="legend" {
                    @for (i, n) in names.iter().enumerate() {
                        li { span class=(format!("swatch {}", FILLS[i % FILLS.len()])) aria-hidden="true" {} (n) }
                    }
                }
            }
        }
    }
}

/// One drawn part of a bar.
struct Segment<'a> {
    x: f64,
    width: f64,
    fill: &'static str,
    name: &'a str,
    value: i64,
}

/// The parts of bar `b`, laid end to end from `start`, `scale` wide per unit.
fn segments<'a>(b: &'a Bar, names: &[String], start: f64, scale: f64) -> Vec<Segment<'a>> {
    let mut x = start;
    b.parts
        .iter()
        .map(|(name, v)| {
            let width = scale * *v as f64;
            let fill = names
                .iter()
                .position(|n| n == name)
                .map(|i| FILLS[i % FILLS.len()])
                .unwrap_or(FILLS[0]);
            let g = Segment {
                x,
                width,
                fill,
                name,
                value: *v,
            };
            x += width;
            g
        })
        .collect()
}

/// Where a milestone stands on the day shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Still to do, not yet late.
    Scheduled,
    /// Still to do, its due period over.
    Overdue,
    /// Met or partly met.
    Met,
}

impl State {
    fn class(self) -> &'static str {
        match self {
            State::Scheduled => "due",
            State::Overdue => "overdue",
            State::Met => "met",
        }
    }

    /// The mark written beside the span (more than colour).
    fn mark(self) -> &'static str {
        match self {
            State::Scheduled => "",
            State::Overdue => "! overdue",
            State::Met => "✓ met",
        }
    }
}

/// One milestone on the timeline: its due period and where it stands.
#[derive(Debug, Clone)]
pub struct Span {
    /// What is due.
    pub label: String,
    /// The first day of the due period.
    pub start: Date,
    /// The last day of the due period.
    pub end: Date,
    /// Where it stands.
    pub state: State,
}

/// Milestones on a time axis: each due period drawn as the span it names (a
/// year as a year, a day as a day); overdue ones hatched and marked "!".
pub fn timeline(title: &str, spans: &[Span]) -> Markup {
    let Some(first) = spans.iter().map(|s| s.start).min() else {
        return html! {};
    };
    let last = spans.iter().map(|s| s.end).max().unwrap_or(first);
    let days = ((last - first).whole_days().max(1) + 1) as f64;
    let (label_w, axis_w, row_h) = (360.0, 480.0, 22.0);
    // Room on the right for the "! overdue" mark.
    let margin = 90.0;
    let shown = &spans[..spans.len().min(200)];
    let height = row_h * shown.len() as f64 + 40.0;
    let x_of = |d: Date| label_w + axis_w * ((d - first).whole_days() as f64) / days;
    let years: Vec<i32> = (first.year()..=last.year()).collect();
    html! {
        figure class="chart" {
            svg role="img" aria-labelledby="tl-title tl-desc" viewBox=(format!("0 0 {} {height}", label_w + axis_w + margin)) width="100%" {
                title id="tl-title" { (title) }
                desc id="tl-desc" { (shown.len()) " milestones from " (first) " to " (last) "; the table below lists them." }
                @for y in &years {
                    @if let Ok(d) = Date::from_calendar_date(*y, time::Month::January, 1) {
                        @let x = x_of(d.max(first));
                        line class="grid" x1=(x) x2=(x) y1="0" y2=(height - 20.0) {}
                        text x=(x + 2.0) y=(height - 6.0) { (y) }
                    }
                }
                @for (row, s) in shown.iter().enumerate() {
                    @let y = row as f64 * row_h + 4.0;
                    @let (x1, x2) = (x_of(s.start), x_of(s.end) + axis_w / days);
                    text x=(label_w - 8.0) y=(y + 13.0) text-anchor="end" {
                        (if s.label.chars().count() > 48 { format!("{}…", s.label.chars().take(47).collect::<String>()) } else { s.label.clone() })
                    }
                    rect class=(s.state.class()) x=(x1) y=(y) width=((x2 - x1).max(2.0)) height=(row_h - 8.0) {
                        title { (s.label) ": " (s.start) " to " (s.end) ", " (s.state.class()) }
                    }
                    @if s.state != State::Scheduled {
                        text x=(x2 + 3.0) y=(y + 13.0) { (s.state.mark()) }
                    }
                }
            }
        }
    }
}
