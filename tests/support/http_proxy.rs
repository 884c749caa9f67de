//! A recording HTTP proxy for the agent tests: a real HTTP hop on loopback that records every
//! write (when it arrived, when the server had answered) and can hold the next GET or delay
//! writes, so a test can put a pass at a chosen point.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A write that went through a proxy: when it arrived and when the server had answered.
#[derive(Debug, Clone)]
pub struct Write {
    pub start: Instant,
    pub end: Instant,
    pub what: String,
}

/// A GET held at the proxy: `held` fires when it arrives, `release` lets it through.
struct Hold {
    held: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

#[derive(Default)]
struct Recorder {
    writes: Mutex<Vec<Write>>,
    hold: Mutex<Option<Hold>>,
    write_delay: Mutex<Duration>,
}

/// A recording HTTP proxy in front of `upstream` (a real HTTP hop on loopback).
pub struct RecordingProxy {
    pub url: String,
    rec: Arc<Recorder>,
}

impl RecordingProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> RecordingProxy {
        let rec = Arc::new(Recorder::default());
        let client = reqwest::Client::new();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((rec.clone(), client, upstream));
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        RecordingProxy {
            url: format!("http://{addr}/communication_manager/api/resource/"),
            rec,
        }
    }

    /// Hold the next GET; the receiver fires when it has arrived.
    pub fn hold_next_get(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (held_tx, held_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.rec.hold.lock().unwrap() = Some(Hold {
            held: held_tx,
            release: release_rx,
        });
        (held_rx, release_tx)
    }

    /// Delay every write by `d` before forwarding it.
    pub fn set_write_delay(&self, d: Duration) {
        *self.rec.write_delay.lock().unwrap() = d;
    }

    pub fn writes(&self) -> Vec<Write> {
        self.rec.writes.lock().unwrap().clone()
    }
}

type ProxyState = (Arc<Recorder>, reqwest::Client, std::net::SocketAddr);

async fn forward(State((rec, client, upstream)): State<ProxyState>, req: Request) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    if method != reqwest::Method::GET {
        let d = *rec.write_delay.lock().unwrap();
        tokio::time::sleep(d).await;
    }
    if method == reqwest::Method::GET {
        let hold = rec.hold.lock().unwrap().take();
        if let Some(h) = hold {
            let _ = h.held.send(());
            let _ = h.release.await;
        }
    }
    let mut r = client.request(method.clone(), format!("http://{upstream}{path}"));
    for (k, v) in &headers {
        if k != "host" && k != "content-length" && k != "connection" {
            r = r.header(k, v);
        }
    }
    let resp = r.body(body).send().await;
    let out = match resp {
        Ok(resp) => {
            let mut b = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    b = b.header(k, v);
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            b.body(Body::from(bytes)).unwrap()
        }
        Err(_) => Response::builder().status(502).body(Body::empty()).unwrap(),
    };
    if method != reqwest::Method::GET {
        rec.writes.lock().unwrap().push(Write {
            start,
            end: Instant::now(),
            what: format!("{method} {path}"),
        });
    }
    out
}
