//! Benchmark of the Live API against a real Asterisk (issue 17, point 8), run with
//! `cargo bench --bench live_bench` (needs the test Asterisk that `scripts/test.sh` builds, or
//! `ASTERISK_PREFIX`). The embedded endpoint runs in-process with the Asterisk backend and
//! 1,000 configured extensions (`Local/<n>@sim-phone`); Asterisk runs as its own process.
//!
//! Figures, each printed as `FIGURE …`:
//! 1. snapshot at connect (login + every list) with 40 calls up (80 channels);
//! 2. event-to-visible latency under a storm of channel events (short calls originated back to
//!    back by a second AMI client, paced on the events received to `BENCH_STORM_RATE` a
//!    second, default 300) for
//!    `BENCH_STORM_SECS` (default 60): from the moment the marker event's bytes reach this host
//!    (a TCP relay between Asterisk and the backend timestamps them) to the moment the live
//!    model serves the change; per 10-second slice, so growth shows;
//! 3. GET of the 1,000 live extensions over HTTP (keep-alive), p50 / p99;
//! 4. action round trip (POST …/dnd over HTTP to Asterisk's response), p50 / p99;
//! 5. idle CPU of this process (endpoint + live model + AMI client) over `BENCH_IDLE_SECS`
//!    (default 30) and RSS growth from before the backend started to after the storm.

#[path = "../tests/support/mod.rs"]
mod support;

use isymphony_sync::config::{
    LiveActions, LiveBackend, LiveConfig, ServerConfig, DEFAULT_API_PASSWORD,
};
use isymphony_sync::live::ami::ActionBuilder;
use isymphony_sync::live::backend::{Backend, Shared};
use isymphony_sync::live::{asterisk, Live};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::asterisk::{Asterisk, Probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EXTENSIONS: u32 = 1_000;
const CS: &str = "bench-cs";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// This process's CPU time (user + system).
fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A TCP relay between the backend and Asterisk that timestamps the first time each marker
/// (a byte string) passes from Asterisk to the backend.
struct Relay {
    port: u16,
    seen: Seen,
}

/// Markers to look for, and when each was first seen.
type Seen = Arc<Mutex<Vec<(Vec<u8>, Option<Instant>)>>>;

impl Relay {
    async fn start(upstream: u16) -> anyhow::Result<Relay> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let seen: Seen = Arc::default();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let seen = s2.clone();
                tokio::spawn(async move {
                    let (mut ur, mut uw) = up.split();
                    let (mut dr, mut dw) = down.split();
                    let to_up = tokio::io::copy(&mut dr, &mut uw);
                    let to_down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut tail: Vec<u8> = Vec::new();
                        loop {
                            let n = ur.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            let now = Instant::now();
                            tail.extend_from_slice(&buf[..n]);
                            {
                                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                                for (m, t) in s.iter_mut().filter(|(_, t)| t.is_none()) {
                                    if tail.windows(m.len()).any(|w| w == m.as_slice()) {
                                        *t = Some(now);
                                    }
                                }
                            }
                            let keep = tail.len().saturating_sub(256);
                            tail.drain(..keep);
                            dw.write_all(&buf[..n]).await?;
                        }
                        Ok::<_, std::io::Error>(())
                    };
                    let _ = tokio::join!(to_up, to_down);
                });
            }
        });
        Ok(Relay { port, seen })
    }
    fn watch(&self, marker: &str) {
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        s.push((marker.as_bytes().to_vec(), None));
    }
    fn seen(&self, marker: &str) -> Option<Instant> {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        s.iter()
            .find(|(m, _)| m.as_slice() == marker.as_bytes())
            .and_then(|(_, t)| *t)
    }
}

