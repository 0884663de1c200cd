//! Every RPC of DomainService on a real server of each of the seven domains,
//! with the values the happy paths must return: create (caller id and
//! generated id), get, list with every filter, update with a field mask and an
//! etag, progress updates, milestone updates, delete, the summary, the history
//! and the live change stream.

use std::time::Duration;

use anyhow::Context;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use pbjson_types::Timestamp;

/// How long a live change may take to arrive before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// The fields a create of `lifecycle_input` sets.
const CREATED_FIELDS: [&str; 14] = [
    "title",
    "summary",
    "instrument",
    "status",
    "status_date",
    "participants",
    "planned_start",
    "planned_end",
    "milestones",
    "funding",
    "topics",
    "sources",
    "sensitivity",
    "details",
];

fn time_of(t: &Option<Timestamp>) -> (i64, i32) {
    t.as_ref().map(|t| (t.seconds, t.nanos)).unwrap_or_default()
}

/// A sample whose status, sensitivity and funding kind are left unset (so the
/// defaults show) and whose output-only fields carry junk (to be ignored).
fn lifecycle_input(t: &TestDomain) -> Initiative {
    let mut input = sample(t.domain, "NSF-MSIT joint research", 2027);
    input.status = LifecycleStatus::Unspecified as i32;
    input.sensitivity = Sensitivity::Unspecified as i32;
    input.funding[0].kind = FundingKind::Unspecified as i32;
    input.name = t.name("another-name");
    input.domain = Domain::ALL
        .iter()
        .find(|d| **d != t.domain)
        .map(|d| d.to_proto() as i32)
        .unwrap_or_default();
    input.revision = 42;
    input.etag = "\"r42\"".into();
    input.create_time = Some(Timestamp {
        seconds: 1,
        nanos: 0,
    });
    input.progress_updates = vec![ProgressUpdate {
        id: "p9".into(),
        text: "not accepted on create".into(),
        ..Default::default()
    }];
    input
}

#[tokio::test]
async fn every_write_and_read_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        lifecycle(domain)
            .await
            .with_context(|| format!("the {domain} domain"))?;
    }
    Ok(())
}

