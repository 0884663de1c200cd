//! Every error code of DomainService on real servers: INVALID_ARGUMENT with a
//! google.rpc.BadRequest naming every bad field at once, NOT_FOUND,
//! ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION, bad page sizes and page
//! tokens, details of another domain, and a caller's deadline on a stream.

use std::time::Duration;

use anyhow::Context;
use cetrack_contract::proto::domain_details::Kind;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Asserts an INVALID_ARGUMENT whose BadRequest names exactly `fields` (in
/// any order), each with a description.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    fields: &[&str],
) {
    let status = expect_err(result);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = field_violations(&status);
    let mut got: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{status:?}");
    for (field, description) in &violations {
        assert!(!description.is_empty(), "{field} has no description");
    }
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
) -> tonic::Status {
    let status = expect_err(result);
    assert_eq!(status.code(), code, "{status:?}");
    status
}

/// A domain other than `domain`.
fn other(domain: Domain) -> Domain {
    let i = Domain::ALL.iter().position(|d| *d == domain).unwrap_or(0);
    Domain::ALL[(i + 1) % Domain::ALL.len()]
}

fn get(name: &str) -> GetInitiativeRequest {
    GetInitiativeRequest { name: name.into() }
}

#[tokio::test]
async fn a_create_with_many_mistakes_names_every_one() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let mut t = TestDomain::start(domain).await?;
        let mut init = sample(domain, "", 2027);
        init.instrument = Instrument::Unspecified as i32;
        init.participants[0]
            .organization
            .as_mut()
            .context("no organization")?
            .country_code = "XX".into();
        init.participants[1].role = ParticipantRole::Unspecified as i32;
        init.planned_end = Some(year(2020));
        init.milestones[0].due = Some(quarter(2026, 5));
        init.funding[0]
            .amount
            .as_mut()
            .context("no amount")?
            .currency_code = "EUROS".into();
        init.topics = vec!["joint-research".into(), "Not A Slug".into()];
        init.sources[0].url = "ftp://example.org/fact-sheet".into();
        let mut request = create_request(domain, "Bad_Id", init);
        request.request_id = "r".repeat(101);
        request.reporter = "x".repeat(201);
        assert_invalid(
            t.client.create_initiative(request).await,
            &[
                "initiative_id",
                "initiative.title",
                "initiative.instrument",
                "initiative.participants[0].organization.country_code",
                "initiative.participants[1].role",
                "initiative.planned_end",
                "initiative.milestones[0].due.quarter",
                "initiative.funding[0].amount.currency_code",
                "initiative.topics[1]",
                "initiative.sources[0].url",
                "request_id",
                "reporter",
            ],
        );
        // Nothing was written.
        let s = t
            .client
            .get_domain_summary(GetDomainSummaryRequest {
                parent: t.parent(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!((s.initiative_count, s.last_revision), (0, 0), "{domain}");
    }
    Ok(())
}

#[tokio::test]
async fn every_rpc_rejects_invalid_arguments() -> anyhow::Result<()> {
    let domain = Domain::Energy;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let name = t.name("grid-storage");
    let created = c
        .create_initiative(create_request(
            domain,
            "grid-storage",
            sample(domain, "Grid storage", 2027),
        ))
        .await?
        .into_inner();

    // Requests without their required parts.
    assert_invalid(
        c.create_initiative(CreateInitiativeRequest::default())
            .await,
        &["parent", "initiative"],
    );
    assert_invalid(
        c.update_initiative(UpdateInitiativeRequest::default())
            .await,
        &["initiative"],
    );
    assert_invalid(
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(created.clone()),
            ..Default::default()
        })
        .await,
        &["update_mask.paths"],
    );

    // Malformed names and parents.
    for bad in [
        "",
        "domains/energy/things/x",
        "domains/chemistry/initiatives/x",
        "domains/energy/initiatives/Upper",
    ] {
        assert_invalid(c.get_initiative(get(bad)).await, &["name"]);
    }
    assert_invalid(
        c.delete_initiative(DeleteInitiativeRequest {
            name: "domains/energy/initiatives/".into(),
            request_id: "r".repeat(101),
            ..Default::default()
        })
        .await,
        &["name", "request_id"],
    );
    assert_invalid(
        c.list_initiatives(ListInitiativesRequest {
            parent: "energy".into(),
            ..Default::default()
        })
        .await,
        &["parent"],
    );

    // UpdateInitiative: a mask naming output-only and unknown fields, and a
    // reporter too long, all at once.
    assert_invalid(
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(created.clone()),
            update_mask: Some(mask(&["etag", "bogus", "title"])),
            request_id: String::new(),
            reporter: "x".repeat(201),
        })
        .await,
        &["update_mask.paths[0]", "update_mask.paths[1]", "reporter"],
    );
    // New values of the masked fields are checked as a whole.
    let mut bad = created.clone();
    bad.title = String::new();
    bad.topics = vec!["Bad Topic".into()];
    bad.participants[1]
        .organization
        .as_mut()
        .context("no organization")?
        .country_code = "kr".into();
    bad.summary = "s".repeat(10_001);
    assert_invalid(
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(bad),
            update_mask: Some(mask(&["title", "topics", "participants"])),
            ..Default::default()
        })
        .await,
        &[
            "initiative.title",
            "initiative.topics[0]",
            "initiative.participants[1].organization.country_code",
        ],
    );
    let mut unset = created.clone();
    unset.status = LifecycleStatus::Unspecified as i32;
    assert_invalid(
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(unset),
            update_mask: Some(mask(&["status"])),
            ..Default::default()
        })
        .await,
        &["initiative.status"],
    );

    // AddProgressUpdate.
    assert_invalid(
        c.add_progress_update(AddProgressUpdateRequest {
            name: "domains/energy/initiatives/".into(),
            progress_update: Some(ProgressUpdate {
                reporting_organization_id: "X".into(),
                evidence_links: vec!["https://example.org/ok".into(), "not a url".into()],
                assessment: 99,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        &[
            "name",
            "progress_update.as_of",
            "progress_update.reporting_organization_id",
            "progress_update.text",
            "progress_update.assessment",
            "progress_update.evidence_links[1]",
        ],
    );
    assert_invalid(
        c.add_progress_update(AddProgressUpdateRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await,
        &["progress_update"],
    );

    // UpdateMilestone: the request, then the milestone it would produce.
    assert_invalid(
        c.update_milestone(UpdateMilestoneRequest {
            name: name.clone(),
            milestone: Some(Milestone::default()),
            update_mask: Some(mask(&["id", "colour"])),
            ..Default::default()
        })
        .await,
        &[
            "milestone.id",
            "update_mask.paths[0]",
            "update_mask.paths[1]",
        ],
    );
    assert_invalid(
        c.update_milestone(UpdateMilestoneRequest {
            name: name.clone(),
            milestone: Some(Milestone {
                id: "launch".into(),
                date_met: Some(year(2025)),
                evidence_links: vec!["mailto:someone@example.org".into()],
                ..Default::default()
            }),
            update_mask: Some(mask(&["date_met", "evidence_links"])),
            ..Default::default()
        })
        .await,
        &["milestone.date_met", "milestone.evidence_links[0]"],
    );

    // ListInitiatives: every bad part of the filter, the page size and the
    // page token at once.
    assert_invalid(
        c.list_initiatives(ListInitiativesRequest {
            parent: t.parent(),
            page_size: -1,
            page_token: "not a token!".into(),
            filter: Some(InitiativeFilter {
                include_met_milestones: false,
                as_known_on: None,
                document: String::new(),
                statuses: vec![99],
                instruments: vec![Instrument::Unspecified as i32],
                organization_id: "US NSF".into(),
                country_code: "kr".into(),
                topic: "Bad Topic".into(),
                due_after: Some(calendar(2026, 1, 1)),
                due_before: Some(calendar(2025, 1, 1)),
                overdue_only: true,
                text: "t".repeat(201),
                as_of: Some(calendar(2026, 13, 1)),
            }),
        })
        .await,
        &[
            "filter.statuses[0]",
            "filter.instruments[0]",
            "filter.organization_id",
            "filter.country_code",
            "filter.topic",
            "filter.due_before",
            "filter.as_of.month",
            "filter.text",
            "page_size",
            "page_token",
        ],
    );

    // GetDomainSummary, ListHistory, WatchChanges.
    assert_invalid(
        c.get_domain_summary(GetDomainSummaryRequest {
            parent: t.parent(),
            due_within_days: 5_000,
            as_of: Some(calendar(2025, 2, 29)),
            ..Default::default()
        })
        .await,
        &["due_within_days", "as_of.day"],
    );
    assert_invalid(
        c.get_domain_summary(GetDomainSummaryRequest {
            parent: t.parent(),
            due_within_days: -1,
            as_of: None,
            ..Default::default()
        })
        .await,
        &["due_within_days"],
    );
    assert_invalid(
        c.list_history(ListHistoryRequest {
            name: name.clone(),
            page_size: -5,
            page_token: String::new(),
        })
        .await,
        &["page_size"],
    );
    assert_invalid(
        c.watch_changes(WatchChangesRequest {
            parent: t.parent(),
            after_revision: -1,
        })
        .await,
        &["after_revision"],
    );
    assert_invalid(
        c.watch_changes(WatchChangesRequest::default()).await,
        &["parent"],
    );

    // None of this wrote anything.
    let s = summary_at(&mut c, &t.parent(), calendar(2026, 1, 1), 0).await?;
    assert_eq!(s.last_revision, created.revision);
    Ok(())
}

#[tokio::test]
async fn page_tokens_are_bound_to_their_request() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let t = TestDomain::start(domain).await?;
    let elsewhere = TestDomain::start(Domain::Ai).await?;
    let mut c = t.client.clone();
    let items = |d: Domain| {
        ["a", "b", "c"]
            .iter()
            .map(|id| (id.to_string(), sample(d, id, 2026)))
            .collect::<Vec<_>>()
    };
    create_concurrently(&c, domain, items(domain), 3).await?;
    create_concurrently(&elsewhere.client, Domain::Ai, items(Domain::Ai), 3).await?;

    let list = |page_token: String, filter: Option<InitiativeFilter>| ListInitiativesRequest {
        parent: t.parent(),
        page_size: 1,
        page_token,
        filter,
    };
    let first = c
        .list_initiatives(list(String::new(), None))
        .await?
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    // The same token with the same request works.
    let second = c
        .list_initiatives(list(first.next_page_token.clone(), None))
        .await?
        .into_inner();
    assert_eq!(ids(&second.initiatives), vec!["b"]);
    // ... but not with another filter.
    let topic = InitiativeFilter {
        topic: "joint-research".into(),
        ..Default::default()
    };
    assert_invalid(
        c.list_initiatives(list(first.next_page_token.clone(), Some(topic)))
            .await,
        &["page_token"],
    );
    // A token of the same walk on another domain's server.
    let foreign = elsewhere
        .client
        .clone()
        .list_initiatives(ListInitiativesRequest {
            parent: elsewhere.parent(),
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .next_page_token;
    assert!(!foreign.is_empty());
    assert_invalid(
        c.list_initiatives(list(foreign, None)).await,
        &["page_token"],
    );
    // A ListHistory token is not a ListInitiatives token, and the reverse.
    c.update_initiative(UpdateInitiativeRequest {
        initiative: Some(Initiative {
            name: t.name("a"),
            title: "A2".into(),
            ..Default::default()
        }),
        update_mask: Some(mask(&["title"])),
        ..Default::default()
    })
    .await?;
    let history_token = c
        .list_history(ListHistoryRequest {
            name: t.name("a"),
            page_size: 1,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .next_page_token;
    assert!(!history_token.is_empty());
    assert_invalid(
        c.list_initiatives(list(history_token.clone(), None)).await,
        &["page_token"],
    );
    assert_invalid(
        c.list_history(ListHistoryRequest {
            name: t.name("a"),
            page_size: 1,
            page_token: first.next_page_token.clone(),
        })
        .await,
        &["page_token"],
    );
    // A history token of another initiative.
    assert_invalid(
        c.list_history(ListHistoryRequest {
            name: t.name("b"),
            page_size: 1,
            page_token: history_token,
        })
        .await,
        &["page_token"],
    );
    // Garbage.
    for garbage in ["%%%", "AAAA", "not a page token"] {
        assert_invalid(
            c.list_initiatives(list(garbage.into(), None)).await,
            &["page_token"],
        );
    }
    Ok(())
}

#[tokio::test]
async fn details_of_another_domain_are_rejected_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let t = TestDomain::start(domain).await?;
        let mut c = t.client.clone();
        let foreign = other(domain);
        let field = format!("initiative.details.{}", foreign.slug());
        let mut init = sample(domain, "Wrong details", 2026);
        init.details = Some(details(foreign));
        assert_invalid(
            c.create_initiative(create_request(domain, "wrong", init))
                .await,
            &[field.as_str()],
        );
        assert_code(
            c.get_initiative(get(&t.name("wrong"))).await,
            Code::NotFound,
        );

        let created = c
            .create_initiative(create_request(
                domain,
                "right",
                sample(domain, "Right details", 2026),
            ))
            .await?
            .into_inner();
        assert_invalid(
            c.update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    details: Some(details(foreign)),
                    ..created.clone()
                }),
                update_mask: Some(mask(&["details"])),
                ..Default::default()
            })
            .await,
            &[field.as_str()],
        );
        // Its own details are checked too.
        let mut own = details(domain);
        let bad_field = match own.kind.as_mut().context("no kind")? {
            Kind::Semiconductors(d) => {
                d.segments.push(0);
                "segments[1]"
            }
            Kind::Biotech(d) => {
                d.research_areas.push(99);
                "research_areas[1]"
            }
            Kind::Energy(d) => {
                d.chemistries.push(0);
                "chemistries[1]"
            }
            Kind::Quantum(d) => {
                d.platforms.push(99);
                "platforms[1]"
            }
            Kind::Ai(d) => {
                d.standards_bodies.push(String::new());
                "standards_bodies[1]"
            }
            Kind::Connectivity(d) => {
                d.target_regions.push("r".repeat(301));
                "target_regions[1]"
            }
            Kind::Partnerships(d) => {
                d.partner_country_codes.push("XX".into());
                "partner_country_codes[1]"
            }
        };
        let own_field = format!("initiative.details.{}.{bad_field}", domain.slug());
        assert_invalid(
            c.update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    details: Some(own),
                    ..created.clone()
                }),
                update_mask: Some(mask(&["details"])),
                ..Default::default()
            })
            .await,
            &[own_field.as_str()],
        );
        let unchanged = c.get_initiative(get(&created.name)).await?.into_inner();
        assert_eq!(unchanged, created, "{domain}");
    }
    Ok(())
}

