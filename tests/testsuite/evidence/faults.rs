//! Faulty network, no damage: an initial sync of 1,000 extensions with users
//! from a FreePBX-shaped MariaDB database into the embedded server, running as a separate
//! process with `[server.faults]` answering 10% of all requests 500 before applying them and
//! dropping the connection of 5% after applying them. The real binary runs `--sync-now` passes
//! until one succeeds: it must converge within 3 passes, with no duplicate object (counted by
//! natural key, e-mails and phones per user included) and no byte changed in the objects it
//! does not own (created on the server beforehand: an extension bound to a user with contact,
//! e-mail and phone, a queue, a conference room, an administrator, and a second core server
//! holding an extension with a FreePBX extension number).
//!
//! Convergence and the census are checked after restarting the server without faults on the
//! same data_dir, so that the checks themselves cannot be disturbed by injected faults.

use crate::support;
use support::e2e;
use support::evidence;

use evidence::*;
use isymphony_sync::api::paths;
use serde_json::json;
use std::time::Instant;

const N: usize = 1000;
const PASSWORD: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;
const LOG: &str = "warn,isymphony_sync=info";

/// Create the objects the agent must never touch; return the paths to compare afterwards.
async fn create_foreign(base: &str) -> Vec<String> {
    let cs = "cs-default";
    // In this order: each object's parent exists before it.
    let tenants_and_user = [
        (
            paths::core_servers(),
            json!({"id": "cs-default", "slug": "default", "name": "default"}),
        ),
        (
            paths::core_servers(),
            json!({"id": "cs-other", "slug": "other", "name": "Other tenant"}),
        ),
        (
            paths::users(cs),
            json!({"id": "f-user", "username": "operator", "password": "Op3rat0r!", "enabled": true, "full": true}),
        ),
    ];
    for (path, body) in tenants_and_user {
        raw_post(base, PASSWORD, &path, body).await;
    }
    let contact = json!({"firstName": "Olga", "lastName": "Operator"});
    raw_put(base, PASSWORD, &paths::contact(cs, "f-user"), contact).await;
    let below_them = [
        (
            paths::email_addresses(cs, "f-user"),
            json!({"id": "f-mail", "type": "Work", "address": "olga@example.com"}),
        ),
        (
            paths::phone_numbers(cs, "f-user"),
            json!({"id": "f-phone", "type": "Cell", "number": "5550100"}),
        ),
        (
            paths::extensions(cs),
            json!({"id": "f-ext", "extension": "7001", "displayName": "Lobby phone", "peer": "SIP/7001"}),
        ),
        (paths::managing_user(cs, "f-ext"), json!({"id": "f-user"})),
        (
            paths::queues(cs),
            json!({"id": "f-queue", "identifier": "900", "displayName": "Night queue", "destinationExtension": "900", "destinationContext": "from-internal", "enabled": true}),
        ),
        (
            paths::conference_rooms(cs),
            json!({"id": "f-room", "identifier": "9900", "name": "Annex", "destinationExtension": "9900", "destinationContext": "from-internal"}),
        ),
        (
            paths::administrators(),
            json!({"id": "f-admin", "userName": "foreign-admin", "password": "Adm1n!", "superUser": true}),
        ),
        // Another tenant's extension with a number FreePBX also has.
        (
            paths::extensions("cs-other"),
            json!({"id": "o-ext", "extension": "1001", "displayName": "Other 1001", "peer": "SIP/1001"}),
        ),
    ];
    for (path, body) in below_them {
        raw_post(base, PASSWORD, &path, body).await;
    }
    vec![
        paths::user(cs, "f-user"),
        paths::contact(cs, "f-user"),
        paths::email_addresses(cs, "f-user"),
        paths::phone_numbers(cs, "f-user"),
        paths::extension(cs, "f-ext"),
        paths::managing_user(cs, "f-ext"),
        paths::queue(cs, "f-queue"),
        paths::conference_room(cs, "f-room"),
        paths::administrator("f-admin"),
        "server/coreServers/cs-other".to_string(),
        paths::extensions("cs-other"),
    ]
}

