//! The curated seed data set `cli/data/us-rok-cet-2023-12-08.jsonl`: every
//! commitment of the 2023-12-08 U.S.-ROK fact sheet as a
//! `cet.v1.CreateInitiativeRequest` in proto3 JSON mapping, one per line.
//!
//! Checks that every line is a canonical, valid request; that ids are unique
//! and links resolve; that the counts are those stated in
//! `cli/data/README.md`; that an organization id means the same organization
//! everywhere; and that real domain servers accept every line, and accept a
//! replay of every line without creating anything new.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cetrack_contract::names::{check_resource_id, parse_parent};
use cetrack_contract::proto::*;
use cetrack_contract::validate::{self, Violations};
use cetrack_contract::Domain;
use cetrack_tests::TestDomain;

/// The data file, relative to this crate.
const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../cli/data/us-rok-cet-2023-12-08.jsonl"
);

/// Records per domain, as stated in the table of `cli/data/README.md`.
const EXPECTED: [(Domain, usize); 7] = [
    (Domain::Semiconductors, 3),
    (Domain::Biotech, 10),
    (Domain::Energy, 5),
    (Domain::Quantum, 4),
    (Domain::Ai, 4),
    (Domain::Connectivity, 5),
    (Domain::Partnerships, 6),
];

/// The total stated in `cli/data/README.md`.
const TOTAL: usize = 37;

const DOCUMENT: &str = "Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue";
const SOURCE_URL: &str = "https://www.whitehouse.gov/briefing-room/statements-releases/2023/12/08/joint-fact-sheet-launching-the-u-s-rok-next-generation-critical-and-emerging-technologies-dialogue/";

/// One line of the file.
struct Record {
    line: usize,
    domain: Domain,
    name: String,
    request: CreateInitiativeRequest,
}

impl Record {
    fn initiative(&self) -> &Initiative {
        self.request
            .initiative
            .as_ref()
            .unwrap_or_else(|| panic!("line {}: no initiative", self.line))
    }
}

/// Reads and parses every line; panics with the line number on any error.
fn load() -> Vec<Record> {
    let text = std::fs::read_to_string(DATA).unwrap_or_else(|e| panic!("cannot read {DATA}: {e}"));
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        assert!(!raw.trim().is_empty(), "line {line} is empty");
        let request: CreateInitiativeRequest = serde_json::from_str(raw)
            .unwrap_or_else(|e| panic!("line {line} is not a CreateInitiativeRequest: {e}"));
        // Canonical proto3 JSON: what the generated mapping writes back is
        // exactly what the line says (no defaults spelled out, no aliases).
        let original: serde_json::Value = serde_json::from_str(raw).unwrap();
        let written = serde_json::to_value(&request).unwrap();
        assert_eq!(
            written, original,
            "line {line} is not in canonical proto3 JSON form"
        );
        let domain = parse_parent(&request.parent, "parent")
            .unwrap_or_else(|e| panic!("line {line}: bad parent: {}", e.description));
        let name = format!("{}/initiatives/{}", request.parent, request.initiative_id);
        out.push(Record {
            line,
            domain,
            name,
            request,
        });
    }
    out
}

