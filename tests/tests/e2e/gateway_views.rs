//! End-to-end tests of the gateway's views: the seven real domain services
//! and the gateway run in this process on ephemeral ports over temporary
//! directories; the data is written through the domain services and read
//! back through the gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

/// How long a change may take to arrive on the merged stream.
const ARRIVAL: Duration = Duration::from_secs(10);

fn money(currency: &str, units: i64, nanos: i32) -> Money {
    Money {
        currency_code: currency.into(),
        units,
        nanos,
    }
}

fn funding(amount: Money, qualifier: AmountQualifier, by: &str) -> FundingCommitment {
    FundingCommitment {
        date: None,
        amount: Some(amount),
        qualifier: qualifier as i32,
        committing_organization_id: by.into(),
        kind: FundingKind::Pledged as i32,
        note: String::new(),
    }
}

fn nsf() -> Organization {
    org(
        "us-nsf",
        "National Science Foundation",
        "NSF",
        "US",
        OrganizationType::MinistryOrAgency,
    )
}

fn msit() -> Organization {
    org(
        "kr-msit",
        "Ministry of Science and ICT",
        "MSIT",
        "KR",
        OrganizationType::MinistryOrAgency,
    )
}

fn kiat() -> Organization {
    org(
        "kr-kiat",
        "Korea Institute for Advancement of Technology",
        "KIAT",
        "KR",
        OrganizationType::MinistryOrAgency,
    )
}

/// The as-of day of the seeded data set and its "due soon" window.
const AS_OF: (i32, i32, i32) = (2025, 6, 15);
const WITHIN: i32 = 60;

/// Writes the data set of the overview, search and portfolio tests through
/// the domain services (connectivity stays empty) and returns the created
/// initiatives by name. Judged as of 2025-06-15 with 60 days "due soon"
/// (up to 2025-08-14):
///
/// | initiative                   | status      | milestones (due end)                               |
/// |------------------------------|-------------|----------------------------------------------------|
/// | semiconductors/chips-rd      | ANNOUNCED   | launch 2026-12-31, q2-report 2025-06-30 (due soon)  |
/// | semiconductors/chips-talent  | IN_PROGRESS | kickoff 2025-03-31 (overdue), pilot MET             |
/// | biotech/bio-foundry          | ANNOUNCED   | site 2025-07-31 (due soon)                          |
/// | energy/battery-safety        | ANNOUNCED   | launch 2024-12-31 (overdue); planned end 2024: late |
/// | quantum/qubits               | COMPLETED   | launch 2024-12-31 (closed: neither)                 |
/// | ai/ai-safety                 | PROPOSED    | report 2025-08-31 (beyond 60 days, within 90)       |
/// | partnerships/trilateral      | ANNOUNCED   | launch 2027-12-31                                   |
async fn seed(s: &Stack) -> anyhow::Result<BTreeMap<String, Initiative>> {
    let mut chips_rd = sample(Domain::Semiconductors, "Advanced Packaging R&D", 2026);
    chips_rd
        .milestones
        .push(milestone("q2-report", quarter(2025, 2)));

    let mut chips_talent = sample(
        Domain::Semiconductors,
        "Semiconductor Talent Exchange",
        2027,
    );
    chips_talent.status = LifecycleStatus::InProgress as i32;
    chips_talent.instrument = Instrument::ExchangeProgramme as i32;
    chips_talent.participants = vec![
        Participant {
            organization: Some(nsf()),
            role: ParticipantRole::Funder as i32,
            status: ParticipantStatus::OnTrack as i32,
            note: String::new(),
        },
        participant(kiat(), ParticipantRole::Implementer),
    ];
    chips_talent.milestones = vec![
        milestone("kickoff", quarter(2025, 1)),
        Milestone {
            status: MilestoneStatus::Met as i32,
            date_met: Some(year(2024)),
            ..milestone("pilot", year(2024))
        },
    ];
    chips_talent.funding = vec![funding(
        money("KRW", 5_000_000_000, 0),
        AmountQualifier::Exact,
        "kr-kiat",
    )];
    chips_talent.topics = vec!["talent".into()];

    let mut bio = sample(Domain::Biotech, "Bio-Foundry Network", 2025);
    bio.instrument = Instrument::Mou as i32;
    bio.participants = vec![
        participant(
            org(
                "us-nih",
                "National Institutes of Health",
                "NIH",
                "US",
                OrganizationType::NationalLabOrInstitute,
            ),
            ParticipantRole::Lead,
        ),
        participant(
            org(
                "kr-kribb",
                "Korea Research Institute of Bioscience and Biotechnology",
                "KRIBB",
                "KR",
                OrganizationType::NationalLabOrInstitute,
            ),
            ParticipantRole::Partner,
        ),
    ];
    bio.planned_end = Some(month(2025, 12));
    bio.milestones = vec![milestone("site", month(2025, 7))];
    bio.funding = vec![funding(
        money("USD", 2_500_000, 500_000_000),
        AmountQualifier::AtLeast,
        "us-nih",
    )];

    let battery = sample(Domain::Energy, "Battery Safety Standards", 2024);

    let mut qubits = sample(Domain::Quantum, "Quantum Workforce Exchange", 2024);
    qubits.status = LifecycleStatus::Completed as i32;
    qubits.funding[0].qualifier = AmountQualifier::UpTo as i32;

    let mut ai = sample(Domain::Ai, "AI Safety Institutes", 2030);
    ai.status = LifecycleStatus::Proposed as i32;
    ai.instrument = Instrument::DialogueChannel as i32;
    ai.participants = vec![
        participant(
            org(
                "us-nist",
                "National Institute of Standards and Technology",
                "NIST",
                "US",
                OrganizationType::NationalLabOrInstitute,
            ),
            ParticipantRole::CoLead,
        ),
        participant(msit(), ParticipantRole::CoLead),
    ];
    ai.milestones = vec![milestone("report", month(2025, 8))];
    ai.funding = vec![];

    let partnership = sample(
        Domain::Partnerships,
        "Trilateral Technology Partnership",
        2027,
    );

    let writes = [
        (Domain::Semiconductors, "chips-rd", chips_rd),
        (Domain::Semiconductors, "chips-talent", chips_talent),
        (Domain::Biotech, "bio-foundry", bio),
        (Domain::Energy, "battery-safety", battery),
        (Domain::Quantum, "qubits", qubits),
        (Domain::Ai, "ai-safety", ai),
        (Domain::Partnerships, "trilateral", partnership),
    ];
    let mut out = BTreeMap::new();
    for (d, id, init) in writes {
        let created = s.create(d, id, init).await?;
        out.insert(created.name.clone(), created);
    }
    Ok(out)
}

