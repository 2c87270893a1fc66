//! The accept loop both HTTP servers (control plane, edge node) run, so that no client can hold
//! one (feature `server`):
//!
//! - a connection cap: a permit is taken *before* `accept`, and held for the connection's life,
//!   so clients beyond [`ServerLimits::max_connections`] wait in the kernel's backlog instead of
//!   costing memory;
//! - accept errors (out of file descriptors, …) back off exponentially (5 ms doubling to 1 s,
//!   reset by the next success), logged once per burst;
//! - TLS (rustls) when configured; the handshake and the first request's head must both be in
//!   within the header read timeout of the accept;
//! - per connection, a watchdog: a request head must arrive whole within
//!   [`ServerLimits::header_read_timeout`] of its first byte (of the accept, for a connection's
//!   first request), and a keep-alive connection with no request in flight is closed after
//!   [`ServerLimits::idle_timeout`]. A response still streaming (an event stream) counts as in
//!   flight, so it is never cut. hyper's own `header_read_timeout` is not used: its timer also
//!   runs while a keep-alive connection waits for its next request (`tests/server.rs` shows it),
//!   so it would close idle connections after the header timeout, not the idle one;
//! - graceful shutdown: stop accepting, let open requests finish (up to 10 s);
//! - [`read_body`]: a request body with a size limit and a deadline, with typed errors the
//!   servers map to 413 and 408.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::tls::{ServerTls, TlsError};
use crate::{ApiError, ErrorCode};

/// What a server allows its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest a request head (request line and headers) may take to arrive, from its first
    /// byte (from the accept, for a connection's first request, TLS handshake included).
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive, whole (applied by [`read_body`]).
    pub body_read_timeout: Duration,
    /// Longest a keep-alive connection may wait, with no request in flight, for its next one.
    pub idle_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// How to serve: the limits, and TLS (plain HTTP without).
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Timeouts and the connection cap.
    pub limits: ServerLimits,
    /// Certificate and key; `None` serves plain HTTP.
    pub tls: Option<ServerTls>,
}

/// The command-line form of [`ServerOptions`], shared by the control plane and the edge node.
#[derive(Clone, Debug, clap::Args)]
pub struct ListenerArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "LATCHKEY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "LATCHKEY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Longest a request's head may take to arrive, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Longest a request's body may take to arrive, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Longest an idle keep-alive connection is kept open, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub keep_alive_timeout_ms: u64,
    /// Most client connections open at once (more wait to be accepted).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
}

impl Default for ListenerArgs {
    fn default() -> Self {
        let limits = ServerLimits::default();
        ListenerArgs {
            tls_cert: None,
            tls_key: None,
            header_timeout_ms: limits.header_read_timeout.as_millis() as u64,
            body_timeout_ms: limits.body_read_timeout.as_millis() as u64,
            keep_alive_timeout_ms: limits.idle_timeout.as_millis() as u64,
            max_connections: limits.max_connections,
        }
    }
}

impl ListenerArgs {
    /// The limits these arguments give.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_millis(self.header_timeout_ms),
            body_read_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.keep_alive_timeout_ms),
            max_connections: self.max_connections.max(1),
        }
    }

    /// The limits, and TLS read from the certificate and key files if given.
    pub fn options(&self) -> Result<ServerOptions, TlsError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::from_pem_files(cert, key)?),
            _ => None,
        };
        Ok(ServerOptions {
            limits: self.limits(),
            tls,
        })
    }
}

/// Why a request body could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than the limit (413).
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not all there before the deadline (408).
    #[error("request body did not arrive within the body read timeout of {timeout:?}")]
    TimedOut {
        /// The timeout.
        timeout: Duration,
    },
    /// The connection broke, or the body was malformed (400).
    #[error("could not read the request body: {0}")]
    Broken(String),
}

impl BodyError {
    /// The API error for it: `too_large` (413), `request_timeout` (408) or `bad_request`.
    pub fn to_api(&self) -> ApiError {
        let code = match self {
            BodyError::TooLarge { .. } => ErrorCode::TooLarge,
            BodyError::TimedOut { .. } => ErrorCode::RequestTimeout,
            BodyError::Broken(_) => ErrorCode::BadRequest,
        };
        ApiError::new(code, self.to_string())
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        e.to_api()
    }
}

/// Reads a whole request body: at most `max_bytes` (a larger declared length is refused before
/// anything is read), all of it within `timeout`.
pub async fn read_body<B>(body: B, max_bytes: usize, timeout: Duration) -> Result<Bytes, BodyError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > max_bytes as u64 {
        return Err(BodyError::TooLarge { limit: max_bytes });
    }
    // Nothing to wait for (no body): no timer.
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    match tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect()).await {
        Err(_) => Err(BodyError::TimedOut { timeout }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(BodyError::TooLarge { limit: max_bytes })
        }
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}

