//! Checks of caller input. Each check collects every violation, with its full
//! field path, so that a caller learns of all its mistakes at once.

use std::collections::HashSet;

use crate::dates;
use crate::domain::Domain;
use crate::error::{more_violations, quote, FieldViolation, MAX_VIOLATIONS};
use crate::names::{check_slug, InitiativeName};
use crate::proto::{
    self, domain_details::Kind, ApproximateDate, DomainDetails, FundingCommitment, Initiative,
    Milestone, Participant, ProgressUpdate, SourceReference,
};

/// Limits of an initiative's parts.
pub mod limits {
    /// Longest title.
    pub const TITLE: usize = 300;
    /// Longest summary or progress text.
    pub const LONG_TEXT: usize = 10_000;
    /// Longest note.
    pub const NOTE: usize = 2_000;
    /// Most participants.
    pub const PARTICIPANTS: usize = 100;
    /// Most milestones.
    pub const MILESTONES: usize = 200;
    /// Most funding commitments.
    pub const FUNDING: usize = 100;
    /// Most related initiatives.
    pub const RELATED: usize = 100;
    /// Most topics.
    pub const TOPICS: usize = 50;
    /// Most source references.
    pub const SOURCES: usize = 20;
    /// Most evidence links on one milestone or progress update.
    pub const LINKS: usize = 20;
    /// Longest URL.
    pub const URL: usize = 2_000;
    /// Most entries in one list of domain details.
    pub const DETAIL_ITEMS: usize = 50;
    /// Longest free-text entry of domain details.
    pub const DETAIL_TEXT: usize = 300;
    /// Longest request id.
    pub const REQUEST_ID: usize = 100;
    /// Longest reporter.
    pub const REPORTER: usize = 200;
}

/// Which fields' violations a [`Violations`] keeps.
type Keep = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Collects violations while a request is checked: at most
/// [`MAX_VIOLATIONS`] are kept (and how many more there were), so that a
/// request built of millions of bad values costs no more than a few.
#[derive(Default)]
pub struct Violations {
    kept: Vec<FieldViolation>,
    more: usize,
    only: Option<Keep>,
}

impl std::fmt::Debug for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Violations")
            .field("kept", &self.kept)
            .field("more", &self.more)
            .finish_non_exhaustive()
    }
}

impl Violations {
    /// Collects only the violations of the fields `keep` accepts (e.g. the
    /// fields an update mask names).
    pub fn only(keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self {
            only: Some(Box::new(keep)),
            ..Self::default()
        }
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.push(FieldViolation::new(field, description));
    }

    fn push(&mut self, v: FieldViolation) {
        if self.only.as_ref().is_some_and(|keep| !keep(&v.field)) {
            return;
        }
        if self.kept.len() < MAX_VIOLATIONS {
            self.kept.push(v);
        } else {
            self.more += 1;
        }
    }

    /// Records several violations.
    pub fn extend(&mut self, v: impl IntoIterator<Item = FieldViolation>) {
        for x in v {
            self.push(x);
        }
    }

    /// Moves what `other` found into this one.
    pub fn absorb(&mut self, other: Violations) {
        self.more += other.more;
        self.extend(other.kept);
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// What was found: the kept violations, then one saying how many more
    /// there were.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        let mut out = self.kept;
        if self.more > 0 {
            out.push(more_violations(self.more));
        }
        out
    }

