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
