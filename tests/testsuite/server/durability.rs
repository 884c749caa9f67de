//! Durable server: 100 trials of a POST or PUT answered 204 and the real
//! binary (`--serve-only`, data_dir in a temp dir) killed with SIGKILL right after; every
//! acknowledged write is there after the restart.
//!
//! Trial `i` starts the binary, checks that the writes of trials `0..i` are all there, makes
//! write `i`, and SIGKILLs the process as soon as the 204 arrives; the next trial's start is
//! the restart of this one (a last start checks trial 99).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::support;
use support::process;

use process::spawn_server as spawn;
const TRIALS: usize = 100;

/// What trial `i` writes: a POST of extension `e{i}` on odd trials, a PUT renaming the
/// extension of the previous trial on even ones (trial 0 creates the core server).
fn write(i: usize) -> (reqwest::Method, String, Value) {
    if i == 0 {
        (
            reqwest::Method::POST,
            "server/coreServers".into(),
            json!({"id": "cs1", "slug": "default", "name": "Default"}),
        )
    } else if i % 2 == 1 {
        (
            reqwest::Method::POST,
            "asterisk/cs1/extensions".into(),
            json!({"id": format!("e{i}"), "extension": format!("{}", 1000 + i), "displayName": "new"}),
        )
    } else {
        let prev = i - 1;
        (
            reqwest::Method::PUT,
            format!("asterisk/cs1/extensions/e{prev}"),
            json!({"extension": format!("{}", 1000 + prev), "displayName": format!("put {i}")}),
        )
    }
}

/// Check that the writes of trials `0..done` are all visible.
async fn check(c: &reqwest::Client, base: &str, done: usize) {
    if done == 0 {
        return;
    }
    let get = |path: String| {
        c.get(format!("{base}{path}"))
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
            .send()
    };
    let r = get("server/coreServers/cs1".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "trial 0 lost");
    let r = get("asterisk/cs1/extensions".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<Value> = r.json().await.unwrap();
    let expected: Vec<(String, String)> = (1..done)
        .filter(|i| i % 2 == 1)
        .map(|i| {
            let name = if i + 1 < done {
                format!("put {}", i + 1)
            } else {
                "new".to_string()
            };
            (format!("e{i}"), name)
        })
        .collect();
    let got: Vec<(String, String)> = list
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["displayName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected, "after {done} acknowledged writes");
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_100_trials() {
    let dir = tempfile::tempdir().unwrap();
    let config = support::process::write_serve_config(dir.path(), &dir.path().join("data"));
    // One client for all trials (building one loads the TLS roots: slow); no idle
    // connections, since every server it talks to is killed.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let (mut starting, mut writing) = (Duration::ZERO, Duration::ZERO);
    for i in 0..=TRIALS {
        let t0 = Instant::now();
        let (mut child, base) = spawn(&config);
        starting += t0.elapsed();
        check(&c, &base, i).await;
        if i == TRIALS {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        let (method, path, body) = write(i);
        let t0 = Instant::now();
        let r = c
            .request(method, format!("{base}{path}"))
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "trial {i}");
        writing += t0.elapsed();
        child.kill().unwrap(); // SIGKILL, right after the 204
        child.wait().unwrap();
    }
    eprintln!(
        "{TRIALS} kill -9 trials in {:.2} s (starting the binary {:.2} s, the acknowledged \
         writes {:.2} s)",
        started.elapsed().as_secs_f64(),
        starting.as_secs_f64(),
        writing.as_secs_f64()
    );
}
