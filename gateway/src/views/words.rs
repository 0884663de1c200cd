//! The contract's values in words for people, one wording for every place
//! that prints them (the fact sheet, the dashboard): `IN_PROGRESS` is "In
//! progress", `CO_LEAD` "co-lead", 10000000 "10,000,000".

use cetrack_contract::proto::{
    AmountQualifier, Instrument, LifecycleStatus, MilestoneStatus, Money, ParticipantRole,
};

/// An enum's name without its prefix, in words, the first capitalised:
/// `LIFECYCLE_STATUS_IN_PROGRESS` is "In progress".
pub fn label(name: &str, prefix: &str) -> String {
    let words = name
        .trim_start_matches(prefix)
        .replace('_', " ")
        .to_lowercase();
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => words,
    }
}

/// A lifecycle status: "In progress".
pub fn status(status: i32) -> String {
    let s = LifecycleStatus::try_from(status).unwrap_or(LifecycleStatus::Unspecified);
    label(s.as_str_name(), "LIFECYCLE_STATUS_")
}

/// A milestone status: "Partially met".
pub fn milestone_status(status: i32) -> String {
    let s = MilestoneStatus::try_from(status).unwrap_or(MilestoneStatus::Unspecified);
    label(s.as_str_name(), "MILESTONE_STATUS_")
}

/// A participant's role, lower case: "co-lead".
pub fn role(role: i32) -> &'static str {
    match ParticipantRole::try_from(role).unwrap_or(ParticipantRole::Unspecified) {
        ParticipantRole::Lead => "lead",
        ParticipantRole::CoLead => "co-lead",
        ParticipantRole::Funder => "funder",
        ParticipantRole::Implementer => "implementer",
        ParticipantRole::Partner => "partner",
        ParticipantRole::Observer => "observer",
        ParticipantRole::Unspecified => "participant",
    }
}

/// An instrument, lower case but for acronyms: "MOU", "working group".
pub fn instrument(instrument: i32) -> &'static str {
    match Instrument::try_from(instrument).unwrap_or(Instrument::Unspecified) {
        Instrument::Mou => "MOU",
        Instrument::CooperationAgreement => "cooperation agreement",
        Instrument::JointResearchProgramme => "joint research programme",
        Instrument::WorkingGroup => "working group",
        Instrument::DialogueChannel => "dialogue channel",
        Instrument::ForumOrConsortium => "forum or consortium",
        Instrument::ExchangeProgramme => "exchange programme",
        Instrument::TestbedOrPilot => "testbed or pilot",
        Instrument::StandardsCollaboration => "standards collaboration",
        Instrument::SharedResource => "shared resource",
        Instrument::Other => "other instrument",
        Instrument::Unspecified => "instrument not stated",
    }
}

/// An amount's qualifier before it, or nothing for an exact one: "at least ".
pub fn qualifier(q: i32) -> &'static str {
    match AmountQualifier::try_from(q).unwrap_or(AmountQualifier::Exact) {
        AmountQualifier::AtLeast => "at least ",
        AmountQualifier::UpTo => "up to ",
        AmountQualifier::About => "about ",
        _ => "",
    }
}

/// A whole number with thousands separated: "10,000,000".
pub fn with_thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount of whole units: "USD 10,000,000".
pub fn money(m: &Money) -> String {
    format!("{} {}", m.currency_code, with_thousands(m.units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_labels_read_well() {
        assert_eq!(with_thousands(10_000_000), "10,000,000");
        assert_eq!(with_thousands(999), "999");
        assert_eq!(status(LifecycleStatus::InProgress as i32), "In progress");
        assert_eq!(role(ParticipantRole::CoLead as i32), "co-lead");
        assert_eq!(qualifier(AmountQualifier::AtLeast as i32), "at least ");
    }
}
