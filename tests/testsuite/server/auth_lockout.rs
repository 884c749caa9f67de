//! Brute-force lockout of the embedded endpoint, at the default thresholds:
//! failures are counted per (source network, user name). Ten wrong passwords from ten
//! different loopback addresses block the configured user name from all of loopback (one
//! network) without a credential check, while a correct login from another network (this
//! machine's LAN address, IPv4 and IPv6) and failures for another user name are unaffected.

use crate::support;

use reqwest::StatusCode;
use std::net::IpAddr;
use std::time::Duration;
use support::logs::capture;
use support::server::*;

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Non-loopback, non-link-local addresses of this machine (IPv4, IPv6), when it has them.
fn lan_addrs() -> (Option<IpAddr>, Option<IpAddr>) {
    let (mut v4, mut v6) = (None, None);
    // SAFETY: getifaddrs fills a list we only read and then free.
    unsafe {
        let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifa) != 0 {
            return (None, None);
        }
        let mut p = ifa;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET && v4.is_none() {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_link_local() {
                    v4 = Some(IpAddr::V4(ip));
                }
            }
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET6 && v6.is_none() {
                let sin = &*(a as *const libc::sockaddr_in6);
                let ip = std::net::Ipv6Addr::from(sin.sin6_addr.s6_addr);
                // Link-local (fe80::/10) needs a scope id; skip it.
                if !ip.is_loopback() && (ip.segments()[0] & 0xffc0) != 0xfe80 {
                    v6 = Some(IpAddr::V6(ip));
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifa);
    }
    (v4, v6)
}

async fn get(c: &reqwest::Client, url: &str, pass: Option<&str>) -> (StatusCode, String) {
    let mut r = c.get(url);
    if let Some(p) = pass {
        r = r.basic_auth(USER, Some(p));
    }
    let resp = r.send().await.unwrap();
    let s = resp.status();
    (s, resp.text().await.unwrap())
}

#[tokio::test]
async fn ten_failures_block_that_name_from_that_network_only() {
    let (logs, _guard) = capture();
    let (v4, v6) = lan_addrs();
    let t = start_with(
        |c| {
            // Dual stack: IPv4 clients arrive as ::ffff:a.b.c.d.
            c.http_listen = "[::]:0".parse().unwrap();
            c.acl
                .extend(v4.iter().chain(v6.iter()).map(|ip| ipnet::IpNet::from(*ip)));
        },
        None,
    )
    .await;
    let port = t.handle.http_addr().port();
    let url = |host: &str| {
        format!("http://{host}:{port}/communication_manager/api/resource/server/coreServers")
    };
    let lo = url("127.0.0.1");
    let a = client_from("127.0.0.1");

    // Challenges (no credentials) are not attempts: many of them block nothing.
    for _ in 0..15 {
        assert_eq!(get(&a, &lo, None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(get(&a, &lo, Some(PASS)).await.0, StatusCode::OK);

    // Failures for another user name block that name only.
    for _ in 0..12 {
        let s = a
            .get(&lo)
            .basic_auth("admin", Some("guess"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&a, &lo, Some(PASS)).await.0, StatusCode::OK);

    // Ten wrong passwords, each from another loopback address: each is checked and refused.
    for i in 1..=10 {
        let c = client_from(&format!("127.0.0.{i}"));
        let (s, body) = get(&c, &lo, Some("wrong")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(body.contains("Invalid credentials"), "{body}");
    }
    // Now the right password is refused without a check from all of loopback.
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.99", "::1"] {
        let host = if from == "::1" { "[::1]" } else { "127.0.0.1" };
        let (s, body) = get(&client_from(from), &url(host), Some(PASS)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{from}");
        assert!(body.contains("Too many failed authentications"), "{body}");
        assert!(body.contains("try again"), "{body}");
    }
    // A bare request is still just the challenge.
    assert_eq!(get(&a, &lo, None).await.0, StatusCode::UNAUTHORIZED);

    // Another network logs in as usual, and its own failures are counted apart.
    let lans: Vec<IpAddr> = v4.iter().chain(v6.iter()).copied().collect();
    if lans.is_empty() {
        eprintln!(
            "SKIPPED PART: no non-loopback address on this machine; 'another network' not checked"
        );
    }
    for ip in lans {
        let host = match ip {
            IpAddr::V4(_) => ip.to_string(),
            IpAddr::V6(_) => format!("[{ip}]"),
        };
        let b = client_from(&ip.to_string());
        assert_eq!(
            get(&b, &url(&host), Some(PASS)).await.0,
            StatusCode::OK,
            "{ip}"
        );
        for _ in 0..3 {
            assert_eq!(
                get(&b, &url(&host), Some("wrong")).await.0,
                StatusCode::FORBIDDEN
            );
        }
        assert_eq!(
            get(&b, &url(&host), Some(PASS)).await.0,
            StatusCode::OK,
            "{ip}"
        );
    }
    // Loopback is still blocked.
    for _ in 0..5 {
        assert_eq!(get(&a, &lo, Some("wrong")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(&a, &lo, Some(PASS)).await.0, StatusCode::FORBIDDEN);
    }
    // One warning per episode (the other name, then the configured one), naming the network
    // but no password and no user name that was sent.
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("too many failed authentications"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("WARN") && w.contains("loopback")),
        "{text}"
    );
    assert!(warnings[0].contains("other user names"), "{text}");
    assert!(warnings[1].contains("configured"), "{text}");
    assert!(
        !text.contains(PASS) && !text.contains("wrong") && !text.contains("guess"),
        "{text}"
    );
    assert!(!text.contains("admin"), "{text}");
}

#[tokio::test]
async fn nine_failures_do_not_block_and_a_block_ends() {
    let (logs, _guard) = capture();
    let t = start_with(
        |c| {
            c.auth_fail_limit = 3;
            // Long enough that a loaded machine still sees the block; its end is awaited.
            c.auth_block = Duration::from_secs(3);
        },
        None,
    )
    .await;
    let url = format!("{}server/coreServers", t.base);
    let a = client_from("127.0.0.1");
    for _ in 0..2 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    // Below the limit, a correct login works and clears the count.
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    // A malformed Authorization header is an attempt too (for no user name we know).
    for _ in 0..3 {
        let s = a
            .get(&url)
            .header("Authorization", "Basic !!!not-base64")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let r = a
        .get(&url)
        .header("Authorization", "Basic !!!not-base64")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Too many"));
    // ... which does not block the configured name.
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    let blocked_at = std::time::Instant::now();
    let (s, body) = get(&a, &url, Some(PASS)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.contains("Too many"), "{body}");
    // After auth_block the address is let in again: wait for that, not a fixed time.
    loop {
        let (s, body) = get(&a, &url, Some(PASS)).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(body.contains("Too many"), "{body}");
        assert!(
            blocked_at.elapsed() < Duration::from_secs(15),
            "the block never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        blocked_at.elapsed() >= Duration::from_millis(2900),
        "let in after {:?}, before auth_block (3 s) was over",
        blocked_at.elapsed()
    );
    // Two episodes (the malformed ones, the wrong passwords), one warning each.
    let text = logs.text();
    assert_eq!(
        text.matches("too many failed authentications").count(),
        2,
        "{text}"
    );
}