fn names(initiatives: &[Initiative]) -> Vec<String> {
    initiatives.iter().map(|i| i.name.clone()).collect()
}

fn n(domain: &str, id: &str) -> String {
    format!("domains/{domain}/initiatives/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_sums_the_summaries_of_every_domain() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    seed(&s).await?;
    let (y, m, d) = AS_OF;
    let as_of = calendar(y, m, d);
    let o = s
        .gateway
        .clone()
        .get_overview(GetOverviewRequest {
            document: String::new(),
            as_known_on: None,
            due_within_days: WITHIN,
            as_of: Some(as_of),
        })
        .await?
        .into_inner();
    assert_eq!(o.as_of, Some(as_of));
    assert!(o.generate_time.is_some());

    // One entry per domain, in the order of the Domain enum, each fresh and
    // equal to what the domain itself reports.
    let order: Vec<i32> = o.domains.iter().map(|e| e.domain).collect();
    let expected_order: Vec<i32> = Domain::ALL.iter().map(|d| d.to_proto() as i32).collect();
    assert_eq!(order, expected_order);
    let counts = [2, 1, 1, 1, 1, 0, 1];
    for ((entry, domain), count) in o.domains.iter().zip(Domain::ALL).zip(counts) {
        assert!(entry.available, "{domain} is available");
        assert_eq!(entry.error, "");
        assert_eq!(entry.summary_age, Some(pbjson_types::Duration::default()));
        let summary = entry.summary.clone().expect("a fresh summary");
        assert_eq!(summary.initiative_count, count, "{domain}");
        assert_eq!(summary.as_of, Some(as_of));
        assert_eq!(summary.due_within_days, WITHIN);
        let direct = s
            .domain(domain)
            .get_domain_summary(GetDomainSummaryRequest {
                parent: domain.parent(),
                due_within_days: WITHIN,
                as_of: Some(as_of),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(
            summary, direct,
            "{domain}: the overview shows the domain's own summary"
        );
    }

    let t = o.totals.expect("totals");
    assert!(t.complete);
    assert_eq!(t.initiative_count, 7);
    let by_status: Vec<(LifecycleStatus, i64)> = t
        .by_status
        .iter()
        .map(|c| (LifecycleStatus::try_from(c.status).unwrap(), c.count))
        .collect();
    assert_eq!(
        by_status,
        vec![
            (LifecycleStatus::Proposed, 1),
            (LifecycleStatus::Announced, 4),
            (LifecycleStatus::InProgress, 1),
            (LifecycleStatus::Completed, 1),
        ]
    );
    let by_instrument: Vec<(Instrument, i64)> = t
        .by_instrument
        .iter()
        .map(|c| (Instrument::try_from(c.instrument).unwrap(), c.count))
        .collect();
    assert_eq!(
        by_instrument,
        vec![
            (Instrument::Mou, 1),
            (Instrument::JointResearchProgramme, 4),
            (Instrument::DialogueChannel, 1),
            (Instrument::ExchangeProgramme, 1),
        ]
    );
    assert_eq!(
        t.milestones,
        Some(MilestoneCounts {
            due_soon: 2,
            overdue: 2,
            met: 1,
            total: 9,
        }),
        "due soon: q2-report and site; overdue: kickoff and the battery launch \
         (not the completed quantum one); met: pilot"
    );
    assert_eq!(t.overdue_initiatives, 1, "only battery-safety");
    // Amounts of different currencies or qualifiers are never added up.
    assert_eq!(
        t.funding,
        vec![
            FundingTotal {
                total: Some(money("KRW", 5_000_000_000, 0)),
                qualifier: AmountQualifier::Exact as i32,
                commitment_count: 1,
            },
            FundingTotal {
                total: Some(money("USD", 32_500_000, 500_000_000)),
                qualifier: AmountQualifier::AtLeast as i32,
                commitment_count: 4,
            },
            FundingTotal {
                total: Some(money("USD", 10_000_000, 0)),
                qualifier: AmountQualifier::UpTo as i32,
                commitment_count: 1,
            },
        ]
    );
    // Each organization once, with its initiatives summed over the domains.
    let orgs: Vec<(&str, &str, &str, i64)> = t
        .organizations
        .iter()
        .map(|o| {
            (
                o.organization_id.as_str(),
                o.name.as_str(),
                o.country_code.as_str(),
                o.initiative_count,
            )
        })
        .collect();
    assert_eq!(
        orgs,
        vec![
            (
                "kr-kiat",
                "Korea Institute for Advancement of Technology",
                "KR",
                1
            ),
            (
                "kr-kribb",
                "Korea Research Institute of Bioscience and Biotechnology",
                "KR",
                1
            ),
            ("kr-msit", "Ministry of Science and ICT", "KR", 5),
            ("us-nih", "National Institutes of Health", "US", 1),
            (
                "us-nist",
                "National Institute of Standards and Technology",
                "US",
                1
            ),
            ("us-nsf", "National Science Foundation", "US", 5),
        ]
    );

    // 0 days means 90: the AI report (due 2025-08-31) becomes due soon too.
    let o = s
        .gateway
        .clone()
        .get_overview(GetOverviewRequest {
            document: String::new(),
            as_known_on: None,
            due_within_days: 0,
            as_of: Some(as_of),
        })
        .await?
        .into_inner();
    assert!(o
        .domains
        .iter()
        .all(|e| e.summary.as_ref().unwrap().due_within_days == 90));
    assert_eq!(o.totals.unwrap().milestones.unwrap().due_soon, 3);

    // Another as-of day moves "overdue" and "due soon": on 2025-01-01 the
    // kickoff (2025-03-31) is due within 90 days and no longer overdue.
    let o = s
        .gateway
        .clone()
        .get_overview(GetOverviewRequest {
            document: String::new(),
            as_known_on: None,
            due_within_days: 90,
            as_of: Some(calendar(2025, 1, 1)),
        })
        .await?
        .into_inner();
    assert_eq!(
        o.totals.unwrap().milestones,
        Some(MilestoneCounts {
            due_soon: 1,
            overdue: 1,
            met: 1,
            total: 9,
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_across_domains_in_resource_name_order() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let created = seed(&s).await?;
    let search =
        |domains: Vec<Domain>, filter: InitiativeFilter, page_size: i32, page_token: String| {
            let mut g = s.gateway.clone();
            async move {
                anyhow::Ok(
                    g.search_initiatives(SearchInitiativesRequest {
                        domains: domains.iter().map(|d| d.to_proto() as i32).collect(),
                        filter: Some(filter),
                        page_size,
                        page_token,
                    })
                    .await?
                    .into_inner(),
                )
            }
        };

    // Everything, in resource-name order (domain id, then initiative id),
    // exactly as stored.
    let all = search(vec![], InitiativeFilter::default(), 0, String::new()).await?;
    assert_eq!(all.next_page_token, "");
    assert!(all.unavailable.is_empty());
    let expected: Vec<Initiative> = created.values().cloned().collect();
    assert_eq!(
        names(&all.initiatives),
        vec![
            n("ai", "ai-safety"),
            n("biotech", "bio-foundry"),
            n("energy", "battery-safety"),
            n("partnerships", "trilateral"),
            n("quantum", "qubits"),
            n("semiconductors", "chips-rd"),
            n("semiconductors", "chips-talent"),
        ]
    );
    assert_eq!(all.initiatives, expected);

    let cases: Vec<(&str, Vec<Domain>, InitiativeFilter, Vec<String>)> = vec![
        (
            "organization us-nsf",
            vec![],
            InitiativeFilter {
                organization_id: "us-nsf".into(),
                ..Default::default()
            },
            vec![
                n("energy", "battery-safety"),
                n("partnerships", "trilateral"),
                n("quantum", "qubits"),
                n("semiconductors", "chips-rd"),
                n("semiconductors", "chips-talent"),
            ],
        ),
        (
            "announced, in two domains named out of order",
            vec![Domain::Semiconductors, Domain::Biotech],
            InitiativeFilter {
                statuses: vec![LifecycleStatus::Announced as i32],
                ..Default::default()
            },
            vec![n("biotech", "bio-foundry"), n("semiconductors", "chips-rd")],
        ),
        (
            "text, any case",
            vec![],
            InitiativeFilter {
                text: "BATTERY".into(),
                ..Default::default()
            },
            vec![n("energy", "battery-safety")],
        ),
        (
            "overdue as of 2025-06-15",
            vec![],
            InitiativeFilter {
                overdue_only: true,
                as_of: Some(calendar(2025, 6, 15)),
                ..Default::default()
            },
            vec![
                n("energy", "battery-safety"),
                n("semiconductors", "chips-talent"),
            ],
        ),
        (
            "Korean participant and topic",
            vec![],
            InitiativeFilter {
                country_code: "KR".into(),
                topic: "talent".into(),
                ..Default::default()
            },
            vec![n("semiconductors", "chips-talent")],
        ),
        (
            "instrument",
            vec![],
            InitiativeFilter {
                instruments: vec![Instrument::Mou as i32, Instrument::DialogueChannel as i32],
                ..Default::default()
            },
            vec![n("ai", "ai-safety"), n("biotech", "bio-foundry")],
        ),
        (
            "due window",
            vec![],
            InitiativeFilter {
                due_after: Some(calendar(2025, 7, 1)),
                due_before: Some(calendar(2025, 8, 31)),
                ..Default::default()
            },
            vec![n("ai", "ai-safety"), n("biotech", "bio-foundry")],
        ),
        (
            "connectivity holds nothing",
            vec![Domain::Connectivity],
            InitiativeFilter::default(),
            vec![],
        ),
    ];
    for (what, domains, filter, expected) in cases {
        let page = search(domains, filter, 0, String::new()).await?;
        assert_eq!(names(&page.initiatives), expected, "{what}");
        assert_eq!(page.next_page_token, "", "{what}");
        for i in &page.initiatives {
            assert_eq!(Some(i), created.get(&i.name), "{what}");
        }
    }

    // Pages of two, with the opaque token, across domain boundaries.
    let mut walked = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = search(vec![], InitiativeFilter::default(), 2, token).await?;
        assert!(page.initiatives.len() <= 2);
        pages += 1;
        walked.extend(page.initiatives);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 4);
    assert_eq!(walked, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_of_an_organization_across_domains() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let created = seed(&s).await?;
    let portfolio = |id: &str, as_of: CalendarDate, within: i32| {
        let mut g = s.gateway.clone();
        let req = GetOrganizationPortfolioRequest {
            as_known_on: None,
            organization_id: id.into(),
            due_within_days: within,
            as_of: Some(as_of),
            ..Default::default()
        };
        async move { g.get_organization_portfolio(req).await }
    };
    let milestone_ids = |ms: &[Milestone]| ms.iter().map(|m| m.id.clone()).collect::<Vec<_>>();

    let p = portfolio("us-nsf", calendar(2025, 6, 15), 60)
        .await?
        .into_inner();
    assert_eq!(p.organization, Some(nsf()));
    assert_eq!(p.as_of, Some(calendar(2025, 6, 15)));
    assert!(p.unavailable.is_empty());
    /// Name, status, role, party status, counterparts, milestones due and
    /// overdue.
    type Entry = (
        String,
        LifecycleStatus,
        ParticipantRole,
        ParticipantStatus,
        Vec<String>,
        Vec<String>,
        Vec<String>,
    );
    let summary: Vec<Entry> = p
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                LifecycleStatus::try_from(e.status).unwrap(),
                ParticipantRole::try_from(e.role).unwrap(),
                ParticipantStatus::try_from(e.party_status).unwrap(),
                e.counterparts
                    .iter()
                    .map(|c| c.organization.as_ref().unwrap().id.clone())
                    .collect(),
                milestone_ids(&e.milestones_due),
                milestone_ids(&e.milestones_overdue),
            )
        })
        .collect();
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        vec![
            (
                n("energy", "battery-safety"),
                LifecycleStatus::Announced,
                ParticipantRole::CoLead,
                ParticipantStatus::Unspecified,
                v(&["kr-msit"]),
                v(&[]),
                v(&["launch"]),
            ),
            (
                n("partnerships", "trilateral"),
                LifecycleStatus::Announced,
                ParticipantRole::CoLead,
                ParticipantStatus::Unspecified,
                v(&["kr-msit"]),
                v(&[]),
                v(&[]),
            ),
            (
                n("quantum", "qubits"),
                LifecycleStatus::Completed,
                ParticipantRole::CoLead,
                ParticipantStatus::Unspecified,
                v(&["kr-msit"]),
                v(&[]),
                v(&[]),
            ),
            (
                n("semiconductors", "chips-rd"),
                LifecycleStatus::Announced,
                ParticipantRole::CoLead,
                ParticipantStatus::Unspecified,
                v(&["kr-msit"]),
                v(&["q2-report"]),
                v(&[]),
            ),
            (
                n("semiconductors", "chips-talent"),
                LifecycleStatus::InProgress,
                ParticipantRole::Funder,
                ParticipantStatus::OnTrack,
                v(&["kr-kiat"]),
                v(&[]),
                v(&["kickoff"]),
            ),
        ]
    );
    // Entries carry the stored titles, domains and counterparts.
    for e in &p.entries {
        let i = &created[&e.name];
        assert_eq!(e.title, i.title);
        assert_eq!(e.domain, i.domain);
        let others: Vec<Participant> = i
            .participants
            .iter()
            .filter(|p| p.organization.as_ref().unwrap().id != "us-nsf")
            .cloned()
            .collect();
        assert_eq!(e.counterparts, others);
    }

    // A page at a time (AIP-158): pages of 2 and of 1, each no larger than
    // asked, their entries together exactly the whole portfolio, in order.
    for size in [1, 2] {
        let mut g = s.gateway.clone();
        let (mut pages, mut names, mut page_token) = (0, Vec::new(), String::new());
        loop {
            let page = g
                .get_organization_portfolio(GetOrganizationPortfolioRequest {
                    organization_id: "us-nsf".into(),
                    due_within_days: 60,
                    as_of: Some(calendar(2025, 6, 15)),
                    page_size: size,
                    page_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            pages += 1;
            assert!(
                page.entries.len() <= size as usize,
                "page {pages}: {}",
                page.entries.len()
            );
            names.extend(page.entries.iter().map(|e| e.name.clone()));
            if page.next_page_token.is_empty() {
                break;
            }
            assert!(pages < 20, "the pages end");
            page_token = page.next_page_token;
        }
        assert_eq!(
            names,
            summary.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
            "pages of {size}"
        );
        assert!(
            pages >= 5usize.div_ceil(size as usize),
            "{pages} pages of {size}"
        );
    }
    // A token is bound to its request: another organization or day is
    // INVALID_ARGUMENT; so is a token that is not one.
    let first = s
        .gateway
        .clone()
        .get_organization_portfolio(GetOrganizationPortfolioRequest {
            organization_id: "us-nsf".into(),
            due_within_days: 60,
            as_of: Some(calendar(2025, 6, 15)),
            page_size: 2,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    for (org, day, token) in [
        (
            "kr-msit",
            calendar(2025, 6, 15),
            first.next_page_token.clone(),
        ),
        (
            "us-nsf",
            calendar(2025, 6, 16),
            first.next_page_token.clone(),
        ),
        (
            "us-nsf",
            calendar(2025, 6, 15),
            "bm90IGEgdG9rZW4".to_string(),
        ),
    ] {
        assert_invalid(
            "portfolio page token",
            s.gateway
                .clone()
                .get_organization_portfolio(GetOrganizationPortfolioRequest {
                    organization_id: org.into(),
                    due_within_days: 60,
                    as_of: Some(day),
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await,
            &["page_token"],
        );
    }

    // Relative to another day: on 2025-01-01 (90 days ahead) the kickoff
    // (2025-03-31) is due, not overdue; the q2 report is not due yet.
    let p = portfolio("us-nsf", calendar(2025, 1, 1), 0)
        .await?
        .into_inner();
    let due: BTreeMap<String, (Vec<String>, Vec<String>)> = p
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                (
                    milestone_ids(&e.milestones_due),
                    milestone_ids(&e.milestones_overdue),
                ),
            )
        })
        .collect();
    assert_eq!(
        due[&n("semiconductors", "chips-talent")],
        (v(&["kickoff"]), v(&[]))
    );
    assert_eq!(due[&n("semiconductors", "chips-rd")], (v(&[]), v(&[])));
    assert_eq!(
        due[&n("energy", "battery-safety")],
        (v(&[]), v(&["launch"]))
    );

    // An organization in a single initiative.
    let p = portfolio("kr-kiat", calendar(2025, 6, 15), 60)
        .await?
        .into_inner();
    assert_eq!(p.organization, Some(kiat()));
    assert_eq!(p.entries.len(), 1);
    assert_eq!(p.entries[0].role, ParticipantRole::Implementer as i32);
    assert_eq!(
        p.entries[0].counterparts[0]
            .organization
            .as_ref()
            .unwrap()
            .id,
        "us-nsf"
    );

    // The organization as recorded in the initiative that changed last.
    let mut renamed = created[&n("partnerships", "trilateral")].clone();
    renamed.participants[0].organization.as_mut().unwrap().name =
        "U.S. National Science Foundation".into();
    s.update(renamed, &["participants"]).await?;
    let p = portfolio("us-nsf", calendar(2025, 6, 15), 60)
        .await?
        .into_inner();
    assert_eq!(
        p.organization.unwrap().name,
        "U.S. National Science Foundation"
    );

    // An organization that takes part in nothing.
    let status = portfolio("jp-meti", calendar(2025, 6, 15), 60)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_orders_by_the_end_of_the_due_period() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let with = |d: Domain, title: &str, milestones: Vec<Milestone>| {
        let mut i = sample(d, title, 2026);
        i.milestones = milestones;
        i
    };
    let writes = vec![
        (
            Domain::Quantum,
            "q-year",
            with(Domain::Quantum, "Year", vec![milestone("y", year(2024))]),
        ),
        (
            Domain::Ai,
            "ai-quarter",
            with(
                Domain::Ai,
                "Quarters",
                vec![
                    milestone("q3", quarter(2024, 3)),
                    milestone("q", quarter(2024, 1)),
                ],
            ),
        ),
        (
            Domain::Biotech,
            "bio-month",
            with(
                Domain::Biotech,
                "Month",
                vec![milestone("m", month(2024, 6))],
            ),
        ),
        (
            Domain::Semiconductors,
            "semi-day",
            with(
                Domain::Semiconductors,
                "Day",
                vec![milestone("d", on_day(2024, 12, 31))],
            ),
        ),
        (
            Domain::Energy,
            "energy-old",
            with(
                Domain::Energy,
                "Old",
                vec![milestone("old", quarter(2023, 4))],
            ),
        ),
        (
            Domain::Connectivity,
            "conn-met",
            with(
                Domain::Connectivity,
                "Met",
                // Met early, before the as-of day.
                vec![Milestone {
                    status: MilestoneStatus::Met as i32,
                    date_met: Some(month(2023, 12)),
                    ..milestone("met", month(2024, 5))
                }],
            ),
        ),
        (
            Domain::Partnerships,
            "part-late",
            with(
                Domain::Partnerships,
                "Late",
                vec![milestone("late", year(2025))],
            ),
        ),
        (
            Domain::Ai,
            "ai-cancelled",
            Initiative {
                status: LifecycleStatus::Cancelled as i32,
                ..with(
                    Domain::Ai,
                    "Cancelled",
                    vec![milestone("c", month(2024, 2))],
                )
            },
        ),
    ];
    for (d, id, init) in writes {
        s.create(d, id, init).await?;
    }
    let timeline = |req: ListMilestoneTimelineRequest| {
        let mut g = s.gateway.clone();
        async move { anyhow::Ok(g.list_milestone_timeline(req).await?.into_inner()) }
    };
    let base = ListMilestoneTimelineRequest {
        due_before: Some(calendar(2024, 12, 31)),
        as_of: Some(calendar(2024, 1, 15)),
        ..Default::default()
    };
    type Row = (String, String, CalendarDate, bool);
    let rows = |entries: &[TimelineEntry]| -> Vec<Row> {
        entries
            .iter()
            .map(|e| {
                (
                    e.initiative.clone(),
                    e.milestone.as_ref().unwrap().id.clone(),
                    e.due_end.unwrap(),
                    e.overdue,
                )
            })
            .collect()
    };
    let row = |domain: &str, id: &str, m: &str, end: CalendarDate, overdue: bool| -> Row {
        (n(domain, id), m.to_string(), end, overdue)
    };
    let q1 = row("ai", "ai-quarter", "q", calendar(2024, 3, 31), false);
    let june = row("biotech", "bio-month", "m", calendar(2024, 6, 30), false);
    let q3 = row("ai", "ai-quarter", "q3", calendar(2024, 9, 30), false);
    let year2024 = row("quantum", "q-year", "y", calendar(2024, 12, 31), false);
    let dec31 = row(
        "semiconductors",
        "semi-day",
        "d",
        calendar(2024, 12, 31),
        false,
    );
    let old = row("energy", "energy-old", "old", calendar(2023, 12, 31), true);

    // From the as-of day to the end of 2024: "2024" sorts at 2024-12-31,
    // after 2024-Q1 and 2024-06; on the same day, by initiative name. Met,
    // cancelled and later milestones are left out.
    let page = timeline(base.clone()).await?;
    assert_eq!(
        rows(&page.entries),
        vec![
            q1.clone(),
            june.clone(),
            q3.clone(),
            year2024.clone(),
            dec31.clone()
        ]
    );
    assert_eq!(page.next_page_token, "");
    assert!(page.unavailable.is_empty());
    let first = &page.entries[0];
    assert_eq!(first.domain, Domain::Ai.to_proto() as i32);
    assert_eq!(first.initiative_title, "Quarters");
    assert_eq!(
        first.milestone.as_ref().unwrap().due,
        Some(quarter(2024, 1))
    );

    // With the overdue ones (whose period ended before the as-of day).
    let with_overdue = ListMilestoneTimelineRequest {
        include_overdue: true,
        ..base.clone()
    };
    let all = rows(&timeline(with_overdue.clone()).await?.entries);
    assert_eq!(
        all,
        vec![
            old.clone(),
            q1.clone(),
            june.clone(),
            q3.clone(),
            year2024.clone(),
            dec31.clone()
        ]
    );

    // A window of its own.
    let page = timeline(ListMilestoneTimelineRequest {
        due_after: Some(calendar(2024, 4, 1)),
        due_before: Some(calendar(2024, 9, 30)),
        ..base.clone()
    })
    .await?;
    assert_eq!(rows(&page.entries), vec![june.clone(), q3.clone()]);

    // Some domains only.
    let page = timeline(ListMilestoneTimelineRequest {
        domains: vec![Domain::Ai.to_proto() as i32],
        ..base.clone()
    })
    .await?;
    assert_eq!(rows(&page.entries), vec![q1.clone(), q3.clone()]);

    // Pages of 1, 2 and 4 give the same timeline, with the opaque token.
    for size in [1, 2, 4] {
        let mut walked = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = timeline(ListMilestoneTimelineRequest {
                page_size: size,
                page_token: token,
                ..with_overdue.clone()
            })
            .await?;
            assert!(page.entries.len() <= size as usize);
            pages += 1;
            walked.extend(rows(&page.entries));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(walked, all, "pages of {size}");
        assert_eq!(pages, all.len().div_ceil(size as usize), "pages of {size}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_initiative_resolves_the_name_to_its_domain() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let in_energy = s
        .create(
            Domain::Energy,
            "shared-id",
            sample(Domain::Energy, "In energy", 2027),
        )
        .await?;
    let in_ai = s
        .create(Domain::Ai, "shared-id", sample(Domain::Ai, "In AI", 2027))
        .await?;
    let get = |name: String| {
        let mut g = s.gateway.clone();
        async move { g.get_initiative(GetInitiativeRequest { name }).await }
    };
    assert_eq!(get(in_energy.name.clone()).await?.into_inner(), in_energy);
    assert_eq!(get(in_ai.name.clone()).await?.into_inner(), in_ai);
    for missing in [n("quantum", "shared-id"), n("energy", "nothing")] {
        let status = get(missing.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::NotFound,
            "{missing}: {status:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_change_stream_resumes_from_its_cursor() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let watch = |cursor: String, domains: Vec<Domain>| {
        let mut g = s.gateway.clone();
        async move {
            anyhow::Ok(
                g.watch_all_changes(WatchAllChangesRequest {
                    cursor,
                    domains: domains.iter().map(|d| d.to_proto() as i32).collect(),
                })
                .await?
                .into_inner(),
            )
        }
    };
    let mut stream = watch(String::new(), vec![]).await?;

    // Changes of several domains arrive in one stream.
    let a = s
        .create(
            Domain::Semiconductors,
            "a",
            sample(Domain::Semiconductors, "A", 2027),
        )
        .await?;
    s.create(Domain::Biotech, "b", sample(Domain::Biotech, "B", 2027))
        .await?;
    let c = s
        .create(Domain::Ai, "c", sample(Domain::Ai, "C", 2027))
        .await?;
    s.update(
        Initiative {
            status: LifecycleStatus::InProgress as i32,
            ..c.clone()
        },
        &["status"],
    )
    .await?;
    s.domain(Domain::Semiconductors)
        .add_progress_update(AddProgressUpdateRequest {
            name: a.name.clone(),
            progress_update: Some(ProgressUpdate {
                as_of: Some(year(2025)),
                reporting_organization_id: "us-nsf".into(),
                text: "Started.".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let first = read_merged_until(&mut stream, ARRIVAL, |e| e.len() == 5).await?;
    assert_eq!(
        merged_revisions(&first),
        BTreeMap::from([
            (Domain::Semiconductors, vec![1, 2]),
            (Domain::Biotech, vec![1]),
            (Domain::Ai, vec![1, 2]),
        ])
    );
    let types: BTreeSet<(Domain, i64, i32)> = first
        .iter()
        .map(|e| {
            let c = e.change.as_ref().unwrap();
            (Domain::from_proto(e.domain).unwrap(), c.revision, c.r#type)
        })
        .collect();
    assert!(types.contains(&(Domain::Ai, 2, ChangeType::Updated as i32)));
    assert!(types.contains(&(Domain::Semiconductors, 2, ChangeType::ProgressAdded as i32)));
    assert!(first.iter().all(|e| !e.cursor.is_empty()));

    // Disconnect after the third event; more changes happen meanwhile.
    let cursor = first[2].cursor.clone();
    let seen: BTreeSet<(Domain, i64)> = merged_keys(&first[..3]).into_iter().collect();
    drop(stream);
    s.create(Domain::Energy, "e", sample(Domain::Energy, "E", 2027))
        .await?;
    s.create(
        Domain::Semiconductors,
        "a2",
        sample(Domain::Semiconductors, "A2", 2027),
    )
    .await?;

    // Resuming with the cursor delivers every later change once: the two
    // undelivered events, the two new changes, then one sentinel change per
    // domain. A change repeated or skipped shows before its domain's
    // sentinel, since each domain's changes arrive in order.
    let mut resumed = watch(cursor, vec![]).await?;
    let mut sentinels = BTreeMap::new();
    for d in Domain::ALL {
        let created = s.create(d, "sentinel", sample(d, "Sentinel", 2027)).await?;
        sentinels.insert(d, created.revision);
    }
    let rest = read_merged_until(&mut resumed, ARRIVAL, |events| {
        let got: BTreeSet<(Domain, i64)> = merged_keys(events).into_iter().collect();
        sentinels.iter().all(|(d, r)| got.contains(&(*d, *r)))
    })
    .await?;
    let mut expected: BTreeMap<Domain, Vec<i64>> = BTreeMap::new();
    for d in Domain::ALL {
        let upto = sentinels[&d];
        expected.insert(d, (1..=upto).filter(|r| !seen.contains(&(d, *r))).collect());
    }
    assert_eq!(merged_revisions(&rest), expected);
    assert_eq!(
        rest.iter()
            .filter(|e| e.change.as_ref().unwrap().name == n("energy", "e"))
            .count(),
        1
    );

    // The cursor of the last event resumes with nothing before the next
    // change.
    let last = rest.last().unwrap().cursor.clone();
    drop(resumed);
    let mut tail = watch(last, vec![]).await?;
    let next = s
        .create(
            Domain::Quantum,
            "next",
            sample(Domain::Quantum, "Next", 2027),
        )
        .await?;
    let got = read_merged_until(&mut tail, ARRIVAL, |e| !e.is_empty()).await?;
    assert_eq!(merged_keys(&got), vec![(Domain::Quantum, next.revision)]);

    // Some domains only.
    let mut energy_only = watch(String::new(), vec![Domain::Energy]).await?;
    let got = read_merged_until(&mut energy_only, ARRIVAL, |e| e.len() == 2).await?;
    assert_eq!(
        merged_keys(&got),
        vec![(Domain::Energy, 1), (Domain::Energy, 2)]
    );
    Ok(())
}

/// The calendar day `days` after 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> CalendarDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    calendar(y as i32, m as i32, d as i32)
}

fn iso(d: &CalendarDate) -> String {
    format!("{}-{:02}-{:02}", d.year, d.month, d.day)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fact_sheet_lists_every_domain_as_of_a_day() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    // One commitment per domain but connectivity, stated in the fact sheet
    // of 2023-12-08 (the sample's source); the AI one has no dated source,
    // so it counts from the day it was recorded. Energy's is overdue.
    let mut written = Vec::new();
    for d in Domain::ALL {
        if d == Domain::Connectivity {
            continue;
        }
        let due = if d == Domain::Energy { 2024 } else { 2030 };
        let title = format!("{} commitment", d.slug().to_uppercase());
        let mut init = sample(d, &title, due);
        if d == Domain::Ai {
            init.sources[0].date = None;
        }
        written.push(s.create(d, "first", init).await?);
    }
    // Quantum: recorded ANNOUNCED, then IN_PROGRESS.
    let q = written
        .iter()
        .position(|i| i.domain == Domain::Quantum.to_proto() as i32)
        .unwrap();
    written[q] = s
        .update(
            Initiative {
                status: LifecycleStatus::InProgress as i32,
                ..written[q].clone()
            },
            &["status"],
        )
        .await?;
    // The records carry real times: the day before anything was written,
    // and the day of the last write.
    let first_write = written
        .iter()
        .map(|i| i.create_time.unwrap().seconds)
        .min()
        .unwrap();
    let last_write = written
        .iter()
        .map(|i| i.update_time.unwrap().seconds)
        .max()
        .unwrap();
    let today = civil(last_write.div_euclid(86_400));
    let yesterday = civil(first_write.div_euclid(86_400) - 1);

    let sheet = |as_of: Option<CalendarDate>, title: &str| {
        let mut g = s.gateway.clone();
        let req = GenerateFactSheetRequest {
            as_known_on: None,
            document: String::new(),
            include_quotes: false,
            as_of,
            title: title.into(),
        };
        async move { anyhow::Ok(g.generate_fact_sheet(req).await?.into_inner()) }
    };
    // The section of each domain with commitments, by its heading (the
    // sample's source section, which states no position: the sections come
    // in the order of the domains); domains without any have none.
    fn sections(md: &str, absent: &[Domain]) -> BTreeMap<Domain, String> {
        let present: Vec<Domain> = Domain::ALL
            .into_iter()
            .filter(|d| !absent.contains(d))
            .collect();
        for d in absent {
            assert!(!md.contains(d.title()), "{d}:\n{md}");
        }
        let starts: Vec<usize> = present
            .iter()
            .map(|d| {
                md.find(&format!("\n## {}\n", d.title()))
                    .unwrap_or_else(|| panic!("no section for {d}:\n{md}"))
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{md}");
        present
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let end = starts.get(i + 1).copied().unwrap_or(md.len());
                (*d, md[starts[i]..end].to_string())
            })
            .collect()
    }
    let status_of = |text: &str, day: &CalendarDate| {
        let marker = format!("Status as of {}: **", iso(day));
        let at = text.find(&marker).map(|i| i + marker.len())?;
        text[at..].split("**").next().map(str::to_string)
    };

    // As of today: every commitment in its domain's section, with its
    // participants, funding, current status and the overdue mark.
    let f = sheet(Some(today), "").await?;
    let md = &f.markdown;
    assert_eq!(f.as_of, Some(today));
    assert_eq!(f.initiative_count, 6);
    assert!(f.unavailable.is_empty());
    assert!(
        md.starts_with(
            "# Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue\n"
        ),
        "{md}"
    );
    let by_domain = sections(md, &[Domain::Connectivity]);
    for i in &written {
        let d = Domain::from_proto(i.domain).unwrap();
        let text = &by_domain[&d];
        assert!(text.contains(&format!("**{}**", i.title)), "{d}:\n{text}");
        assert!(
            text.contains(
                "Participants: National Science Foundation (NSF), US: co-lead; \
                 Ministry of Science and ICT (MSIT), KR: co-lead."
            ),
            "{d}:\n{text}"
        );
        let status = if d == Domain::Quantum {
            "In progress"
        } else {
            "Announced"
        };
        assert_eq!(
            status_of(text, &today).as_deref(),
            Some(status),
            "{d}:\n{text}"
        );
        assert_eq!(
            text.contains("**overdue**"),
            d == Domain::Energy,
            "{d}:\n{text}"
        );
        assert!(
            text.contains(
                "Funding: at least USD 10,000,000 (pledged, by National Science Foundation (NSF))."
            ),
            "{text}"
        );
    }

    // As of yesterday: the AI commitment, recorded today and dated by
    // nothing else, was not made yet; quantum's status is the one first
    // recorded, before today's change.
    let f = sheet(Some(yesterday), "").await?;
    assert_eq!(f.as_of, Some(yesterday));
    assert_eq!(f.initiative_count, 5);
    let by_domain = sections(&f.markdown, &[Domain::Connectivity, Domain::Ai]);
    assert!(!f.markdown.contains("AI commitment"));
    assert_eq!(
        status_of(&by_domain[&Domain::Quantum], &yesterday).as_deref(),
        Some("Announced"),
        "{}",
        f.markdown
    );
    assert_eq!(
        status_of(&by_domain[&Domain::Energy], &yesterday).as_deref(),
        Some("Announced")
    );

    // As of the day before the dialogue's fact sheet, nothing was committed.
    let f = sheet(Some(calendar(2023, 12, 7)), "").await?;
    assert_eq!(f.initiative_count, 0);
    for i in &written {
        assert!(!f.markdown.contains(&i.title), "{}", f.markdown);
    }
    assert_eq!(
        f.markdown.matches("*No commitments recorded.*").count(),
        1,
        "{}",
        f.markdown
    );

    // A title of one's own; as of unset means today.
    let f = sheet(None, "Where the Dialogue Stands").await?;
    assert!(f.markdown.starts_with("# Where the Dialogue Stands\n"));
    assert_eq!(f.initiative_count, 6);
    Ok(())
}

/// Asserts a call failed with INVALID_ARGUMENT naming exactly `fields`.
fn assert_invalid<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    fields: &[&str],
) {
    let status = match result {
        Ok(r) => panic!("{what}: succeeded with {:?}", r.into_inner()),
        Err(s) => s,
    };
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{what}: {status:?}"
    );
    let mut got: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_with_field_violations() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    s.create(Domain::Ai, "x", sample(Domain::Ai, "X", 2027))
        .await?;
    let mut g = s.gateway.clone();

    // Unknown domains.
    assert_invalid(
        "search in domain 99",
        g.search_initiatives(SearchInitiativesRequest {
            domains: vec![Domain::Ai.to_proto() as i32, 99, 0],
            ..Default::default()
        })
        .await,
        &["domains[1]", "domains[2]"],
    );
    assert_invalid(
        "timeline in domain 42",
        g.list_milestone_timeline(ListMilestoneTimelineRequest {
            due_before: Some(calendar(2030, 1, 1)),
            domains: vec![42],
            ..Default::default()
        })
        .await,
        &["domains[0]"],
    );
    assert_invalid(
        "watch domain 77",
        g.watch_all_changes(WatchAllChangesRequest {
            cursor: String::new(),
            domains: vec![77],
        })
        .await,
        &["domains[0]"],
    );

    // Malformed names.
    for name in [
        "domains/chemistry/initiatives/x",
        "foo",
        "",
        "domains/ai/initiatives/X",
    ] {
        assert_invalid(
            name,
            g.get_initiative(GetInitiativeRequest { name: name.into() })
                .await,
            &["name"],
        );
    }

    // Bad page tokens: garbage, and a real token of another filter.
    assert_invalid(
        "garbage search token",
        g.search_initiatives(SearchInitiativesRequest {
            page_token: "not-a-token!".into(),
            ..Default::default()
        })
        .await,
        &["page_token"],
    );
    s.create(Domain::Ai, "y", sample(Domain::Ai, "Y", 2027))
        .await?;
    let token = g
        .search_initiatives(SearchInitiativesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty());
    assert_invalid(
        "token of another filter",
        g.search_initiatives(SearchInitiativesRequest {
            page_size: 1,
            page_token: token.clone(),
            filter: Some(InitiativeFilter {
                text: "other".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        &["page_token"],
    );
    assert_invalid(
        "garbage timeline token",
        g.list_milestone_timeline(ListMilestoneTimelineRequest {
            due_before: Some(calendar(2030, 1, 1)),
            page_token: "AAAA".into(),
            ..Default::default()
        })
        .await,
        &["page_token"],
    );

    // Bad windows.
    assert_invalid(
        "due_before before due_after",
        g.list_milestone_timeline(ListMilestoneTimelineRequest {
            due_after: Some(calendar(2025, 6, 1)),
            due_before: Some(calendar(2025, 5, 31)),
            ..Default::default()
        })
        .await,
        &["due_before"],
    );
    assert_invalid(
        "not a day",
        g.list_milestone_timeline(ListMilestoneTimelineRequest {
            due_after: Some(calendar(2025, 2, 30)),
            due_before: Some(calendar(2025, 13, 1)),
            ..Default::default()
        })
        .await,
        &["due_after.day", "due_before.month"],
    );
    assert_invalid(
        "search window backwards",
        g.search_initiatives(SearchInitiativesRequest {
            filter: Some(InitiativeFilter {
                due_after: Some(calendar(2025, 6, 1)),
                due_before: Some(calendar(2025, 5, 31)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        &["filter.due_before"],
    );

    // Bad cursors: garbage, and a page token that is no cursor.
    for cursor in ["@@@", token.as_str()] {
        assert_invalid(
            cursor,
            g.watch_all_changes(WatchAllChangesRequest {
                cursor: cursor.into(),
                domains: vec![],
            })
            .await,
            &["cursor"],
        );
    }

    // Negative page sizes.
    assert_invalid(
        "search page size -1",
        g.search_initiatives(SearchInitiativesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await,
        &["page_size"],
    );
    assert_invalid(
        "timeline page size -5",
        g.list_milestone_timeline(ListMilestoneTimelineRequest {
            due_before: Some(calendar(2030, 1, 1)),
            page_size: -5,
            ..Default::default()
        })
        .await,
        &["page_size"],
    );

    // Every violation at once.
    assert_invalid(
        "all at once",
        g.search_initiatives(SearchInitiativesRequest {
            domains: vec![99],
            page_size: -1,
            page_token: "%%%".into(),
            filter: Some(InitiativeFilter {
                statuses: vec![99],
                country_code: "korea".into(),
                ..Default::default()
            }),
        })
        .await,
        &[
            "domains[0]",
            "filter.statuses[0]",
            "filter.country_code",
            "page_size",
            "page_token",
        ],
    );

    // The other views.
    assert_invalid(
        "overview window",
        g.get_overview(GetOverviewRequest {
            document: String::new(),
            as_known_on: None,
            due_within_days: -1,
            as_of: Some(calendar(2025, 13, 1)),
        })
        .await,
        &["due_within_days", "as_of.month"],
    );
    assert_invalid(
        "portfolio organization",
        g.get_organization_portfolio(GetOrganizationPortfolioRequest {
            as_known_on: None,
            organization_id: "US NSF".into(),
            due_within_days: 4000,
            as_of: None,
            ..Default::default()
        })
        .await,
        &["organization_id", "due_within_days"],
    );
    assert_invalid(
        "portfolio without organization",
        g.get_organization_portfolio(GetOrganizationPortfolioRequest::default())
            .await,
        &["organization_id"],
    );
    assert_invalid(
        "fact sheet title",
        g.generate_fact_sheet(GenerateFactSheetRequest {
            as_known_on: None,
            document: String::new(),
            include_quotes: false,
            as_of: None,
            title: "t".repeat(301),
        })
        .await,
        &["title"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_through_thousands_of_records_without_gap_or_duplicate() -> anyhow::Result<()>
{
    const PER_DOMAIN: usize = 300;
    let s = Stack::start().await?;
    // 2,100 records, 300 per domain, written concurrently; every third one
    // in progress.
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for d in Domain::ALL {
        for worker in 0..6 {
            let mut client = s.domain(d);
            tasks.spawn(async move {
                for i in (worker..PER_DOMAIN).step_by(6) {
                    let mut init = sample(d, &format!("Record {i}"), 2027);
                    if i % 3 == 0 {
                        init.status = LifecycleStatus::InProgress as i32;
                    }
                    client
                        .create_initiative(create_request(d, &format!("r-{i:04}"), init))
                        .await?;
                }
                anyhow::Ok(())
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    eprintln!("2,100 records written in {:?}", started.elapsed());

    let walk = |filter: InitiativeFilter, domains: Vec<Domain>, page_size: i32| {
        let mut g = s.gateway.clone();
        async move {
            let mut names = Vec::new();
            let mut sizes = Vec::new();
            let mut token = String::new();
            loop {
                let page = g
                    .search_initiatives(SearchInitiativesRequest {
                        domains: domains.iter().map(|d| d.to_proto() as i32).collect(),
                        filter: Some(filter.clone()),
                        page_size,
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                assert!(page.unavailable.is_empty());
                sizes.push(page.initiatives.len());
                names.extend(page.initiatives.into_iter().map(|i| i.name));
                if page.next_page_token.is_empty() {
                    return anyhow::Ok((names, sizes));
                }
                token = page.next_page_token;
            }
        }
    };
    let expected = |domains: &[Domain], pick: &dyn Fn(usize) -> bool| {
        let mut names: Vec<String> = domains
            .iter()
            .flat_map(|d| {
                (0..PER_DOMAIN)
                    .filter(|i| pick(*i))
                    .map(move |i| n(d.slug(), &format!("r-{i:04}")))
            })
            .collect();
        names.sort();
        names
    };

    // Everything, 97 at a time: 21 full pages and one of 63.
    let started = std::time::Instant::now();
    let (names, sizes) = walk(InitiativeFilter::default(), vec![], 97).await?;
    eprintln!("walked 2,100 records in {:?}", started.elapsed());
    assert_eq!(names.len(), 2_100);
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        2_100,
        "no duplicate"
    );
    assert_eq!(names, expected(&Domain::ALL, &|_| true));
    assert_eq!(sizes.len(), 22);
    assert!(sizes[..21].iter().all(|n| *n == 97), "{sizes:?}");
    assert_eq!(sizes[21], 2_100 - 21 * 97);

    // Filtered, in three domains, 97 at a time.
    let three = [Domain::Quantum, Domain::Ai, Domain::Energy];
    let (names, _) = walk(
        InitiativeFilter {
            statuses: vec![LifecycleStatus::InProgress as i32],
            ..Default::default()
        },
        three.to_vec(),
        97,
    )
    .await?;
    assert_eq!(names, expected(&three, &|i| i % 3 == 0));

    // The timeline of 2027 (one milestone per record, all due by its end),
    // 500 at a time: the gateway keeps a page per domain, and the pages are
    // every milestone once, in order.
    let mut g = s.gateway.clone();
    let (mut listed, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = g
            .list_milestone_timeline(ListMilestoneTimelineRequest {
                due_after: Some(calendar(2027, 1, 1)),
                due_before: Some(calendar(2027, 12, 31)),
                include_overdue: true,
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        pages += 1;
        assert!(page.entries.len() <= 500);
        listed.extend(page.entries.into_iter().map(|e| e.initiative));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 5);
    assert_eq!(listed, expected(&Domain::ALL, &|_| true));

    // A fact sheet of more than 2,000 commitments is refused (what the
    // gateway would hold is bounded); of one document it is not.
    let status = g
        .generate_fact_sheet(GenerateFactSheetRequest::default())
        .await
        .expect_err("2,100 commitments");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("document"),
        "{}",
        status.message()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portfolio_page_full_in_bytes_resumes_where_it_stopped() -> anyhow::Result<()> {
    // Records of about 700 kB: a page (2 MiB) holds two. The second domain's
    // ids sort before the first's last: a page full in bytes at the border
    // must resume at the start of the second domain, not after the first's
    // last id.
    let s = Stack::start().await?;
    for id in ["z0", "z1"] {
        s.create(Domain::Ai, id, heavy(Domain::Ai, "Heavy", 19))
            .await?;
    }
    for id in ["a0", "a1"] {
        s.create(Domain::Biotech, id, heavy(Domain::Biotech, "Heavy", 19))
            .await?;
    }
    let mut g = s.gateway.clone();
    let (mut names, mut page_token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = g
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: "us-nsf".into(),
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        pages += 1;
        assert!(
            prost::Message::encoded_len(&page) <= 4 << 20,
            "a page stays under 4 MiB"
        );
        names.extend(page.entries.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages < 10, "the pages end");
        page_token = page.next_page_token;
    }
    assert_eq!(
        names,
        vec![
            n("ai", "z0"),
            n("ai", "z1"),
            n("biotech", "a0"),
            n("biotech", "a1")
        ]
    );
    assert!(pages >= 2, "{pages} pages");
    Ok(())
}
