//! The progress bar of the real binary: on a terminal (a pseudo-terminal
//! made by util-linux `script`), a long `--sync-now` draws an `indicatif` bar on stderr with
//! counts, rate and ETA, and the first `--full` pass draws one for its reads; piped runs and
//! `--output json` draw none.

use crate::support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::e2e::*;

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run the binary on a pseudo-terminal (stdout and stderr both on it): what the terminal got.
fn on_terminal(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = vec![
        quote(env!("CARGO_BIN_EXE_isymphony-sync")),
        "--config".into(),
        quote(&config.display().to_string()),
    ];
    cmd.extend(args.iter().map(|a| quote(a)));
    // A known width, so that the bar's line is not cut.
    let line = format!("stty cols 160 2>/dev/null; exec {}", cmd.join(" "));
    let Output { status, stdout, .. } = Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned())
}

/// Run the binary with stdout and stderr piped (as under systemd or in a script).
fn piped(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = support::process::run(
        support::process::with_config(config, args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn"),
    );
    (out.code, out.stdout, out.stderr)
}

/// `applied X of Y operations` from the summary line: Y.
fn planned_ops(out: &str) -> usize {
    let rest = out
        .split("applied ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary line: {out}"));
    let of = rest.split(" of ").nth(1).expect("applied X of Y");
    of.split_whitespace().next().unwrap().parse().unwrap()
}

/// The bar's last drawing of `stage`: "stage [====] N/N (R/s, ETA 0s)".
fn has_final_bar(out: &str, stage: &str, n: usize) -> bool {
    out.split(['\r', '\n']).any(|line| {
        line.contains(stage)
            && line.contains(&format!("{n}/{n}"))
            && line.contains("/s")
            && line.contains("ETA")
    })
}

/// The total the bar of `stage` counts to.
fn bar_total(out: &str, stage: &str) -> usize {
    out.split(['\r', '\n'])
        .filter(|l| l.contains(stage) && l.contains("ETA"))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains('/') && !w.ends_with("/s"))
        })
        .filter_map(|w| w.split_once('/').and_then(|(_, n)| n.parse::<usize>().ok()))
        .max()
        .unwrap_or_else(|| panic!("no {stage} bar: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bar_on_a_terminal_only() {
    let env = Env::new(40).await;
    let cfg = env.write_agent_config_here();

    // Piped: the plan and summary as always, and no bar anywhere.
    let (code, out, err) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || piped(&cfg, &["--dry-run"])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(2), "{out}\n{err}");
    for text in [&out, &err] {
        assert!(!text.contains("ETA") && !text.contains('\r'), "{text}");
    }

    // On a terminal: the apply draws its bar up to the plan's size.
    let (code, tty) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || on_terminal(&cfg, &["--sync-now"])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{tty}");
    let ops = planned_ops(&tty);
    assert!(ops >= 40, "a long pass: {ops} operations\n{tty}");
    // The missing core server is created on its own before the rest (no bar for one
    // operation); the bar counts the rest.
    let applied = bar_total(&tty, "applying");
    assert_eq!(applied, ops - 1, "{tty}");
    assert!(has_final_bar(&tty, "applying", applied), "{tty}");
    assert!(
        !tty.contains("reading"),
        "a normal pass reads few sub-resources: {tty}"
    );

    // The first --full pass reads every sub-resource: its own bar, counted to the end.
    let (code, tty) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || on_terminal(&cfg, &["--sync-now", "--full"])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{tty}");
    assert!(tty.contains("in sync"), "{tty}");
    let reads = bar_total(&tty, "reading");
    assert!(reads >= 40, "{reads} sub-resources read\n{tty}");
    assert!(has_final_bar(&tty, "reading", reads), "{tty}");
    assert!(!tty.contains("applying"), "nothing to apply: {tty}");

    // JSON on a terminal: only the JSON document, no bar mixed into it.
    let (code, tty) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || on_terminal(&cfg, &["--dry-run", "--full", "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{tty}");
    assert!(!tty.contains("ETA") && !tty.contains("reading"), "{tty}");
    let v: serde_json::Value =
        serde_json::from_str(tty.trim()).unwrap_or_else(|e| panic!("{e}: {tty}"));
    assert_eq!(v["exit_code"], 0, "{v}");
}
