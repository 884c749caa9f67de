//! Connection limits of the endpoint: no client can hold the process's sockets, memory or
//! time by connecting and then going slow.
//!
//! [`ConnAcceptor`] sits under every listener (inside TLS, so it sees the TCP connection):
//!
//! * a peer outside the ACL gets the fixed [`ACL_403`] (`Connection: close`) and is closed,
//!   before a byte of its request is read or parsed;
//! * at most `max_connections` connections are open. A new connection over the cap closes
//!   the one that has been open longest without a request running (idle keep-alive,
//!   slowloris, a fresh connection that sent nothing), so a flood of idle sockets cannot keep
//!   a real client out; only when every connection has a request running is the new one
//!   refused (closed at once). One warning per episode;
//! * [`Guarded`] closes a connection whose request headers are not complete
//!   `header_read_timeout` after the connection opened (first request) or after their first
//!   byte (later requests), which also bounds a TLS handshake; and a connection with no
//!   request running that received and sent nothing for `idle_timeout` since its last request.
//!
//! [`read_body`] (a step of [`super::front`], behind the credential check) reads the request body with the
//! `body_read_timeout` deadline: 408 and the connection closed when it is late. Requests that
//! are running are bounded by that and by their handlers, not by the idle timer.

use super::auth::Access;
use super::error::Error;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::task::AtomicWaker;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
}

impl ConnLimits {
    pub fn from_config(cfg: &crate::config::ServerConfig) -> ConnLimits {
        ConnLimits {
            max_connections: cfg.max_connections.max(1),
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            body_read_timeout: cfg.body_read_timeout,
            max_body_bytes: cfg.max_body_bytes,
        }
    }
}

/// What happened to connections so far (for tests and the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Open now.
    pub open: usize,
    pub accepted: u64,
    /// Closed at once: the peer is outside the ACL.
    pub refused_acl: u64,
    /// Closed at once: the cap was reached and every connection had a request running.
    pub refused_full: u64,
    /// Closed to make room for a new connection.
    pub evicted: u64,
    /// Closed by the idle or header timeout.
    pub timed_out: u64,
}

/// The part of one connection that the tracker, its stream and its service share.
pub struct ConnShared {
    id: u64,
    opened: Instant,
    /// Requests whose handler is running.
    in_flight: AtomicUsize,
    /// Requests finished so far: a change tells the stream that it is idle again.
    finished: AtomicU64,
    evicted: AtomicBool,
    /// The connection task, woken to notice an eviction or the end of a request.
    waker: AtomicWaker,
}

/// All open connections.
pub struct Tracker {
    limits: ConnLimits,
    conns: Mutex<HashMap<u64, Arc<ConnShared>>>,
    next_id: AtomicU64,
    full_warned: AtomicBool,
    accepted: AtomicU64,
    refused_acl: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
    /// Refused peers whose fixed 403 is being delivered ([`answer_acl`]).
    lingering: Arc<AtomicUsize>,
}

