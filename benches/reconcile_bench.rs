//! Benchmark of the reconciler (issue 4, point 11), run with
//! `cargo bench --bench reconcile_bench` (optionally `-- N` for another size; default 10,000):
//! the initial sync of N extensions, each with a login, contact, voicemail e-mail and binding,
//! into the embedded server (in-process, loopback, temporary data_dir, durable commits); then
//! a converged pass, a one-change pass and a full verify, with wall time and request counts
//! as the server counted them. `BENCH_CONCURRENCY=N` overrides `[sync] concurrency` (8).

use isymphony_sync::config::Config;
use isymphony_sync::freepbx::snapshot::*;
use isymphony_sync::reconcile::{run_pass_on, source, PassOptions};
use isymphony_sync::secret::Secret;
use isymphony_sync::server::{self, RequestStats};
use sha1::{Digest, Sha1};
use std::time::{Instant, SystemTime};

fn snapshot(n: usize, renamed: Option<usize>) -> Snapshot {
    let mut s = Snapshot {
        format: 1,
        hostname: "bench-pbx".into(),
        tables: ["users", "devices", "sip", "cxpanel_users"]
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(n))
}

async fn run(n: usize) -> anyhow::Result<()> {
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
    let srv = server::start(&cfg.server, None).await?;
    source::target_embedded(&mut cfg, &srv.base_url());
    println!(
        "reconcile_bench: {n} extensions with users (contact, e-mail, binding), concurrency {}",
        cfg.sync.concurrency
    );

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
        let input = source::from_snapshot(snap, &cfg);
        let before = srv.stats();
        let t = Instant::now();
        let r = run_pass_on(&cfg, &opts, input, None, SystemTime::now()).await?;
        let wall = t.elapsed();
        anyhow::ensure!(
            r.failed == 0 && r.errors.is_empty(),
            "{name}: {:?}",
            r.errors
        );
        println!(
            "{name:<16} {:>8.2} s  {:>6} operations  {}",
            wall.as_secs_f64(),
            r.plan.ops.len(),
            delta(before, srv.stats())
        );
    }
    srv.shutdown().await;
    Ok(())
}