    /// Checks that a list has at most `max` entries; the entries to look
    /// at (none when there are too many: a list is never walked past its
    /// cap).
    pub fn capped<'a, T>(&mut self, field: &str, items: &'a [T], max: usize) -> &'a [T] {
        if items.len() > max {
            self.add(field, format!("at most {max} entries, has {}", items.len()));
            &[]
        } else {
            items
        }
    }

    /// Checks that `text` is set (when `required`) and at most `max` characters.
    pub fn text(&mut self, field: &str, text: &str, required: bool, max: usize) {
        if required && text.trim().is_empty() {
            self.add(field, "required");
        }
        let n = text.chars().count();
        if n > max {
            self.add(field, format!("must be at most {max} characters, is {n}"));
        }
    }

    /// Checks that `value` is a known, specified value of enum `E`.
    pub fn enum_value<E: TryFrom<i32>>(
        &mut self,
        field: &str,
        value: i32,
        allow_unspecified: bool,
    ) {
        if E::try_from(value).is_err() {
            self.add(field, format!("unknown value {value}"));
        } else if value == 0 && !allow_unspecified {
            self.add(field, "required");
        }
    }

    /// Checks an optional approximate date.
    pub fn date(
        &mut self,
        field: &str,
        date: Option<&ApproximateDate>,
    ) -> Option<(time::Date, time::Date)> {
        let date = date?;
        match dates::period(date, field) {
            Ok(p) => Some(p),
            Err(v) => {
                self.extend(v);
                None
            }
        }
    }

    /// Checks an absolute http(s) URL.
    pub fn url(&mut self, field: &str, link: &str) {
        if link.len() > limits::URL {
            self.add(field, format!("must be at most {} characters", limits::URL));
            return;
        }
        match url::Url::parse(link) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => self.add(field, "must be an absolute http or https URL"),
            Err(e) => self.add(field, format!("not a URL: {e}")),
        }
    }

    /// Checks a country code: ISO 3166-1 alpha-2 in upper case, or `ZZ`.
    pub fn country(&mut self, field: &str, code: &str, required: bool) {
        if code.is_empty() {
            if required {
                self.add(
                    field,
                    "required: an ISO 3166-1 alpha-2 code such as US or KR",
                );
            }
            return;
        }
        if !is_country_code(code) {
            self.add(
                field,
                format!(
                    "{} is not an ISO 3166-1 alpha-2 code in upper case",
                    quote(code)
                ),
            );
        }
    }

    /// Checks a slug-like id.
    pub fn slug(&mut self, field: &str, id: &str, min_len: usize) {
        if let Err(e) = check_slug(id, min_len) {
            self.add(field, e);
        }
    }

    /// Ends the check: `Ok` when nothing was found.
    pub fn finish(self) -> Result<(), crate::error::Error> {
        crate::error::Error::check(self.into_vec())
    }
}

/// True for an upper-case ISO 3166-1 alpha-2 code, or `ZZ` (no single country).
pub fn is_country_code(code: &str) -> bool {
    code == "ZZ"
        || (code.len() == 2
            && code.bytes().all(|b| b.is_ascii_uppercase())
            && isocountry::CountryCode::for_alpha2(code).is_ok())
}

/// Checks every writable field of an initiative (`field` is its path, e.g.
/// `initiative`) for a service of `domain`. Output-only fields are not looked at.
pub fn initiative(
    v: &mut Violations,
    field: &str,
    init: &Initiative,
    domain: Domain,
    self_name: Option<&str>,
) {
    v.text(&format!("{field}.title"), &init.title, true, limits::TITLE);
    v.text(
        &format!("{field}.summary"),
        &init.summary,
        false,
        limits::LONG_TEXT,
    );
    v.enum_value::<proto::Instrument>(&format!("{field}.instrument"), init.instrument, false);
    v.enum_value::<proto::LifecycleStatus>(&format!("{field}.status"), init.status, true);
    v.enum_value::<proto::Sensitivity>(&format!("{field}.sensitivity"), init.sensitivity, true);

    let ps = v.capped(
        &format!("{field}.participants"),
        &init.participants,
        limits::PARTICIPANTS,
    );
    let mut seen = HashSet::new();
    for (i, p) in ps.iter().enumerate() {
        let f = format!("{field}.participants[{i}]");
        participant(v, &f, p);
        if let Some(org) = &p.organization {
            if !org.id.is_empty() && !seen.insert(org.id.as_str()) {
                v.add(
                    format!("{f}.organization.id"),
                    format!("{} is listed twice", quote(&org.id)),
                );
            }
        }
    }

    let planned_start = v.date(
        &format!("{field}.planned_start"),
        init.planned_start.as_ref(),
    );
    let planned_end = v.date(&format!("{field}.planned_end"), init.planned_end.as_ref());
    if let (Some((start, _)), Some((_, end))) = (planned_start, planned_end) {
        if end < start {
            v.add(
                format!("{field}.planned_end"),
                "ends before the planned start begins",
            );
        }
    }
    v.date(&format!("{field}.status_date"), init.status_date.as_ref());
    let actual_start = v.date(&format!("{field}.actual_start"), init.actual_start.as_ref());
    let actual_end = v.date(&format!("{field}.actual_end"), init.actual_end.as_ref());
    if let (Some((start, _)), Some((_, end))) = (actual_start, actual_end) {
        if end < start {
            v.add(
                format!("{field}.actual_end"),
                "ends before the actual start begins",
            );
        }
    }

    let ms = v.capped(
        &format!("{field}.milestones"),
        &init.milestones,
        limits::MILESTONES,
    );
    let mut ids = HashSet::new();
    for (i, m) in ms.iter().enumerate() {
        let f = format!("{field}.milestones[{i}]");
        milestone(v, &f, m);
        if !m.id.is_empty() && !ids.insert(m.id.as_str()) {
            v.add(format!("{f}.id"), format!("{} is used twice", quote(&m.id)));
        }
    }

    let cs = v.capped(&format!("{field}.funding"), &init.funding, limits::FUNDING);
    for (i, c) in cs.iter().enumerate() {
        funding(v, &format!("{field}.funding[{i}]"), c);
    }

    let rs = v.capped(
        &format!("{field}.related_initiatives"),
        &init.related_initiatives,
        limits::RELATED,
    );
    for (i, r) in rs.iter().enumerate() {
        let f = format!("{field}.related_initiatives[{i}]");
        match InitiativeName::parse(r, &f) {
            Err(e) => v.extend([e]),
            Ok(_) if Some(r.as_str()) == self_name => {
                v.add(f, "an initiative cannot be related to itself")
            }
            Ok(_) => {}
        }
    }

    let ts = v.capped(&format!("{field}.topics"), &init.topics, limits::TOPICS);
    let mut topics = HashSet::new();
    for (i, t) in ts.iter().enumerate() {
        let f = format!("{field}.topics[{i}]");
        v.slug(&f, t, 1);
        if !topics.insert(t.as_str()) {
            v.add(f, format!("{} is listed twice", quote(t)));
        }
    }

    let ss = v.capped(&format!("{field}.sources"), &init.sources, limits::SOURCES);
    for (i, s) in ss.iter().enumerate() {
        source(v, &format!("{field}.sources[{i}]"), s);
    }

    if let Some(details) = &init.details {
        domain_details(v, &format!("{field}.details"), details, domain);
    }
}

