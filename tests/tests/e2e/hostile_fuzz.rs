//! 100,000 generated hostile requests against a live domain binary and a
//! live gateway binary (fixed seed): structure-aware mutations of valid
//! requests (fields set to extreme, malformed or oversized values; two
//! messages spliced; varints blown up) and byte-level damage (bit flips,
//! truncation, insertion, repetition, random bytes). Afterwards: no answer
//! was INTERNAL, UNKNOWN, DATA_LOSS or UNAVAILABLE, both processes are alive
//! and logged no panic, their RSS stayed under a stated bound, and every
//! change in the store is one a request was told succeeded.

use std::collections::BTreeMap;
use std::time::Duration;

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use futures::StreamExt;
use prost::Message;
use tonic::Code;

const D: Domain = Domain::Quantum;
/// How many requests the run sends.
const REQUESTS: usize = 100_000;
/// How many are in flight at once.
const IN_FLIGHT: usize = 32;
/// The bound on either process's resident memory after the run (debug
/// builds, which are larger than release ones).
const RSS_BOUND_MIB: u64 = 400;

/// A codec that sends and receives messages as bytes, untouched.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Up to `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A length: mostly short, now and then up to `max`.
    fn len(&mut self, max: usize) -> usize {
        if self.below(50) == 0 {
            self.below(max)
        } else {
            self.below(max.min(300))
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings a hostile caller likes.
fn nasty_string(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => String::new(),
        1 => "x".repeat(rng.len(70_000)),
        2 => "💥".repeat(rng.len(20_000)),
        3 => "domains/quantum/initiatives/".repeat(rng.len(1_000)),
        4 => "\u{0}\u{202e}\u{feff}../../etc/passwd".into(),
        5 => "domains/quantum/initiatives/seed-0".into(),
        6 => "*".into(),
        7 => format!("domains/{}", "a/".repeat(rng.len(50_000))),
        _ => String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
    }
}

fn nasty_int(rng: &mut Rng) -> i32 {
    *rng.pick(&[i32::MIN, -1, 0, 1, 2, 3, 4, 13, 99, 1_000_000, i32::MAX])
}

fn nasty_date(rng: &mut Rng) -> ApproximateDate {
    ApproximateDate {
        precision: nasty_int(rng),
        year: *rng.pick(&[i32::MIN, -5, 0, 1, 2024, 9999, 10_000, i32::MAX]),
        month: nasty_int(rng),
        day: nasty_int(rng),
        quarter: nasty_int(rng),
    }
}

/// A valid initiative with one part made hostile.
fn nasty_initiative(rng: &mut Rng) -> Initiative {
    let mut i = sample(D, "Fuzz", 2027);
    match rng.below(12) {
        0 => i.title = nasty_string(rng),
        1 => i.summary = nasty_string(rng),
        2 => i.status = nasty_int(rng),
        3 => i.sensitivity = nasty_int(rng),
        4 => i.planned_start = Some(nasty_date(rng)),
        5 => i.topics = (0..rng.len(5_000)).map(|n| format!("t{n}")).collect(),
        6 => i.participants = vec![i.participants[0].clone(); rng.len(2_000)],
        7 => {
            if let Some(f) = i.funding.first_mut() {
                f.amount = Some(Money {
                    currency_code: nasty_string(rng),
                    units: i64::MIN,
                    nanos: nasty_int(rng),
                });
            }
        }
        8 => {
            i.milestones = (0..rng.below(500))
                .map(|n| Milestone {
                    id: format!("m{}", n % 7),
                    title: nasty_string(rng),
                    due: Some(nasty_date(rng)),
                    status: nasty_int(rng),
                    date_met: Some(nasty_date(rng)),
                    evidence_links: vec![nasty_string(rng); rng.below(40)],
                })
                .collect()
        }
        9 => i.related_initiatives = vec![nasty_string(rng); rng.below(300)],
        10 => i.details = Some(details(Domain::Energy)),
        _ => i.sources = vec![SourceReference::default(); rng.below(100)],
    }
    i
}

fn nasty_filter(rng: &mut Rng) -> InitiativeFilter {
    InitiativeFilter {
        statuses: vec![nasty_int(rng); rng.len(100_000)],
        instruments: vec![nasty_int(rng); rng.below(40)],
        organization_id: nasty_string(rng),
        country_code: nasty_string(rng),
        topic: nasty_string(rng),
        text: nasty_string(rng),
        overdue_only: rng.below(2) == 0,
        ..Default::default()
    }
}

/// A request built field by field: the method's path and its bytes.
fn structured(rng: &mut Rng) -> (&'static str, Vec<u8>) {
    let name = if rng.below(2) == 0 {
        format!("{}/initiatives/seed-{}", D.parent(), rng.below(4))
    } else {
        nasty_string(rng)
    };
    let parent = if rng.below(2) == 0 {
        D.parent()
    } else {
        nasty_string(rng)
    };
    let paths: Vec<String> = (0..rng.len(2_000))
        .map(|_| {
            rng.pick(&["title", "status", "*", "name", "etag", "x.y"])
                .to_string()
        })
        .collect();
    match rng.below(15) {
        0 => (
            "/cet.v1.DomainService/CreateInitiative",
            CreateInitiativeRequest {
                parent,
                // Mostly ids that exist: a few creates succeed, not
                // thousands (the views' cost grows with the store).
                initiative_id: if rng.below(50) == 0 {
                    nasty_string(rng)
                } else {
                    format!("seed-{}", rng.below(4))
                },
                initiative: Some(nasty_initiative(rng)),
                request_id: nasty_string(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        1 => (
            "/cet.v1.DomainService/UpdateInitiative",
            UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    name,
                    etag: nasty_string(rng),
                    ..nasty_initiative(rng)
                }),
                update_mask: Some(pbjson_types::FieldMask { paths }),
                request_id: nasty_string(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        2 => (
            "/cet.v1.DomainService/ListInitiatives",
            ListInitiativesRequest {
                parent,
                page_size: nasty_int(rng),
                page_token: nasty_string(rng),
                filter: Some(nasty_filter(rng)),
            }
            .encode_to_vec(),
        ),
        3 => (
            "/cet.v1.DomainService/GetInitiative",
            GetInitiativeRequest { name }.encode_to_vec(),
        ),
        4 => (
            "/cet.v1.DomainService/AddProgressUpdate",
            AddProgressUpdateRequest {
                name,
                progress_update: Some(ProgressUpdate {
                    as_of: Some(nasty_date(rng)),
                    reporting_organization_id: nasty_string(rng),
                    text: nasty_string(rng),
                    assessment: nasty_int(rng),
                    evidence_links: vec![nasty_string(rng); rng.below(30)],
                    ..Default::default()
                }),
                etag: nasty_string(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        5 => (
            "/cet.v1.DomainService/UpdateMilestone",
            UpdateMilestoneRequest {
                name,
                milestone: Some(Milestone {
                    id: nasty_string(rng),
                    status: nasty_int(rng),
                    date_met: Some(nasty_date(rng)),
                    ..Default::default()
                }),
                update_mask: Some(pbjson_types::FieldMask { paths }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        6 => (
            "/cet.v1.DomainService/DeleteInitiative",
            DeleteInitiativeRequest {
                name,
                etag: "\"r1\"".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        7 => (
            "/cet.v1.DomainService/GetDomainSummary",
            GetDomainSummaryRequest {
                parent,
                due_within_days: nasty_int(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        8 => (
            "/cet.v1.DomainService/ListHistory",
            ListHistoryRequest {
                name,
                page_size: nasty_int(rng),
                page_token: nasty_string(rng),
            }
            .encode_to_vec(),
        ),
        9 => (
            "/cet.v1.GatewayService/SearchInitiatives",
            SearchInitiativesRequest {
                domains: vec![nasty_int(rng); rng.len(100_000)],
                filter: Some(nasty_filter(rng)),
                page_size: nasty_int(rng),
                page_token: nasty_string(rng),
            }
            .encode_to_vec(),
        ),
        10 => (
            "/cet.v1.GatewayService/GetOrganizationPortfolio",
            GetOrganizationPortfolioRequest {
                organization_id: nasty_string(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        11 => (
            "/cet.v1.GatewayService/ListMilestoneTimeline",
            ListMilestoneTimelineRequest {
                domains: vec![nasty_int(rng); rng.len(1_000)],
                page_size: nasty_int(rng),
                page_token: nasty_string(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        12 => (
            "/cet.v1.GatewayService/GenerateFactSheet",
            GenerateFactSheetRequest {
                as_known_on: None,
                document: String::new(),
                include_quotes: false,
                as_of: Some(CalendarDate {
                    year: nasty_int(rng),
                    month: nasty_int(rng),
                    day: nasty_int(rng),
                }),
                title: nasty_string(rng),
            }
            .encode_to_vec(),
        ),
        13 => {
            let mut day = || CalendarDate {
                year: nasty_int(rng),
                month: nasty_int(rng),
                day: nasty_int(rng),
            };
            let (due_after, due_before, as_of) = (day(), day(), day());
            (
                "/cet.v1.DomainService/ListDueMilestones",
                ListDueMilestonesRequest {
                    parent,
                    due_after: Some(due_after),
                    due_before: Some(due_before),
                    as_of: Some(as_of),
                    start_after: Some(DueMilestonePosition {
                        due_end: None,
                        initiative: nasty_string(rng),
                        milestone: nasty_string(rng),
                    }),
                    page_size: nasty_int(rng),
                    include_overdue: rng.below(2) == 0,
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        }
        _ => (
            "/cet.v1.GatewayService/GetOverview",
            GetOverviewRequest {
                due_within_days: nasty_int(rng),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    }
}

/// Damages `bytes` as a careless or hostile encoder would.
fn damage(rng: &mut Rng, mut bytes: Vec<u8>, other: &[u8]) -> Vec<u8> {
    let at = |rng: &mut Rng, b: &Vec<u8>| rng.below(b.len() + 1);
    match rng.below(7) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => bytes.truncate(at(rng, &bytes)),
        2 => {
            let i = at(rng, &bytes);
            let junk = rng.bytes(64);
            bytes.splice(i..i, junk);
        }
        3 => {
            // A slice repeated: fields sent over and over.
            let i = at(rng, &bytes);
            let j = (i + rng.below(32)).min(bytes.len());
            let chunk = bytes[i..j].to_vec();
            for _ in 0..rng.len(2_000) {
                bytes.extend_from_slice(&chunk);
            }
        }
        4 => {
            // A varint blown up to ten bytes of 0xff.
            let i = at(rng, &bytes);
            bytes.splice(i..i, [0xff; 9].into_iter().chain([0x01]));
        }
        5 => bytes.extend_from_slice(other),
        _ => bytes = rng.bytes(512),
    }
    bytes
}

/// Sends `bytes` as the request of `path` over `channel`.
async fn call_raw(
    channel: AuthChannel,
    path: &'static str,
    bytes: Vec<u8>,
) -> anyhow::Result<Result<Vec<u8>, tonic::Status>> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut request = tonic::Request::new(bytes);
    request.set_timeout(Duration::from_secs(30));
    let answer = grpc
        .unary(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await;
    Ok(answer.map(tonic::Response::into_inner))
}

#[tokio::test]
async fn an_undecodable_message_is_the_callers_mistake() -> anyhow::Result<()> {
    let t = TestDomain::start(D).await?;
    let channel = channel_as(t.addr(), Some(&admin_token())).await?;
    // Field 1 (name), length 2, bytes that are not UTF-8; then a truncated
    // field.
    for bytes in [vec![0x0a, 0x02, 0xff, 0xfe], vec![0x0a, 0x10, b'x']] {
        let status = call_raw(
            channel.clone(),
            "/cet.v1.DomainService/GetInitiative",
            bytes,
        )
        .await?
        .expect_err("not a message");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("GetInitiativeRequest"),
            "{status:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_hundred_thousand_hostile_requests_change_nothing_they_should_not() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let mut domain = spawn_domain(D, dir.path()).await?;
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
    let mut client = connect(domain.addr).await?;
    for n in 0..4 {
        client
            .create_initiative(create_request(
                D,
                &format!("seed-{n}"),
                sample(D, "Seed", 2027),
            ))
            .await?;
    }
    let before = list_all(&mut client, &D.parent(), None, 100).await?;
    let baseline = before.iter().map(|i| i.revision).max().unwrap_or(0);

    let channels = [
        channel_as(domain.addr, Some(&admin_token())).await?,
        channel_as(gateway.addr, Some(&admin_token())).await?,
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    let valid: Vec<Vec<u8>> = (0..16).map(|_| structured(&mut rng).1).collect();
    let requests = (0..REQUESTS).map(move |n| {
        let (path, mut bytes) = structured(&mut rng);
        if n % 2 == 1 {
            let other = rng.pick(&valid).clone();
            bytes = damage(&mut rng, bytes, &other);
        }
        // Gateway paths go to the gateway; domain paths to either.
        let target = if path.contains("GatewayService") {
            1
        } else {
            n % 2
        };
        (path, bytes, target)
    });
    let answers = futures::stream::iter(requests)
        .map(|(path, bytes, target)| {
            let channel = channels[target].clone();
            async move { anyhow::Ok((path, call_raw(channel, path, bytes).await?)) }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;

    let mut codes: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut acknowledged = std::collections::BTreeSet::new();
    let mut deletes = 0;
    for answer in answers {
        let (path, answer) = answer?;
        let method = path.rsplit('/').next().unwrap_or_default().to_string();
        let code = match &answer {
            Ok(bytes) => {
                if let Ok(i) = Initiative::decode(bytes.as_slice()) {
                    acknowledged.insert(i.revision);
                }
                if method == "DeleteInitiative" {
                    deletes += 1;
                }
                Code::Ok
            }
            Err(s) => {
                assert!(
                    !matches!(
                        s.code(),
                        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
                    ),
                    "{method}: {s:?}"
                );
                s.code()
            }
        };
        *codes.entry((method, format!("{code:?}"))).or_default() += 1;
    }
    eprintln!("answers by method and code: {codes:#?}");
    assert_eq!(codes.values().sum::<usize>(), REQUESTS);

    // Both alive, no panic logged, memory bounded.
    assert!(domain.child.try_wait()?.is_none(), "the domain exited");
    for (who, p) in [("domain", &domain), ("gateway", &gateway)] {
        let pid = p
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("{who} has no pid"))?;
        let rss = rss_mib(pid)?;
        eprintln!("{who} RSS after the run: {rss} MiB");
        assert!(rss < RSS_BOUND_MIB, "{who}: {rss} MiB");
    }

    // Every change since the seed is one a caller was told succeeded.
    let mut watcher = connect(domain.addr).await?;
    let durable = last_revision(&mut watcher, D).await?;
    let mut changes = watch(&mut watcher, &D.parent(), baseline).await?;
    let mut deleted = 0;
    for _ in baseline..durable {
        let c = next_change(&mut changes, Duration::from_secs(10)).await?;
        if c.r#type == ChangeType::Deleted as i32 {
            deleted += 1;
        } else {
            assert!(
                acknowledged.contains(&c.revision),
                "revision {} ({:?} of {}) was written but no caller was told so",
                c.revision,
                c.r#type,
                c.name
            );
        }
    }
    assert!(
        deleted <= deletes,
        "{deleted} deletions, {deletes} acknowledged"
    );
    drop(changes);

    let exited = domain.terminate().await?;
    assert!(exited.status.success(), "{}", exited.stderr_text());
    let exited_gateway = gateway.terminate().await?;
    for (who, e) in [("domain", &exited), ("gateway", &exited_gateway)] {
        assert!(
            !e.stderr_text().contains("panicked"),
            "{who} panicked:\n{}",
            e.stderr_text()
        );
    }
    Ok(())
}