impl Tracker {
    pub fn new(limits: ConnLimits) -> Arc<Tracker> {
        Arc::new(Tracker {
            limits,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            full_warned: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            refused_acl: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            lingering: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnShared>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> ConnStats {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnStats {
            open: self.conns().len(),
            accepted: n(&self.accepted),
            refused_acl: n(&self.refused_acl),
            refused_full: n(&self.refused_full),
            evicted: n(&self.evicted),
            timed_out: n(&self.timed_out),
        }
    }

    /// Register a new connection, making room by closing the longest-idle one when full.
    fn admit(&self) -> Option<Arc<ConnShared>> {
        let mut conns = self.conns();
        let max = self.limits.max_connections;
        if conns.len() >= max {
            let victim = conns
                .values()
                .filter(|c| c.in_flight.load(Ordering::SeqCst) == 0)
                .min_by_key(|c| c.opened)
                .map(|c| c.id);
            let warn_once = !self.full_warned.swap(true, Ordering::Relaxed);
            match victim.and_then(|id| conns.remove(&id)) {
                Some(v) => {
                    v.evicted.store(true, Ordering::SeqCst);
                    v.waker.wake();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    if warn_once {
                        tracing::warn!(
                            max_connections = max,
                            "connection limit reached: closing the longest-idle connections to \
                             make room (raise [server] max_connections if these are real clients)"
                        );
                    }
                }
                None => {
                    self.refused_full.fetch_add(1, Ordering::Relaxed);
                    if warn_once {
                        tracing::warn!(
                            max_connections = max,
                            "connection limit reached and every connection has a request \
                             running: new connections are closed (raise [server] max_connections \
                             if these are real clients)"
                        );
                    }
                    return None;
                }
            }
        } else if conns.len() < max * 3 / 4 {
            // The episode is over once a quarter of the room is free again.
            self.full_warned.store(false, Ordering::Relaxed);
        }
        let c = Arc::new(ConnShared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        conns.insert(c.id, c.clone());
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(c)
    }

    fn forget(&self, id: u64) {
        self.conns().remove(&id);
    }
}

/// The answer to a peer outside the ACL, as the seed says ("403 – returned when the client does
/// not have access to the REST system due to ACLs"): fixed bytes, written without reading the
/// request.
pub const ACL_403: &[u8] = b"HTTP/1.1 403 Forbidden\r\n\
Content-Type: application/json\r\n\
Content-Length: 52\r\n\
Cache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\n\
Connection: close\r\n\r\n\
{\"status\":403,\"message\":\"Access denied by the ACL.\"}";

/// Refused peers that may linger at once while their 403 is delivered; past it, a refused
/// connection is closed right after the write (its peer may then see a reset instead).
const MAX_LINGERING: usize = 128;
/// How long a refused connection lingers at most.
const LINGER: Duration = Duration::from_millis(500);
/// Bytes of a refused peer's request discarded at most before the close.
const LINGER_BYTES: usize = 16 * 1024;

/// Write [`ACL_403`] to a refused peer and close. The write never waits (a new socket's send
/// buffer holds 200 bytes). Nothing is parsed; what the peer sent is discarded, bounded in
/// time, bytes and number of connections, only so that the close is a FIN: closing a socket
/// with unread bytes sends a reset, which makes the peer drop the answer unread.
fn answer_acl(stream: TcpStream, lingering: &Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !matches!(stream.try_write(ACL_403), Ok(n) if n == ACL_403.len()) {
        return;
    }
    if lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING {
        lingering.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let lingering = lingering.clone();
    tokio::spawn(async move {
        let mut s = stream;
        let _ = s.shutdown().await;
        let mut buf = [0u8; 1024];
        let mut seen = 0;
        let _ = tokio::time::timeout(LINGER, async {
            while seen < LINGER_BYTES {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen += n,
                }
            }
        })
        .await;
        lingering.fetch_sub(1, Ordering::Relaxed);
    });
}

/// The `axum_server` acceptor applying the ACL and the limits, around `inner` (the fault
/// injector in tests, else nothing).
#[derive(Clone)]
pub struct ConnAcceptor<A> {
    access: Arc<Access>,
    tracker: Arc<Tracker>,
    inner: A,
}

impl<A> ConnAcceptor<A> {
    pub fn new(access: &Arc<Access>, tracker: &Arc<Tracker>, inner: A) -> ConnAcceptor<A> {
        ConnAcceptor {
            access: access.clone(),
            tracker: tracker.clone(),
            inner,
        }
    }
}

impl<A, S> axum_server::accept::Accept<TcpStream, S> for ConnAcceptor<A>
where
    A: axum_server::accept::Accept<Guarded<TcpStream>, Tracked<S>>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future =
        futures::future::Either<std::future::Ready<io::Result<(A::Stream, A::Service)>>, A::Future>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        use futures::future::Either;
        let refuse = |why: &str| Either::Left(std::future::ready(Err(io::Error::other(why))));
        // Dropping the stream (on refusal) closes the socket before anything is read.
        match stream.peer_addr() {
            Ok(addr) if self.access.allowed(&addr) => {}
            Ok(addr) => {
                self.tracker.refused_acl.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%addr, "connection refused by the ACL: fixed 403, closed");
                answer_acl(stream, &self.tracker.lingering);
                return refuse("refused by the ACL");
            }
            Err(_) => return refuse("peer gone"),
        }
        let Some(conn) = self.tracker.admit() else {
            return refuse("connection limit reached");
        };
        let guarded = Guarded::new(stream, conn.clone(), self.tracker.clone());
        Either::Right(self.inner.accept(
            guarded,
            Tracked {
                inner: service,
                conn,
            },
        ))
    }
}

/// A connection's stream: fails once evicted, or when the idle or header timeout passes.
pub struct Guarded<I> {
    inner: I,
    conn: Arc<ConnShared>,
    tracker: Arc<Tracker>,
    limits: ConnLimits,
    seen_finished: u64,
    last_activity: Instant,
    /// When the headers being read became due: the connection's start for its first
    /// request, else the first byte after the previous one (None: idle, nothing read yet).
    head_started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
}

impl<I> Guarded<I> {
    fn new(inner: I, conn: Arc<ConnShared>, tracker: Arc<Tracker>) -> Guarded<I> {
        let now = Instant::now();
        let limits = tracker.limits;
        let at = now + limits.header_read_timeout;
        Guarded {
            inner,
            conn,
            tracker,
            limits,
            seen_finished: 0,
            last_activity: now,
            // A new connection owes its first request's headers from the start.
            head_started: Some(now),
            timer: Box::pin(tokio::time::sleep_until(at)),
            timer_at: at,
        }
    }

    /// A request finished since we last looked: the connection is idle from now on.
    fn refresh(&mut self) {
        let f = self.conn.finished.load(Ordering::SeqCst);
        if f != self.seen_finished {
            self.seen_finished = f;
            self.last_activity = Instant::now();
            self.head_started = None;
        }
    }