fn participant(v: &mut Violations, field: &str, p: &Participant) {
    match &p.organization {
        None => v.add(format!("{field}.organization"), "required"),
        Some(org) => {
            v.slug(&format!("{field}.organization.id"), &org.id, 2);
            v.text(
                &format!("{field}.organization.name"),
                &org.name,
                true,
                limits::TITLE,
            );
            v.text(
                &format!("{field}.organization.acronym"),
                &org.acronym,
                false,
                30,
            );
            v.country(
                &format!("{field}.organization.country_code"),
                &org.country_code,
                true,
            );
            v.enum_value::<proto::OrganizationType>(
                &format!("{field}.organization.type"),
                org.r#type,
                false,
            );
        }
    }
    v.enum_value::<proto::ParticipantRole>(&format!("{field}.role"), p.role, false);
    v.enum_value::<proto::ParticipantStatus>(&format!("{field}.status"), p.status, true);
    v.text(&format!("{field}.note"), &p.note, false, limits::NOTE);
}

/// Checks one milestone.
pub fn milestone(v: &mut Violations, field: &str, m: &Milestone) {
    v.slug(&format!("{field}.id"), &m.id, 1);
    v.text(&format!("{field}.title"), &m.title, true, limits::TITLE);
    v.date(&format!("{field}.due"), m.due.as_ref());
    v.enum_value::<proto::MilestoneStatus>(&format!("{field}.status"), m.status, true);
    if m.date_met.is_some() {
        let met = matches!(
            proto::MilestoneStatus::try_from(m.status),
            Ok(proto::MilestoneStatus::Met | proto::MilestoneStatus::PartiallyMet)
        );
        if !met {
            v.add(
                format!("{field}.date_met"),
                "only a MET or PARTIALLY_MET milestone has a date met",
            );
        }
        v.date(&format!("{field}.date_met"), m.date_met.as_ref());
    }
    links(v, &format!("{field}.evidence_links"), &m.evidence_links);
}

fn links(v: &mut Violations, field: &str, links: &[String]) {
    let ls = v.capped(field, links, limits::LINKS);
    for (i, l) in ls.iter().enumerate() {
        v.url(&format!("{field}[{i}]"), l);
    }
}

