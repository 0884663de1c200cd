//! Reading the Prometheus endpoint of a server under test: scrape it, read
//! a sample, wait for the gauges to catch up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a gauge may take to catch up with a write.
pub const GAUGE_TIMEOUT: Duration = Duration::from_secs(20);

/// `GET /metrics` over a plain TCP connection (HTTP/1.0: no chunking, the
/// server closes the connection after the response); the body.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .context("no complete response within 10 s")??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("a response without a header block")?;
    let status = head.lines().next().unwrap_or_default();
    ensure!(status.contains(" 200 "), "GET /metrics answered {status}");
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "not Prometheus text: {head}"
    );
    Ok(body.to_string())
}

/// The value of the sample `name` whose labels are exactly `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, found) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}')?)?),
            };
            (n == name && found == wanted).then(|| v.parse().ok())?
        })
        .next()
}

/// `a="x",b="y"` (values without escapes, as all of ours are).
fn parse_labels(s: &str) -> Option<BTreeMap<&str, &str>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k, v.strip_prefix('"')?.strip_suffix('"')?))
        })
        .collect()
}

/// `value`, or a failure showing the whole scrape.
pub fn require(text: &str, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
    value(text, name, labels).with_context(|| format!("no sample {name}{labels:?} in:\n{text}"))
}

/// Scrapes until `ready` holds (gauges are refreshed by a task after each
/// write), for at most [`GAUGE_TIMEOUT`]; the last scrape.
pub async fn scrape_until(
    addr: SocketAddr,
    ready: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + GAUGE_TIMEOUT;
    loop {
        let text = scrape(addr).await?;
        if ready(&text) {
            return Ok(text);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the metrics did not catch up within {GAUGE_TIMEOUT:?}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The count of finished calls of `service`'s `method` with `code`.
pub fn requests_of(text: &str, service: &str, method: &str, code: &str) -> Option<f64> {
    value(
        text,
        "cetrack_grpc_requests_total",
        &[("service", service), ("method", method), ("code", code)],
    )
}
