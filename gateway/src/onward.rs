//! The gateway's own HTTP/2 connection to a domain for the unary calls it
//! passes through (see [`crate::proxy`]), on the `h2` crate directly.
//!
//! Why not a tonic `Channel`: a call on one goes from the caller's task to
//! the channel's buffer task, then to hyper's connection task, and hyper
//! sends the request's message only once the stream it opened has been
//! given capacity: the headers and the message leave in two writes. Here
//! the caller's task queues the request's headers and its one message on
//! the connection at once, and the connection's task writes both together.
//! (GetInitiative one call at a time, release binaries, same run: 2.78x the
//! direct call through a `Channel`, 2.2-2.3x through this.)
//!
//! The connection is opened on first use and again after it fails; a
//! request that could not leave on a connection that had gone away is sent
//! once more on a new one (it reached no domain). A ping every
//! [`KEEP_ALIVE`] that gets no answer within [`KEEP_ALIVE_TIMEOUT`] closes a
//! connection the network lost. Dropping a call (the caller cancelled it)
//! resets its stream at the domain with CANCEL.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cetrack_server::tls::ClientTls;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long opening a connection to a domain may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an open connection is checked with a ping.
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The HTTP/2 window of one call's answer: what the gateway holds of an
/// answer its caller does not read (an answer is at most
/// [`cetrack_server::MAX_RESPONSE_BYTES`]).
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// The window of the connection, shared by its calls: what answers whose
/// callers read slowly may hold in the gateway before the domain's other
/// answers wait (the gateway takes an answer from the domain only as fast
/// as its caller takes it).
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Why a call could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum OnwardError {
    /// The connection could not be opened (TCP or TLS).
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// Opening it took longer than [`CONNECT_TIMEOUT`].
    #[error("no connection within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    /// HTTP/2 failed on the connection or the call (the domain reset it,
    /// or the connection ended).
    #[error("{0}")]
    H2(#[from] h2::Error),
    /// The request could not be made (a header HTTP/2 does not carry).
    #[error("{0}")]
    Request(String),
    /// An attempt to connect failed while this call waited for it (each
    /// waiting call does not try again on its own).
    #[error("{0}")]
    Down(String),
}

/// What a connection is made over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One domain's connection for unary calls.
pub struct Onward {
    /// `http` or `https`.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    tls: Option<ClientTls>,
    /// The open connection, if any (cloned per call: a handle), with the
    /// number it was opened as.
    open: Mutex<Option<(u64, SendRequest<Bytes>)>>,
    /// Connections opened so far (numbers them).
    opened: AtomicU64,
    /// Held while a connection is being opened, so that callers arriving
    /// meanwhile wait for it rather than each open one.
    opening: tokio::sync::Mutex<()>,
    /// When the last attempt to connect failed, and why: the callers that
    /// waited for it share its answer.
    failed: Mutex<Option<(Instant, String)>>,
}

impl std::fmt::Debug for Onward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

impl Onward {
    /// A connection (opened on first use) to `uri` (`http://host:port` or,
    /// with `tls`, `https://host:port`).
    pub fn new(uri: &http::Uri, tls: Option<ClientTls>) -> anyhow::Result<Self> {
        let scheme = uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("`{uri}` names no host"))?;
        if scheme == http::uri::Scheme::HTTPS && tls.is_none() {
            anyhow::bail!("{uri} is an https:// address: give the CA it chains to");
        }
        Ok(Self {
            tls: (scheme == http::uri::Scheme::HTTPS)
                .then_some(tls)
                .flatten(),
            scheme,
            authority,
            open: Mutex::new(None),
            opened: AtomicU64::new(0),
            opening: tokio::sync::Mutex::new(()),
            failed: Mutex::new(None),
        })
    }

    /// Sends `head` (a request's method, path and headers) and its one
    /// `message` (the whole body, END_STREAM with it); the answer's head and
    /// its body as it comes. Dropping the future or the body resets the call
    /// at the domain (CANCEL).
    pub async fn call(
        &self,
        head: http::request::Parts,
        message: Bytes,
    ) -> Result<http::Response<h2::RecvStream>, OnwardError> {
        let mut request = http::Request::from_parts(head, ());
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *request.uri_mut() = http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| OnwardError::Request(e.to_string()))?;
        let (connection, mut send) = self.ready().await?;
        let (answer, mut body) = match send.send_request(request.clone(), false) {
            Ok(sent) => sent,
            // The connection went away (the domain restarted, or said
            // GOAWAY) before the request left: nothing reached the domain,
            // so it goes once more on a new connection.
            Err(e) if e.is_go_away() || e.is_io() || e.reason().is_none() => {
                tracing::debug!(target = ?self, error = %e, "the connection to a domain is gone: opening another");
                self.forget(connection);
                self.ready().await?.1.send_request(request, false)?
            }
            Err(e) => return Err(e.into()),
        };
        body.send_data(message, true)?;
        Ok(answer.await?)
    }

    /// Drops the handle of connection `connection` if it is still the open
    /// one (a new one is opened next); one another call opened since stays.
    fn forget(&self, connection: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.as_ref().is_some_and(|(n, _)| *n == connection) {
            *open = None;
        }
    }

    /// A handle on the open connection, opening one if there is none or
    /// the last one closed.
    async fn ready(&self) -> Result<(u64, SendRequest<Bytes>), OnwardError> {
        if let Some((n, send)) = self.current() {
            if let Ok(send) = send.ready().await {
                return Ok((n, send));
            }
        }
        let asked = Instant::now();
        let _opening = self.opening.lock().await;
        // Another caller may have opened one while this one waited, or
        // failed to: then this call fails as it did (while a domain cannot
        // be reached, the callers waiting are answered together, not each
        // after an attempt of its own).
        if let Some((n, send)) = self.current() {
            if let Ok(send) = send.ready().await {
                return Ok((n, send));
            }
        }
        let failed = |p: std::sync::PoisonError<_>| p.into_inner();
        if let Some((at, why)) = &*self.failed.lock().unwrap_or_else(failed) {
            if *at > asked {
                return Err(OnwardError::Down(why.clone()));
            }
        }
        let opened = match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
            Err(_) => Err(OnwardError::ConnectTimeout),
            Ok(Err(e)) => Err(e),
            Ok(Ok(send)) => send.ready().await.map_err(OnwardError::from),
        };
        *self.failed.lock().unwrap_or_else(failed) = opened
            .as_ref()
            .err()
            .map(|e| (Instant::now(), e.to_string()));
        let send = opened?;
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = Some((n, send.clone()));
        Ok((n, send))
    }

    fn current(&self) -> Option<(u64, SendRequest<Bytes>)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn connect(&self) -> Result<SendRequest<Bytes>, OnwardError> {
        let default_port = if self.scheme == http::uri::Scheme::HTTPS {
            443
        } else {
            80
        };
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = self.authority.port_u16().unwrap_or(default_port);
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(OnwardError::Connect)?;
        tcp.set_nodelay(true).map_err(OnwardError::Connect)?;
        let io: Box<dyn Io> = match &self.tls {
            Some(tls) => Box::new(
                tls.connect(self.authority.host(), tcp)
                    .await
                    .map_err(OnwardError::Connect)?,
            ),
            None => Box::new(tcp),
        };
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(64 * 1024)
            .handshake::<_, Bytes>(io)
            .await?;
        let target = format!("{}://{}", self.scheme, self.authority);
        // The connection runs in a task of its own until it ends or the
        // pinger closes it; the pinger's pings need the connection driven,
        // so they wait in a task beside it.
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        if let Some(ping) = connection.ping_pong() {
            tokio::spawn(keep_alive(ping, close, target.clone()));
        }
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        tracing::debug!(%target, error = %e, "a connection to a domain ended");
                    }
                }
                _ = closed => {}
            }
        });
        Ok(send)
    }
}

/// Pings the connection every [`KEEP_ALIVE`]; one unanswered within
/// [`KEEP_ALIVE_TIMEOUT`] closes it (through `close`), so that the next call
/// opens a new one instead of waiting on a connection the network lost.
async fn keep_alive(
    mut ping: h2::PingPong,
    mut close: tokio::sync::oneshot::Sender<()>,
    target: String,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEEP_ALIVE) => {}
            // The connection ended by itself.
            _ = close.closed() => return,
        }
        match tokio::time::timeout(KEEP_ALIVE_TIMEOUT, ping.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(%target, "a domain did not answer a ping in time: its connection is closed");
                let _ = close.send(());
                return;
            }
        }
    }
}

/// An answer's body as it comes from the domain: its messages, then its
/// trailers. Capacity is given back to the domain as the data passes on.
pub struct Received {
    inner: h2::RecvStream,
    data_done: bool,
}

impl Received {
    /// The body of an answer.
    pub fn new(inner: h2::RecvStream) -> Self {
        Self {
            inner,
            data_done: false,
        }
    }
}

impl http_body::Body for Received {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match self.inner.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = self.inner.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.inner.poll_trailers(cx) {
            Poll::Ready(Ok(Some(trailers))) => {
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