async fn lifecycle(domain: Domain) -> anyhow::Result<()> {
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let name = t.name("nsf-msit");
    // A watch opened before the first write sees every write, live.
    let mut live = watch(&mut c, &t.parent(), 0).await?;

    // CreateInitiative with the caller's id.
    let input = lifecycle_input(&t);
    let mut request = create_request(domain, "nsf-msit", input.clone());
    request.reporter = "us-nsf".into();
    let created = c.create_initiative(request).await?.into_inner();
    assert_eq!(created.name, name);
    assert_eq!(created.domain, domain.to_proto() as i32);
    assert_eq!(created.revision, 1);
    assert!(!created.etag.is_empty());
    assert_eq!(created.status, LifecycleStatus::Proposed as i32);
    assert_eq!(created.sensitivity, Sensitivity::Public as i32);
    assert_eq!(created.funding[0].kind, FundingKind::Pledged as i32);
    assert_eq!(
        created.funding[0].qualifier,
        AmountQualifier::AtLeast as i32
    );
    assert_eq!(
        created.milestones[0].status,
        MilestoneStatus::Scheduled as i32
    );
    assert!(created.progress_updates.is_empty());
    assert!(created.create_time.is_some());
    assert_ne!(time_of(&created.create_time), (1, 0));
    assert_eq!(created.create_time, created.update_time);
    assert_eq!(
        (
            &created.title,
            &created.participants,
            &created.details,
            &created.topics
        ),
        (
            &input.title,
            &input.participants,
            &input.details,
            &input.topics
        )
    );
    let c1 = next_change(&mut live, WAIT).await?;
    assert_eq!(
        (c1.revision, c1.r#type, c1.name.as_str()),
        (1, ChangeType::Created as i32, name.as_str())
    );
    assert_eq!(c1.initiative.as_ref(), Some(&created));

    // CreateInitiative with a generated id, twice: two distinct valid ids.
    let mut generated = Vec::new();
    for n in 0..2 {
        let g = c
            .create_initiative(create_request(
                domain,
                "",
                sample(domain, &format!("Generated {n}"), 2026),
            ))
            .await?
            .into_inner();
        let id = id_of(&g.name);
        assert_eq!(g.name, t.name(id));
        assert!(
            id.len() <= 63
                && id.starts_with(|ch: char| ch.is_ascii_lowercase())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "generated id `{id}` breaks the id rule"
        );
        assert_eq!(g.revision, 2 + n);
        assert_eq!(next_change(&mut live, WAIT).await?.revision, g.revision);
        generated.push(g);
    }
    assert_ne!(generated[0].name, generated[1].name);
    assert_ne!(generated[0].etag, generated[1].etag);

    // GetInitiative.
    for want in [&created, &generated[0], &generated[1]] {
        let got = c
            .get_initiative(GetInitiativeRequest {
                name: want.name.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(&got, want);
    }

    // ListInitiatives: ordered by id.
    let mut want = vec![created.clone(), generated[0].clone(), generated[1].clone()];
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(list_all(&mut c, &t.parent(), None, 0).await?, want);

    // UpdateInitiative changes only the fields of the mask.
    let mut change = created.clone();
    change.title = "NSF-MSIT semiconductor research".into();
    change.status = LifecycleStatus::InProgress as i32;
    change.summary = "not in the mask".into();
    change.topics = vec!["not-in-the-mask".into()];
    let updated = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(change),
            update_mask: Some(mask(&["title", "status"])),
            request_id: String::new(),
            reporter: "kr-msit".into(),
        })
        .await?
        .into_inner();
    assert_eq!(updated.revision, 4);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.title, "NSF-MSIT semiconductor research");
    assert_eq!(updated.status, LifecycleStatus::InProgress as i32);
    assert_eq!(updated.summary, created.summary);
    assert_eq!(updated.topics, created.topics);
    assert_eq!(updated.create_time, created.create_time);
    assert!(time_of(&updated.update_time) >= time_of(&created.update_time));
    assert_eq!(next_change(&mut live, WAIT).await?.revision, 4);

    // `*` replaces every writable field.
    let mut replacement = sample(domain, "Replaced", 2028);
    replacement.name = name.clone();
    replacement.etag = updated.etag.clone();
    replacement.status = LifecycleStatus::InProgress as i32;
    replacement.topics = vec!["replaced".into()];
    let replaced = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(replacement.clone()),
            update_mask: Some(mask(&["*"])),
            request_id: String::new(),
            reporter: "kr-msit".into(),
        })
        .await?
        .into_inner();
    assert_eq!(replaced.revision, 5);
    assert_eq!(
        (
            &replaced.title,
            &replaced.planned_end,
            &replaced.milestones[0].due,
            &replaced.topics
        ),
        (
            &replacement.title,
            &replacement.planned_end,
            &replacement.milestones[0].due,
            &replacement.topics
        )
    );
    assert_eq!(next_change(&mut live, WAIT).await?.revision, 5);

    // An update that changes nothing makes no revision.
    let same = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(replaced.clone()),
            update_mask: Some(mask(&["title", "topics"])),
            request_id: String::new(),
            reporter: "kr-msit".into(),
        })
        .await?
        .into_inner();
    assert_eq!(same, replaced);

    // AddProgressUpdate appends; the server sets the id and record time.
    let mut reports = Vec::new();
    let mut etag = replaced.etag.clone();
    for (n, text) in ["First joint call launched", "Twelve projects funded"]
        .iter()
        .enumerate()
    {
        let progressed = c
            .add_progress_update(AddProgressUpdateRequest {
                name: name.clone(),
                progress_update: Some(ProgressUpdate {
                    id: "ignored".into(),
                    as_of: Some(quarter(2025, 2 + n as i32)),
                    reporting_organization_id: "kr-msit".into(),
                    text: text.to_string(),
                    assessment: CompletionAssessment::Limited as i32,
                    evidence_links: vec!["https://example.org/call".into()],
                    record_time: None,
                }),
                etag: etag.clone(),
                request_id: String::new(),
                reporter: String::new(),
            })
            .await?
            .into_inner();
        assert_eq!(progressed.revision, 6 + n as i64);
        assert_eq!(progressed.progress_updates.len(), n + 1);
        let added = &progressed.progress_updates[n];
        assert_eq!(added.text, *text);
        assert_ne!(added.id, "ignored");
        assert!(!added.id.is_empty());
        assert!(added.record_time.is_some());
        assert_eq!(progressed.title, replaced.title);
        assert_eq!(
            next_change(&mut live, WAIT).await?.revision,
            progressed.revision
        );
        etag = progressed.etag.clone();
        reports.push(progressed);
    }
    let progressed = reports[1].clone();
    assert_ne!(
        progressed.progress_updates[0].id,
        progressed.progress_updates[1].id
    );
    assert_eq!(
        progressed.progress_updates[0],
        reports[0].progress_updates[0]
    );

    // UpdateMilestone changes only the named milestone fields.
    let met = c
        .update_milestone(UpdateMilestoneRequest {
            name: name.clone(),
            milestone: Some(Milestone {
                id: "launch".into(),
                title: "not in the mask".into(),
                status: MilestoneStatus::Met as i32,
                date_met: Some(quarter(2025, 3)),
                ..Default::default()
            }),
            update_mask: Some(mask(&["status", "date_met"])),
            etag: progressed.etag.clone(),
            request_id: String::new(),
            reporter: "us-nsf".into(),
        })
        .await?
        .into_inner();
    assert_eq!(met.revision, 8);
    assert_eq!(met.milestones[0].status, MilestoneStatus::Met as i32);
    assert_eq!(met.milestones[0].date_met, Some(quarter(2025, 3)));
    assert_eq!(met.milestones[0].title, replaced.milestones[0].title);
    assert_eq!(met.milestones[0].due, replaced.milestones[0].due);
    assert_eq!(met.progress_updates, progressed.progress_updates);
    assert_eq!(next_change(&mut live, WAIT).await?.revision, 8);

    // ListHistory: who, when and which fields, oldest first.
    let versions = [
        &created,
        &updated,
        &replaced,
        &reports[0],
        &reports[1],
        &met,
    ];
    // The history is signed by the verified caller (the test admin's token),
    // whatever `reporter` the requests named.
    let expected: Vec<(i64, ChangeType, Vec<&str>, &str)> = vec![
        (
            1,
            ChangeType::Created,
            CREATED_FIELDS.to_vec(),
            "test-admin",
        ),
        (
            4,
            ChangeType::Updated,
            vec!["title", "status", "status_date"],
            "test-admin",
        ),
        (
            5,
            ChangeType::Updated,
            vec!["title", "planned_end", "milestones", "topics"],
            "test-admin",
        ),
        (
            6,
            ChangeType::ProgressAdded,
            vec!["progress_updates"],
            "test-admin",
        ),
        (
            7,
            ChangeType::ProgressAdded,
            vec!["progress_updates"],
            "test-admin",
        ),
        (
            8,
            ChangeType::MilestoneUpdated,
            vec!["milestones"],
            "test-admin",
        ),
    ];
    let history = history_all(&mut c, &name, 0).await?;
    let got: Vec<(i64, ChangeType, Vec<&str>, &str)> = history
        .iter()
        .map(|h| {
            (
                h.revision,
                ChangeType::try_from(h.r#type).unwrap_or(ChangeType::Unspecified),
                h.changed_fields.iter().map(String::as_str).collect(),
                h.reporter.as_str(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    for (h, version) in history.iter().zip(versions) {
        assert_eq!(h.name, name);
        assert_eq!(h.initiative.as_ref(), Some(version));
        assert_eq!(h.change_time, version.update_time);
    }
    assert_eq!(history_all(&mut c, &name, 1).await?, history);

    // DeleteInitiative with the current etag.
    c.delete_initiative(DeleteInitiativeRequest {
        name: name.clone(),
        etag: met.etag.clone(),
        reporter: "kr-msit".into(),
        request_id: String::new(),
    })
    .await?;
    let deleted = next_change(&mut live, WAIT).await?;
    assert_eq!(deleted.revision, 9);
    let gone = expect_err(
        c.get_initiative(GetInitiativeRequest { name: name.clone() })
            .await,
    );
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    let after = history_all(&mut c, &name, 0).await?;
    assert_eq!(after[..history.len()], history[..]);
    let last = after.last().context("no history")?;
    assert_eq!(after.len(), history.len() + 1);
    assert_eq!(last, &deleted);
    assert_eq!(last.r#type, ChangeType::Deleted as i32);
    assert_eq!(last.reporter, "test-admin", "signed by the verified caller");
    assert!(last.changed_fields.is_empty());
    assert_eq!(last.initiative.as_ref(), Some(&met));
    let mut remaining = ids(&generated);
    remaining.sort();
    assert_eq!(
        ids(&list_all(&mut c, &t.parent(), None, 0).await?),
        remaining
    );

    // GetDomainSummary follows every write.
    let s = summary_at(&mut c, &t.parent(), calendar(2026, 1, 1), 0).await?;
    assert_eq!(s.parent, t.parent());
    assert_eq!(s.domain, domain.to_proto() as i32);
    assert_eq!(s.initiative_count, 2);
    assert_eq!(s.last_revision, 9);
    assert_eq!(s.last_change_time, last.change_time);
    assert_eq!(s.due_within_days, 90, "0 means 90 days");
    assert_eq!(s.as_of, Some(calendar(2026, 1, 1)));
    Ok(())
}

/// Five initiatives that differ in every filtered field.
fn fixture(domain: Domain) -> Vec<(String, Initiative)> {
    use LifecycleStatus::*;
    let nist = org(
        "us-nist",
        "National Institute of Standards and Technology",
        "NIST",
        "US",
        OrganizationType::NationalLabOrInstitute,
    );
    let kriss = org(
        "kr-kriss",
        "Korea Research Institute of Standards and Science",
        "KRISS",
        "KR",
        OrganizationType::NationalLabOrInstitute,
    );
    let msit = org(
        "kr-msit",
        "Ministry of Science and ICT",
        "MSIT",
        "KR",
        OrganizationType::MinistryOrAgency,
    );
    let money = |currency: &str, units: i64, nanos: i32, q: AmountQualifier| FundingCommitment {
        amount: Some(Money {
            currency_code: currency.into(),
            units,
            nanos,
        }),
        qualifier: q as i32,
        ..Default::default()
    };
    let milestone = |id: &str, due: ApproximateDate| Milestone {
        id: id.into(),
        title: format!("Milestone {id}"),
        due: Some(due),
        ..Default::default()
    };

    // Announced, joint research, NSF + MSIT, ends 2025, USD 10M at least.
    let alpha = sample(domain, "Alpha pilot", 2025);

    let mut bravo = sample(domain, "Bravo metrology standards", 2027);
    bravo.status = InProgress as i32;
    bravo.instrument = Instrument::Mou as i32;
    bravo.summary = "Cooperation on Open RAN test methods.".into();
    bravo.participants = vec![
        participant(nist, ParticipantRole::Lead),
        participant(kriss, ParticipantRole::Partner),
    ];
    bravo.topics = vec!["standards".into()];
    bravo.funding = vec![
        money("KRW", 5_000_000_000, 0, AmountQualifier::Exact),
        money("USD", 2, 500_000_000, AmountQualifier::Exact),
    ];

    let mut charlie = sample(domain, "Charlie talent exchange", 2023);
    charlie.status = Completed as i32;
    charlie.instrument = Instrument::WorkingGroup as i32;
    charlie.planned_start = Some(year(2022));
    charlie.participants.insert(
        0,
        participant(
            org(
                "in-dst",
                "Department of Science and Technology",
                "DST",
                "IN",
                OrganizationType::MinistryOrAgency,
            ),
            ParticipantRole::Partner,
        ),
    );
    charlie.participants.truncate(2);
    charlie.milestones[0].status = MilestoneStatus::Met as i32;
    charlie.milestones[0].date_met = Some(year(2023));
    charlie.topics = vec!["talent".into()];
    charlie.funding.clear();

    let mut delta = sample(domain, "Delta supply chain early warning", 2024);
    delta.status = Proposed as i32;
    delta.instrument = Instrument::Mou as i32;
    delta.participants = vec![participant(
        org(
            "jp-meti",
            "Ministry of Economy, Trade and Industry",
            "METI",
            "JP",
            OrganizationType::MinistryOrAgency,
        ),
        ParticipantRole::Observer,
    )];
    delta.milestones = vec![milestone("report", year(2030))];
    delta.topics = vec!["supply-chain".into()];
    delta.funding = vec![money("USD", 1_000_000, 0, AmountQualifier::AtLeast)];

    let mut echo = sample(domain, "Echo dialogue", 2026);
    echo.status = Suspended as i32;
    echo.instrument = Instrument::DialogueChannel as i32;
    echo.participants = vec![participant(msit, ParticipantRole::Lead)];
    echo.planned_end = None;
    echo.milestones = vec![milestone("review", quarter(2026, 2))];
    echo.topics = vec!["joint-research".into(), "talent".into()];
    echo.funding.clear();

    [
        ("alpha", alpha),
        ("bravo", bravo),
        ("charlie", charlie),
        ("delta", delta),
        ("echo", echo),
    ]
    .into_iter()
    .map(|(id, init)| (id.to_string(), init))
    .collect()
}

async fn start_with_fixture(domain: Domain) -> anyhow::Result<TestDomain> {
    let t = TestDomain::start(domain).await?;
    create_concurrently(&t.client, domain, fixture(domain), 1).await?;
    Ok(t)
}

#[tokio::test]
async fn list_filters_on_every_domain() -> anyhow::Result<()> {
    use LifecycleStatus::*;
    let window = |after: CalendarDate, before: CalendarDate| InitiativeFilter {
        due_after: Some(after),
        due_before: Some(before),
        ..Default::default()
    };
    let overdue = |as_of: CalendarDate| InitiativeFilter {
        overdue_only: true,
        as_of: Some(as_of),
        ..Default::default()
    };
    let cases: Vec<(&str, InitiativeFilter, Vec<&str>)> = vec![
        (
            "no filter",
            InitiativeFilter::default(),
            vec!["alpha", "bravo", "charlie", "delta", "echo"],
        ),
        (
            "one status",
            InitiativeFilter {
                statuses: vec![Announced as i32],
                ..Default::default()
            },
            vec!["alpha"],
        ),
        (
            "two statuses",
            InitiativeFilter {
                statuses: vec![InProgress as i32, Completed as i32],
                ..Default::default()
            },
            vec!["bravo", "charlie"],
        ),
        (
            "one instrument",
            InitiativeFilter {
                instruments: vec![Instrument::Mou as i32],
                ..Default::default()
            },
            vec!["bravo", "delta"],
        ),
        (
            "two instruments",
            InitiativeFilter {
                instruments: vec![Instrument::Mou as i32, Instrument::WorkingGroup as i32],
                ..Default::default()
            },
            vec!["bravo", "charlie", "delta"],
        ),
        (
            "organization",
            InitiativeFilter {
                organization_id: "us-nsf".into(),
                ..Default::default()
            },
            vec!["alpha", "charlie"],
        ),
        (
            "country KR",
            InitiativeFilter {
                country_code: "KR".into(),
                ..Default::default()
            },
            vec!["alpha", "bravo", "echo"],
        ),
        (
            "country IN",
            InitiativeFilter {
                country_code: "IN".into(),
                ..Default::default()
            },
            vec!["charlie"],
        ),
        (
            "topic",
            InitiativeFilter {
                topic: "talent".into(),
                ..Default::default()
            },
            vec!["charlie", "echo"],
        ),
        (
            "due in 2025",
            window(calendar(2025, 1, 1), calendar(2025, 12, 31)),
            vec!["alpha"],
        ),
        (
            "due in 2026-2027",
            window(calendar(2026, 1, 1), calendar(2027, 12, 31)),
            vec!["bravo", "echo"],
        ),
        (
            "due on the last day of a quarter",
            window(calendar(2026, 6, 30), calendar(2026, 6, 30)),
            vec!["echo"],
        ),
        (
            "overdue mid 2025",
            overdue(calendar(2025, 6, 30)),
            vec!["delta"],
        ),
        (
            "overdue on new year 2026",
            overdue(calendar(2026, 1, 1)),
            vec!["alpha", "delta"],
        ),
        (
            "overdue after Q2 2026",
            overdue(calendar(2026, 7, 1)),
            vec!["alpha", "delta", "echo"],
        ),
        (
            "text in the summary, any case",
            InitiativeFilter {
                text: "open ran".into(),
                ..Default::default()
            },
            vec!["bravo"],
        ),
        (
            "text in the title, any case",
            InitiativeFilter {
                text: "ALPHA".into(),
                ..Default::default()
            },
            vec!["alpha"],
        ),
        (
            "organization and status",
            InitiativeFilter {
                organization_id: "kr-msit".into(),
                statuses: vec![Suspended as i32],
                ..Default::default()
            },
            vec!["echo"],
        ),
        (
            "country and instrument",
            InitiativeFilter {
                country_code: "US".into(),
                instruments: vec![Instrument::Mou as i32],
                ..Default::default()
            },
            vec!["bravo"],
        ),
        (
            "nothing matches",
            InitiativeFilter {
                topic: "standards".into(),
                statuses: vec![Completed as i32],
                ..Default::default()
            },
            vec![],
        ),
    ];
    for domain in Domain::ALL {
        let t = start_with_fixture(domain).await?;
        let mut c = t.client.clone();
        for (what, filter, want) in &cases {
            for page_size in [0, 1] {
                let got = list_all(&mut c, &t.parent(), Some(filter.clone()), page_size)
                    .await
                    .with_context(|| format!("{domain}: {what}"))?;
                assert_eq!(ids(&got), *want, "{domain}: {what} (page size {page_size})");
            }
        }
        // A filtered walk one by one takes one page per match.
        let mut pages = 0;
        let mut token = String::new();
        loop {
            let page = c
                .list_initiatives(ListInitiativesRequest {
                    parent: t.parent(),
                    page_size: 1,
                    page_token: token,
                    filter: Some(InitiativeFilter {
                        country_code: "KR".into(),
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner();
            pages += 1;
            assert_eq!(page.initiatives.len(), 1);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3, "{domain}");
    }
    Ok(())
}

fn status_counts(s: &DomainSummary) -> Vec<(LifecycleStatus, i64)> {
    s.by_status
        .iter()
        .map(|c| {
            (
                LifecycleStatus::try_from(c.status).unwrap_or_default(),
                c.count,
            )
        })
        .collect()
}

fn instrument_counts(s: &DomainSummary) -> Vec<(Instrument, i64)> {
    s.by_instrument
        .iter()
        .map(|c| {
            (
                Instrument::try_from(c.instrument).unwrap_or_default(),
                c.count,
            )
        })
        .collect()
}

fn funding(s: &DomainSummary) -> Vec<(String, i64, i32, AmountQualifier, i64)> {
    s.funding
        .iter()
        .map(|f| {
            let m = f.total.clone().unwrap_or_default();
            (
                m.currency_code,
                m.units,
                m.nanos,
                AmountQualifier::try_from(f.qualifier).unwrap_or_default(),
                f.commitment_count,
            )
        })
        .collect()
}

fn organizations(s: &DomainSummary) -> Vec<(&str, &str, i64)> {
    s.organizations
        .iter()
        .map(|o| {
            (
                o.organization_id.as_str(),
                o.country_code.as_str(),
                o.initiative_count,
            )
        })
        .collect()
}

fn milestones(s: &DomainSummary) -> (i64, i64, i64, i64) {
    let m = s.milestones.unwrap_or_default();
    (m.total, m.met, m.due_soon, m.overdue)
}

#[tokio::test]
async fn domain_summary_counts_and_totals_on_every_domain() -> anyhow::Result<()> {
    use AmountQualifier::*;
    use LifecycleStatus::*;
    for domain in Domain::ALL {
        let t = start_with_fixture(domain).await?;
        let parent = t.parent();
        let c = &mut t.client.clone();
        let s = summary_at(c, &parent, calendar(2026, 1, 1), 365).await?;
        assert_eq!(s.initiative_count, 5, "{domain}");
        assert_eq!(
            status_counts(&s),
            vec![
                (Proposed, 1),
                (Announced, 1),
                (InProgress, 1),
                (Completed, 1),
                (Suspended, 1)
            ]
        );
        assert_eq!(
            instrument_counts(&s),
            vec![
                (Instrument::Mou, 2),
                (Instrument::JointResearchProgramme, 1),
                (Instrument::WorkingGroup, 1),
                (Instrument::DialogueChannel, 1)
            ]
        );
        // Five milestones, one met; alpha's (end of 2025) is overdue, echo's
        // (end of Q2 2026) is due within 365 days, bravo's and delta's are
        // later.
        assert_eq!(milestones(&s), (5, 1, 1, 1), "{domain}");
        // alpha (planned end 2025) and delta (2024) are open and late;
        // charlie ended in 2023 but is completed.
        assert_eq!(s.overdue_initiatives, 2);
        assert_eq!(
            funding(&s),
            vec![
                ("KRW".into(), 5_000_000_000, 0, Exact, 1),
                ("USD".into(), 2, 500_000_000, Exact, 1),
                ("USD".into(), 11_000_000, 0, AtLeast, 2),
            ]
        );
        assert_eq!(
            organizations(&s),
            vec![
                ("in-dst", "IN", 1),
                ("jp-meti", "JP", 1),
                ("kr-kriss", "KR", 1),
                ("kr-msit", "KR", 2),
                ("us-nist", "US", 1),
                ("us-nsf", "US", 2),
            ]
        );
        assert_eq!(s.organizations[5].name, "National Science Foundation");
        assert_eq!(s.last_revision, 5);
        assert!(s.last_change_time.is_some());
        assert_eq!(s.due_within_days, 365);
        assert_eq!(s.as_of, Some(calendar(2026, 1, 1)));

        // A narrower window and a later day move milestones between due soon
        // and overdue.
        let later = summary_at(c, &parent, calendar(2026, 7, 1), 30).await?;
        assert_eq!(milestones(&later), (5, 1, 0, 2));
        assert_eq!(later.overdue_initiatives, 2);

        // Cancelling delta and deleting bravo move every counter they touch.
        let delta = c
            .get_initiative(GetInitiativeRequest {
                name: t.name("delta"),
            })
            .await?
            .into_inner();
        // Cancelled since 2025-12 (recorded today): cancelled as of 2026-01-01.
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                status: Cancelled as i32,
                status_date: Some(cetrack_contract::dates::day(2025, 12, 1)),
                ..delta
            }),
            update_mask: Some(mask(&["status", "status_date"])),
            ..Default::default()
        })
        .await?;
        c.delete_initiative(DeleteInitiativeRequest {
            name: t.name("bravo"),
            ..Default::default()
        })
        .await?;
        let s = summary_at(c, &parent, calendar(2026, 1, 1), 365).await?;
        assert_eq!(s.initiative_count, 4);
        assert_eq!(
            status_counts(&s),
            vec![
                (Announced, 1),
                (Completed, 1),
                (Suspended, 1),
                (Cancelled, 1)
            ]
        );
        assert_eq!(
            instrument_counts(&s),
            vec![
                (Instrument::Mou, 1),
                (Instrument::JointResearchProgramme, 1),
                (Instrument::WorkingGroup, 1),
                (Instrument::DialogueChannel, 1)
            ]
        );
        assert_eq!(milestones(&s), (4, 1, 1, 1));
        assert_eq!(s.overdue_initiatives, 1);
        assert_eq!(funding(&s), vec![("USD".into(), 11_000_000, 0, AtLeast, 2)]);
        assert_eq!(
            organizations(&s),
            vec![
                ("in-dst", "IN", 1),
                ("jp-meti", "JP", 1),
                ("kr-msit", "KR", 2),
                ("us-nsf", "US", 2),
            ]
        );
        assert_eq!(s.last_revision, 7);
    }
    Ok(())
}

/// ListDueMilestones: the milestones a timeline shows, in its order (the
/// last day of the due period, then initiative name, then milestone id), a
/// page at a time from a position; overdue and met ones only when asked;
/// bad requests named field by field.
#[tokio::test]
async fn due_milestones_are_a_page_in_timeline_order() -> anyhow::Result<()> {
    let t = TestDomain::start(Domain::Ai).await?;
    let with = |title: &str, milestones: Vec<Milestone>| {
        let mut i = sample(Domain::Ai, title, 2026);
        i.milestones = milestones;
        i
    };
    let records = vec![
        (
            "alpha".to_string(),
            with(
                "Alpha",
                vec![
                    milestone("q3", quarter(2024, 3)),
                    milestone("q", quarter(2024, 1)),
                    // Met before the as-of day.
                    Milestone {
                        status: MilestoneStatus::Met as i32,
                        date_met: Some(month(2023, 12)),
                        ..milestone("met", month(2024, 5))
                    },
                ],
            ),
        ),
        (
            "bravo".to_string(),
            with(
                "Bravo",
                vec![
                    milestone("m", month(2024, 6)),
                    milestone("old", quarter(2023, 4)),
                ],
            ),
        ),
        (
            "charlie".to_string(),
            Initiative {
                status: LifecycleStatus::Cancelled as i32,
                ..with("Charlie", vec![milestone("c", month(2024, 2))])
            },
        ),
        (
            "delta".to_string(),
            with("Delta", vec![milestone("y", year(2024))]),
        ),
        (
            "echo".to_string(),
            with("Echo", vec![milestone("later", year(2025))]),
        ),
    ];
    create_concurrently(&t.client, Domain::Ai, records, 1).await?;
    let base = ListDueMilestonesRequest {
        parent: Domain::Ai.parent(),
        due_after: Some(calendar(2024, 1, 15)),
        due_before: Some(calendar(2024, 12, 31)),
        as_of: Some(calendar(2024, 1, 15)),
        ..Default::default()
    };
    let ask = |req: ListDueMilestonesRequest| {
        let mut c = t.client.clone();
        async move { c.list_due_milestones(req).await }
    };
    type Row = (String, String, CalendarDate, bool);
    let rows = |entries: &[DueMilestone]| -> Vec<Row> {
        entries
            .iter()
            .map(|e| {
                (
                    e.initiative.clone(),
                    e.milestone
                        .as_ref()
                        .map(|m| m.id.clone())
                        .unwrap_or_default(),
                    e.due_end.unwrap_or_default(),
                    e.overdue,
                )
            })
            .collect()
    };
    let row = |id: &str, m: &str, end: CalendarDate, overdue: bool| -> Row {
        (t.name(id), m.to_string(), end, overdue)
    };
    let old = row("bravo", "old", calendar(2023, 12, 31), true);
    let q1 = row("alpha", "q", calendar(2024, 3, 31), false);
    let met = row("alpha", "met", calendar(2024, 5, 31), false);
    let june = row("bravo", "m", calendar(2024, 6, 30), false);
    let q3 = row("alpha", "q3", calendar(2024, 9, 30), false);
    let y2024 = row("delta", "y", calendar(2024, 12, 31), false);

    let page = ask(base.clone()).await?.into_inner();
    assert_eq!(
        rows(&page.entries),
        [q1.clone(), june.clone(), q3.clone(), y2024.clone()]
    );
    assert!(!page.more);
    assert_eq!(page.entries[0].initiative_title, "Alpha");
    assert_eq!(
        page.entries[0].milestone.as_ref().and_then(|m| m.due),
        Some(quarter(2024, 1))
    );
    let all = ListDueMilestonesRequest {
        include_overdue: true,
        include_met: true,
        ..base.clone()
    };
    let everything = vec![old, q1, met, june, q3, y2024];
    assert_eq!(
        rows(&ask(all.clone()).await?.into_inner().entries),
        everything
    );

    // Pages of 1, 2 and 4 from the last entry of the page before.
    for size in [1, 2, 4] {
        let mut walked = Vec::new();
        let mut start_after = None;
        loop {
            let page = ask(ListDueMilestonesRequest {
                page_size: size,
                start_after: start_after.clone(),
                ..all.clone()
            })
            .await?
            .into_inner();
            assert!(page.entries.len() <= size as usize);
            walked.extend(rows(&page.entries));
            if !page.more {
                break;
            }
            let last = page
                .entries
                .last()
                .context("a page that has more is not empty")?;
            start_after = Some(cetrack_contract::timeline::after(last));
        }
        assert_eq!(walked, everything, "pages of {size}");
    }

    // Bad requests: every bad field named; another domain's parent is not
    // found.
    let status = ask(ListDueMilestonesRequest {
        parent: Domain::Ai.parent(),
        page_size: -1,
        start_after: Some(DueMilestonePosition::default()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let mut fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "due_after",
            "due_before",
            "page_size",
            "start_after.due_end"
        ]
    );
    let status = ask(ListDueMilestonesRequest {
        due_after: Some(calendar(2025, 1, 1)),
        ..base.clone()
    })
    .await
    .unwrap_err();
    assert_eq!(
        field_violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        ["due_before"]
    );
    let status = ask(ListDueMilestonesRequest {
        parent: Domain::Energy.parent(),
        ..base
    })
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    Ok(())
}
