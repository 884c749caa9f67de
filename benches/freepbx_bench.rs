//! Benchmark: `freepbx::read()` + `mapping::desired()` on a FreePBX 16/17-shaped database with
//! 10,000 extensions (PJSIP devices with realistic `sip` keyword rows, cxpanel rows, one
//! userman user per extension with cxpanel settings, a voicemail.conf with an address each).
//!
//! Run: `cargo bench --bench freepbx_bench` (needs the test MariaDB, ISYMPHONY_SYNC_TEST_MYSQL).
//! Prints min / p50 / max over several runs; the budget is 300 ms. Set
//! FREEPBX_BENCH_KEEP=1 to keep the database for profiling (it is dropped otherwise).

#[path = "../tests/support/mod.rs"]
mod support;

use isymphony_sync::{freepbx, mapping};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const EXTENSIONS: usize = 10_000;
const RUNS: usize = 9;
const BATCH: usize = 1_000;

/// The 1-minute load average (context for the numbers on a shared machine).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// CPU time (user + system, all threads) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// INSERT rows in batches of BATCH.
async fn insert(db: &support::TestDb, head: &str, rows: Vec<String>) {
    let mut sql = String::new();
    for chunk in rows.chunks(BATCH) {
        let _ = writeln!(sql, "{head} VALUES {};", chunk.join(","));
    }
    db.exec(&sql).await;
}

