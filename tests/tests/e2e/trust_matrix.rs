//! Who may call what: every RPC of DomainService, GatewayService and
//! StoreAdminService, called by every kind of caller (no token, an expired
//! token, one for another audience, one with a bad signature, a viewer, a
//! reporter of an organization taking part, a reporter of another
//! organization, an editor of the domain, an editor of another domain, an
//! admin), on a public and on a restricted record, against real servers
//! with real tokens; each cell asserts the exact status code.

use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tonic::Code;

/// The domain whose records are called.
const D: Domain = Domain::Quantum;
/// The organization that takes part in both records.
const PARTICIPANT: &str = "us-nsf";
/// An organization present only in the restricted record.
const RESTRICTED_ORG: &str = "marker-restricted-org";

/// The kinds of caller, in the order of the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoToken,
    Expired,
    WrongAudience,
    BadSignature,
    Viewer,
    ReporterTakingPart,
    ReporterOther,
    Editor,
    EditorElsewhere,
    Admin,
}

const WHO: [Who; 10] = [
    Who::NoToken,
    Who::Expired,
    Who::WrongAudience,
    Who::BadSignature,
    Who::Viewer,
    Who::ReporterTakingPart,
    Who::ReporterOther,
    Who::Editor,
    Who::EditorElsewhere,
    Who::Admin,
];

/// The calls, in the order of the table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Create,
    Get,
    List,
    Update,
    Delete,
    Progress,
    Milestone,
    Summary,
    History,
    DueMilestones,
    Watch,
    Backup,
    GwOverview,
    GwSearch,
    GwPortfolio,
    GwTimeline,
    GwGet,
    GwWatch,
    GwFactSheet,
}

