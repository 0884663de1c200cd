//! Time at scale, measured from outside against the real domain binary: a
//! domain of many records (100,000 by default) whose statuses, milestones
//! met and money carry dates spread over three years, asked for its summary
//! today, as of a past day, as known on a day and for one document, one call
//! at a time in alternating rounds, each against grpc.health.v1 Check of the
//! same server in the same run (this machine is shared and noisy: the ratio
//! is the figure). The answers are checked: the summary of a past day read
//! from the counters equals the one recounted record by record.
//!
//! Run: `cargo build --release --workspace && cargo bench -p cetrack-tests
//! --bench time` (CETRACK_BENCH_RECORDS sets the number of records; default
//! 100000. CETRACK_BENCH_CALLS the calls per round of the cheap calls;
//! default 200).

use std::time::{Duration, Instant};

use anyhow::ensure;
use cetrack_contract::dates;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use futures::StreamExt;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const D: Domain = Domain::Quantum;
/// Writes in flight while loading.
const IN_FLIGHT: usize = 64;
/// The other document some records come from.
const OTHER: &str = "Joint Statement of the Second Dialogue Meeting";

/// Record `n`'s day: 2023-01-01 plus up to 1,095 days, plus `later` days.
fn day_of(n: usize, later: i64) -> ApproximateDate {
    let d = time::macros::date!(2023 - 01 - 01) + time::Duration::days((n % 1_095) as i64 + later);
    dates::as_day(d)
}

