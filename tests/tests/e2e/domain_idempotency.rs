//! Retries with a request id (AIP-155): a retried CreateInitiative, with the
//! caller's id or a generated one, sequential or concurrent, makes exactly one
//! record and returns the same response; retried updates, progress reports,
//! milestone updates and deletions take effect once; and the request ids
//! survive a restart.

use anyhow::Context;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

fn keyed(domain: Domain, id: &str, title: &str, request_id: &str) -> CreateInitiativeRequest {
    let mut request = create_request(domain, id, sample(domain, title, 2027));
    request.request_id = request_id.into();
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_makes_one_record_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        retried_creates(domain)
            .await
            .with_context(|| format!("the {domain} domain"))?;
    }
    Ok(())
}

async fn retried_creates(domain: Domain) -> anyhow::Result<()> {
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();

    // The caller's id, sent twice.
    let request = keyed(domain, "chips", "Chips", "create-chips");
    let first = c.create_initiative(request.clone()).await?.into_inner();
    let again = c.create_initiative(request).await?.into_inner();
    assert_eq!(again, first);

    // A generated id, sent three times: the same generated name each time.
    let request = keyed(domain, "", "Generated", "create-generated");
    let generated = c.create_initiative(request.clone()).await?.into_inner();
    for _ in 0..2 {
        assert_eq!(
            c.create_initiative(request.clone()).await?.into_inner(),
            generated
        );
    }

    // Eight concurrent sends of one request with a generated id.
    let request = keyed(domain, "", "Concurrent", "create-concurrent");
    let sends = (0..8).map(|_| {
        let mut c = c.clone();
        let request = request.clone();
        tokio::spawn(async move { c.create_initiative(request).await })
    });
    let mut responses = Vec::new();
    for send in sends {
        responses.push(send.await??.into_inner());
    }
    assert!(
        responses.iter().all(|r| *r == responses[0]),
        "{responses:?}"
    );

    // Exactly three records, three revisions, one history entry each.
    let all = list_all(&mut c, &t.parent(), None, 0).await?;
    let mut want = vec![first.clone(), generated.clone(), responses[0].clone()];
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(all, want);
    let s = summary_at(&mut c, &t.parent(), calendar(2026, 1, 1), 0).await?;
    assert_eq!((s.initiative_count, s.last_revision), (3, 3));
    for init in &all {
        assert_eq!(history_all(&mut c, &init.name, 0).await?.len(), 1);
    }
    Ok(())
}

#[tokio::test]
async fn retried_writes_take_effect_once() -> anyhow::Result<()> {
    let domain = Domain::Ai;
    let t = TestDomain::start(domain).await?;
    let mut c = t.client.clone();
    let name = t.name("safety");
    let created = c
        .create_initiative(create_request(
            domain,
            "safety",
            sample(domain, "Safety", 2027),
        ))
        .await?
        .into_inner();

    // UpdateInitiative.
    let update = UpdateInitiativeRequest {
        initiative: Some(Initiative {
            title: "AI safety institutes".into(),
            ..created.clone()
        }),
        update_mask: Some(mask(&["title"])),
        request_id: "retitle".into(),
        reporter: "us-nsf".into(),
    };
    let updated = c.update_initiative(update.clone()).await?.into_inner();
    assert_eq!(
        c.update_initiative(update.clone()).await?.into_inner(),
        updated
    );

    // AddProgressUpdate: the retry adds nothing.
    let progress = AddProgressUpdateRequest {
        name: name.clone(),
        progress_update: Some(ProgressUpdate {
            as_of: Some(year(2025)),
            reporting_organization_id: "kr-msit".into(),
            text: "Network launched".into(),
            ..Default::default()
        }),
        etag: updated.etag.clone(),
        request_id: "report-1".into(),
        reporter: String::new(),
    };
    let reported = c.add_progress_update(progress.clone()).await?.into_inner();
    assert_eq!(reported.progress_updates.len(), 1);
    assert_eq!(
        c.add_progress_update(progress.clone()).await?.into_inner(),
        reported
    );

    // UpdateMilestone.
    let milestone = UpdateMilestoneRequest {
        name: name.clone(),
        milestone: Some(Milestone {
            id: "launch".into(),
            status: MilestoneStatus::Met as i32,
            date_met: Some(year(2025)),
            ..Default::default()
        }),
        update_mask: Some(mask(&["status", "date_met"])),
        etag: reported.etag.clone(),
        request_id: "meet-launch".into(),
        reporter: String::new(),
    };
    let met = c.update_milestone(milestone.clone()).await?.into_inner();
    assert_eq!(c.update_milestone(milestone).await?.into_inner(), met);

    // A retry after a later change still answers with its first result and
    // changes nothing.
    assert_eq!(c.update_initiative(update).await?.into_inner(), updated);
    assert_eq!(
        c.add_progress_update(progress).await?.into_inner(),
        reported
    );
    let current = c
        .get_initiative(GetInitiativeRequest { name: name.clone() })
        .await?
        .into_inner();
    assert_eq!(current, met);
    let history = history_all(&mut c, &name, 0).await?;
    assert_eq!(
        history.iter().map(|h| h.revision).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );

    // DeleteInitiative: a retry after success is a success.
    let delete = DeleteInitiativeRequest {
        name: name.clone(),
        etag: met.etag.clone(),
        reporter: "us-nsf".into(),
        request_id: "delete-safety".into(),
    };
    c.delete_initiative(delete.clone()).await?;
    c.delete_initiative(delete).await?;
    assert_eq!(history_all(&mut c, &name, 0).await?.len(), 5);
    let s = summary_at(&mut c, &t.parent(), calendar(2026, 1, 1), 0).await?;
    assert_eq!((s.initiative_count, s.last_revision), (0, 5));
    Ok(())
}

