//! Prometheus metrics: the domain and gateway binaries started with
//! `--metrics-listen` serve `/metrics` over HTTP, with request counters by
//! method and status code, latency histograms, calls in flight and the
//! store's gauges; in-process servers share one process-wide recorder.

use anyhow::ensure;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use tonic::Code;

/// The code of a failed call, or OK.
fn code_of<T>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
}

#[tokio::test]
async fn domain_binary_serves_request_and_store_metrics() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let service = domain.slug();
    let dir = tempfile::tempdir()?;
    let (process, metrics) = spawn_domain_with_metrics(domain, dir.path()).await?;
    let mut client = connect(process.addr).await?;

    // Before any write: the store gauges are there, at zero.
    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]).is_some()
    })
    .await?;
    assert_eq!(
        require(&text, "cetrack_initiatives", &[("domain", service)])?,
        0.0
    );

    for id in ["alpha", "beta", "gamma"] {
        client
            .create_initiative(create_request(domain, id, sample(domain, id, 2026)))
            .await?;
    }
    let name = |id: &str| format!("{}/initiatives/{id}", domain.parent());
    let found = client
        .get_initiative(GetInitiativeRequest { name: name("beta") })
        .await;
    assert_eq!(code_of(found), Code::Ok);
    let missing = client
        .get_initiative(GetInitiativeRequest {
            name: name("missing"),
        })
        .await;
    assert_eq!(code_of(missing), Code::NotFound);
    let duplicate = client
        .create_initiative(create_request(
            domain,
            "alpha",
            sample(domain, "alpha", 2026),
        ))
        .await;
    assert_eq!(code_of(duplicate), Code::AlreadyExists);
    client
        .list_initiatives(ListInitiativesRequest {
            parent: domain.parent(),
            ..Default::default()
        })
        .await?;

    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]) == Some(3.0)
            && value(t, "cetrack_last_revision", &[("domain", service)]) == Some(3.0)
    })
    .await?;
    let requests = |method: &str, code: &str| {
        require(
            &text,
            "cetrack_grpc_requests_total",
            &[("service", service), ("method", method), ("code", code)],
        )
    };
    assert_eq!(requests("CreateInitiative", "OK")?, 3.0);
    assert_eq!(requests("CreateInitiative", "ALREADY_EXISTS")?, 1.0);
    assert_eq!(requests("GetInitiative", "OK")?, 1.0);
    assert_eq!(requests("GetInitiative", "NOT_FOUND")?, 1.0);
    assert_eq!(requests("ListInitiatives", "OK")?, 1.0);
    assert_eq!(
        value(
            &text,
            "cetrack_grpc_requests_total",
            &[
                ("service", service),
                ("method", "ListInitiatives"),
                ("code", "NOT_FOUND")
            ],
        ),
        None
    );

    // The histogram: every finished call, in buckets up to +Inf.
    let create = [("service", service), ("method", "CreateInitiative")];
    let get = [("service", service), ("method", "GetInitiative")];
    assert_eq!(
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_count",
            &create
        )?,
        4.0
    );
    assert_eq!(
        require(&text, "cetrack_grpc_request_duration_seconds_count", &get)?,
        2.0
    );
    assert!(require(&text, "cetrack_grpc_request_duration_seconds_sum", &create)? > 0.0);
    let bucket = |le: &str| {
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_bucket",
            &[
                ("service", service),
                ("method", "GetInitiative"),
                ("le", le),
            ],
        )
    };
    assert_eq!(bucket("+Inf")?, 2.0);
    assert!(bucket("0.0005")? <= bucket("0.1")?);
    assert!(text.contains("# TYPE cetrack_grpc_request_duration_seconds histogram"));

    // Nothing is in flight once the answers are back.
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &create)?, 0.0);
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &get)?, 0.0);

    assert!(require(&text, "cetrack_store_size_bytes", &[("domain", service)])? > 0.0);

    // A delete is a write too: the gauges follow it.
    client
        .delete_initiative(DeleteInitiativeRequest {
            name: name("gamma"),
            ..Default::default()
        })
        .await?;
    let text = scrape_until(metrics, |t| {
        value(t, "cetrack_initiatives", &[("domain", service)]) == Some(2.0)
    })
    .await?;
    assert_eq!(
        require(&text, "cetrack_last_revision", &[("domain", service)])?,
        4.0
    );
    assert_eq!(
        requests_of(&text, service, "DeleteInitiative", "OK"),
        Some(1.0)
    );

    // Calls to methods the contract does not have are counted under one
    // label: made-up names add no series to the registry.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.addr))?
        .connect()
        .await?;
    let mut raw = tonic::client::Grpc::new(channel);
    for n in 0..30 {
        raw.ready().await?;
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", admin_token()).parse()?,
        );
        let path = format!("/cet.v1.DomainService/MadeUpMethod{n}");
        let answer = raw
            .unary::<(), (), _>(
                request,
                path.parse()?,
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert_eq!(code_of(answer), Code::Unimplemented, "{path}");
    }
    let text = scrape_until(metrics, |t| {
        requests_of(t, service, "unknown", "UNIMPLEMENTED") == Some(30.0)
    })
    .await?;
    assert!(!text.contains("MadeUpMethod"), "{text}");

    // The metrics endpoint does not keep the process from shutting down.
    let exited = process.terminate().await?;
    ensure!(exited.status.success(), "exited with {}", exited.status);
    Ok(())
}