/// The expected code of each cell: per caller (columns in the order of
/// [`WHO`]), "on the public record / on the restricted record".
/// UA = UNAUTHENTICATED, PD = PERMISSION_DENIED, NF = NOT_FOUND.
#[rustfmt::skip]
const TABLE: &[(Rpc, [&str; 10])] = &[
    //                  none     expired  wrongaud badsig   viewer   rep-in   rep-out  editor   ed-else  admin
    (Rpc::Create,      ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","PD/PD","PD/PD","OK/PD","PD/PD","OK/OK"]),
    (Rpc::Get,         ["UA/UA","UA/UA","UA/UA","UA/UA","OK/NF","OK/NF","OK/NF","OK/NF","PD/PD","OK/OK"]),
    (Rpc::List,        ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","PD/PD","OK/OK"]),
    (Rpc::Update,      ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","PD/NF","PD/NF","OK/NF","PD/PD","OK/OK"]),
    (Rpc::Delete,      ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","PD/PD","PD/PD","OK/NF","PD/PD","OK/OK"]),
    (Rpc::Progress,    ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","OK/NF","PD/PD","OK/NF","PD/PD","OK/OK"]),
    (Rpc::Milestone,   ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","OK/NF","PD/NF","OK/NF","PD/PD","OK/OK"]),
    (Rpc::Summary,     ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","PD/PD","OK/OK"]),
    (Rpc::History,     ["UA/UA","UA/UA","UA/UA","UA/UA","OK/NF","OK/NF","OK/NF","OK/NF","PD/PD","OK/OK"]),
    (Rpc::DueMilestones,["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","PD/PD","OK/OK"]),
    (Rpc::Watch,       ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","PD/PD","OK/OK"]),
    (Rpc::Backup,      ["UA/UA","UA/UA","UA/UA","UA/UA","PD/PD","PD/PD","PD/PD","PD/PD","PD/PD","OK/OK"]),
    (Rpc::GwOverview,  ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK"]),
    (Rpc::GwSearch,    ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK"]),
    (Rpc::GwPortfolio, ["UA/UA","UA/UA","UA/UA","UA/UA","OK/NF","OK/NF","OK/NF","OK/NF","NF/NF","OK/OK"]),
    (Rpc::GwTimeline,  ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK"]),
    (Rpc::GwGet,       ["UA/UA","UA/UA","UA/UA","UA/UA","OK/NF","OK/NF","OK/NF","OK/NF","PD/PD","OK/OK"]),
    (Rpc::GwWatch,     ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK"]),
    (Rpc::GwFactSheet, ["UA/UA","UA/UA","UA/UA","UA/UA","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK","OK/OK"]),
];

fn code(text: &str) -> Code {
    match text {
        "OK" => Code::Ok,
        "UA" => Code::Unauthenticated,
        "PD" => Code::PermissionDenied,
        "NF" => Code::NotFound,
        other => panic!("unknown code {other} in the table"),
    }
}

/// The token a kind of caller sends.
fn token_of(who: Who) -> Option<String> {
    let t = |sub: &str, org: Option<&str>, roles: &[Role], domains: Option<&[&str]>| {
        Some(token(sub, org, roles, domains, Clearance::Public))
    };
    match who {
        Who::NoToken => None,
        Who::Expired => {
            let mut c = claims_for("late", &[Role::Admin]);
            c.exp = c.exp.saturating_sub(7_200);
            c.nbf = c.nbf.map(|n| n.saturating_sub(7_200));
            Some(sign(&c))
        }
        Who::WrongAudience => {
            let mut c = claims_for("lost", &[Role::Admin]);
            c.aud = "another-system".into();
            Some(sign(&c))
        }
        Who::BadSignature => {
            let good = admin_token();
            let (rest, sig) = good.rsplit_once('.').expect("a JWT");
            let mut bytes = sig.as_bytes().to_vec();
            bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
            Some(format!(
                "{rest}.{}",
                String::from_utf8(bytes).expect("ascii")
            ))
        }
        Who::Viewer => t("viewer", None, &[Role::Viewer], None),
        Who::ReporterTakingPart => t("rep-in", Some(PARTICIPANT), &[Role::Reporter], None),
        Who::ReporterOther => t("rep-out", Some("jp-meti"), &[Role::Reporter], None),
        Who::Editor => t("editor", None, &[Role::Editor], Some(&["quantum"])),
        Who::EditorElsewhere => t("editor-energy", None, &[Role::Editor], Some(&["energy"])),
        Who::Admin => Some(token(
            "admin",
            None,
            &[Role::Admin],
            None,
            Clearance::Restricted,
        )),
    }
}

fn record(title: &str, restricted: bool) -> Initiative {
    let mut i = sample(D, title, 2027);
    if restricted {
        i.sensitivity = Sensitivity::Restricted as i32;
        i.participants.push(participant(
            org(
                RESTRICTED_ORG,
                "Marker Org",
                "MO",
                "KR",
                OrganizationType::Industry,
            ),
            ParticipantRole::Partner,
        ));
    }
    i
}

fn result_code<T>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Makes the call `rpc` as `who` on the public or restricted record (the
/// DomainService and StoreAdminService calls at the domain itself, or
/// through the gateway with `via_gateway`); its status code.
async fn call(
    s: &Stack,
    admin: &mut Client,
    rpc: Rpc,
    who: Who,
    restricted: bool,
    n: usize,
    via_gateway: bool,
) -> anyhow::Result<Code> {
    let tok = token_of(who);
    let domain_addr = if via_gateway {
        s.gateway_server.addr
    } else {
        s.domains
            .iter()
            .find(|t| t.domain == D)
            .map(|t| t.addr())
            .expect("quantum runs")
    };
    let mut c = connect_as(domain_addr, tok.as_deref()).await?;
    let mut g = gateway_as(s.gateway_server.addr, tok.as_deref()).await?;
    let id = if restricted { "res-rec" } else { "pub-rec" };
    let name = format!("{}/initiatives/{id}", D.parent());
    Ok(match rpc {
        Rpc::Create => result_code(
            c.create_initiative(create_request(
                D,
                &format!("new-{n}"),
                record("New", restricted),
            ))
            .await,
        ),
        Rpc::Get => result_code(c.get_initiative(GetInitiativeRequest { name }).await),
        Rpc::List => result_code(
            c.list_initiatives(ListInitiativesRequest {
                parent: D.parent(),
                ..Default::default()
            })
            .await,
        ),
        Rpc::Update => {
            let mut i = record(&format!("Renamed {n}"), restricted);
            i.name = name;
            result_code(
                c.update_initiative(UpdateInitiativeRequest {
                    initiative: Some(i),
                    update_mask: Some(mask(&["title"])),
                    ..Default::default()
                })
                .await,
            )
        }
        Rpc::Delete => {
            let victim = format!("del-{n}");
            admin
                .create_initiative(create_request(D, &victim, record("Doomed", restricted)))
                .await?;
            result_code(
                c.delete_initiative(DeleteInitiativeRequest {
                    name: format!("{}/initiatives/{victim}", D.parent()),
                    ..Default::default()
                })
                .await,
            )
        }
        Rpc::Progress => result_code(
            c.add_progress_update(AddProgressUpdateRequest {
                name,
                progress_update: Some(ProgressUpdate {
                    as_of: Some(year(2025)),
                    reporting_organization_id: PARTICIPANT.into(),
                    text: "Work goes on".into(),
                    assessment: CompletionAssessment::Limited as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        ),
        Rpc::Milestone => result_code(
            c.update_milestone(UpdateMilestoneRequest {
                name,
                milestone: Some(Milestone {
                    id: "launch".into(),
                    status: MilestoneStatus::Scheduled as i32,
                    ..Default::default()
                }),
                update_mask: Some(mask(&["status"])),
                ..Default::default()
            })
            .await,
        ),
        Rpc::Summary => result_code(
            c.get_domain_summary(GetDomainSummaryRequest {
                parent: D.parent(),
                ..Default::default()
            })
            .await,
        ),
        Rpc::History => result_code(
            c.list_history(ListHistoryRequest {
                name,
                ..Default::default()
            })
            .await,
        ),
        Rpc::DueMilestones => result_code(
            c.list_due_milestones(ListDueMilestonesRequest {
                parent: D.parent(),
                due_after: Some(calendar(2020, 1, 1)),
                due_before: Some(calendar(2040, 1, 1)),
                ..Default::default()
            })
            .await,
        ),
        Rpc::Watch => result_code(
            c.watch_changes(WatchChangesRequest {
                parent: D.parent(),
                after_revision: 0,
            })
            .await,
        ),
        Rpc::Backup => {
            let channel = channel_as(domain_addr, tok.as_deref()).await?;
            let mut b =
                cetrack_contract::proto::store_admin_service_client::StoreAdminServiceClient::new(
                    channel,
                );
            result_code(
                b.backup_store(BackupStoreRequest { parent: D.parent() })
                    .await,
            )
        }
        Rpc::GwOverview => result_code(g.get_overview(GetOverviewRequest::default()).await),
        Rpc::GwSearch => result_code(
            g.search_initiatives(SearchInitiativesRequest {
                filter: Some(InitiativeFilter {
                    organization_id: PARTICIPANT.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        ),
        Rpc::GwPortfolio => result_code(
            g.get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: if restricted {
                    RESTRICTED_ORG
                } else {
                    PARTICIPANT
                }
                .into(),
                ..Default::default()
            })
            .await,
        ),
        Rpc::GwTimeline => result_code(
            g.list_milestone_timeline(ListMilestoneTimelineRequest {
                due_after: Some(calendar(2020, 1, 1)),
                due_before: Some(calendar(2030, 12, 31)),
                ..Default::default()
            })
            .await,
        ),
        Rpc::GwGet => result_code(g.get_initiative(GetInitiativeRequest { name }).await),
        Rpc::GwWatch => result_code(g.watch_all_changes(WatchAllChangesRequest::default()).await),
        Rpc::GwFactSheet => result_code(
            g.generate_fact_sheet(GenerateFactSheetRequest::default())
                .await,
        ),
    })
}

#[tokio::test]
async fn every_rpc_answers_every_caller_with_the_code_of_the_table() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let mut admin = s.domain(D);
    admin
        .create_initiative(create_request(D, "pub-rec", record("Public", false)))
        .await?;
    admin
        .create_initiative(create_request(D, "res-rec", record("Restricted", true)))
        .await?;
    let mut wrong = Vec::new();
    let mut n = 0;
    for (rpc, row) in TABLE {
        // The DomainService and StoreAdminService calls, also through the
        // gateway: one address answers as the domain itself does.
        let routes: &[bool] = if format!("{rpc:?}").starts_with("Gw") {
            &[false]
        } else {
            &[false, true]
        };
        for via_gateway in routes {
            for (who, cell) in WHO.iter().zip(row) {
                let (on_public, on_restricted) = cell.split_once('/').expect("P/R");
                for (restricted, want) in [(false, on_public), (true, on_restricted)] {
                    n += 1;
                    let got = call(&s, &mut admin, *rpc, *who, restricted, n, *via_gateway).await?;
                    if got != code(want) {
                        wrong.push(format!(
                            "{rpc:?}{} as {who:?} on the {} record: {got:?}, expected {want}",
                            if *via_gateway {
                                " through the gateway"
                            } else {
                                ""
                            },
                            if restricted { "restricted" } else { "public" }
                        ));
                    }
                }
            }
        }
    }
    // 19 rows, the 12 domain and admin rows twice.
    assert_eq!(n, (TABLE.len() + 12) * WHO.len() * 2);
    assert!(
        wrong.is_empty(),
        "{} of {n} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    Ok(())
}