/// Wait until `pred` holds on the facts, returning the instant it was first seen to hold.
async fn visible(
    shared: &Shared,
    pred: impl Fn(&isymphony_sync::live::facts::Facts) -> bool,
) -> Instant {
    let mut rx = shared.subscribe();
    loop {
        if shared.read(&pred) {
            return Instant::now();
        }
        if tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .is_err()
        {
            panic!("the change never became visible");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let ast = Asterisk::start();
    let relay = Relay::start(ast.port).await?;
    let dir = tempfile::tempdir()?;
    let scfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        ..ServerConfig::default()
    };
    // The configured side first (1,000 extensions), then the backend, so that RSS growth is
    // the live side's alone.
    let server = isymphony_sync::server::start(&scfg, None).await?;
    let base = server.base_url();
    configure(&base).await?;
    server.shutdown().await;

    let rss_before = rss_kib();
    let mut ami = ast.settings();
    ami.port = relay.port;
    let lcfg = LiveConfig {
        backend: LiveBackend::Asterisk,
        actions: LiveActions::All,
        ..LiveConfig::default()
    };
    let t = Instant::now();
    let handle = asterisk::start(ami.clone());
    let shared = handle.shared().clone();
    visible(&shared, |f| f.link.is_up()).await;
    println!("FIGURE first connect with no calls: {}", ms(t.elapsed()));
    let live = Live {
        cfg: lcfg,
        backend: Backend::Asterisk(handle),
    };
    let server = isymphony_sync::server::start_live(&scfg, None, None, Some(live)).await?;
    let root = format!(
        "http://{}/communication_manager/rest/live/coreServers/{CS}/",
        server.http_addr()
    );

    snapshot(&ast).await?;
    storm(&ast, &relay, &shared).await?;
    let rss_after = rss_kib();
    gets(&root).await?;
    actions(&root).await?;
    idle().await;
    println!(
        "FIGURE RSS: {} KiB before the backend, {} KiB after the storm (growth {} KiB)",
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before)
    );
    server.shutdown().await;
    Ok(())
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn configure(base: &str) -> anyhow::Result<()> {
    let c = client();
    let post = move |path: String, body: serde_json::Value| {
        let c = c.clone();
        async move {
            let r = c
                .post(path)
                .basic_auth("manager", Some(DEFAULT_API_PASSWORD))
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 204, "create: {}", r.status());
            Ok::<_, anyhow::Error>(())
        }
    };
    post(
        format!("{base}server/coreServers"),
        json!({"id": CS, "slug": "default", "name": "default"}),
    )
    .await?;
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let post = post.clone();
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < EXTENSIONS {
                let num = 1000 + n;
                post(
                    format!("{base}asterisk/{CS}/extensions"),
                    json!({
                        "id": uuid::Uuid::new_v4().to_string(),
                        "extension": num.to_string(),
                        "displayName": format!("Phone {num}"),
                        "peer": format!("Local/{num}@sim-phone"),
                    }),
                )
                .await?;
                n += 8;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn originate_wait() -> ActionBuilder {
    ActionBuilder::new("Originate")
        .constant("Channel", "Local/s@answer-wait")
        .constant("Context", "from-internal")
        .constant("Exten", "9999")
        .constant("Priority", "1")
        .constant("Async", "true")
}

/// Figure 1: a fresh backend's login and snapshot with 40 calls up, five times.
async fn snapshot(ast: &Asterisk) -> anyhow::Result<()> {
    let mut probe = Probe::open(ast).await;
    for _ in 0..40 {
        probe.ask(originate_wait()).await;
    }
    let mut channels = 0;
    for _ in 0..100 {
        channels = probe
            .ask(ActionBuilder::new("CoreShowChannels"))
            .await
            .events
            .len();
        if channels >= 80 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let h = asterisk::start(ast.settings());
        let shared = h.shared().clone();
        visible(&shared, |f| f.link.is_up() && f.channels.len() >= 80).await;
        times.push(t.elapsed());
        h.shutdown().await;
    }
    times.sort();
    println!(
        "FIGURE snapshot at connect (login + every list, {channels} channels up): p50 {}, max {}",
        ms(pct(&times, 0.5)),
        ms(times[times.len() - 1])
    );
    probe
        .ask(ActionBuilder::new("Hangup").constant("Channel", "/^Local\\/s@answer-wait-.*/"))
        .await;
    Ok(())
}

/// Figure 2: event-to-visible latency while a second AMI client keeps Asterisk emitting about
/// `BENCH_STORM_RATE` channel events a second.
async fn storm(ast: &Asterisk, relay: &Relay, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let rate = env_u64("BENCH_STORM_RATE", 300) as f64;
    let secs = env_u64("BENCH_STORM_SECS", 60);
    // The generator paces itself on the events the backend has really received: it
    // originates one more short call whenever the count falls behind `rate` a second.
    let mut gen = Probe::open(ast).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the snapshot step's calls are gone
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let (stop2, calls2, shared2) = (stop.clone(), calls.clone(), shared.clone());
    let gen_task = tokio::spawn(async move {
        let (t0, e0) = (Instant::now(), shared2.read(|f| f.events));
        while !stop2.load(Ordering::SeqCst) {
            let due = rate * t0.elapsed().as_secs_f64();
            if ((shared2.read(|f| f.events) - e0) as f64) < due {
                gen.ask(
                    ActionBuilder::new("Originate")
                        .constant("Channel", "Local/s@answer-wait")
                        .constant("Application", "Hangup")
                        .constant("Async", "true"),
                )
                .await;
                calls2.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut probe = Probe::open(ast).await;
    let start = Instant::now();
    let e_start = shared.read(|f| f.events);
    let mut samples: Vec<(u64, Duration)> = Vec::new();
    let mut i = 0u32;
    while start.elapsed() < Duration::from_secs(secs) {
        let ext = format!("{}", 70_000 + i);
        i += 1;
        let marker = format!("Device: Custom:DND{ext}\r\n");
        relay.watch(&marker);
        let var = format!("DEVICE_STATE(Custom:DND{ext})");
        let v = isymphony_sync::live::value::AmiValue::parse(
            "v",
            &var,
            isymphony_sync::live::value::Grammar::Channel,
        )?;
        probe
            .ask(
                ActionBuilder::new("Setvar")
                    .value("Variable", &v)
                    .constant("Value", "BUSY"),
            )
            .await;
        let t1 = visible(shared, |f| f.dnd.contains(&ext)).await;
        if let Some(t0) = relay.seen(&marker) {
            samples.push((
                start.elapsed().as_secs() / 10,
                t1.saturating_duration_since(t0),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    gen_task.await?;
    let events = shared.read(|f| f.events) - e_start;
    println!(
        "FIGURE storm: {:.0} events/s for {elapsed:.0} s ({} calls), {} latency samples",
        events as f64 / elapsed,
        calls.load(Ordering::SeqCst),
        samples.len()
    );
    let mut all: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    all.sort();
    println!(
        "FIGURE event-to-visible under the storm: p50 {}, p99 {}, max {}",
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(all.last().copied().unwrap_or_default())
    );
    let slices = samples.iter().map(|s| s.0).max().unwrap_or(0);
    for s in 0..=slices {
        let mut v: Vec<Duration> = samples.iter().filter(|x| x.0 == s).map(|x| x.1).collect();
        v.sort();
        println!(
            "FIGURE   slice {}-{} s: p50 {}, p99 {} ({} samples)",
            s * 10,
            s * 10 + 10,
            ms(pct(&v, 0.5)),
            ms(pct(&v, 0.99)),
            v.len()
        );
    }
    Ok(())
}

/// Figure 3: GET of the 1,000 live extensions.
async fn gets(root: &str) -> anyhow::Result<()> {
    let c = client();
    let mut times = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = c
            .get(format!("{root}extensions"))
            .basic_auth("manager", Some(DEFAULT_API_PASSWORD))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "GET extensions: {}", r.status());
        let v: Vec<serde_json::Value> = r.json().await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            v.len() == EXTENSIONS as usize,
            "{} live extensions",
            v.len()
        );
    }
    times.sort();
    println!(
        "FIGURE GET of the {EXTENSIONS} live extensions: p50 {}, p99 {}",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99))
    );
    Ok(())
}

/// Figure 4: an action's round trip (POST …/dnd → Asterisk's responses → 204).
async fn actions(root: &str) -> anyhow::Result<()> {
    let c = client();
    let mut times = Vec::new();
    for i in 0..200u32 {
        let n = 1000 + (i % 50);
        let t = Instant::now();
        let r = c
            .post(format!("{root}extensions/getByName/{n}/dnd"))
            .basic_auth("manager", Some(DEFAULT_API_PASSWORD))
            .json(&json!({"enabled": i % 2 == 0}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 204, "POST dnd: {}", r.status());
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "FIGURE action round trip (POST …/dnd, FreePBX's DND: DBPut/DBDel + DBGet + Setvar): p50 {}, p99 {}",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99))
    );
    Ok(())
}

/// Figure 5: this process's CPU while idle (AMI connected, 1,000 extensions, no calls).
async fn idle() {
    let secs = env_u64("BENCH_IDLE_SECS", 30);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c0 = cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let used = cpu_time() - c0;
    println!(
        "FIGURE idle CPU over {secs} s (endpoint + live model + AMI client): {:.3} % of one core",
        100.0 * used.as_secs_f64() / t0.elapsed().as_secs_f64()
    );
}