fn funding(v: &mut Violations, field: &str, c: &FundingCommitment) {
    match &c.amount {
        None => v.add(format!("{field}.amount"), "required"),
        Some(m) => {
            if iso_currency::Currency::from_code(&m.currency_code).is_none() {
                v.add(
                    format!("{field}.amount.currency_code"),
                    format!(
                        "{} is not an ISO 4217 currency code",
                        quote(&m.currency_code)
                    ),
                );
            }
            if m.units < 0 {
                v.add(format!("{field}.amount.units"), "must not be negative");
            }
            if !(0..1_000_000_000).contains(&m.nanos) {
                v.add(format!("{field}.amount.nanos"), "must be 0 to 999,999,999");
            }
            if m.units == 0 && m.nanos == 0 {
                v.add(format!("{field}.amount"), "must be more than zero");
            }
        }
    }
    v.enum_value::<proto::AmountQualifier>(&format!("{field}.qualifier"), c.qualifier, true);
    v.enum_value::<proto::FundingKind>(&format!("{field}.kind"), c.kind, true);
    if !c.committing_organization_id.is_empty() {
        v.slug(
            &format!("{field}.committing_organization_id"),
            &c.committing_organization_id,
            2,
        );
    }
    v.text(&format!("{field}.note"), &c.note, false, limits::NOTE);
    v.date(&format!("{field}.date"), c.date.as_ref());
}

fn source(v: &mut Violations, field: &str, s: &SourceReference) {
    v.text(&format!("{field}.document"), &s.document, true, 500);
    v.date(&format!("{field}.date"), s.date.as_ref());
    v.text(
        &format!("{field}.section"),
        &s.section,
        false,
        limits::TITLE,
    );
    if !s.url.is_empty() {
        v.url(&format!("{field}.url"), &s.url);
    }
    v.text(&format!("{field}.quote"), &s.quote, false, 5_000);
    for (name, n) in [
        ("section_order", s.section_order),
        ("bullet_order", s.bullet_order),
    ] {
        if !(0..=1_000).contains(&n) {
            v.add(
                format!("{field}.{name}"),
                format!("must be 0 to 1,000, is {n}"),
            );
        }
    }
}

/// Checks a progress update.
pub fn progress_update(v: &mut Violations, field: &str, p: &ProgressUpdate) {
    match &p.as_of {
        None => v.add(format!("{field}.as_of"), "required"),
        Some(d) => {
            v.date(&format!("{field}.as_of"), Some(d));
        }
    }
    v.slug(
        &format!("{field}.reporting_organization_id"),
        &p.reporting_organization_id,
        2,
    );
    v.text(&format!("{field}.text"), &p.text, true, limits::LONG_TEXT);
    v.enum_value::<proto::CompletionAssessment>(&format!("{field}.assessment"), p.assessment, true);
    links(v, &format!("{field}.evidence_links"), &p.evidence_links);
}

/// The domain a kind of details belongs to.
pub fn details_domain(kind: &Kind) -> Domain {
    match kind {
        Kind::Semiconductors(_) => Domain::Semiconductors,
        Kind::Biotech(_) => Domain::Biotech,
        Kind::Energy(_) => Domain::Energy,
        Kind::Quantum(_) => Domain::Quantum,
        Kind::Ai(_) => Domain::Ai,
        Kind::Connectivity(_) => Domain::Connectivity,
        Kind::Partnerships(_) => Domain::Partnerships,
    }
}

fn enum_list<E: TryFrom<i32>>(v: &mut Violations, field: &str, values: &[i32]) {
    let xs = v.capped(field, values, limits::DETAIL_ITEMS);
    for (i, x) in xs.iter().enumerate() {
        v.enum_value::<E>(&format!("{field}[{i}]"), *x, false);
    }
}

fn text_list(v: &mut Violations, field: &str, values: &[String]) {
    let xs = v.capped(field, values, limits::DETAIL_ITEMS);
    for (i, x) in xs.iter().enumerate() {
        v.text(&format!("{field}[{i}]"), x, true, limits::DETAIL_TEXT);
    }
}

