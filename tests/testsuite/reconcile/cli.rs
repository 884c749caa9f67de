//! The real binary: `--sync-now` / `--dry-run` exit codes and output, and a SIGKILL in the
//! middle of a pass followed by a rerun that converges with no duplicates.

use crate::support;
use support::e2e;

use e2e::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(env: &Env, url: &str, concurrency: usize) -> std::path::PathBuf {
    let state = env.dir.path().join("state");
    env.write_agent_config(url, &state, &format!("concurrency = {concurrency}\n"))
}

fn bin(config: &Path, args: &[&str]) -> Command {
    let mut c = support::process::with_config(config, args);
    c.env("NO_COLOR", "1").env("RUST_LOG", "warn");
    c
}

fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = support::process::run(&mut bin(config, args));
    (out.code_or_signal(), out.stdout, out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_and_output() {
    let env = Env::new(3).await;
    let cfg = write_config(&env, &env.server().base_url(), 8);
    let (code, out, err) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, &["--dry-run"])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("Extensions:\n  + create extension 1001 \"Alice Smith\""),
        "{out}"
    );
    assert!(out.contains("changes pending"), "{out}");
    assert!(
        !out.contains(&sha1_hex("pw-1001")),
        "a password hash was printed"
    );
    assert_eq!(env.stats().post, 0);

    let (code, out, err) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, &["--sync-now"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("applied"), "{out}");

    let (code, out, _) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, &["--dry-run"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("in sync"), "{out}");

    let (code, out, _) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run(&cfg, &["--dry-run", "--output", "json", "--full"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan"]["in_sync"], serde_json::json!(true));
    assert_eq!(v["exit_code"], serde_json::json!(0));

    // Unreachable target: exit 1, said plainly, no secret in the output.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://manager:topsecretpw@127.0.0.1:{}/communication_manager/api/resource/",
        l.local_addr().unwrap().port()
    );
    drop(l);
    let cfg2 = write_config(&env, &dead, 8);
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&cfg2, &["--sync-now", "--output", "json"]))
            .await
            .unwrap();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("isymphony_unreachable"), "{out}");
    assert!(!out.contains("topsecretpw") && !err.contains("topsecretpw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_pass_then_rerun_converges_without_duplicates() {
    let n = 120;
    let env = Env::new(n).await;
    let cfg = write_config(&env, &env.server().base_url(), 2);
    let mut child = support::process::spawn(
        bin(&cfg, &["--sync-now"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.stats().post < 60 {
        assert!(Instant::now() < deadline, "the agent made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the agent finished too early"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    // It really was cut short.
    let pending = env.pass(true, false, false).await.unwrap();
    assert!(!pending.plan.is_empty());

    let r = env.sync().await;
    assert!(r.applied > 0);
    let dry = env.pass(true, true, false).await.unwrap();
    assert!(dry.plan.is_empty(), "{:#?}", plan_lines(&dry));

    let exts = env.extensions().await;
    let keys: BTreeSet<&str> = exts.iter().map(|x| x.extension.as_str()).collect();
    assert_eq!((exts.len(), keys.len()), (n, n), "duplicate extensions");
    let users = env.users().await;
    let names: BTreeSet<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!((users.len(), names.len()), (n, n), "duplicate users");
    for ext in [1001, 1000 + n / 2, 1000 + n] {
        assert_eq!(
            env.emails(&ext.to_string()).await,
            vec![format!("u{ext}@example.com")]
        );
        assert_eq!(
            env.managing_user(&ext.to_string()).await,
            Some(ext.to_string())
        );
    }
}

/// Every key path of a JSON document (`a.b`, arrays as `a[]`, map keys that are data, such as
/// kind names, as `*`), sorted.
fn key_paths(v: &serde_json::Value, prefix: &str, data_maps: &[&str], out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                let k = if data_maps.contains(&prefix) { "*" } else { k };
                let p = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(p.clone());
                key_paths(child, &p, data_maps, out);
            }
        }
        serde_json::Value::Array(a) => {
            for child in a {
                key_paths(child, &format!("{prefix}[]"), data_maps, out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_json_has_exactly_the_documented_keys() {
    let env = Env::new(3).await;
    let cfg = write_config(&env, &env.server().base_url(), 2);
    // A first pass that changes things (operations in the plan), then a converged one.
    let mut all = Vec::new();
    for args in [
        &["--sync-now", "--output", "json"][..],
        &["--dry-run", "--output", "json", "--full"][..],
    ] {
        let cfg = cfg.clone();
        let (code, out, err) = tokio::task::spawn_blocking(move || run(&cfg, args))
            .await
            .unwrap();
        assert_eq!(code, 0, "{out}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        key_paths(&v, "", &["counts_by_kind"], &mut all);
    }
    all.sort();
    all.dedup();
    let want = [
        "applied",
        "counts_by_kind",
        "counts_by_kind.*",
        "dry_run",
        "errors",
        "exit_code",
        "failed",
        "finished_ms",
        "partial",
        "plan",
        "plan.adoptions",
        "plan.in_sync",
        "plan.operations",
        "plan.operations[].action",
        "plan.operations[].changes",
        "plan.operations[].changes[].field",
        "plan.operations[].changes[].from",
        "plan.operations[].changes[].to",
        "plan.operations[].description",
        "plan.operations[].key",
        "plan.operations[].kind",
        "plan.operations[].label",
        "plan.summary",
        "plan.summary.create",
        "plan.summary.delete",
        "plan.summary.update",
        "plan.warnings",
        "refused",
        "requests",
        "requests.delete",
        "requests.get",
        "requests.post",
        "requests.put",
        "skipped",
        "started_ms",
        "summary",
        "target",
        "unreadable",
        "withheld",
    ];
    assert_eq!(all, want, "the --output json key set changed");

    // A pass that cannot start: the error document, exit code 1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://127.0.0.1:{}/communication_manager/api/resource/",
        l.local_addr().unwrap().port()
    );
    drop(l);
    let cfg = write_config(&env, &dead, 2);
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&cfg, &["--sync-now", "--output", "json"]))
            .await
            .unwrap();
    assert_eq!(code, 1, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut keys = Vec::new();
    key_paths(&v, "", &[], &mut keys);
    keys.sort();
    assert_eq!(
        keys,
        ["error", "error.kind", "error.message", "exit_code"],
        "{out}"
    );
}

/// The safety valve and `--force` through the binary: deleting 3 of 4 extensions is refused
/// with the README's message (exit 1, nothing deleted, the advice to run --force), and
/// `--sync-now --force` then applies the deletions (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safety_valve_message_and_force_through_the_binary() {
    let env = Env::new(4).await;
    let cfg = write_config(&env, &env.server().base_url(), 2);
    let sync = |args: &'static [&'static str]| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || run(&cfg, args))
    };
    let (code, out, err) = sync(&["--sync-now"]).await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    env.db
        .exec("DELETE FROM users WHERE extension IN ('1002', '1003', '1004');")
        .await;

    let (code, out, err) = sync(&["--sync-now"]).await.unwrap();
    assert_eq!(code, 1, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains(
            "safety valve refused: would delete 3 of 4 managed extension objects (more than 50%)"
        ),
        "{all}"
    );
    assert!(
        all.contains("check FreePBX, then run --sync-now --force once if the deletions are right"),
        "the refusal says what to do: {all}"
    );
    assert_eq!(env.extensions().await.len(), 4, "nothing was deleted");

    let (code, out, err) = sync(&["--sync-now", "--force"]).await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let left = env.extension_numbers().await;
    assert_eq!(left, ["1001"], "--force applied the deletions");
    let (code, out, err) = sync(&["--sync-now"]).await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("in sync"), "{out}");
}
