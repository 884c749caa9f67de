//! The agent's own port on a hostile host, against the
//! real binary over real sockets (see `support::trust`): made-up methods and paths do not grow
//! the metrics, a forged `Host` gets 421, a reload never lets another process take the ports,
//! a scrape token reads `/metrics` through a lockout, and every agent answer carries the
//! usual protective headers. Figures go to docs/README-hardening.md.

use crate::support;

use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use support::agent::msg;
use support::trust::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const METRICS: &str = "/isymphony-sync/api/metrics";
const T: Duration = Duration::from_secs(30);

/// `n` requests on one keep-alive connection, pipelined, the answers drained as they come;
/// returns how many answers arrived.
async fn pipelined(port: u16, reqs: Vec<String>) -> usize {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut answers = 0;
        let mut tail = Vec::new();
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return answers,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    answers += tail.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
                    let keep = tail.len().saturating_sub(8);
                    tail.drain(..keep);
                }
            }
        }
    });
    for r in reqs {
        if w.write_all(r.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = w
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    reader.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_made_up_methods_and_paths_leave_metrics_and_rss_flat() {
    let t = Trust::start("").await;
    let port = t.port;
    let size0 = get(port, METRICS).await.body.len();
    let rss0 = t.rss_kib();
    let host = format!("127.0.0.1:{port}");
    let auth = basic("manager", PW);
    // Half made-up methods of ~6 KB (unauthenticated, as an attacker sends them), half GETs of
    // made-up paths with the right credentials; 8 connections of 1,250 requests.
    let start = Instant::now();
    let conns: Vec<_> = (0..8)
        .map(|c| {
            let reqs: Vec<String> = (0..1250)
                .map(|i| {
                    let n = c * 1250 + i;
                    if n % 2 == 0 {
                        let method = format!("M{n}{}", "X".repeat(6000));
                        format!("{method} /isymphony-sync/zz{n}/{} HTTP/1.1\r\nHost: {host}\r\n\r\n", "p".repeat(500))
                    } else {
                        format!("GET /isymphony-sync/api/x{n}/{} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n", "q".repeat(500))
                    }
                })
                .collect();
            tokio::spawn(pipelined(port, reqs))
        })
        .collect();
    let mut answered = 0;
    for c in conns {
        answered += c.await.unwrap();
    }
    eprintln!(
        "10,000 requests answered: {answered} in {:?}",
        start.elapsed()
    );
    assert!(answered >= 10_000, "{answered}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = get(port, METRICS).await.body;
    let (size1, rss1) = (metrics.len(), t.rss_kib());
    eprintln!(
        "/metrics {size0} -> {size1} bytes; RSS {rss0} -> {rss1} KiB after 10,000 distinct \
         methods and paths"
    );
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("isymphony_sync_http_requests_total{"))
    {
        let method = line.split("method=\"").nth(1).unwrap().split('"').next();
        assert!(
            matches!(
                method,
                Some("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "other")
            ),
            "{line}"
        );
        assert!(!line.contains("zz") && !line.contains("/x"), "{line}");
    }
    assert!(size1 < size0 + 4096, "/metrics grew {size0} -> {size1}");
    assert!(rss1 < rss0 + 10 * 1024, "RSS grew {rss0} -> {rss1} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_host_gets_421_on_the_agent_port_before_any_credential_check() {
    let t = Trust::start("allowed_hosts = [\"pbx.example.com\"]").await;
    let port = t.port;
    let good = basic("manager", PW);
    let bad = basic("manager", "wrong");
    let ask = |host: String, auth: &'static str, path: &'static str| {
        let auth = if auth == "good" {
            good.clone()
        } else {
            bad.clone()
        };
        async move {
            send_as(port, "GET", path, (&host, &auth), None)
                .await
                .status
        }
    };
    // A rebinding page's requests name the attacker's host: 421, whatever the path.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        format!("127.0.0.1.evil.example:{port}"),
        format!("[::1]:{port}"),
    ] {
        for path in [
            "/isymphony-sync/api/plan",
            "/isymphony-sync/api/status",
            "/isymphony-sync/",
        ] {
            assert_eq!(ask(host.clone(), "good", path).await, 421, "{host} {path}");
        }
    }
    // Wrong passwords under a forged Host are never checked, so they lock nobody out.
    for _ in 0..15 {
        assert_eq!(
            ask(
                format!("evil.example:{port}"),
                "bad",
                "/isymphony-sync/api/status"
            )
            .await,
            421
        );
    }
    // The listener's address, localhost and the configured name are served.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".into(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("pbx.example.com:{port}"),
        "PBX.Example.COM".into(),
    ] {
        assert_eq!(
            ask(host.clone(), "good", "/isymphony-sync/api/plan").await,
            200,
            "{host}"
        );
    }
    // The embedded endpoint keeps answering any Host (iSymphony does; its clients
    // name the server as they were configured to), behind its credentials.
    let api = send(
        t.api_port,
        "GET",
        "/communication_manager/api/resource/server/coreServers",
        &[
            ("Host", "whatever.example"),
            ("Authorization", &basic("manager", PW)),
        ],
        "",
    )
    .await;
    assert_eq!(api.status, 200, "{api:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_token_reads_metrics_through_a_lockout() {
    let token = "scrape-0123456789abcdef0123456789abcdef";
    let t = Trust::start(&format!("metrics_token = \"{token}\"")).await;
    let port = t.port;
    let host = format!("127.0.0.1:{port}");
    let with = |auth: String, path: &'static str| {
        let host = host.clone();
        async move {
            send(
                port,
                "GET",
                path,
                &[("Host", &host), ("Authorization", &auth)],
                "",
            )
            .await
        }
    };
    // Ten wrong passwords from loopback: the administrator is locked out.
    for _ in 0..10 {
        assert_eq!(with(basic("manager", "wrong"), METRICS).await.status, 403);
    }
    let locked = with(basic("manager", PW), METRICS).await;
    assert_eq!(locked.status, 403, "{locked:?}");
    assert!(locked.body.contains("Too many"), "{locked:?}");
    // Prometheus' bearer token is not: /metrics answers, again and again.
    for _ in 0..3 {
        let m = with(format!("Bearer {token}"), METRICS).await;
        assert_eq!(m.status, 200, "{m:?}");
        assert!(m.body.contains("isymphony_sync_passes_total"), "{m:?}");
    }
    // A wrong token is refused (and never shows the right one); the token opens nothing else.
    for _ in 0..20 {
        let m = with("Bearer wrong-token".into(), METRICS).await;
        assert_eq!(m.status, 403, "{m:?}");
        assert!(!m.body.contains(token));
    }
    assert_eq!(with(format!("Bearer {token}"), METRICS).await.status, 200);
    for path in [
        "/isymphony-sync/api/plan",
        "/isymphony-sync/api/status",
        "/isymphony-sync/",
    ] {
        assert_eq!(
            with(format!("Bearer {token}"), path).await.status,
            401,
            "{path}"
        );
    }
    let log = t.agent.dump();
    assert!(!log.contains(token), "the token is in the log");
}

/// The protective headers every answer of the agent's port carries.
fn assert_protected(what: &str, a: &Answer) {
    let h = |n: &str| {
        a.header(n)
            .unwrap_or_else(|| panic!("{what}: no {n}: {a:?}"))
    };
    let csp = h("content-security-policy");
    for d in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(d), "{what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
}

fn sha256_b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> &'a str {
    s.split(a).nth(1).unwrap().split(b).next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_answer_carries_the_protective_headers() {
    let t = Trust::start("").await;
    let port = t.port;
    let host = format!("127.0.0.1:{port}");
    for path in [
        "/isymphony-sync/",
        "/isymphony-sync/live",
        "/isymphony-sync/api/status",
        "/isymphony-sync/api/plan",
        METRICS,
        "/isymphony-sync/api/nothing-here",
    ] {
        let a = get(port, path).await;
        assert!(a.status == 200 || a.status == 404, "{path}: {a:?}");
        assert_protected(path, &a);
    }
    let login = basic("manager", PW);
    let sync = send_as(
        port,
        "POST",
        "/isymphony-sync/api/sync",
        (&host, &login),
        Some("{}"),
    )
    .await;
    assert_eq!(sync.status, 204, "{sync:?}");
    assert_protected("POST sync", &sync);
    let anon = send(
        port,
        "GET",
        "/isymphony-sync/api/status",
        &[("Host", &host)],
        "",
    )
    .await;
    assert_eq!(anon.status, 401);
    assert_protected("401", &anon);
    let wrong = get(port, "/isymphony-sync/api/status").await;
    assert_eq!(wrong.status, 200);
    let del = send_as(
        port,
        "DELETE",
        "/isymphony-sync/api/status",
        (&host, &login),
        Some(""),
    )
    .await;
    assert_eq!(del.status, 405);
    assert_protected("405", &del);
    // The page's inline style and script are allowed by their hashes, and only by them.
    let page = get(port, "/isymphony-sync/").await;
    let csp = page.header("content-security-policy").unwrap().to_string();
    let style = between(&page.body, "<style>", "</style>");
    let script = between(&page.body, "<script>", "</script>");
    assert!(
        csp.contains(&format!("style-src 'sha256-{}'", sha256_b64(style))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("script-src 'sha256-{}'", sha256_b64(script))),
        "{csp}"
    );
    assert_eq!(page.body.matches("<script").count(), 1);
    assert_eq!(page.body.matches("<style").count(), 1);
}

/// A process that tries to bind `port` in a tight loop until told to stop; whatever it gets
/// it holds and reads (a client's credentials, if the agent let go of the port).
struct Squatter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Squatter {
    fn start(ports: Vec<u16>) -> Squatter {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut won = Vec::new();
            while !s2.load(Ordering::Relaxed) {
                for p in &ports {
                    if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", *p)) {
                        won.push(format!("bound 127.0.0.1:{p}"));
                        l.set_nonblocking(true).unwrap();
                        let until = Instant::now() + Duration::from_secs(2);
                        while Instant::now() < until {
                            if let Ok((mut c, _)) = l.accept() {
                                let mut buf = [0u8; 4096];
                                c.set_read_timeout(Some(Duration::from_millis(500)))
                                    .unwrap();
                                let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
                                won.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            }
            won
        });
        Squatter {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_never_lets_a_squatter_take_the_ports() {
    let t = Trust::start("").await;
    let (port, api_port) = (t.port, t.api_port);
    let squatter = Squatter::start(vec![port, api_port]);
    let reloaded = |n: usize| {
        let agent = &t.agent;
        async move {
            agent
                .wait_nth(n, T, |v| msg(v) == "configuration reloaded")
                .await;
        }
    };
    let mut stolen = Vec::new();
    for i in 0..5 {
        // A change of [server] with the same addresses: the endpoint restarts.
        let extra = format!("max_connections = {}", 200 + i);
        write_config(&t.cfg, &config_text(t.dir.path(), port, api_port, &extra));
        reloaded(i).await;
        let a = get(port, "/isymphony-sync/api/status").await;
        let api = send(
            api_port,
            "GET",
            "/communication_manager/api/resource/server/coreServers",
            &[
                ("Host", "127.0.0.1"),
                ("Authorization", &basic("manager", PW)),
            ],
            "",
        )
        .await;
        if a.status != 200 || api.status != 200 {
            stolen.push(format!(
                "reload {i}: agent port {}, API port {}",
                a.status, api.status
            ));
            break;
        }
    }
    let won = squatter.finish();
    assert!(
        won.is_empty() && stolen.is_empty(),
        "{stolen:?} {won:?}\n{}",
        t.agent.dump()
    );
    // A reload to a port someone else holds fails: the old endpoint stays, and says so.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = held.local_addr().unwrap().port();
    let fails = t
        .agent
        .count(|v| msg(v).contains("reload") && msg(v).contains("failed"));
    write_config(&t.cfg, &config_text(t.dir.path(), other, api_port, ""));
    t.agent
        .wait_nth(fails, T, |v| {
            msg(v).contains("reload") && msg(v).contains("failed")
        })
        .await;
    let a = get(port, "/isymphony-sync/api/status").await;
    assert_eq!(a.status, 200, "{a:?}");
    let status: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let err = status["last_reload_error"].as_str().unwrap_or("");
    assert!(err.contains(&other.to_string()), "{status}");
    let m = get(port, METRICS).await.body;
    assert!(
        m.contains("isymphony_sync_config_reloads_total{result=\"invalid\"} 1"),
        "{m}"
    );
}
