//! Fault injection: a TEST FACILITY that makes the embedded endpoint misbehave on purpose, so
//! tests can prove the agent survives a faulty network (issue 6). Off unless `[server.faults]`
//! is present.
//!
//! Per request, one random draw picks at most one of the exclusive kinds (`error_500`,
//! `drop_after_apply`, `slow`, in that order, each over its share of *matching* requests) and a
//! second draw decides whether `latency` is added. The generator is seedable (`seed`), so a
//! sequential test sees the same faults on every run.
//!
//! `drop_after_apply` is honest: the handler runs and commits, and then the connection's
//! socket is made to fail every write, so hyper closes it without having sent a byte of the
//! response. For that, [`FaultAcceptor`] wraps each accepted stream in a [`KillableStream`]
//! and hands each request a [`ConnKill`] switch for its connection.

use super::error::Error;
use crate::api::types::ErrorBody;
use crate::config::{FaultRule, FaultsConfig};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const DEFAULT_LATENCY: Duration = Duration::from_millis(100);
const DEFAULT_SLOW: Duration = Duration::from_secs(60);

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Error500,
    DropAfterApply,
    Slow(Duration),
}

/// How many faults of each kind were injected (for tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub error_500: u64,
    pub drop_after_apply: u64,
    pub latency: u64,
    pub slow: u64,
}

/// The configured faults and their random generator.
pub struct Faults {
    cfg: FaultsConfig,
    rng: Mutex<StdRng>,
    counts: [AtomicU64; 4],
}

fn matches(rule: &FaultRule, method: &Method, path: &str) -> bool {
    (rule.methods.is_empty()
        || rule
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.as_str())))
        && (rule.paths.is_empty() || rule.paths.iter().any(|p| path.contains(p.as_str())))
}

impl Faults {
    pub fn new(cfg: &FaultsConfig) -> Faults {
        let rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Faults {
            cfg: cfg.clone(),
            rng: Mutex::new(rng),
            counts: Default::default(),
        }
    }

