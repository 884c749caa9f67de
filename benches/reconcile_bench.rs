//! Benchmark of the reconciler (issue 4, point 11), run with
//! `cargo bench --bench reconcile_bench` (optionally `-- N` for another size; default 10,000):
//! the initial sync of N extensions, each with a login, contact, voicemail e-mail and binding,
//! into the embedded server (in-process, loopback, temporary data_dir, durable commits); then
//! a converged pass, a one-change pass and a full verify, with wall time and request counts
//! as the server counted them. `BENCH_CONCURRENCY=N` overrides `[sync] concurrency` (8).
//!
//! Each step also prints the CPU seconds of the agent and of the endpoint: the endpoint runs on
//! a runtime of its own (threads `endpoint*`, which also run its group commits), the agent on the
//! bench's (threads `agent*`), so `/proc/self/task/*/stat` tells them apart as if they were two
//! processes. `BENCH_DELAY_MS=N` puts a delaying TCP relay between them (a slow iSymphony: each
//! answer arrives N ms late) on a third runtime, and prints how many connections the agent opened
//! through it.

#[path = "support/threads.rs"]
mod threads;

use isymphony_sync::config::Config;
use isymphony_sync::freepbx::snapshot::*;
use isymphony_sync::reconcile::{run_pass_on, source, PassOptions};
use isymphony_sync::secret::Secret;
use isymphony_sync::server::{self, RequestStats};
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn snapshot(n: usize, renamed: Option<usize>) -> Snapshot {
    let mut s = Snapshot {
        format: 1,
        hostname: "bench-pbx".into(),
        // FreePBX's own tables and `modules` (empty: no other module, so no other table is
        // implied; see freepbx::tables).
        tables: [
            "ampusers",
            "modules",
            "users",
            "devices",
            "sip",
            "cxpanel_users",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        cx_settings: Some(CxSettings {
            server: Some(CxServerSettings {
                sync_with_userman: false,
                clean_unknown_items: false,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    for i in 0..n {
        let ext = (10_000 + i).to_string();
        let name = if renamed == Some(i) {
            "Renamed Person".to_string()
        } else {
            format!("Person {i}")
        };
        s.users.push(UserRow {
            extension: ext.clone(),
            name: name.clone(),
            voicemail: "default".into(),
        });
        s.devices.push(DeviceRow {
            id: ext.clone(),
            tech: "pjsip".into(),
            dial: format!("PJSIP/{ext}"),
            devicetype: "fixed".into(),
            user: ext.clone(),
            description: name.clone(),
        });
        s.cxpanel_users.push(CxUser {
            user_id: ext.clone(),
            display_name: name.clone(),
            peer: format!("PJSIP/{ext}"),
            add_extension: true,
            full: true,
            add_user: true,
            hashed_password: Secret::new(hex::encode(Sha1::digest(format!("pw-{ext}")))),
            parent_user_id: ext.clone(),
            ..Default::default()
        });
        s.voicemail.push(Mailbox {
            context: "default".into(),
            mailbox: ext.clone(),
            name,
            emails: vec![format!("u{ext}@example.com")],
        });
    }
    s
}

fn delta(a: RequestStats, b: RequestStats) -> String {
    format!(
        "{:>6} requests ({} GET, {} POST, {} PUT, {} DELETE)",
        b.total() - a.total(),
        b.get - a.get,
        b.post - a.post,
        b.put - a.put,
        b.delete - a.delete
    )
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let delay = std::env::var("BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Two runtimes of the machine's size, as two processes would have.
    let endpoint = threads::runtime("endpoint", cores)?;
    let agent = threads::runtime("agent", cores)?;
    let proxy = threads::runtime("proxy", 1)?;
    let dir = tempfile::tempdir()?;
    let mut cfg = Config::default();
    cfg.server.http_listen = "127.0.0.1:0".parse()?;
    cfg.server.data_dir = dir.path().join("server");
    cfg.sync.state_dir = Some(dir.path().join("state"));
    if let Some(c) = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.sync.concurrency = c;
    }
    let srv = endpoint.block_on(server::start(&cfg.server, None))?;
    let (url, connections) = match delay {
        Some(d) => {
            let (addr, count) = proxy.block_on(delay_proxy(srv.http_addr(), d))?;
            let url = srv
                .base_url()
                .replace(&srv.http_addr().to_string(), &addr.to_string());
            (url, Some(count))
        }
        None => (srv.base_url(), None),
    };
    source::target_embedded(&mut cfg, &url);
    println!(
        "reconcile_bench: {n} extensions with users (contact, e-mail, binding), concurrency {}, \
         {}; load average {}",
        cfg.sync.concurrency,
        delay.map_or("no added delay".into(), |d| format!(
            "{} ms added to each answer by a relay",
            d.as_millis()
        )),
        threads::load()
    );
    let result = agent.block_on(run(n, &cfg, &srv, connections.as_deref()));
    endpoint.block_on(srv.shutdown());
    result
}

async fn run(
    n: usize,
    cfg: &Config,
    srv: &server::ServerHandle,
    connections: Option<&AtomicUsize>,
) -> anyhow::Result<()> {
    let base = snapshot(n, None);
    let changed = snapshot(n, Some(n / 2));
    let steps: [(&str, &Snapshot, PassOptions); 4] = [
        ("initial sync", &base, PassOptions::default()),
        ("converged pass", &base, PassOptions::default()),
        ("one-change pass", &changed, PassOptions::default()),
        (
            "full verify",
            &changed,
            PassOptions {
                full: true,
                ..Default::default()
            },
        ),
    ];
    for (name, snap, opts) in steps {
        let input = source::from_snapshot(snap, cfg);
        let before = srv.stats();
        let conns = connections.map(|c| c.load(Ordering::Relaxed));
        let cpu = threads::cpu_split();
        let t = Instant::now();
        let r = run_pass_on(cfg, &opts, input, None, SystemTime::now()).await?;
        let wall = t.elapsed();
        let cpu2 = threads::cpu_split();
        anyhow::ensure!(
            r.failed == 0 && r.errors.is_empty(),
            "{name}: {:?}",
            r.errors
        );
        let opened = match (connections, conns) {
            (Some(c), Some(b)) => format!(", {} connections", c.load(Ordering::Relaxed) - b),
            _ => String::new(),
        };
        println!(
            "{name:<16} {:>8.2} s  {:>6} operations  {}  CPU agent {:.2} s, endpoint {:.2} s{opened}",
            wall.as_secs_f64(),
            r.plan.ops.len(),
            delta(before, srv.stats()),
            cpu2.0 - cpu.0,
            cpu2.1 - cpu.1,
        );
    }
    // `BENCH_REPEAT=N`: N more converged passes, for a steady figure (and a profile) of the
    // pass a single change costs.
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if repeat > 0 {
        let mut walls = Vec::with_capacity(repeat);
        let cpu = threads::cpu_split();
        for _ in 0..repeat {
            let input = source::from_snapshot(&changed, cfg);
            let t = Instant::now();
            run_pass_on(cfg, &PassOptions::default(), input, None, SystemTime::now()).await?;
            walls.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let cpu2 = threads::cpu_split();
        walls.sort_by(|a, b| a.total_cmp(b));
        println!(
            "converged x{repeat}    p50 {:.1} ms, p95 {:.1} ms; CPU per pass agent {:.1} ms, endpoint {:.1} ms",
            walls[repeat / 2],
            walls[(repeat * 95 / 100).min(repeat - 1)],
            (cpu2.0 - cpu.0) * 1000.0 / repeat as f64,
            (cpu2.1 - cpu.1) * 1000.0 / repeat as f64,
        );
    }
    Ok(())
}

/// A TCP relay to `upstream` that holds each chunk of the server's answers for `delay` before
/// passing it on (a delay line: order is kept and delays do not add up), so every request
/// takes `delay` longer; it counts the connections accepted.
async fn delay_proxy(
    upstream: SocketAddr,
    delay: Duration,
) -> std::io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = l.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(relay(down, upstream, delay));
        }
    });
    Ok((addr, count))
}

async fn relay(down: TcpStream, upstream: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    down.set_nodelay(true)?;
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    let asks = async move {
        tokio::io::copy(&mut dr, &mut uw).await?;
        uw.shutdown().await
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let answers_in = async move {
        loop {
            let mut buf = vec![0; 64 * 1024];
            let got = ur.read(&mut buf).await?;
            if got == 0 || tx.is_closed() {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(got);
            let _ = tx.send((Instant::now() + delay, buf));
        }
    };
    let answers_out = async move {
        while let Some((at, buf)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            dw.write_all(&buf).await?;
        }
        dw.shutdown().await
    };
    let _ = tokio::join!(asks, answers_in, answers_out);
    Ok(())
}
