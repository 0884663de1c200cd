//! The dashboard: the gateway's views as web pages on an HTTP port of their
//! own. Against seven domains and a gateway serving its dashboard: a visitor
//! without a token is sent to sign in; signing in keeps the token in an
//! HttpOnly, Secure, SameSite=Strict cookie; every page answers from the
//! same views as the API, with security headers, record text escaped (a
//! title of `<script>` is text) and restricted records shown to no one
//! without clearance (every page, the Markdown download and the event
//! stream); the event stream tells of a change within two seconds; "as of"
//! a day in the URL changes what a page shows; anonymous visitors read with
//! the operator's public identity when it is configured.

use std::time::Duration;

use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_gateway::dashboard::{DashboardOptions, CSP};
use cetrack_tests::*;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// In every restricted string, lower case.
const MARK: &str = "zqxmark";
const HOSTILE: &str = "<script>alert('owned')</script> Hostile title";

/// The seven domains and a gateway serving its dashboard, with `options`.
struct Site {
    _domains: Vec<TestDomain>,
    base: String,
    addrs: Vec<(Domain, std::net::SocketAddr)>,
}

async fn site(options: DashboardOptions, domains: Vec<TestDomain>) -> anyhow::Result<Site> {
    let addrs: Vec<(Domain, std::net::SocketAddr)> =
        domains.iter().map(|t| (t.domain, t.addr())).collect();
    let config = cetrack_gateway::GatewayConfig::with_addrs(addrs.clone(), test_auth());
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let (_grpc, pages) = cetrack_gateway::start_gateway_with(
        config,
        TcpListener::bind("127.0.0.1:0").await?,
        Some((http, options)),
        CancellationToken::new(),
    )
    .await?;
    let pages = pages.ok_or_else(|| anyhow::anyhow!("no dashboard"))?;
    Ok(Site {
        _domains: domains,
        base: format!("http://{}", pages.addr),
        addrs,
    })
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// GET `path` with `token` as a bearer; status and body.
async fn get(site: &Site, path: &str, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut r = client()?.get(format!("{}{path}", site.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let answer = r.send().await?;
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer.text().await?;
    if status == 200 {
        assert_eq!(
            headers
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok()),
            Some(CSP),
            "{path}"
        );
        assert_eq!(
            headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
            Some("DENY")
        );
    }
    Ok((status, body))
}

async fn write(addrs: &[(Domain, std::net::SocketAddr)]) -> anyhow::Result<()> {
    let addr_of = |d: Domain| addrs.iter().find(|(x, _)| *x == d).map(|(_, a)| *a);
    for d in Domain::ALL {
        let mut c = connect(addr_of(d).expect("every domain")).await?;
        c.create_initiative(create_request(
            d,
            "public",
            sample(d, "Public commitment", 2027),
        ))
        .await?;
    }
    let mut ai = connect(addr_of(Domain::Ai).expect("ai")).await?;
    let mut hostile = sample(Domain::Ai, HOSTILE, 2027);
    hostile.summary = "[Sign in again](https://evil.example/phish)".into();
    ai.create_initiative(create_request(Domain::Ai, "hostile", hostile))
        .await?;
    let mut secret = sample(Domain::Ai, "ZQXMARK secret title", 2027);
    secret.sensitivity = Sensitivity::Restricted as i32;
    secret.summary = "ZQXMARK summary".into();
    ai.create_initiative(create_request(Domain::Ai, "restricted-secret", secret))
        .await?;
    Ok(())
}

fn clean(what: &str, body: &str) {
    assert!(
        !body.to_lowercase().contains(MARK),
        "{what} shows a restricted record"
    );
    assert!(
        !body.contains("<script>alert"),
        "{what} prints a title as HTML"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_sign_in_escape_text_and_never_show_restricted_records() -> anyhow::Result<()> {
    let s = site(DashboardOptions::default(), start_seven_domains().await?).await?;
    write(&s.addrs).await?;
    let viewer = token(
        "web-viewer",
        Some("us-nsf"),
        &[Role::Viewer],
        None,
        Clearance::Public,
    );
    let cleared = token(
        "web-cleared",
        None,
        &[Role::Viewer],
        None,
        Clearance::Restricted,
    );

    // No token: to the sign-in page, which asks for one.
    let answer = client()?
        .get(format!("{}/search?text=x", s.base))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(
        answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/sign-in?next=%2Fsearch%3Ftext%3Dx")
    );
    let (code, body) = get(&s, "/sign-in?next=/search", None).await?;
    assert_eq!(code, 200);
    assert!(body.contains("name=\"token\""), "{body}");
    // A bad token is refused; a good one is kept in a strict cookie, and
    // the visitor goes where they were going.
    let form = |t: &str| vec![("token", t.to_string()), ("next", "/search".to_string())];
    let refused = client()?
        .post(format!("{}/sign-in", s.base))
        .form(&form("not-a-token"))
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 401);
    let signed = client()?
        .post(format!("{}/sign-in", s.base))
        .form(&form(&viewer))
        .send()
        .await?;
    assert_eq!(signed.status().as_u16(), 303);
    assert_eq!(
        signed
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/search")
    );
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Only to a page of this site: not to another host, however written.
    for next in [
        "//evil.example",
        "/\t/evil.example",
        "https://evil.example",
        "/\\evil.example",
    ] {
        let r = client()?
            .post(format!("{}/sign-in", s.base))
            .form(&[("token", viewer.as_str()), ("next", next)])
            .send()
            .await?;
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/"),
            "next={next:?}"
        );
    }
    // Not from another site's page (no cross-site sign-in or sign-out).
    for path in ["/sign-in", "/sign-out"] {
        let r = client()?
            .post(format!("{}{path}", s.base))
            .header("sec-fetch-site", "cross-site")
            .form(&form(&viewer))
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
    let pair = cookie.split(';').next().unwrap_or_default().to_string();
    let with_cookie = client()?
        .get(format!("{}/", s.base))
        .header("cookie", pair)
        .send()
        .await?;
    assert_eq!(with_cookie.status().as_u16(), 200);
    let overview = with_cookie.text().await?;
    assert!(overview.contains("Signed in as web-viewer"), "{overview}");

    // Every page for the uncleared viewer: there, escaped, nothing restricted.
    let pages = [
        "/",
        "/?as_of=2025-06-30",
        "/search",
        "/search?text=hostile",
        "/search?text=secret",
        "/search?domain=ai&status=LIFECYCLE_STATUS_ANNOUNCED",
        "/search?instrument=INSTRUMENT_JOINT_RESEARCH_PROGRAMME&due_after=2025-01-01&due_before=2030-12-31",
        "/timeline",
        "/timeline?until=2030-12-31&overdue=on",
        "/organizations/us-nsf",
        "/domains/ai/initiatives/hostile",
        "/domains/ai/initiatives/public?as_of=2025-01-01",
        "/fact-sheet",
        "/fact-sheet?quotes=on",
        "/fact-sheet.md",
    ];
    for p in pages {
        let (code, body) = get(&s, p, Some(&viewer)).await?;
        assert_eq!(code, 200, "{p}: {body}");
        if p.ends_with(".md") {
            // Markdown, served as an attachment (not rendered): the
            // record's words as they are, nothing restricted.
            assert!(!body.to_lowercase().contains(MARK), "{p}");
        } else {
            clean(p, &body);
        }
    }
    // A link written in record text is shown as its words, not made a link.
    let (_, sheet) = get(&s, "/fact-sheet", Some(&viewer)).await?;
    assert!(
        sheet.contains("Sign in again"),
        "the linked words are there"
    );
    assert!(!sheet.contains("evil.example"), "{sheet}");
    // The hostile title is shown, as text.
    let (_, page) = get(&s, "/domains/ai/initiatives/hostile", Some(&viewer)).await?;
    assert!(page.contains("&lt;script&gt;alert"), "{page}");
    let (_, found) = get(&s, "/search?text=hostile", Some(&viewer)).await?;
    assert!(found.contains("&lt;script&gt;alert"), "{found}");
    // The restricted record does not exist for them.
    let (code, body) = get(
        &s,
        "/domains/ai/initiatives/restricted-secret",
        Some(&viewer),
    )
    .await?;
    assert_eq!(code, 404);
    clean("the restricted record's page", &body);
    // A cleared viewer sees it: the data is there.
    let (code, body) = get(&s, "/search?text=secret", Some(&cleared)).await?;
    assert_eq!(code, 200);
    assert!(body.to_lowercase().contains(MARK), "{body}");

    // The numbers are the API's: the overview counts the seven public
    // commitments and the hostile one; before they were committed, none.
    assert!(overview.contains("<dd>8</dd>"), "{overview}");
    let (_, before) = get(&s, "/?as_of=2023-12-07", Some(&viewer)).await?;
    assert!(before.contains("<dd>0</dd>"), "{before}");
    // A caller's mistake is a page saying what to fix.
    let (code, body) = get(&s, "/?as_of=2025-13-01", Some(&viewer)).await?;
    assert_eq!(code, 400);
    assert!(body.contains("as_of"), "{body}");
    let (code, _) = get(&s, "/no-such-page", Some(&viewer)).await?;
    assert_eq!(code, 404);
    // The Markdown download.
    let md = client()?
        .get(format!("{}/fact-sheet.md", s.base))
        .bearer_auth(&viewer)
        .send()
        .await?;
    assert_eq!(
        md.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"fact-sheet.md\"")
    );
    assert!(md.text().await?.starts_with("# "));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_tells_of_a_change_within_two_seconds_and_of_no_restricted_one(
) -> anyhow::Result<()> {
    let s = site(DashboardOptions::default(), start_seven_domains().await?).await?;
    write(&s.addrs).await?;
    let viewer = token("web-viewer", None, &[Role::Viewer], None, Clearance::Public);
    let answer = client()?
        .get(format!("{}/events", s.base))
        .bearer_auth(&viewer)
        .timeout(Duration::from_secs(60))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut events = answer.bytes_stream();
    // A restricted change, then a public one: only the public one arrives,
    // and the writes before the stream opened do not.
    let ai = s
        .addrs
        .iter()
        .find(|(d, _)| *d == Domain::Ai)
        .map(|(_, a)| *a);
    let mut c = connect(ai.expect("ai")).await?;
    let mut secret = sample(Domain::Ai, "ZQXMARK later", 2027);
    secret.sensitivity = Sensitivity::Restricted as i32;
    c.create_initiative(create_request(Domain::Ai, "zqxmark-later", secret))
        .await?;
    let written = std::time::Instant::now();
    c.create_initiative(create_request(
        Domain::Ai,
        "public-later",
        sample(Domain::Ai, "Public later", 2027),
    ))
    .await?;
    let mut text = String::new();
    while !text.contains("public-later") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .map_err(|_| anyhow::anyhow!("no event within 2 s; so far: {text}"))?
            .ok_or_else(|| anyhow::anyhow!("the stream ended: {text}"))??;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(written.elapsed() < Duration::from_secs(2));
    assert!(
        text.contains("event: change\ndata: domains/ai/initiatives/public-later"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains(MARK), "{text}");
    assert!(
        !text.contains("initiatives/public\n"),
        "an earlier write: {text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_read_public_records_with_the_operators_identity() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let public = dir.path().join("public.token");
    std::fs::write(
        &public,
        token("public-web", None, &[Role::Viewer], None, Clearance::Public),
    )?;
    let s = site(
        DashboardOptions {
            public_token: Some(public),
            trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 200])],
        },
        start_seven_domains().await?,
    )
    .await?;
    write(&s.addrs).await?;
    for p in ["/", "/search", "/fact-sheet", "/timeline"] {
        let (code, body) = get(&s, p, None).await?;
        assert_eq!(code, 200, "{p}");
        assert!(body.contains("Public records"), "{p}: {body}");
        clean(p, &body);
    }
    // Anonymous visitors share one live feed: 104 of them, 8 from each of
    // 13 addresses (past the 100 streams one identity may hold), all hear
    // of a public change; a ninth from one address is refused.
    let mut feeds = Vec::new();
    for a in 1..=13u8 {
        let from = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, a]))
            .build()?;
        for _ in 0..8 {
            let events = from.get(format!("{}/events", s.base)).send().await?;
            assert_eq!(events.status().as_u16(), 200, "visitor from 127.0.0.{a}");
            feeds.push(events.bytes_stream());
        }
        if a == 1 {
            let ninth = from.get(format!("{}/events", s.base)).send().await?;
            assert_eq!(ninth.status().as_u16(), 429);
        }
    }
    // Behind a trusted proxy (127.0.0.200 here), the address is the one it
    // forwards: eight from one visitor through it, then a ninth is refused,
    // while another visitor through it is served.
    let proxy = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 200]))
        .build()?;
    let through = |visitor: &'static str| {
        proxy
            .get(format!("{}/events", s.base))
            .header("x-forwarded-for", format!("{visitor}, 127.0.0.200"))
            .send()
    };
    for _ in 0..8 {
        let events = through("198.51.100.7").await?;
        assert_eq!(events.status().as_u16(), 200);
        feeds.push(events.bytes_stream());
    }
    assert_eq!(through("198.51.100.7").await?.status().as_u16(), 429);
    let other = through("203.0.113.9").await?;
    assert_eq!(
        other.status().as_u16(),
        200,
        "another visitor through the proxy"
    );
    feeds.push(other.bytes_stream());
    let energy = s
        .addrs
        .iter()
        .find(|(d, _)| *d == Domain::Energy)
        .map(|(_, a)| *a)
        .expect("energy");
    connect(energy)
        .await?
        .create_initiative(create_request(
            Domain::Energy,
            "public-for-all",
            sample(Domain::Energy, "Public for all", 2027),
        ))
        .await?;
    for (n, feed) in feeds.iter_mut().enumerate() {
        let mut text = String::new();
        while !text.contains("public-for-all") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .map_err(|_| anyhow::anyhow!("visitor {n}: no event; so far: {text}"))?
                .ok_or_else(|| anyhow::anyhow!("visitor {n}: the stream ended: {text}"))??;
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    drop(feeds);
    // A public token cleared for restricted records is the operator's
    // mistake: not used, visitors sign in.
    std::fs::write(
        dir.path().join("public.token"),
        token(
            "public-web",
            None,
            &[Role::Viewer],
            None,
            Clearance::Restricted,
        ),
    )?;
    let r = client()?.get(format!("{}/", s.base)).send().await?;
    assert_eq!(r.status().as_u16(), 303);
    Ok(())
}
