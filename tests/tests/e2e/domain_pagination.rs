//! Pagination over a domain of 1,000 initiatives while another caller keeps
//! inserting: every initiative that existed before the walk is returned
//! exactly once, no id is returned twice, and an insert that lands after the
//! walk's position before the walk gets there is returned later in the walk.
//! Checked for a plain walk and for walks that use the topic and status
//! indexes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tokio::sync::watch;

const RECORDS: usize = 1_000;
const PAGE_SIZE: i32 = 37;

fn bulk(domain: Domain, title: &str, in_progress: bool) -> Initiative {
    let mut init = sample(domain, title, 2027);
    init.topics = vec!["bulk".into()];
    if in_progress {
        init.status = LifecycleStatus::InProgress as i32;
    }
    init
}

/// What the walker saw when it asked for one page.
struct PageRequest {
    /// The last id returned before this request ("" for the first page).
    cursor: String,
    /// How many concurrent inserts had completed when it asked.
    inserts_done: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_return_every_existing_record_once_while_inserts_go_on() -> anyhow::Result<()> {
    let domain = Domain::Semiconductors;
    let t = TestDomain::start(domain).await?;
    let items = (0..RECORDS)
        .map(|n| {
            let id = format!("rec-{n:04}");
            let init = bulk(domain, &format!("Bulk {n}"), n % 2 == 0);
            (id, init)
        })
        .collect();
    let created = create_concurrently(&t.client, domain, items, 32).await?;
    assert_eq!(created.len(), RECORDS);

    let walks = [
        ("a", None),
        (
            "b",
            Some(InitiativeFilter {
                topic: "bulk".into(),
                ..Default::default()
            }),
        ),
        (
            "c",
            Some(InitiativeFilter {
                statuses: vec![LifecycleStatus::InProgress as i32],
                ..Default::default()
            }),
        ),
    ];
    for (tag, filter) in walks {
        walk_while_inserting(&t, tag, filter)
            .await
            .with_context(|| format!("walk {tag}"))?;
    }

    // Page sizes: 0 means 50, more than 1,000 is capped to 1,000.
    let mut c = t.client.clone();
    let page = |page_size| ListInitiativesRequest {
        parent: t.parent(),
        page_size,
        ..Default::default()
    };
    let default = c.list_initiatives(page(0)).await?.into_inner();
    assert_eq!(default.initiatives.len(), 50);
    let capped = c.list_initiatives(page(5_000)).await?.into_inner();
    assert_eq!(capped.initiatives.len(), 1_000);
    assert!(
        !capped.next_page_token.is_empty(),
        "more than 1,000 initiatives exist"
    );
    Ok(())
}

async fn walk_while_inserting(
    t: &TestDomain,
    tag: &str,
    filter: Option<InitiativeFilter>,
) -> anyhow::Result<()> {
    let domain = t.domain;
    let mut c = t.client.clone();
    let existing: BTreeSet<String> =
        ids(&list_all(&mut c, &t.parent(), filter.clone(), 1_000).await?)
            .into_iter()
            .collect();
    assert!(existing.len() >= RECORDS / 2);
    let pages_needed = existing.len().div_ceil(PAGE_SIZE as usize);
    let max_inserts = 2 * pages_needed + 2;

    // The inserter adds two initiatives per page the walker has received,
    // spread over the whole id range (each sorts right after an existing
    // one). The walker asks for its next page once the first of the two is
    // in, so the second races with that request.
    let (pages_tx, mut pages_rx) = watch::channel(0usize);
    let (done_tx, mut done_rx) = watch::channel(0usize);
    let inserted = Arc::new(Mutex::new(Vec::<String>::new()));
    let inserter = {
        let mut c = c.clone();
        let inserted = inserted.clone();
        let tag = tag.to_string();
        tokio::spawn(async move {
            for i in 0..max_inserts {
                if pages_rx.wait_for(|p| *p > i / 2).await.is_err() {
                    break; // The walk is over.
                }
                let id = format!("rec-{:04}-{tag}{i}", (i * 397) % RECORDS);
                c.create_initiative(create_request(
                    domain,
                    &id,
                    bulk(domain, &format!("Inserted {i}"), true),
                ))
                .await?;
                let mut list = inserted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                list.push(id);
                done_tx.send_replace(list.len());
            }
            anyhow::Ok(())
        })
    };

    let mut seen = Vec::<String>::new();
    let mut requests = Vec::<PageRequest>::new();
    let mut token = String::new();
    loop {
        let cursor = seen.last().cloned().unwrap_or_default();
        let inserts_done = inserted
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .len();
        requests.push(PageRequest {
            cursor,
            inserts_done,
        });
        let page = c
            .list_initiatives(ListInitiativesRequest {
                parent: t.parent(),
                page_size: PAGE_SIZE,
                page_token: token,
                filter: filter.clone(),
            })
            .await?
            .into_inner();
        assert!(page.initiatives.len() <= PAGE_SIZE as usize);
        seen.extend(ids(&page.initiatives));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        let pages = requests.len();
        pages_tx.send_replace(pages);
        let want = (2 * pages - 1).min(max_inserts);
        if done_rx.wait_for(|n| *n >= want).await.is_err() {
            inserter.await??;
            anyhow::bail!("the inserter stopped early");
        }
    }
    drop(pages_tx);
    inserter.await??;
    let inserted = inserted
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();

    // Strictly increasing ids: in order, none twice.
    for pair in seen.windows(2) {
        assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
    }
    let seen_set: BTreeSet<String> = seen.iter().cloned().collect();
    let missing: Vec<&String> = existing.difference(&seen_set).collect();
    assert!(missing.is_empty(), "never returned: {missing:?}");
    let inserted_set: BTreeSet<String> = inserted.iter().cloned().collect();
    for id in &seen {
        assert!(
            existing.contains(id) || inserted_set.contains(id),
            "{id} was never created"
        );
    }
    // An insert that was done when a page was asked for, with an id after
    // the walk's position, must come later in the walk.
    for (j, id) in inserted.iter().enumerate() {
        let due = requests
            .iter()
            .any(|r| r.inserts_done > j && r.cursor.as_str() < id.as_str());
        if due {
            assert!(
                seen_set.contains(id),
                "{id} was inserted ahead of the walk but skipped"
            );
        }
    }
    // The inserts really ran during the walk.
    let waited_for = (2 * (requests.len() - 1))
        .saturating_sub(1)
        .min(max_inserts);
    assert!(inserted.len() >= waited_for);
    assert!(inserted.iter().any(|id| seen_set.contains(id)));
    assert!(inserted.iter().any(|id| !seen_set.contains(id)));
    Ok(())
}
