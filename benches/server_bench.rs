//! Benchmark of the embedded endpoint (issue 2, point 10; issue 20, point 2), run with
//! `cargo bench --bench server_bench`: POST throughput with 8 concurrent keep-alive clients
//! (which also fills one core server with 10,000 extensions), the throughput of GET of one
//! object with 8 keep-alive clients, then the latency of GET on that 10,000-extension
//! collection. The server runs in-process on a loopback port with a temporary data_dir, so
//! every POST is a real durable commit.
//!
//! The endpoint runs on a runtime of its own (threads `endpoint*`, which also run its group
//! commits), so each figure also shows the endpoint's CPU per request. The clients are plain
//! keep-alive HTTP/1 connections (hyper's client connection, no pool, no URL parsing): on 2 cores
//! the clients share the CPU with the endpoint, and a heavier client library would measure itself.

#[path = "support/threads.rs"]
mod threads;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use isymphony_sync::config::ServerConfig;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const EXTENSIONS: usize = 10_000;
const GETS: usize = 50;
/// GETs of one object, spread over the clients.
const GET_ONE: usize = 80_000;
const PREFIX: &str = "/communication_manager/api/resource/";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// One keep-alive HTTP/1 connection to the endpoint.
struct Conn {
    tx: SendRequest<Body>,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
        tokio::spawn(conn);
        let creds = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("manager:{}", isymphony_sync::config::DEFAULT_API_PASSWORD),
        );
        Ok(Conn {
            tx,
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: HeaderValue::from_str(&format!("Basic {creds}"))?,
        })
    }

    /// One request; the status and the whole body.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.tx.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path}"))
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.auth.clone());
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b)
            }
            None => Body::empty(),
        };
        let resp = self.tx.send_request(req.body(body)?).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(Body::new(resp.into_body()), usize::MAX).await?;
        Ok((status, bytes))
    }
}

fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // BENCH_ENDPOINT_THREADS: the endpoint's worker threads (default: one per core).
    let endpoint_threads = std::env::var("BENCH_ENDPOINT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cores);
    let endpoint = threads::runtime("endpoint", endpoint_threads)?;
    let clients = threads::runtime("client", cores)?;
    let dir = tempfile::tempdir()?;
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        ..ServerConfig::default()
    };
    let server = endpoint.block_on(isymphony_sync::server::start(&cfg, None))?;
    println!("server_bench: load average {}", threads::load());
    let result = clients.block_on(run(server.http_addr()));
    endpoint.block_on(server.shutdown());
    result
}

/// Where a step starts: its clock, CPU split and the endpoint's context switches.
struct Start(Instant, (f64, f64), u64);

fn start() -> Start {
    Start(
        Instant::now(),
        threads::cpu_split(),
        threads::endpoint_switches(),
    )
}

/// Wall time, requests per second and the endpoint's CPU and context switches per request,
/// as one line.
fn report(what: &str, n: usize, Start(t, cpu, switches): Start) -> String {
    let secs = t.elapsed().as_secs_f64();
    let now = threads::cpu_split();
    format!(
        "{what}: {n} requests, {CLIENTS} keep-alive clients, {secs:.2} s, {:.0} {}/s; \
         CPU endpoint {:.0} µs/request, clients {:.0} µs/request; endpoint context switches \
         {:.2}/request",
        n as f64 / secs,
        what.split(' ').next().unwrap_or(""),
        (now.1 - cpu.1) * 1e6 / n as f64,
        (now.0 - cpu.0) * 1e6 / n as f64,
        threads::endpoint_switches().saturating_sub(switches) as f64 / n as f64,
    )
}

async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let mut setup = Conn::open(addr).await?;
    let body = json!({"id": "bench-cs", "slug": "default", "name": "default"});
    let (status, _) = setup
        .send(
            Method::POST,
            "server/coreServers",
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    anyhow::ensure!(status == 204, "core server create: {status}");

    // 1. POST throughput, 8 keep-alive clients.
    let started = start();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut n = c;
            let mut ids = Vec::new();
            while n < EXTENSIONS {
                let id = uuid::Uuid::new_v4().to_string();
                let body = json!({
                    "id": id,
                    "extension": format!("{}", 10_000 + n),
                    "displayName": format!("Extension {n}"),
                    "autoAnswer": false,
                    "peer": format!("SIP/{}", 10_000 + n),
                    "agentName": format!("Extension {n}"),
                    "agentLocation": format!("Local/{}@from-queue/n", 10_000 + n),
                    "agentInterface": format!("hint:{}@ext-local", 10_000 + n),
                    "agentPenalty": 0,
                    "agentPaused": false,
                    "voiceMailContext": "default",
                    "voiceMailBox": format!("{}", 10_000 + n),
                    "restricted": false
                });
                let path = "asterisk/bench-cs/extensions/";
                let body = Some(serde_json::to_vec(&body)?);
                let (status, _) = conn.send(Method::POST, path, body).await?;
                anyhow::ensure!(status == 204, "POST: {status}");
                ids.push(id);
                n += CLIENTS;
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let mut ids = Vec::with_capacity(EXTENSIONS);
    for t in tasks {
        ids.extend(t.await??);
    }
    println!(
        "{}",
        report("POST /asterisk/{cs}/extensions", EXTENSIONS, started)
    );

    get_one(addr, Arc::new(ids)).await?;
    // A fresh connection: on a loaded machine the steps above outlast the endpoint's
    // idle_timeout (30 s), which closes the idle setup connection.
    get_collection(&mut Conn::open(addr).await?).await
}

/// 2. GET of one object (each a different extension, round robin), 8 keep-alive clients.
async fn get_one(addr: SocketAddr, ids: Arc<Vec<String>>) -> anyhow::Result<()> {
    let started = start();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut n = c;
            while n < GET_ONE {
                let path = format!("asterisk/bench-cs/extensions/{}", ids[n % ids.len()]);
                let (status, body) = conn.send(Method::GET, &path, None).await?;
                anyhow::ensure!(status == 200, "GET one: {status}");
                anyhow::ensure!(body.len() > 100, "GET one: {} bytes", body.len());
                n += CLIENTS;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let what = "GET /asterisk/{cs}/extensions/{id}";
    println!("{}", report(what, GET_ONE, started));
    Ok(())
}

/// 3. GET of the 10,000-extension collection (latency includes reading the whole body).
async fn get_collection(conn: &mut Conn) -> anyhow::Result<()> {
    let path = "asterisk/bench-cs/extensions";
    let mut times = Vec::with_capacity(GETS);
    let mut size = 0;
    for i in 0..GETS + 3 {
        let t0 = Instant::now();
        let (status, body) = conn.send(Method::GET, path, None).await?;
        anyhow::ensure!(status == 200, "GET: {status}");
        let dt = t0.elapsed();
        size = body.len();
        if i >= 3 {
            times.push(dt); // the first three warm up connections and caches
        }
    }
    let (_, body) = conn.send(Method::GET, path, None).await?;
    let check: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
    anyhow::ensure!(
        check.len() == EXTENSIONS,
        "collection has {} items",
        check.len()
    );
    times.sort();
    println!(
        "GET /asterisk/{{cs}}/extensions ({EXTENSIONS} items, {:.1} MB): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {GETS} requests",
        size as f64 / 1e6,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    Ok(())
}
