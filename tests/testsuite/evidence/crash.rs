//! Crash anywhere: 20 trials, each starting the real binary with
//! `--sync-now` on an initial sync of 1,000 extensions with users, killing it with SIGKILL at a
//! random moment within the measured duration of a full sync, then rerunning `--sync-now`.
//! Every trial must converge (a final `--dry-run` exits 0; `--dry-run --full` on every fifth)
//! with no duplicate object counted by natural key.
//!
//! The embedded server runs as a separate `--serve-only` process so that it survives the
//! agent's death; each trial gets a fresh server data_dir and a fresh agent state_dir, and all
//! trials share one FreePBX database. The random delays come from a seeded generator: the seed
//! is printed, and `EVIDENCE_SEED=<n>` replays a run.

use crate::support;
use support::e2e;
use support::evidence;

use evidence::*;
use rand::{Rng, SeedableRng};
use std::process::Stdio;
use std::time::{Duration, Instant};

const N: usize = 1000;
const TRIALS: usize = 20;
const PASSWORD: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;

/// Expected census of a converged initial sync (see `e2e::BASE_SQL`).
fn check_converged(trial: &str, c: &Census) {
    assert!(
        c.duplicates.is_empty(),
        "{trial}: duplicates {:?}",
        c.duplicates
    );
    for (kind, n) in [
        ("core_server", 1),
        ("extension", N),
        ("user", N),
        ("queue", 2),
        ("conference_room", 2),
        ("parking_lot", 1),
    ] {
        assert_eq!(c.counts[kind], n, "{trial}: {kind} count {:?}", c.counts);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_a_random_moment_of_an_initial_sync_then_rerun_converges() {
    // Whole syncs of 1,000 extensions against a clock: not beside another heavy test.
    let _heavy = support::heavy::exclusive().await;
    let started = Instant::now();
    let seed: u64 = std::env::var("EVIDENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("evidence_crash: seed {seed} (EVIDENCE_SEED={seed} replays this run)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let db = e2e::freepbx_db(N).await;
    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("voicemail.conf");
    std::fs::write(&vm, e2e::voicemail_text(N)).unwrap();

    // Trial 0 measures an uninterrupted initial sync (and proves the baseline converges).
    let mut full_sync = Duration::ZERO;
    let mut killed_mid_pass = 0;
    // Objects on the server after the uninterrupted baseline (top level, by census).
    let mut full_objects = 0;
    // Where the initial sync writes, narrowed by each trial (see below).
    let mut window = (Duration::ZERO, Duration::ZERO);
    for trial in 0..=TRIALS {
        let tdir = dir.path().join(format!("trial{trial}"));
        std::fs::create_dir_all(&tdir).unwrap();
        let server = ServerProc::start(
            &tdir,
            &tdir.join("server"),
            PASSWORD,
            "",
            "warn,isymphony_sync=info",
        );
        let cfg = tdir.join("agent.toml");
        std::fs::write(
            &cfg,
            agent_toml(&db.url(), &vm, &server.base_url, &tdir.join("state"), 8),
        )
        .unwrap();
        let name = format!("trial {trial}");

        if trial == 0 {
            let out = tokio::task::spawn_blocking({
                let cfg = cfg.clone();
                move || run_bin(&cfg, &["--sync-now"], &[])
            })
            .await
            .unwrap();
            assert_eq!(out.code, 0, "{name}: {}\n{}", out.stdout, out.stderr);
            full_sync = out.elapsed;
            window = (Duration::ZERO, full_sync);
            eprintln!("full initial sync of {N}: {full_sync:.2?}");
        } else {
            // A random moment within the window where the writes happen: a kill before the
            // first write raises the window's start, one after the last lowers its end, so the
            // trials keep landing mid-pass however the machine's load moves the sync's timing.
            let delay = Duration::from_micros(rng.gen_range(
                window.0.as_micros() as u64
                    ..window.1.as_micros().max(window.0.as_micros() + 1) as u64,
            ));
            let mut child = support::process::spawn(
                support::process::bin()
                    .arg("--config")
                    .arg(&cfg)
                    .arg("--sync-now")
                    .env("RUST_LOG", "warn")
                    .env("NO_COLOR", "1")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            tokio::time::sleep(delay).await;
            let finished_first = child.try_wait().unwrap().is_some();
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL);
            }
            let status = child.wait().unwrap();
            // Mid-pass means the server holds some but not all of the objects: a kill before
            // the first write or after the last one proves nothing about a cut-short pass.
            let held = census(&server.client(PASSWORD), false).await;
            let held: usize = held.counts.values().sum();
            let mid_pass = !finished_first && held > 0 && held < full_objects;
            if held == 0 {
                window.0 = delay;
            } else if finished_first || held >= full_objects {
                window.1 = delay;
            }
            if mid_pass {
                killed_mid_pass += 1;
            }
            eprintln!(
                "{name}: SIGKILL after {delay:.2?}, server held {held} of {full_objects} objects ({})",
                if finished_first {
                    format!("the pass had already ended: {status}")
                } else if mid_pass {
                    "mid-pass".to_string()
                } else {
                    "not mid-pass".to_string()
                }
            );
            let out = tokio::task::spawn_blocking({
                let cfg = cfg.clone();
                move || run_bin(&cfg, &["--sync-now"], &[])
            })
            .await
            .unwrap();
            assert_eq!(
                out.code, 0,
                "{name}: rerun after SIGKILL at {delay:?} failed:\n{}\n{}",
                out.stdout, out.stderr
            );
        }

        // Converged: a dry run plans nothing, and nothing exists twice. Every fifth trial
        // (and the baseline) goes deep: a full verify re-reads every sub-resource and each
        // user's e-mails and phones are counted; the others check the top level only, which
        // keeps the test near a couple of minutes on an idle 2-core machine.
        let deep = trial % 5 == 0;
        assert_converged(&cfg, deep, &name).await;
        let api = server.client(PASSWORD);
        let c = census(&api, deep).await;
        check_converged(&name, &c);
        if trial == 0 {
            full_objects = census(&api, false).await.counts.values().sum();
        }
        if deep {
            assert_eq!(c.counts["email"], N, "{name}: e-mails {:?}", c.counts);
        }
        server.stop();
    }
    // The trials must really have cut passes short, not just restarted finished ones.
    assert!(
        killed_mid_pass >= TRIALS / 2,
        "only {killed_mid_pass} of {TRIALS} kills left the server with some but not all objects"
    );
    eprintln!(
        "evidence_crash: full sync {full_sync:.1?}, {TRIALS} trials, {killed_mid_pass} killed mid-pass, all converged with 0 \
         duplicates; total {:.1?}",
        started.elapsed()
    );
}