#[test]
fn every_line_is_a_valid_create_request() {
    let records = load();
    for r in &records {
        let line = r.line;
        let id = &r.request.initiative_id;
        assert!(
            check_resource_id(id).is_ok(),
            "line {line}: bad initiative id `{id}`"
        );
        assert_eq!(
            r.request.request_id,
            format!("seed-2023-12-08-{id}"),
            "line {line}"
        );
        assert_eq!(r.request.reporter, "seed", "line {line}");

        let init = r.initiative();
        let mut v = Violations::default();
        validate::initiative(&mut v, "initiative", init, r.domain, Some(&r.name));
        validate::write_meta(&mut v, &r.request.request_id, &r.request.reporter);
        assert!(v.is_empty(), "line {line} ({id}): {v:?}");

        // What the curation promises beyond the validation rules.
        assert!(!init.summary.is_empty(), "line {line}: no summary");
        // A fact sheet states commitments as announced or proposed; only
        // what it says has started (the dialogue itself, that day) is in
        // progress, dated.
        match LifecycleStatus::try_from(init.status) {
            Ok(LifecycleStatus::Announced | LifecycleStatus::Proposed) => {
                assert_eq!(init.status_date, None, "line {line}: dated by its source")
            }
            Ok(LifecycleStatus::InProgress) => assert_eq!(
                init.status_date,
                Some(cetrack_contract::dates::day(2023, 12, 8)),
                "line {line}: in progress since the dialogue met"
            ),
            other => panic!("line {line}: status {other:?}"),
        }
        // Every record knows where it stands in the document.
        for s in &init.sources {
            assert!(
                s.section_order > 0 && s.bullet_order > 0,
                "line {line}: no position in the document"
            );
        }
        assert_eq!(
            init.sensitivity,
            Sensitivity::Public as i32,
            "line {line}: sensitivity is set explicitly"
        );
        assert!(
            !init.participants.is_empty(),
            "line {line}: no participants"
        );
        assert!(
            init.participants.iter().any(|p| matches!(
                ParticipantRole::try_from(p.role),
                Ok(ParticipantRole::Lead | ParticipantRole::CoLead)
            )),
            "line {line}: nobody leads"
        );
        assert!(!init.topics.is_empty(), "line {line}: no topics");
        assert_eq!(init.sources.len(), 1, "line {line}: one source");
        let s = &init.sources[0];
        assert_eq!(s.document, DOCUMENT, "line {line}");
        assert_eq!(s.url, SOURCE_URL, "line {line}");
        assert!(
            !s.section.is_empty() && !s.quote.is_empty(),
            "line {line}: section and quote"
        );
        assert_eq!(
            s.date,
            Some(ApproximateDate {
                precision: DatePrecision::Day as i32,
                year: 2023,
                month: 12,
                day: 8,
                quarter: 0,
            }),
            "line {line}"
        );
        if let Some(kind) = init.details.as_ref().and_then(|d| d.kind.as_ref()) {
            assert_eq!(validate::details_domain(kind), r.domain, "line {line}");
        }
        let participants: BTreeSet<&str> = init
            .participants
            .iter()
            .filter_map(|p| p.organization.as_ref().map(|o| o.id.as_str()))
            .collect();
        for f in &init.funding {
            if !f.committing_organization_id.is_empty() {
                assert!(
                    participants.contains(f.committing_organization_id.as_str()),
                    "line {line}: the committing organization is not a participant"
                );
            }
        }
    }
}

#[test]
fn ids_are_unique_and_related_initiatives_exist_both_ways() {
    let records = load();
    let mut names = BTreeSet::new();
    for r in &records {
        assert!(names.insert(r.name.as_str()), "{} is used twice", r.name);
    }
    let related: HashMap<&str, &[String]> = records
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.initiative().related_initiatives.as_slice(),
            )
        })
        .collect();
    for r in &records {
        for other in &r.initiative().related_initiatives {
            assert!(
                names.contains(other.as_str()),
                "{} links to {other}, which is not in the file",
                r.name
            );
            assert!(
                related[other.as_str()].contains(&r.name),
                "{} links to {other} but not the other way",
                r.name
            );
        }
    }
}

#[test]
fn counts_per_domain_are_those_of_the_readme() {
    let records = load();
    assert_eq!(records.len(), TOTAL);
    assert_eq!(EXPECTED.iter().map(|(_, n)| n).sum::<usize>(), TOTAL);
    let mut counts: BTreeMap<Domain, usize> = BTreeMap::new();
    for r in &records {
        *counts.entry(r.domain).or_default() += 1;
    }
    for (domain, n) in EXPECTED {
        assert!(n >= 1, "every domain has a record");
        assert_eq!(counts.get(&domain).copied().unwrap_or(0), n, "{domain}");
    }
}