tokio::task_local! {
    static LIMITS: ServerLimits;
}

/// The body read timeout of the server whose request the current task serves (the default
/// outside one), for handlers that read bodies deep in their call tree.
pub fn body_read_timeout() -> Duration {
    LIMITS
        .try_with(|limits| limits.body_read_timeout)
        .unwrap_or_else(|_| ServerLimits::default().body_read_timeout)
}

/// Serves `handler` on `listener` until `shutdown` completes, then lets open requests finish
/// (up to 10 s). `handler` answers every request; its response bodies must be `Unpin`.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    options: ServerOptions,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = options.limits;
    let tls = options.tls.map(|t| tokio_rustls::TlsAcceptor::from(t.0));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                drop(permit);
                let pause = backoff.failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let accepted_at = Instant::now();
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let handler = handler.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, accepted_at, watcher, handler, limits).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            connection(stream, accepted_at, watcher, handler, limits).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

/// Accept-error back-off: 5 ms doubling to 1 s; one warning per burst of errors.
#[derive(Default)]
struct Backoff {
    failures: u64,
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn failed(&mut self, e: &std::io::Error) -> Duration {
        if self.failures == 0 {
            tracing::warn!(error = %e, "accept failed; backing off until it succeeds again");
            self.next = Self::FIRST;
        }
        self.failures += 1;
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
    }
}

/// Serves one connection until it ends, its watchdog closes it, or shutdown ends it.
async fn connection<I, H, F, B>(
    io: I,
    accepted_at: Instant,
    watcher: hyper_util::server::graceful::Watcher,
    handler: H,
    limits: ServerLimits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new(accepted_at));
    let io = Watched {
        io,
        activity: Arc::clone(&activity),
    };
    let service = {
        let activity = Arc::clone(&activity);
        let limits = limits.clone();
        service_fn(move |req| {
            let guard = InFlight::start(&activity);
            let answer = LIMITS.scope(limits.clone(), handler(req));
            async move {
                let response = answer.await;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _guard: guard,
                }))
            }
        })
    };
    let conn = http1::Builder::new().serve_connection(TokioIo::new(io), service);
    let conn = watcher.watch(conn);
    tokio::select! {
        ended = conn => {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        why = watchdog(&activity, &limits) => tracing::debug!(why, "closing the connection"),
    }
}

/// No instant recorded.
const NONE: u64 = u64::MAX;

/// What a connection is doing, for its watchdog: requests in flight, when it last became idle,
/// when the next request's head started to arrive (milliseconds since `epoch`, the accept).
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    head_started: AtomicU64,
}

impl Activity {
    fn new(accepted_at: Instant) -> Self {
        Activity {
            epoch: accepted_at,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            // The first request's head is due from the start.
            head_started: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Why the connection should close now, if it should: no request in flight, and a request
    /// head pending longer than the header timeout, or idle longer than the idle timeout.
    fn overdue(&self, limits: &ServerLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let now = self.now();
        match self.head_started.load(Ordering::Acquire) {
            NONE => (now >= self.idle_since.load(Ordering::Acquire) + ms(limits.idle_timeout))
                .then_some("idle timeout"),
            started => {
                (now >= started + ms(limits.header_read_timeout)).then_some("header read timeout")
            }
        }
    }
}

/// Completes when the connection should be closed: a request head late, or idle too long.
/// Deadlines are checked on a tick (a quarter of the shorter timeout), not on every change, so
/// a request costs no timer and no wake-up of the connection's task; a deadline is noticed at
/// most one tick late.
async fn watchdog(activity: &Activity, limits: &ServerLimits) -> &'static str {
    let tick =
        (limits.header_read_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Some(why) = activity.overdue(limits) {
            return why;
        }
    }
}

/// A request in flight, from the moment hyper hands it over until its response body is done
/// (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_started.store(NONE, Ordering::Release);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it ends.
struct Tracked<B> {
    body: B,
    _guard: InFlight,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's stream, noting when the bytes of a request head start to arrive.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let activity = &self.activity;
            if activity.in_flight.load(Ordering::Acquire) == 0
                && activity.head_started.load(Ordering::Acquire) == NONE
            {
                activity
                    .head_started
                    .store(activity.now(), Ordering::Release);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_back_off_doubles_to_a_second_and_resets_on_success() {
        let e = std::io::Error::other("EMFILE");
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.failed(&e).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(&e), Duration::from_millis(5));
    }
}