async fn populate(db: &support::TestDb) {
    db.load_fixture("freepbx_modern_schema.sql").await;
    db.load_fixture("cx_settings_kvstore.sql").await;
    let exts: Vec<usize> = (0..EXTENSIONS).map(|i| 20_000 + i).collect();
    insert(
        db,
        "INSERT INTO users (extension, name, voicemail)",
        exts.iter()
            .map(|e| format!("('{e}', 'User O''Name {e}', 'default')"))
            .collect(),
    )
    .await;
    insert(
        db,
        "INSERT INTO devices (id, tech, dial, devicetype, user, description)",
        exts.iter()
            .map(|e| format!("('{e}', 'pjsip', 'PJSIP/{e}', 'fixed', '{e}', 'User {e}')"))
            .collect(),
    )
    .await;
    // A real extension has ~30 sip keywords; 12 here keeps the table realistic in shape.
    let keywords = [
        ("dial", "PJSIP/{}"),
        ("sipdriver", "chan_pjsip"),
        ("secret", "s3cr3t{}"),
        ("context", "from-internal"),
        ("callerid", "User <{}>"),
        ("account", "{}"),
        ("mailbox", "{}@device"),
        ("dtmfmode", "rfc4733"),
        ("max_contacts", "1"),
        ("transport", "0.0.0.0-udp"),
        ("allow", "ulaw,alaw"),
        ("disallow", "all"),
    ];
    let mut sip = Vec::new();
    for e in &exts {
        for (k, v) in keywords {
            sip.push(format!(
                "('{e}', '{k}', '{}')",
                v.replace("{}", &e.to_string())
            ));
        }
    }
    insert(db, "INSERT INTO sip (id, keyword, data)", sip).await;
    insert(
        db,
        "INSERT INTO cxpanel_users (user_id, display_name, peer, add_extension, full, add_user, hashed_password, initial_password, auto_answer, parent_user_id, password_dirty)",
        exts.iter()
            .map(|e| format!("('{e}', 'User {e}', 'PJSIP/{e}', 1, 1, 1, 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3', '', 0, '{e}', 0)"))
            .collect(),
    )
    .await;
    insert(
        db,
        "INSERT INTO userman_users (id, username, password, displayname, email, cell, default_extension)",
        exts.iter()
            .enumerate()
            .map(|(i, e)| format!("({}, 'user{e}', '$2a$08$hash{e}', 'User Name{e}', 'u{e}@example.com', '+1555{e}', '{e}')", i + 1))
            .collect(),
    )
    .await;
    let mut settings = Vec::new();
    for i in 1..=EXTENSIONS {
        settings.push(format!("({i}, 'cxpanel', 'add', '1')"));
        settings.push(format!("({i}, 'cxpanel', 'password_dirty', '0')"));
        settings.push(format!("({i}, 'ucp', 'assigned', '[]')"));
    }
    insert(
        db,
        "INSERT INTO userman_users_settings (uid, module, `key`, val)",
        settings,
    )
    .await;
    insert(
        db,
        "INSERT INTO queues_config (extension, descr)",
        (0..50)
            .map(|q| format!("('{}', 'Queue {q}')", 400 + q))
            .collect(),
    )
    .await;
    insert(
        db,
        "INSERT INTO meetme (exten, description)",
        (0..50)
            .map(|r| format!("('{}', 'Room {r}')", 9000 + r))
            .collect(),
    )
    .await;
    db.exec(
        "INSERT INTO ampusers (username, password_sha1, sections) VALUES ('admin', '4cf7195e22df3327469e64b62b790d775a85ef1a', '*');
INSERT INTO parkplus (defaultlot, name, parkext, parkpos, numslots) VALUES ('yes', 'Default Lot', '70', '71', 8);
INSERT INTO kvstore_FreePBX_modules_Cxpanel (`key`, val, type, id) VALUES ('name', 'default', NULL, 'settings_server'), ('sync_with_userman', '1', NULL, 'settings_server');",
    )
    .await;
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let db = support::TestDb::create().await;
        let t = Instant::now();
        populate(&db).await;
        eprintln!("populated {EXTENSIONS} extensions in {:.1?}", t.elapsed());
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = dir.path().join("voicemail.conf");
        let mut text = String::from("[general]\nformat=wav\n[default]\n");
        for i in 0..EXTENSIONS {
            let e = 20_000 + i;
            let _ = writeln!(
                text,
                "{e} => 1234,User {e},u{e}@example.com|v{e}@example.com,,attach=yes"
            );
        }
        std::fs::write(&vm, text).expect("write voicemail.conf");
        let cfg = db.config(&vm);

        if std::env::var_os("FREEPBX_BENCH_MAP_ONLY").is_some() {
            // For profiling the mapping alone (perf record …).
            let snap = freepbx::read(&cfg).await.expect("read");
            let t = Instant::now();
            for _ in 0..50 {
                std::hint::black_box(mapping::desired(&snap, &cfg));
            }
            println!("map only: {:.1?} per run", t.elapsed() / 50);
            return;
        }
        let mut total = Vec::new();
        let mut reads = Vec::new();
        let mut maps = Vec::new();
        let mut cpus = Vec::new();
        let mut counts = (0, 0);
        for _ in 0..RUNS + 1 {
            let c0 = cpu_time();
            let t0 = Instant::now();
            let snap = freepbx::read(&cfg).await.expect("read");
            let t1 = Instant::now();
            let d = mapping::desired(&snap, &cfg);
            let t2 = Instant::now();
            cpus.push(cpu_time() - c0);
            tracing::debug!(
                read_ms = (t1 - t0).as_secs_f64() * 1e3,
                map_ms = (t2 - t1).as_secs_f64() * 1e3,
                "run"
            );
            counts = (d.extensions.len(), d.users.len());
            reads.push(t1 - t0);
            maps.push(t2 - t1);
            total.push(t2 - t0);
        }
        // The first run warms the server's caches; report the rest.
        let stats = |v: &mut Vec<Duration>| {
            v.remove(0);
            v.sort();
            (v[0], v[v.len() / 2], v[v.len() - 1])
        };
        let (rmin, rp50, rmax) = stats(&mut reads);
        let (mmin, mp50, mmax) = stats(&mut maps);
        let (tmin, tp50, tmax) = stats(&mut total);
        let (cmin, cp50, cmax) = stats(&mut cpus);
        println!(
            "freepbx read+map, {} extensions, {} users, {RUNS} runs:",
            counts.0, counts.1
        );
        println!("  read       min {rmin:>9.1?}  p50 {rp50:>9.1?}  max {rmax:>9.1?}");
        println!("  map        min {mmin:>9.1?}  p50 {mp50:>9.1?}  max {mmax:>9.1?}");
        println!(
            "  read+map   min {tmin:>9.1?}  p50 {tp50:>9.1?}  max {tmax:>9.1?}  (budget 300 ms)"
        );
        println!(
            "  agent CPU  min {cmin:>9.1?}  p50 {cp50:>9.1?}  max {cmax:>9.1?}  (this process; MariaDB's time not included)"
        );
        println!("  machine load average at the end: {}", load_average());
        assert_eq!(
            counts,
            (EXTENSIONS, EXTENSIONS),
            "every extension and user mapped"
        );
        if std::env::var_os("FREEPBX_BENCH_KEEP").is_some() {
            // For profiling queries by hand; drop it yourself afterwards.
            eprintln!("kept database {}", db.name);
            std::mem::forget(db);
        }
    });
}