#[tokio::test]
async fn gateway_binary_serves_request_metrics() -> anyhow::Result<()> {
    let domain = Domain::Quantum;
    let dir = tempfile::tempdir()?;
    let quantum = spawn_domain(domain, dir.path()).await?;
    connect(quantum.addr)
        .await?
        .create_initiative(create_request(
            domain,
            "alpha",
            sample(domain, "Alpha", 2026),
        ))
        .await?;
    let domain_url = format!("quantum=http://{}", quantum.addr);
    let gateway = spawn_server(
        &binary("cetrack-gateway")?,
        [
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--domain",
            &domain_url,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .await?;
    let metrics = gateway.logged_addr("serving metrics")?;
    let mut client = gateway_as(gateway.addr, Some(&admin_token())).await?;
    let get = |name: &str| GetInitiativeRequest {
        name: name.to_string(),
    };
    let parent = domain.parent();
    for _ in 0..2 {
        let found = client
            .get_initiative(get(&format!("{parent}/initiatives/alpha")))
            .await;
        assert_eq!(code_of(found), Code::Ok);
    }
    let missing = client
        .get_initiative(get(&format!("{parent}/initiatives/missing")))
        .await;
    assert_eq!(code_of(missing), Code::NotFound);
    let invalid = client.get_initiative(get("not a name")).await;
    assert_eq!(code_of(invalid), Code::InvalidArgument);

    let text = scrape(metrics).await?;
    let requests = |code: &str| {
        require(
            &text,
            "cetrack_grpc_requests_total",
            &[
                ("service", "gateway"),
                ("method", "GetInitiative"),
                ("code", code),
            ],
        )
    };
    assert_eq!(requests("OK")?, 2.0);
    assert_eq!(requests("NOT_FOUND")?, 1.0);
    assert_eq!(requests("INVALID_ARGUMENT")?, 1.0);
    let labels = [("service", "gateway"), ("method", "GetInitiative")];
    assert_eq!(
        require(
            &text,
            "cetrack_grpc_request_duration_seconds_count",
            &labels
        )?,
        4.0
    );
    assert_eq!(require(&text, "cetrack_grpc_in_flight", &labels)?, 0.0);
    // The gateway keeps no store.
    assert!(!text.contains("cetrack_initiatives{"));

    let exited = gateway.terminate().await?;
    ensure!(exited.status.success(), "exited with {}", exited.status);
    Ok(())
}