/// Record `n`: dated by its source somewhere in 2023-2025, due in 2024-2027,
/// with money dated half the time and a second document for one in ten.
fn record(n: usize) -> Initiative {
    let mut i = sample(D, &format!("Record {n}"), 2024 + (n % 4) as i32);
    i.sources[0].date = Some(day_of(n, 0));
    if n.is_multiple_of(10) {
        i.sources[0].document = OTHER.into();
    }
    if n.is_multiple_of(2) {
        i.funding[0].date = Some(day_of(n, 30));
    }
    i
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records: usize = std::env::var("CETRACK_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let calls: usize = std::env::var("CETRACK_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let domain = spawn_domain(D, dir.path()).await?;
    let client = connect(domain.addr).await?;

    // Load: creates, then one in five moves to IN_PROGRESS on a dated day
    // and has its milestone met on another.
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..records)
        .map(|n| {
            let mut c = client.clone();
            async move {
                let id = format!("r{n}");
                let made = c
                    .create_initiative(create_request(D, &id, record(n)))
                    .await?
                    .into_inner();
                if n.is_multiple_of(5) {
                    let start = day_of(n, 60);
                    c.update_initiative(UpdateInitiativeRequest {
                        initiative: Some(Initiative {
                            status: LifecycleStatus::InProgress as i32,
                            status_date: Some(start),
                            ..made.clone()
                        }),
                        update_mask: Some(mask(&["status", "status_date"])),
                        ..Default::default()
                    })
                    .await?;
                    c.update_milestone(UpdateMilestoneRequest {
                        name: made.name.clone(),
                        milestone: Some(Milestone {
                            id: "launch".into(),
                            status: MilestoneStatus::Met as i32,
                            date_met: Some(day_of(n, 200)),
                            ..Default::default()
                        }),
                        update_mask: Some(mask(&["status", "date_met"])),
                        ..Default::default()
                    })
                    .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for r in results {
        r?;
    }
    println!(
        "loaded {records} records ({} with a dated status change and a milestone met) in {:.1} s",
        records.div_ceil(5),
        started.elapsed().as_secs_f64()
    );

    let past = calendar(2024, 6, 30);
    let today = dates::to_calendar(dates::today());
    let summary = |as_of: Option<CalendarDate>,
                   as_known_on: Option<CalendarDate>,
                   document: &str| GetDomainSummaryRequest {
        parent: D.parent(),
        due_within_days: 90,
        as_of,
        as_known_on,
        document: document.into(),
        ..Default::default()
    };

    // Correct first: the counters of a past day equal a recount.
    let mut c = client.clone();
    let from_counters = c
        .get_domain_summary(summary(Some(past), None, ""))
        .await?
        .into_inner();
    let recounted = c
        .get_domain_summary(summary(Some(past), Some(today), ""))
        .await?
        .into_inner();
    ensure!(
        DomainSummary {
            as_known_on: None,
            ..recounted.clone()
        } == from_counters,
        "the counters of {past:?} differ from a recount"
    );
    let now = c
        .get_domain_summary(summary(None, None, ""))
        .await?
        .into_inner();
    ensure!(now.initiative_count == records as i64, "{now:?}");
    ensure!(
        from_counters.initiative_count < now.initiative_count,
        "records dated after {past:?} are not counted then"
    );
    println!(
        "as of {}-{:02}-{:02}: {} of {} records existed, {} met milestones (today {})",
        past.year,
        past.month,
        past.day,
        from_counters.initiative_count,
        now.initiative_count,
        from_counters.milestones.unwrap_or_default().met,
        now.milestones.unwrap_or_default().met
    );

    // One call at a time, in alternating rounds.
    let mut health = HealthClient::new(channel_as(domain.addr, Some(&admin_token())).await?);
    let check = HealthCheckRequest {
        service: String::new(),
    };
    let kinds: [(&str, usize); 5] = [
        ("health Check (baseline)", calls),
        ("GetDomainSummary today (counters)", calls),
        ("GetDomainSummary as of 2024-06-30 (counters)", calls),
        ("GetDomainSummary of one document (scan)", 3),
        ("GetDomainSummary as known on today (history walk)", 3),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    for _round in 0..3 {
        for (k, (_, n)) in kinds.iter().enumerate() {
            for _ in 0..*n {
                let start = Instant::now();
                match k {
                    0 => {
                        health.check(check.clone()).await?;
                    }
                    1 => {
                        c.get_domain_summary(summary(None, None, "")).await?;
                    }
                    2 => {
                        c.get_domain_summary(summary(Some(past), None, "")).await?;
                    }
                    3 => {
                        let s = c
                            .get_domain_summary(summary(None, None, OTHER))
                            .await?
                            .into_inner();
                        ensure!(s.initiative_count == records.div_ceil(10) as i64);
                    }
                    _ => {
                        c.get_domain_summary(summary(None, Some(today), "")).await?;
                    }
                }
                times[k].push(start.elapsed());
            }
        }
    }
    let base = ms(median(times[0].clone()));
    for ((what, _), t) in kinds.iter().zip(times) {
        let m = ms(median(t.clone()));
        println!(
            "{what:<52} median {m:>9.3} ms  {:>8.1}x health ({} calls)",
            m / base.max(1e-6),
            t.len()
        );
    }

    // The gateway's views over this domain: what a page costs and what the
    // gateway holds (its resident memory before and after), with every
    // record in the portfolio's organization and the timeline's window.
    let gateway = spawn_server(
        &binary("cetrack-gateway")?,
        [
            "--listen".to_string(),
            "127.0.0.1:0".into(),
            "--http-listen".into(),
            "off".into(),
            "--domain".into(),
            format!("{D}=http://{}", domain.addr),
        ],
    )
    .await?;
    let pid = gateway.child.id().unwrap_or_default();
    let before = rss_mib(pid)?;
    let mut g = gateway_as(gateway.addr, Some(&admin_token())).await?;
    let started = Instant::now();
    let mut token = String::new();
    let mut entries = 0;
    for _ in 0..3 {
        let p = g
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: "us-nsf".into(),
                page_size: 100,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        entries += p.entries.len();
        token = p.next_page_token;
    }
    ensure!(
        entries == 300 && !token.is_empty(),
        "three full portfolio pages"
    );
    let portfolio_page = started.elapsed() / 3;
    let started = Instant::now();
    let t = g
        .list_milestone_timeline(ListMilestoneTimelineRequest {
            due_after: Some(calendar(2024, 1, 1)),
            due_before: Some(calendar(2027, 12, 31)),
            include_overdue: true,
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner();
    ensure!(
        t.entries.len() == 100 && !t.next_page_token.is_empty(),
        "a full timeline page"
    );
    let timeline_page = started.elapsed();
    let started = Instant::now();
    let refused = g
        .generate_fact_sheet(GenerateFactSheetRequest::default())
        .await
        .err()
        .map(|s| s.code());
    ensure!(
        refused == Some(tonic::Code::FailedPrecondition),
        "the fact sheet of all is refused"
    );
    let fact_sheet = started.elapsed();
    let after = rss_mib(pid)?;
    println!(
        "gateway over {records} records: a portfolio page of 100 {:.1} ms, a timeline page of 100 (walks every record) {:.0} ms, the fact sheet of all refused in {:.0} ms; gateway RSS {before} MiB before, {after} MiB after",
        ms(portfolio_page),
        ms(timeline_page),
        ms(fact_sheet),
    );
    gateway.terminate().await?;
    domain.terminate().await?;
    Ok(())
}