#[test]
fn an_organization_id_means_the_same_organization_everywhere() {
    let records = load();
    let mut seen: BTreeMap<String, (Organization, usize)> = BTreeMap::new();
    let mut domains: BTreeMap<String, BTreeSet<Domain>> = BTreeMap::new();
    for r in &records {
        for p in &r.initiative().participants {
            let org = p.organization.clone().expect("organization");
            domains.entry(org.id.clone()).or_default().insert(r.domain);
            match seen.get(&org.id) {
                None => {
                    seen.insert(org.id.clone(), (org.clone(), r.line));
                }
                Some((first, first_line)) => assert_eq!(
                    &org, first,
                    "line {} describes `{}` differently from line {first_line}",
                    r.line, org.id
                ),
            }
            let prefix = format!("{}-", org.country_code.to_lowercase());
            assert!(
                org.id.starts_with(&prefix),
                "`{}` should start with its country code",
                org.id
            );
        }
    }
    let nsf = domains.get("us-nsf").map(BTreeSet::len).unwrap_or(0);
    assert!(nsf >= 2, "NSF takes part in {nsf} domain(s)");
}

/// The domain summary of `t`.
async fn summary(t: &TestDomain) -> anyhow::Result<DomainSummary> {
    Ok(t.client
        .clone()
        .get_domain_summary(GetDomainSummaryRequest {
            parent: t.parent(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn real_servers_accept_every_line_and_a_replay_creates_nothing() -> anyhow::Result<()> {
    let records = load();
    for (domain, expected) in EXPECTED {
        let mine: Vec<&Record> = records.iter().filter(|r| r.domain == domain).collect();
        assert_eq!(mine.len(), expected);
        let mut t = TestDomain::start(domain).await?;

        let mut created = Vec::new();
        for r in &mine {
            let got = t
                .client
                .create_initiative(r.request.clone())
                .await
                .map_err(|s| anyhow::anyhow!("line {} ({}): {s:?}", r.line, r.name))?
                .into_inner();
            assert_eq!(got.name, r.name);
            let sent = r.initiative();
            assert_eq!(got.title, sent.title);
            assert_eq!(got.participants, sent.participants);
            assert_eq!(got.related_initiatives, sent.related_initiatives);
            assert_eq!(got.details, sent.details);
            created.push(got);
        }
        let before = summary(&t).await?;
        assert_eq!(before.initiative_count, expected as i64, "{domain}");

        // The same requests again, with the same request ids: the first
        // results come back and nothing is written.
        for (r, first) in mine.iter().zip(&created) {
            let again = t
                .client
                .create_initiative(r.request.clone())
                .await
                .map_err(|s| anyhow::anyhow!("replay of line {} ({}): {s:?}", r.line, r.name))?
                .into_inner();
            assert_eq!(&again, first, "replay of {}", r.name);
        }
        let after = summary(&t).await?;
        assert_eq!(after.initiative_count, expected as i64, "{domain}");
        assert_eq!(after.last_revision, before.last_revision, "{domain}");

        let listed = t
            .client
            .list_initiatives(ListInitiativesRequest {
                parent: t.parent(),
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let listed: BTreeSet<String> = listed.initiatives.into_iter().map(|i| i.name).collect();
        let sent: BTreeSet<String> = mine.iter().map(|r| r.name.clone()).collect();
        assert_eq!(listed, sent, "{domain}");

        if domain == Domain::Biotech {
            // The one sum of the fact sheet: at least US$10 million.
            assert_eq!(after.funding.len(), 1);
            let f = &after.funding[0];
            assert_eq!(f.qualifier, AmountQualifier::AtLeast as i32);
            let total = f.total.clone().unwrap_or_default();
            assert_eq!(
                (total.currency_code.as_str(), total.units),
                ("USD", 10_000_000)
            );
        }
    }
    Ok(())
}