#[tokio::test]
async fn unknown_and_foreign_resources_are_not_found_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let t = TestDomain::start(domain).await?;
        let mut c = t.client.clone();
        let created = c
            .create_initiative(create_request(
                domain,
                "known",
                sample(domain, "Known", 2026),
            ))
            .await?
            .into_inner();
        let missing = t.name("missing");
        let mut ghost = created.clone();
        ghost.name = missing.clone();
        ghost.etag = String::new();
        let ms = |name: &str, id: &str| UpdateMilestoneRequest {
            name: name.into(),
            milestone: Some(Milestone {
                id: id.into(),
                status: MilestoneStatus::Met as i32,
                ..Default::default()
            }),
            update_mask: Some(mask(&["status"])),
            ..Default::default()
        };
        let progress = |name: &str| AddProgressUpdateRequest {
            name: name.into(),
            progress_update: Some(ProgressUpdate {
                as_of: Some(year(2025)),
                reporting_organization_id: "us-nsf".into(),
                text: "Done".into(),
                ..Default::default()
            }),
            ..Default::default()
        };

        // An unknown initiative.
        assert_code(c.get_initiative(get(&missing)).await, Code::NotFound);
        assert_code(
            c.update_initiative(UpdateInitiativeRequest {
                initiative: Some(ghost.clone()),
                update_mask: Some(mask(&["title"])),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.delete_initiative(DeleteInitiativeRequest {
                name: missing.clone(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.add_progress_update(progress(&missing)).await,
            Code::NotFound,
        );
        assert_code(
            c.update_milestone(ms(&missing, "launch")).await,
            Code::NotFound,
        );
        assert_code(
            c.list_history(ListHistoryRequest {
                name: missing.clone(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        // An unknown milestone of a known initiative.
        let status = assert_code(
            c.update_milestone(ms(&created.name, "no-such-milestone"))
                .await,
            Code::NotFound,
        );
        assert!(status.message().contains("no-such-milestone"), "{status:?}");

        // Names and parents of another domain.
        let foreign = other(domain);
        let foreign_name = format!("{}/initiatives/known", foreign.parent());
        assert_code(c.get_initiative(get(&foreign_name)).await, Code::NotFound);
        assert_code(
            c.create_initiative(create_request(foreign, "x", sample(domain, "X", 2026)))
                .await,
            Code::NotFound,
        );
        assert_code(
            c.list_initiatives(ListInitiativesRequest {
                parent: foreign.parent(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.get_domain_summary(GetDomainSummaryRequest {
                parent: foreign.parent(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.watch_changes(WatchChangesRequest {
                parent: foreign.parent(),
                after_revision: 0,
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.list_history(ListHistoryRequest {
                name: foreign_name.clone(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    name: foreign_name.clone(),
                    ..created.clone()
                }),
                update_mask: Some(mask(&["title"])),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.delete_initiative(DeleteInitiativeRequest {
                name: foreign_name.clone(),
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        assert_code(
            c.add_progress_update(progress(&foreign_name)).await,
            Code::NotFound,
        );
        assert_code(
            c.update_milestone(ms(&foreign_name, "launch")).await,
            Code::NotFound,
        );
        let s = summary_at(&mut c, &t.parent(), calendar(2026, 1, 1), 0).await?;
        assert_eq!(s.last_revision, 1, "{domain}: nothing else was written");
    }
    Ok(())
}

#[tokio::test]
async fn a_taken_id_is_already_exists() -> anyhow::Result<()> {
    let domain = Domain::Biotech;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let first = c
        .create_initiative(create_request(
            domain,
            "taken",
            sample(domain, "First", 2026),
        ))
        .await?
        .into_inner();
    let status = assert_code(
        c.create_initiative(create_request(
            domain,
            "taken",
            sample(domain, "Second", 2026),
        ))
        .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains(&first.name), "{status:?}");
    assert_eq!(
        c.get_initiative(get(&first.name)).await?.into_inner(),
        first
    );
    assert_eq!(history_all(&mut c, &first.name, 0).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_stale_etag_is_aborted_on_every_conditional_write() -> anyhow::Result<()> {
    let domain = Domain::Connectivity;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let name = t.name("open-ran");
    let created = c
        .create_initiative(create_request(
            domain,
            "open-ran",
            sample(domain, "Open RAN", 2027),
        ))
        .await?
        .into_inner();
    let current = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                title: "Open RAN interoperability".into(),
                ..created.clone()
            }),
            update_mask: Some(mask(&["title"])),
            ..Default::default()
        })
        .await?
        .into_inner();
    let stale = created.etag.clone();
    assert_ne!(stale, current.etag);

    assert_code(
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                title: "Lost update".into(),
                ..created.clone()
            }),
            update_mask: Some(mask(&["title"])),
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_code(
        c.delete_initiative(DeleteInitiativeRequest {
            name: name.clone(),
            etag: stale.clone(),
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_code(
        c.add_progress_update(AddProgressUpdateRequest {
            name: name.clone(),
            progress_update: Some(ProgressUpdate {
                as_of: Some(year(2025)),
                reporting_organization_id: "us-nsf".into(),
                text: "Lost report".into(),
                ..Default::default()
            }),
            etag: stale.clone(),
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_code(
        c.update_milestone(UpdateMilestoneRequest {
            name: name.clone(),
            milestone: Some(Milestone {
                id: "launch".into(),
                status: MilestoneStatus::NotMet as i32,
                ..Default::default()
            }),
            update_mask: Some(mask(&["status"])),
            etag: stale,
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    // Nothing changed; the current etag still works.
    assert_eq!(c.get_initiative(get(&name)).await?.into_inner(), current);
    assert_eq!(history_all(&mut c, &name, 0).await?.len(), 2);
    c.delete_initiative(DeleteInitiativeRequest {
        name: name.clone(),
        etag: current.etag,
        ..Default::default()
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn illegal_transitions_and_reused_request_ids_fail_the_precondition() -> anyhow::Result<()> {
    use LifecycleStatus::*;
    let domain = Domain::Semiconductors;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let set_status = |init: &Initiative, status: LifecycleStatus| UpdateInitiativeRequest {
        initiative: Some(Initiative {
            status: status as i32,
            ..init.clone()
        }),
        update_mask: Some(mask(&["status"])),
        ..Default::default()
    };

    let announced = c
        .create_initiative(create_request(domain, "fab", sample(domain, "Fab", 2027)))
        .await?
        .into_inner();
    assert_eq!(announced.status, Announced as i32);
    let completed = c
        .update_initiative(set_status(&announced, Completed))
        .await?
        .into_inner();
    let status = assert_code(
        c.update_initiative(set_status(&completed, InProgress))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("COMPLETED -> IN_PROGRESS"),
        "{status:?}"
    );
    let details = status
        .get_details_precondition_failure()
        .context("no PreconditionFailure")?;
    assert!(details.violations[0]
        .description
        .contains("COMPLETED -> IN_PROGRESS"));
    // The same status is not a transition.
    let renamed = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                title: "Fab, done".into(),
                ..completed.clone()
            }),
            update_mask: Some(mask(&["title", "status"])),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(renamed.status, Completed as i32);

    let mut proposed = sample(domain, "Proposal", 2027);
    proposed.status = Proposed as i32;
    let proposed = c
        .create_initiative(create_request(domain, "proposal", proposed))
        .await?
        .into_inner();
    let status = assert_code(
        c.update_initiative(set_status(&proposed, Suspended)).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("PROPOSED -> SUSPENDED"),
        "{status:?}"
    );
    let cancelled = c
        .update_initiative(set_status(&proposed, Cancelled))
        .await?
        .into_inner();
    let status = assert_code(
        c.update_initiative(set_status(&cancelled, Announced)).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("CANCELLED -> ANNOUNCED"),
        "{status:?}"
    );
    assert_eq!(
        c.get_initiative(get(&cancelled.name)).await?.into_inner(),
        cancelled
    );

    // A request id reused for a different create.
    let mut first = create_request(domain, "keyed", sample(domain, "Keyed", 2027));
    first.request_id = "create-keyed".into();
    c.create_initiative(first.clone()).await?;
    let mut different = create_request(domain, "other-key", sample(domain, "Other", 2027));
    different.request_id = "create-keyed".into();
    let status = assert_code(
        c.create_initiative(different).await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("create-keyed"), "{status:?}");
    assert_code(
        c.get_initiative(get(&t.name("other-key"))).await,
        Code::NotFound,
    );
    // ... and for a different update.
    let keyed = c.get_initiative(get(&t.name("keyed"))).await?.into_inner();
    let update = |title: &str| UpdateInitiativeRequest {
        initiative: Some(Initiative {
            title: title.into(),
            ..keyed.clone()
        }),
        update_mask: Some(mask(&["title"])),
        request_id: "retitle".into(),
        reporter: String::new(),
    };
    let retitled = c.update_initiative(update("Retitled")).await?.into_inner();
    assert_code(
        c.update_initiative(update("Retitled again")).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        c.get_initiative(get(&keyed.name)).await?.into_inner(),
        retitled
    );
    Ok(())
}

#[tokio::test]
async fn a_watch_ends_when_the_callers_deadline_passes() -> anyhow::Result<()> {
    let domain = Domain::Partnerships;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    create_concurrently(
        &c,
        domain,
        vec![
            ("one".into(), sample(domain, "One", 2026)),
            ("two".into(), sample(domain, "Two", 2026)),
        ],
        1,
    )
    .await?;
    let mut request = tonic::Request::new(WatchChangesRequest {
        parent: t.parent(),
        after_revision: 0,
    });
    // Long enough for the backlog on a busy machine, short for a test.
    request.set_timeout(Duration::from_secs(2));
    let mut stream = c.watch_changes(request).await?.into_inner();
    // The changes already made arrive before the deadline ...
    let changes = next_changes(&mut stream, 2, Duration::from_secs(10)).await?;
    assert_eq!(
        changes.iter().map(|c| c.revision).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // ... then, with nothing more to send, the stream fails with the
    // deadline instead of hanging (the outer timeout only guards the test).
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("the watch outlived its deadline")?;
    let status = end.expect_err("the watch must end with an error at its deadline");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    // A unary call with a deadline it can meet succeeds.
    let mut request = tonic::Request::new(get(&t.name("one")));
    request.set_timeout(Duration::from_secs(30));
    assert_eq!(c.get_initiative(request).await?.into_inner().title, "One");
    Ok(())
}

#[tokio::test]
async fn an_update_with_a_bad_mask_and_bad_values_names_both_at_once() -> anyhow::Result<()> {
    let domain = Domain::Energy;
    let mut t = TestDomain::start(domain).await?;
    let created = t
        .client
        .create_initiative(create_request(
            domain,
            "storage",
            sample(domain, "Storage", 2026),
        ))
        .await?
        .into_inner();
    let mut input = created.clone();
    input.title.clear();
    input.topics = vec!["Not A Slug".into()];
    // `summary` is not in the mask: its (valid) value is not looked at, and an
    // invalid value there would not be reported either.
    input.summary = "x".repeat(20_000);
    let result = t
        .client
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(input),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec![
                    "bogus".into(),
                    "title".into(),
                    "topics".into(),
                    "etag".into(),
                ],
            }),
            ..Default::default()
        })
        .await;
    assert_invalid(
        result,
        &[
            "update_mask.paths[0]",
            "update_mask.paths[3]",
            "initiative.title",
            "initiative.topics[0]",
        ],
    );
    let after = t
        .client
        .get_initiative(GetInitiativeRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(after, created, "nothing changed");
    Ok(())
}