#[tokio::test]
async fn request_ids_survive_a_restart() -> anyhow::Result<()> {
    let domain = Domain::Biotech;
    let mut t = TestDomain::start(domain).await?;
    let request = keyed(domain, "", "Biomanufacturing", "create-before-restart");
    let first = t
        .client
        .create_initiative(request.clone())
        .await?
        .into_inner();
    t.restart().await?;
    let retried = t.client.create_initiative(request).await?.into_inner();
    assert_eq!(retried, first);
    let all = list_all(&mut t.client.clone(), &t.parent(), None, 0).await?;
    assert_eq!(all, vec![first]);
    Ok(())
}

/// A replayed answer says so (`cetrack-replayed: true`), at the domain and
/// through the gateway; a first answer does not. After a delete, a create
/// retried with its first request id is a replay, and writes nothing.
#[tokio::test]
async fn a_replayed_answer_says_so() -> anyhow::Result<()> {
    use cetrack_contract::headers::REPLAYED;
    const D: Domain = Domain::Ai;
    let s = Stack::start().await?;
    let mut direct = s.domain(D);
    let mut via = connect(s.gateway_server.addr).await?;
    let create = |id: &str| CreateInitiativeRequest {
        request_id: format!("replay-{id}"),
        ..create_request(D, id, sample(D, "Replayed", 2027))
    };
    for (client, id) in [(&mut direct, "direct"), (&mut via, "via")] {
        let first = client.create_initiative(create(id)).await?;
        assert!(first.metadata().get(REPLAYED).is_none(), "{first:?}");
        let again = client.create_initiative(create(id)).await?;
        assert_eq!(
            again
                .metadata()
                .get(REPLAYED)
                .map(|v| v.as_bytes().to_vec()),
            Some(b"true".to_vec())
        );
        assert_eq!(again.get_ref(), first.get_ref());
        let name = first.get_ref().name.clone();
        client
            .delete_initiative(DeleteInitiativeRequest {
                name: name.clone(),
                request_id: format!("delete-{id}"),
                ..Default::default()
            })
            .await?;
        let replayed = client.create_initiative(create(id)).await?;
        assert!(replayed.metadata().get(REPLAYED).is_some());
        let gone = client
            .get_initiative(GetInitiativeRequest { name })
            .await
            .expect_err("a replay wrote the record again");
        assert_eq!(gone.code(), tonic::Code::NotFound);
    }
    Ok(())
}

/// A replayed answer is the record as the first request left it: a caller
/// without clearance who sends the same request with the same request id
/// (an editor of the domain, uncleared) learns nothing of a restricted
/// record (NOT_FOUND), where the replay used to hand it back.
#[tokio::test]
async fn a_replay_shows_a_restricted_record_to_no_one_without_clearance() -> anyhow::Result<()> {
    use cetrack_contract::auth::{Clearance, Role};
    const D: Domain = Domain::Quantum;
    let mut t = TestDomain::start(D).await?;
    let mut secret = sample(D, "Restricted marker", 2027);
    secret.sensitivity = Sensitivity::Restricted as i32;
    let created = t
        .client
        .create_initiative(create_request(D, "secret", secret))
        .await?
        .into_inner();
    let add = AddProgressUpdateRequest {
        name: created.name.clone(),
        progress_update: Some(ProgressUpdate {
            id: "p1".into(),
            as_of: Some(year(2025)),
            text: "Restricted progress".into(),
            reporting_organization_id: "us-nsf".into(),
            ..Default::default()
        }),
        request_id: "same-request".into(),
        ..Default::default()
    };
    t.client.add_progress_update(add.clone()).await?;
    let editor = token(
        "uncleared-editor",
        None,
        &[Role::Editor],
        None,
        Clearance::Public,
    );
    let mut uncleared = connect_as(t.addr(), Some(&editor)).await?;
    let status = uncleared
        .add_progress_update(add)
        .await
        .expect_err("a replay handed a restricted record to a caller without clearance");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(!status.message().contains("Restricted"), "{status:?}");
    Ok(())
}
