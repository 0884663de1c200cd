//! The lifecycle table of the contract (LifecycleStatus in initiative.proto),
//! every one of its 36 pairs through UpdateInitiative: legal ones change the
//! status, the others are FAILED_PRECONDITION naming the transition and leave
//! the record as it was.

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tonic::Code;

const D: Domain = Domain::Energy;

/// The statuses, in the order of the table's rows and columns.
const STATUSES: [LifecycleStatus; 6] = [
    LifecycleStatus::Proposed,
    LifecycleStatus::Announced,
    LifecycleStatus::InProgress,
    LifecycleStatus::Completed,
    LifecycleStatus::Suspended,
    LifecycleStatus::Cancelled,
];

/// The contract's table, written out by hand: row `from`, column `to`
/// (PROPOSED, ANNOUNCED, IN_PROGRESS, COMPLETED, SUSPENDED, CANCELLED);
/// `y` legal, `.` not. The same status is always accepted.
const TABLE: [&str; 6] = [
    "yyy..y", // PROPOSED    -> ANNOUNCED, IN_PROGRESS, CANCELLED
    ".yyyyy", // ANNOUNCED   -> IN_PROGRESS, COMPLETED, SUSPENDED, CANCELLED
    "..yyyy", // IN_PROGRESS -> COMPLETED, SUSPENDED, CANCELLED
    "...y..", // COMPLETED: final
    "..y.yy", // SUSPENDED   -> IN_PROGRESS, CANCELLED
    ".....y", // CANCELLED: final
];

fn short(s: LifecycleStatus) -> &'static str {
    s.as_str_name().trim_start_matches("LIFECYCLE_STATUS_")
}

#[tokio::test]
async fn every_pair_of_the_lifecycle_table() -> anyhow::Result<()> {
    let mut t = TestDomain::start(D).await?;
    let mut legal = 0;
    for (row, from) in STATUSES.iter().enumerate() {
        for (col, to) in STATUSES.iter().enumerate() {
            let allowed = TABLE[row].as_bytes()[col] == b'y';
            let id = format!("from-{row}-to-{col}");
            let mut init = sample(D, &id, 2027);
            init.status = *from as i32;
            let created = t
                .client
                .create_initiative(create_request(D, &id, init))
                .await?
                .into_inner();
            assert_eq!(created.status, *from as i32);
            let answer = t
                .client
                .update_initiative(UpdateInitiativeRequest {
                    initiative: Some(Initiative {
                        name: created.name.clone(),
                        etag: created.etag.clone(),
                        status: *to as i32,
                        ..Default::default()
                    }),
                    update_mask: Some(mask(&["status"])),
                    ..Default::default()
                })
                .await;
            let now = t
                .client
                .get_initiative(GetInitiativeRequest {
                    name: created.name.clone(),
                })
                .await?
                .into_inner();
            let pair = format!("{} -> {}", short(*from), short(*to));
            if allowed {
                legal += 1;
                let updated = answer.map_err(|s| anyhow::anyhow!("{pair}: {s:?}"))?;
                assert_eq!(updated.into_inner().status, *to as i32, "{pair}");
                assert_eq!(now.status, *to as i32, "{pair}");
            } else {
                let status = expect_err(answer);
                assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "{pair}: {status:?}"
                );
                assert!(
                    status
                        .message()
                        .contains(&format!("illegal lifecycle transition {pair}")),
                    "{pair}: {}",
                    status.message()
                );
                assert_eq!(now, created, "{pair}: the record is as it was");
            }
        }
    }
    // 6 same-status pairs and the 12 transitions the contract lists.
    assert_eq!(legal, 18);
    Ok(())
}

/// Every milestone status change through UpdateMilestone (25 pairs of the
/// five statuses), on a milestone due 2024-Q1 of an open initiative, as of
/// today: the new status is kept; a met or partly met milestone keeps
/// its date met, so moving it to a status that is not met is INVALID_ARGUMENT
/// on `milestone.date_met` and changes nothing; a milestone newly met without
/// a date was met the day it is recorded; and the domain summary's met
/// and overdue counts move by exactly what the two statuses say (met: MET or
/// PARTIALLY_MET; overdue: SCHEDULED past its due period).
#[tokio::test]
async fn every_milestone_status_change() -> anyhow::Result<()> {
    use MilestoneStatus::*;
    const ALL: [MilestoneStatus; 5] = [Scheduled, Met, PartiallyMet, NotMet, Cancelled];
    let met = |s: MilestoneStatus| i64::from(matches!(s, Met | PartiallyMet));
    let overdue = |s: MilestoneStatus| i64::from(s == Scheduled);
    let mut t = TestDomain::start(D).await?;
    let counts = |t: &mut TestDomain| {
        let parent = t.parent();
        let mut client = t.client.clone();
        async move {
            let today = cetrack_contract::dates::to_calendar(cetrack_contract::dates::today());
            let s = summary_at(&mut client, &parent, today, 30).await?;
            let m = s.milestones.unwrap_or_default();
            anyhow::Ok((m.met, m.overdue))
        }
    };
    for (i, from) in ALL.into_iter().enumerate() {
        for (j, to) in ALL.into_iter().enumerate() {
            let pair = format!("{} -> {}", from.as_str_name(), to.as_str_name());
            let mut init = sample(D, &format!("Milestone {i}{j}"), 2026);
            init.milestones = vec![Milestone {
                id: "m".into(),
                title: "The milestone".into(),
                due: Some(quarter(2024, 1)),
                status: from as i32,
                date_met: (met(from) == 1).then(|| quarter(2024, 1)),
                ..Default::default()
            }];
            let created = t
                .client
                .create_initiative(create_request(D, &format!("m{i}{j}"), init))
                .await?
                .into_inner();
            let before = counts(&mut t).await?;
            let answer = t
                .client
                .update_milestone(UpdateMilestoneRequest {
                    name: created.name.clone(),
                    milestone: Some(Milestone {
                        id: "m".into(),
                        status: to as i32,
                        ..Default::default()
                    }),
                    update_mask: Some(mask(&["status"])),
                    ..Default::default()
                })
                .await;
            let after = counts(&mut t).await?;
            let now = t
                .client
                .get_initiative(GetInitiativeRequest {
                    name: created.name.clone(),
                })
                .await?
                .into_inner();
            if met(from) == 1 && met(to) == 0 {
                let status = answer.expect_err(&pair);
                assert_eq!(status.code(), Code::InvalidArgument, "{pair}: {status:?}");
                assert_eq!(violated_fields(&status), ["milestone.date_met"], "{pair}");
                assert_eq!(now, created, "{pair}: changed");
                assert_eq!(after, before, "{pair}: the counts moved");
                continue;
            }
            let updated = answer
                .map_err(|s| anyhow::anyhow!("{pair}: {s:?}"))?
                .into_inner();
            assert_eq!(updated, now, "{pair}");
            assert_eq!(now.milestones[0].status, to as i32, "{pair}");
            let date_met = match (met(from), met(to)) {
                (1, _) => created.milestones[0].date_met,
                (0, 1) => Some(cetrack_contract::dates::as_day(
                    cetrack_contract::dates::today(),
                )),
                _ => None,
            };
            assert_eq!(now.milestones[0].date_met, date_met, "{pair}");
            let expected_revision = if from == to {
                created.revision
            } else {
                created.revision + 1
            };
            assert_eq!(now.revision, expected_revision, "{pair}");
            assert_eq!(
                (after.0 - before.0, after.1 - before.1),
                (met(to) - met(from), overdue(to) - overdue(from)),
                "{pair}: met and overdue moved wrongly"
            );
        }
    }
    Ok(())
}