fn domain_details(v: &mut Violations, field: &str, details: &DomainDetails, domain: Domain) {
    let Some(kind) = &details.kind else {
        return;
    };
    let theirs = details_domain(kind);
    if theirs != domain {
        v.add(
            format!("{field}.{}", theirs.slug()),
            format!(
                "{theirs} details are not accepted by the {domain} service; send {domain} details"
            ),
        );
        return;
    }
    let f = |name: &str| format!("{field}.{}.{name}", domain.slug());
    match kind {
        Kind::Semiconductors(d) => {
            enum_list::<proto::SupplyChainSegment>(v, &f("segments"), &d.segments);
            text_list(v, &f("technology_nodes"), &d.technology_nodes);
            text_list(v, &f("research_centers"), &d.research_centers);
        }
        Kind::Biotech(d) => {
            enum_list::<proto::BiotechResearchArea>(v, &f("research_areas"), &d.research_areas);
            text_list(v, &f("supply_chain_inputs"), &d.supply_chain_inputs);
        }
        Kind::Energy(d) => {
            enum_list::<proto::BatteryChemistry>(v, &f("chemistries"), &d.chemistries);
            enum_list::<proto::EnergyApplication>(v, &f("applications"), &d.applications);
        }
        Kind::Quantum(d) => {
            enum_list::<proto::QuantumPlatform>(v, &f("platforms"), &d.platforms);
            enum_list::<proto::QuantumActivity>(v, &f("activities"), &d.activities);
        }
        Kind::Ai(d) => {
            text_list(v, &f("governance_frameworks"), &d.governance_frameworks);
            text_list(v, &f("standards_bodies"), &d.standards_bodies);
        }
        Kind::Connectivity(d) => {
            enum_list::<proto::ConnectivityTechnology>(v, &f("technologies"), &d.technologies);
            text_list(v, &f("target_regions"), &d.target_regions);
        }
        Kind::Partnerships(d) => {
            let field = f("partner_country_codes");
            let cs = v.capped(&field, &d.partner_country_codes, limits::DETAIL_ITEMS);
            for (i, c) in cs.iter().enumerate() {
                v.country(&format!("{field}[{i}]"), c, true);
            }
            v.enum_value::<proto::PartnershipFormat>(&f("format"), d.format, true);
        }
    }
}

/// Checks a request id and a reporter, common to every write.
pub fn write_meta(v: &mut Violations, request_id: &str, reporter: &str) {
    v.text("request_id", request_id, false, limits::REQUEST_ID);
    v.text("reporter", reporter, false, limits::REPORTER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Organization, SemiconductorDetails};

    fn valid() -> Initiative {
        Initiative {
            title: "NSF-MSIT semiconductor research".into(),
            instrument: proto::Instrument::JointResearchProgramme as i32,
            participants: vec![Participant {
                organization: Some(Organization {
                    id: "us-nsf".into(),
                    name: "National Science Foundation".into(),
                    acronym: "NSF".into(),
                    country_code: "US".into(),
                    r#type: proto::OrganizationType::MinistryOrAgency as i32,
                }),
                role: proto::ParticipantRole::Lead as i32,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn check(init: &Initiative, domain: Domain) -> Vec<String> {
        let mut v = Violations::default();
        initiative(&mut v, "initiative", init, domain, None);
        v.into_vec().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_valid_initiative_passes() {
        assert!(check(&valid(), Domain::Semiconductors).is_empty());
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let mut i = valid();
        i.title.clear();
        i.instrument = 99;
        i.participants[0]
            .organization
            .as_mut()
            .unwrap()
            .country_code = "XX".into();
        i.participants.push(i.participants[0].clone());
        i.topics = vec!["Bad Topic".into()];
        i.details = Some(DomainDetails {
            kind: Some(Kind::Semiconductors(SemiconductorDetails {
                segments: vec![0],
                ..Default::default()
            })),
        });
        let fields = check(&i, Domain::Semiconductors);
        assert_eq!(
            fields,
            vec![
                "initiative.title",
                "initiative.instrument",
                "initiative.participants[0].organization.country_code",
                "initiative.participants[1].organization.country_code",
                "initiative.participants[1].organization.id",
                "initiative.topics[0]",
                "initiative.details.semiconductors.segments[0]",
            ]
        );
    }

    #[test]
    fn details_of_another_domain_are_rejected() {
        let mut i = valid();
        i.details = Some(DomainDetails {
            kind: Some(Kind::Semiconductors(SemiconductorDetails::default())),
        });
        assert_eq!(
            check(&i, Domain::Quantum),
            vec!["initiative.details.semiconductors"]
        );
    }

    #[test]
    fn country_codes_are_iso() {
        assert!(is_country_code("KR"));
        assert!(is_country_code("IN"));
        assert!(is_country_code("ZZ"));
        assert!(!is_country_code("kr"));
        assert!(!is_country_code("XX"));
        assert!(!is_country_code("USA"));
    }
}
