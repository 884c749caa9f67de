//! The agent's own files are private and checked (real MariaDB, the embedded endpoint in
//! process, the real binary under umask 000): the state directory is 0700 and every file in
//! it 0600, snapshot exports are 0600 with and without secrets, and a truncated agent state
//! stops `--sync-now` and `--dry-run` (naming the file and `--repair`) until `--repair`.

use crate::support;
use support::e2e;

use e2e::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

fn write_config(env: &Env) -> PathBuf {
    env.write_agent_config(&env.server().base_url(), &state_dir(env), "")
}

fn state_dir(env: &Env) -> PathBuf {
    env.dir.path().join("agent-state-dir/sub")
}

/// The binary under umask 000: (exit code, stderr).
async fn run(config: &Path, args: &[&str]) -> (i32, String) {
    let mut c = support::process::with_config(config, args);
    c.env("NO_COLOR", "1").env("RUST_LOG", "warn");
    // SAFETY: umask is async-signal-safe; it only sets the child's file-creation mask.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = support::process::run_off_runtime(c).await;
    (out.code_or_signal(), out.stderr)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_agent_creates_is_private_whatever_the_umask() {
    let env = Env::new(2).await;
    let config = write_config(&env);
    let (code, err) = run(&config, &["--sync-now"]).await;
    assert_eq!(code, 0, "{err}");
    let dir = state_dir(&env);
    for d in [dir.parent().unwrap(), dir.as_path()] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("agent-state.sqlite")),
        "{files:?}"
    );
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let plain = env.dir.path().join("snap.json");
    let secret = env.dir.path().join("snap-secrets.json");
    std::fs::write(&secret, "old").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plain_arg = plain.display().to_string();
    let secret_arg = secret.display().to_string();
    let (code, err) = run(&config, &["--export-snapshot", &plain_arg]).await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        &config,
        &["--export-snapshot", &secret_arg, "--include-secrets"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&plain), 0o600);
    assert_eq!(mode(&secret), 0o600, "an existing file is made private too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_agent_state_stops_passes_until_repaired() {
    let env = Env::new(2).await;
    let config = write_config(&env);
    assert_eq!(run(&config, &["--sync-now"]).await.0, 0);
    let file = state_dir(&env).join("agent-state.sqlite");
    std::fs::File::create(&file).unwrap(); // 0 bytes
    for mode in ["--sync-now", "--dry-run"] {
        let (code, err) = run(&config, &[mode]).await;
        assert_eq!(code, 1, "{mode}: {err}");
        assert!(err.contains(&file.display().to_string()), "{mode}: {err}");
        assert!(
            err.contains("0 bytes") && err.contains("--repair"),
            "{mode}: {err}"
        );
    }
    let (code, err) = run(&config, &["--sync-now", "--repair"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    assert_eq!(run(&config, &["--dry-run"]).await.0, 0, "in sync again");
}