    /// Decide the fate of one request: (exclusive fault, added latency).
    pub fn decide(&self, method: &Method, path: &str) -> (Option<Fault>, Option<Duration>) {
        let (u, v) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.gen::<f64>(), rng.gen::<f64>())
        };
        let mut fault = None;
        let mut edge = 0.0;
        let kinds = [
            (&self.cfg.error_500, 0usize),
            (&self.cfg.drop_after_apply, 1),
            (&self.cfg.slow, 3),
        ];
        for (rule, kind) in kinds {
            let Some(r) = rule else { continue };
            if !matches(r, method, path) {
                continue;
            }
            edge += r.share;
            if u < edge {
                fault = Some(match kind {
                    0 => Fault::Error500,
                    1 => Fault::DropAfterApply,
                    _ => Fault::Slow(r.delay_ms.map_or(DEFAULT_SLOW, Duration::from_millis)),
                });
                self.counts[kind].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        let latency = match &self.cfg.latency {
            Some(r) if matches(r, method, path) && v < r.share => {
                self.counts[2].fetch_add(1, Ordering::Relaxed);
                Some(r.delay_ms.map_or(DEFAULT_LATENCY, Duration::from_millis))
            }
            _ => None,
        };
        (fault, latency)
    }

    pub fn stats(&self) -> FaultStats {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        FaultStats {
            error_500: c(0),
            drop_after_apply: c(1),
            latency: c(2),
            slow: c(3),
        }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`), placed behind the access check.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (fault, latency) = faults.decide(&method, &path);
    if let Some(d) = latency {
        tracing::debug!(%method, %path, delay_ms = d.as_millis() as u64, "injected fault: latency");
        tokio::time::sleep(d).await;
    }
    match fault {
        None => next.run(req).await,
        Some(Fault::Error500) => {
            tracing::debug!(%method, %path, "injected fault: 500 before applying");
            injected_500()
        }
        Some(Fault::DropAfterApply) => {
            let kill = req.extensions().get::<ConnKill>().cloned();
            let resp = next.run(req).await;
            match kill {
                Some(k) => {
                    tracing::debug!(%method, %path, status = resp.status().as_u16(),
                        "injected fault: connection dropped after applying");
                    k.kill();
                }
                // Not served through FaultAcceptor (cannot happen in `server::start`).
                None => tracing::warn!("drop_after_apply: no connection switch; answered"),
            }
            resp
        }
        Some(Fault::Slow(d)) => {
            tracing::debug!(%method, %path, delay_ms = d.as_millis() as u64, "injected fault: slow");
            // A detached task: the request is applied after the delay even when the client
            // has given up meanwhile (hyper would otherwise drop it with the connection).
            let task = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                next.run(req).await
            });
            match task.await {
                Ok(resp) => resp,
                Err(e) => Error::Internal(format!("slow request task failed: {e}")).into_response(),
            }
        }
    }
}

fn injected_500() -> Response {
    let body = ErrorBody {
        status: 500,
        message: "Internal server error.".into(),
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(&body).expect("a derived Serialize with string keys always serialises"),
    )
        .into_response()
}

/// The switch of one connection: once killed, its socket fails every write and read, so
/// hyper drops the connection without writing the pending response.
#[derive(Clone, Default)]
pub struct ConnKill(Arc<AtomicBool>);

impl ConnKill {
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An accepted stream that fails once its [`ConnKill`] is thrown.
pub struct KillableStream<I> {
    inner: I,
    kill: ConnKill,
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by fault injection",
    )
}

impl<I: AsyncRead + Unpin> AsyncRead for KillableStream<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for KillableStream<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.kill.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An `axum_server` acceptor that makes each connection killable and gives each of its
/// requests the switch (as a request extension).
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultAcceptor;

/// A connection's service that hands every request the connection's [`ConnKill`].
#[derive(Clone)]
pub struct AddKill<S> {
    inner: S,
    kill: ConnKill,
}

impl<S, B> tower::Service<axum::http::Request<B>> for AddKill<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, mut req: axum::http::Request<B>) -> S::Future {
        req.extensions_mut().insert(self.kill.clone());
        self.inner.call(req)
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for FaultAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = KillableStream<I>;
    type Service = AddKill<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let kill = ConnKill::default();
        std::future::ready(Ok((
            KillableStream {
                inner: stream,
                kill: kill.clone(),
            },
            AddKill {
                inner: service,
                kill,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FaultsConfig {
        FaultsConfig {
            seed: Some(1),
            error_500: Some(FaultRule::share(0.1)),
            drop_after_apply: Some(FaultRule {
                share: 0.05,
                methods: vec!["post".into()],
                ..FaultRule::default()
            }),
            ..FaultsConfig::default()
        }
    }

    #[test]
    fn shares_and_filters() {
        let f = Faults::new(&cfg());
        let mut e500 = 0;
        let mut dropped = 0;
        for _ in 0..20_000 {
            match f.decide(&Method::POST, "/x").0 {
                Some(Fault::Error500) => e500 += 1,
                Some(Fault::DropAfterApply) => dropped += 1,
                _ => {}
            }
            // GETs never match the POST-only rule.
            assert_ne!(f.decide(&Method::GET, "/x").0, Some(Fault::DropAfterApply));
        }
        assert!((1700..2300).contains(&e500), "{e500}");
        assert!((750..1250).contains(&dropped), "{dropped}");
    }

    #[test]
    fn seeded_runs_repeat() {
        let a = Faults::new(&cfg());
        let b = Faults::new(&cfg());
        for _ in 0..500 {
            assert_eq!(
                a.decide(&Method::POST, "/p").0,
                b.decide(&Method::POST, "/p").0
            );
        }
    }

    #[test]
    fn path_filter_is_a_substring() {
        let r = FaultRule {
            share: 1.0,
            paths: vec!["extensions".into()],
            ..FaultRule::default()
        };
        assert!(matches(&r, &Method::PUT, "/a/asterisk/cs/extensions/1"));
        assert!(!matches(&r, &Method::PUT, "/a/users"));
    }
}