async fn snapshot(base: &str, paths: &[String]) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for p in paths {
        v.push((p.clone(), raw_get(base, PASSWORD, p).await));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_through_500s_and_dropped_connections_converges_without_damage() {
    let started = Instant::now();
    let db = e2e::freepbx_db(N).await;
    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("voicemail.conf");
    std::fs::write(&vm, e2e::voicemail_text(N)).unwrap();
    let data = dir.path().join("server");

    // The foreign objects, on a healthy server.
    let server = ServerProc::start(dir.path(), &data, PASSWORD, "", LOG);
    let foreign = create_foreign(&server.base_url).await;
    let before = snapshot(&server.base_url, &foreign).await;
    server.stop();

    // The faulty server: every method and path.
    let seed: u64 = std::env::var("EVIDENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        // TOML integers are i64.
        .unwrap_or_else(|| rand::random::<u64>() >> 1);
    eprintln!("evidence_faults: fault seed {seed} (EVIDENCE_SEED={seed} replays it)");
    let faults = format!(
        "\n[server.faults]\nseed = {seed}\nerror_500 = {{ share = 0.10 }}\n\
         drop_after_apply = {{ share = 0.05 }}\n"
    );
    let server = ServerProc::start(
        dir.path(),
        &data,
        PASSWORD,
        &faults,
        "warn,isymphony_sync=info,isymphony_sync::server::faults=debug",
    );
    let cfg = dir.path().join("agent.toml");
    // The agent's config for the server it is to sync into (its port differs per start).
    let state = dir.path().join("state");
    let write_config = |server: &ServerProc| {
        let toml = agent_toml(&db.url(), &vm, &server.base_url, &state, 8);
        std::fs::write(&cfg, toml).unwrap();
    };
    write_config(&server);
    let mut passes = Vec::new();
    let mut converged_after = None;
    for pass in 1..=3 {
        let out = tokio::task::spawn_blocking({
            let cfg = cfg.clone();
            move || run_bin(&cfg, &["--sync-now", "--output", "json"], &[])
        })
        .await
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|_| json!({"unparsable": out.stdout.clone()}));
        eprintln!(
            "pass {pass}: exit {} in {:.1?}: {}",
            out.code, out.elapsed, v["summary"]
        );
        passes.push((out.code, v["applied"].clone(), v["failed"].clone()));
        if out.code == 0 {
            converged_after = Some(pass);
            break;
        }
    }
    let server_log = server.stop();
    let count = |what: &str| server_log.iter().filter(|l| l.contains(what)).count();
    let (n500, ndrop) = (
        count("500 before applying"),
        count("connection dropped after applying"),
    );
    eprintln!("injected: {n500} answers 500, {ndrop} connections dropped after applying");
    assert!(
        n500 > 100 && ndrop > 50,
        "the faults did not happen ({n500} 500s, {ndrop} drops)"
    );
    let Some(n_passes) = converged_after else {
        panic!("no clean pass within 3: {passes:?}");
    };

    // Healthy again: converged, nothing twice, foreign objects byte-identical.
    let server = ServerProc::start(dir.path(), &data, PASSWORD, "", LOG);
    write_config(&server);
    assert_converged(&cfg, true, &format!("after {n_passes} passes")).await;
    let api = server.client(PASSWORD);
    let c = census(&api, true).await;
    assert!(c.duplicates.is_empty(), "duplicates: {:?}", c.duplicates);
    // FreePBX's objects plus the foreign ones (extension 7001, user operator, queue 900,
    // room 9900, administrator foreign-admin; two core servers).
    for (kind, n) in [
        ("core_server", 2),
        ("extension", N + 1),
        ("user", N + 1),
        ("queue", 3),
        ("conference_room", 3),
        ("parking_lot", 1),
        ("email", N + 1),
        ("phone", 1),
    ] {
        assert_eq!(c.counts[kind], n, "{kind}: {:?}", c.counts);
    }
    let after = snapshot(&server.base_url, &foreign).await;
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "foreign object {p} changed");
    }
    server.stop();
    eprintln!(
        "evidence_faults: converged after {n_passes} pass(es) {passes:?}, 0 duplicates, \
         {} foreign resources byte-identical; total {:.1?}",
        foreign.len(),
        started.elapsed()
    );
}
