//! How results are shown: tables for people, JSON for scripts.

use cetrack_contract::dates;
use cetrack_contract::proto::{ApproximateDate, Initiative, Money};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum Format {
    /// Tables and text for people.
    #[default]
    Table,
    /// JSON (proto3 JSON mapping) for scripts.
    Json,
}

/// Prints a message as pretty JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table with a header.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// An enum value's name without its prefix, in lower case with hyphens.
pub(crate) fn label(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', "-")
}

/// An optional approximate date.
pub(crate) fn date(d: Option<&ApproximateDate>) -> String {
    d.map(dates::display).unwrap_or_else(|| "-".into())
}

/// An amount of money.
pub(crate) fn money(m: Option<&Money>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m.nanos == 0 => format!("{} {}", m.currency_code, m.units),
        Some(m) => format!("{} {}.{:09}", m.currency_code, m.units, m.nanos),
    }
}

/// Initiatives as a table.
pub(crate) fn initiatives(items: &[Initiative]) -> Table {
    let mut t = table(&[
        "name",
        "title",
        "status",
        "instrument",
        "participants",
        "planned end",
    ]);
    for i in items {
        let status = cetrack_contract::proto::LifecycleStatus::try_from(i.status)
            .map(|s| label(s.as_str_name(), "LIFECYCLE_STATUS_"))
            .unwrap_or_default();
        let instrument = cetrack_contract::proto::Instrument::try_from(i.instrument)
            .map(|s| label(s.as_str_name(), "INSTRUMENT_"))
            .unwrap_or_default();
        let people: Vec<String> = i
            .participants
            .iter()
            .filter_map(|p| p.organization.as_ref().map(|o| o.id.clone()))
            .collect();
        t.add_row(vec![
            i.name.clone(),
            i.title.clone(),
            status,
            instrument,
            people.join(", "),
            date(i.planned_end.as_ref()),
        ]);
    }
    t
}