    fn evicted(&self) -> Option<io::Error> {
        self.conn.evicted.load(Ordering::SeqCst).then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed to make room (connection limit)",
            )
        })
    }

    /// The inner stream is not ready: arm the timer of the current phase and check it.
    fn pending(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.conn.waker.register(cx.waker());
        if let Some(e) = self.evicted() {
            return Some(e);
        }
        // in_flight first, then `finished` (see InFlight::drop for the order of the writes).
        if self.conn.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.refresh();
        let deadline = match self.head_started {
            Some(t) => t + self.limits.header_read_timeout,
            None => self.last_activity + self.limits.idle_timeout,
        };
        if deadline != self.timer_at {
            self.timer.as_mut().reset(deadline);
            self.timer_at = deadline;
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.tracker.timed_out.fetch_add(1, Ordering::Relaxed);
            let what = if self.head_started.is_some() {
                "request headers not received within [server] header_read_timeout"
            } else {
                "connection idle longer than [server] idle_timeout"
            };
            tracing::debug!(reason = what, "connection closed");
            return Some(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        None
    }

    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.last_activity = Instant::now();
        }
    }
}

impl<I> Drop for Guarded<I> {
    fn drop(&mut self) {
        self.tracker.forget(self.conn.id);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.evicted() {
            return Poll::Ready(Err(e));
        }
        self.refresh();
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let now = Instant::now();
                    self.last_activity = now;
                    if self.head_started.is_none()
                        && self.conn.in_flight.load(Ordering::SeqCst) == 0
                    {
                        self.head_started = Some(now);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.pending(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> Guarded<I> {
    /// One write through the guard (both write forms): refused once evicted, counted as
    /// activity when bytes go out, and a write that waits is subject to the stall rule.
    fn guarded_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.evicted() {
            return Poll::Ready(Err(e));
        }
        self.refresh();
        match write(Pin::new(&mut self.inner), cx) {
            Poll::Ready(Ok(n)) => {
                self.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match self.pending(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guarded_write(cx, |inner, cx| inner.poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guarded_write(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.evicted() {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => match self.pending(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => match self.pending(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

/// A connection's service: marks the connection busy while one of its requests runs.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    conn: Arc<ConnShared>,
}

/// Held while a request's handler runs (dropped on completion or cancellation).
struct InFlight(Arc<ConnShared>);

impl InFlight {
    fn new(conn: Arc<ConnShared>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // `finished` before `in_flight`: a stream that sees no request running also sees
        // that one finished, so it never times out on the stale start of an old request.
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.waker.wake();
    }
}

impl<S, B> tower::Service<axum::http::Request<B>> for Tracked<S>
where
    S: tower::Service<axum::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let guard = InFlight::new(self.conn.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            drop(guard);
            r
        })
    }
}

/// Read the request body within `body_read_timeout` (and `max_body_bytes`): the request with
/// the body in memory, or the answer. Late: 408 and the connection closed.
pub async fn read_body(limits: ConnLimits, req: Request) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let read = http_body_util::BodyExt::collect(limited);
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Error::PayloadTooLarge.into_response());
        }
        // Broken framing (e.g. a chunk size that overflows, a body cut short): a bad request.
        Ok(Err(e)) => {
            return Err(
                Error::BadRequest(format!("Cannot read the request body: {e}.")).into_response(),
            );
        }
        Err(_) => {
            tracing::debug!(
                timeout_s = limits.body_read_timeout.as_secs_f64(),
                "request body not received in time: 408, connection closed"
            );
            return Err(error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "The request body did not arrive within {} s ([server] body_read_timeout); \
                     send it again.",
                    limits.body_read_timeout.as_secs_f64()
                ),
            ));
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A JSON error answer that also closes the connection (its request body is left unread).
fn error_response(status: StatusCode, message: &str) -> Response {
    let body = crate::api::types::ErrorBody {
        status: status.as_u16(),
        message: message.to_string(),
    };
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(&body).expect("a derived Serialize with string keys always serialises"),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Raise the soft open-file limit towards the hard one when `max_connections` needs it, and
/// warn when even the hard limit leaves too little room (the agent needs files and database
/// connections besides its clients).
pub fn check_fd_limit(max_connections: usize) {
    const RESERVE: u64 = 64;
    let want = max_connections as u64 + RESERVE;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur >= want {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: want.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        lim.rlim_cur = raised.rlim_cur;
    }
    if lim.rlim_cur < want {
        tracing::warn!(
            max_connections,
            open_file_limit = lim.rlim_cur,
            "[server] max_connections leaves fewer than {RESERVE} open files for the agent's own \
             files and database connections: lower max_connections or raise LimitNOFILE"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_acl_answer_is_well_formed() {
        let text = std::str::from_utf8(super::ACL_403).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 403);
    }
}
