//! Benchmark of the embedded endpoint (issue 2, point 10), run with
//! `cargo bench --bench server_bench`: POST throughput with 8 concurrent keep-alive clients
//! (which also fills one core server with 10,000 extensions), then the latency of GET on that
//! 10,000-extension collection. The server runs in-process on a loopback port with a temporary
//! data_dir, so every POST is a real durable commit.

use isymphony_sync::config::ServerConfig;
use serde_json::json;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const EXTENSIONS: usize = 10_000;
const GETS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        ..ServerConfig::default()
    };
    let server = isymphony_sync::server::start(&cfg, None).await?;
    let base = server.base_url();
    let setup = reqwest::Client::new();
    let r = setup
        .post(format!("{base}server/coreServers"))
        .basic_auth(
            "manager",
            Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
        )
        .json(&json!({"id": "bench-cs", "slug": "default", "name": "default"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 204, "core server create: {}", r.status());

    // 1. POST throughput, 8 keep-alive clients.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = c;
            while n < EXTENSIONS {
                let body = json!({
                    "id": uuid::Uuid::new_v4().to_string(),
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
                let r = client
                    .post(format!("{base}asterisk/bench-cs/extensions/"))
                    .basic_auth(
                        "manager",
                        Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
                    )
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 204, "POST: {}", r.status());
                n += CLIENTS;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "POST /asterisk/{{cs}}/extensions: {EXTENSIONS} requests, {CLIENTS} keep-alive clients, \
         {secs:.2} s, {:.0} POST/s",
        EXTENSIONS as f64 / secs
    );

    // 2. GET of the 10,000-extension collection (latency includes reading the whole body).
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(GETS);
    let mut size = 0;
    for i in 0..GETS + 3 {
        let t0 = Instant::now();
        let r = client
            .get(format!("{base}asterisk/bench-cs/extensions"))
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "GET: {}", r.status());
        let body = r.bytes().await?;
        let dt = t0.elapsed();
        size = body.len();
        if i >= 3 {
            times.push(dt); // the first three warm up connections and caches
        }
    }
    let check: Vec<serde_json::Value> = serde_json::from_slice(
        &client
            .get(format!("{base}asterisk/bench-cs/extensions"))
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
            .send()
            .await?
            .bytes()
            .await?,
    )?;
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
    server.shutdown().await;
    Ok(())
}
