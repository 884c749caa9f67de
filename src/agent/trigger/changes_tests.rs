//! Unit tests of the change detection (`watch.rs`) on real MariaDB and real files.
use super::*;
use crate::agent::testdb::TestDb;
use std::sync::mpsc;

#[tokio::test]
async fn checksum_catches_every_change_to_watched_tables() {
    let db = TestDb::new("watch").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
        .await;
    db.exec("CREATE TABLE unrelated (x INT)").await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    let mut d = ChangeDetector::new(db.opts());
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

    db.exec("UPDATE users SET name='Alicia' WHERE extension='1001'")
        .await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

    // Writes elsewhere move the probe's counters but not the fingerprint.
    db.exec("INSERT INTO unrelated VALUES (1)").await;
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

    // A multi-statement transaction is seen once committed.
    db.exec(
        "START TRANSACTION; DELETE FROM users; INSERT INTO users VALUES ('1002','Bob'); COMMIT",
    )
    .await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);

    // A module installed later: its table appearing is a change.
    db.exec("CREATE TABLE meetme (exten VARCHAR(50) PRIMARY KEY, description VARCHAR(50))")
        .await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    db.exec("INSERT INTO meetme VALUES ('9001','Room')").await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    db.exec("TRUNCATE TABLE meetme").await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    d.close().await;
}

#[tokio::test]
async fn idle_polls_skip_the_checksum_when_the_server_is_quiet() {
    let db = TestDb::new("watchidle").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
        .await;
    let mut d = ChangeDetector::new(db.opts());
    d.poll().await.unwrap();
    // Other tests write concurrently on the same server, so the probe may see writes; what must
    // hold is that a quiet poll never reports a change and that polling works repeatedly.
    for _ in 0..20 {
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    }
    assert!(d.counts.checksums_run >= 1);
    d.close().await;
}

/// The second of `table`'s last write, as the server stamps it.
async fn stamp(db: &TestDb, table: &str) -> Option<i64> {
    use mysql_async::prelude::Queryable;
    let mut c = db.conn().await;
    c.query_first(format!(
        "SELECT UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
    ))
    .await
    .unwrap()
    .flatten()
}

#[tokio::test]
async fn writes_elsewhere_checksum_nothing_once_the_window_has_passed() {
    let db = TestDb::new("watchbusy").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50)) ENGINE=InnoDB")
        .await;
    db.exec("CREATE TABLE cdr (x INT) ENGINE=InnoDB").await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    let mut d = ChangeDetector::new(db.opts()).with_stamp_window(1);
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    // Past the window of the last write to `users`.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    // A busy PBX: call records written between every poll. Other tests create and drop
    // databases on the same server, and DDL makes every table a suspect, so a round may see
    // theirs; one round without a checksum shows the point.
    let mut quiet_rounds = 0;
    for _round in 0..5 {
        let before = d.counts;
        for i in 0..10 {
            db.exec(&format!("INSERT INTO cdr VALUES ({i})")).await;
            assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
        }
        assert!(
            d.counts.stamp_queries >= before.stamp_queries + 10,
            "every write moves the probe: {:?} -> {:?}",
            before,
            d.counts
        );
        quiet_rounds += usize::from(d.counts.tables_checksummed == before.tables_checksummed);
    }
    assert!(
        quiet_rounds > 0,
        "writes to a table the sync does not read checksummed watched tables in every round"
    );
    // And a write to a watched table is still seen at once.
    db.exec("UPDATE users SET name='Alicia'").await;
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    d.close().await;
}

#[tokio::test]
async fn reads_do_not_move_the_probe() {
    use mysql_async::prelude::Queryable;
    let db = TestDb::new("watchreads").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50)) ENGINE=InnoDB")
        .await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    let mut c = db.conn().await;
    // Other tests write to the same server, so some rounds see their writes; a SELECT on an
    // InnoDB table moved `Handler_commit` every time, so the old probe never stayed still.
    let mut still = 0;
    for _ in 0..100 {
        let before = read_probe(&mut c).await.unwrap();
        let _: Vec<(String, String)> = c.query("SELECT * FROM users").await.unwrap();
        let after = read_probe(&mut c).await.unwrap();
        still += usize::from(before == after);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(still > 0, "every SELECT moved the probe");
    // And a write moves it.
    let before = read_probe(&mut c).await.unwrap();
    c.query_drop("UPDATE users SET name='Alicia'")
        .await
        .unwrap();
    assert_ne!(read_probe(&mut c).await.unwrap(), before);
}

#[tokio::test]
async fn a_second_write_in_the_same_second_is_seen() {
    let db = TestDb::new("watchsecond").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50)) ENGINE=InnoDB")
        .await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    // A short window: the polls follow the writes within a second.
    let mut d = ChangeDetector::new(db.opts()).with_stamp_window(1);
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    let mut same_second = 0;
    for i in 0..6 {
        db.exec(&format!("UPDATE users SET name='A{i}'")).await;
        let first = stamp(&db, "users").await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed, "first write {i}");
        db.exec(&format!("UPDATE users SET name='B{i}'")).await;
        let second = stamp(&db, "users").await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed, "second write {i}");
        if first == second {
            same_second += 1;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(same_second > 0, "no two writes fell in the same second");
    d.close().await;
}

#[tokio::test]
async fn a_commit_seconds_after_the_write_is_seen() {
    use mysql_async::prelude::Queryable;
    let db = TestDb::new("watchlate").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50)) ENGINE=InnoDB")
        .await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    let mut d = ChangeDetector::new(db.opts()).with_stamp_window(0);
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    // The write in a later second than the one already seen.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut c = db.conn().await;
    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop("UPDATE users SET name='Alicia'")
        .await
        .unwrap();
    // Not visible yet: the checksum reads committed rows.
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    // The commit stamps the table (with the write's second), past any window.
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(d.poll().await.unwrap(), Poll::Changed);
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    d.close().await;
}

#[tokio::test]
async fn engines_without_a_reliable_stamp_are_always_checksummed() {
    let db = TestDb::new("watcharia").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50)) ENGINE=Aria")
        .await;
    db.exec("CREATE TABLE devices (id VARCHAR(20), description VARCHAR(50)) ENGINE=MyISAM")
        .await;
    db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
    db.exec("INSERT INTO devices VALUES ('1001','Alice')").await;
    let mut d = ChangeDetector::new(db.opts()).with_stamp_window(0);
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
    for i in 0..4 {
        db.exec(&format!("UPDATE users SET name='A{i}'")).await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed, "Aria write {i}");
        db.exec(&format!("UPDATE devices SET description='D{i}'"))
            .await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed, "MyISAM write {i}");
    }
    d.close().await;
}

#[tokio::test]
async fn unreachable_database_is_an_error_then_recovers() {
    let db = TestDb::new("watchdown").await;
    db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
        .await;
    let bad = mysql_async::OptsBuilder::from_opts(db.opts()).tcp_port(1);
    let mut d = ChangeDetector::new(bad.into());
    assert!(d.poll().await.is_err());
    let mut d = ChangeDetector::new(db.opts());
    assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
    d.close().await;
}

fn expect_event(rx: &mpsc::Receiver<PathBuf>, want: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let got = rx.recv_timeout(left).expect("no file event");
        if got == want {
            break;
        }
    }
    // Drain the burst of events one write produces.
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
}

#[test]
fn file_watch_sees_writes_renames_and_recreation() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("voicemail.conf");
    let other = dir.path().join("other.conf");
    std::fs::write(&conf, "[default]\n").unwrap();
    let (tx, rx) = mpsc::channel();
    let w = watch_files(std::slice::from_ref(&conf), move |p| {
        let _ = tx.send(p.to_path_buf());
    })
    .unwrap();
    assert_eq!(w.dirs, vec![dir.path().to_path_buf()]);

    std::fs::write(&conf, "[default]\n1001 => 1234,Alice,a@example.com\n").unwrap();
    expect_event(&rx, &conf);

    // Editors that write a new file and rename it over the old one.
    let tmp = dir.path().join(".voicemail.conf.swp");
    std::fs::write(&tmp, "[default]\n1001 => 1234,Alice,b@example.com\n").unwrap();
    std::fs::rename(&tmp, &conf).unwrap();
    expect_event(&rx, &conf);

    std::fs::remove_file(&conf).unwrap();
    expect_event(&rx, &conf);
    std::fs::write(&conf, "[default]\n").unwrap();
    expect_event(&rx, &conf);

    // Other files in the same directory are ignored.
    std::fs::write(&other, "x").unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}

#[test]
fn missing_directories_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let w = watch_files(&[dir.path().join("nope/freepbx.conf")], |_| {}).unwrap();
    assert!(w.dirs.is_empty());
}

#[test]
fn backoff_doubles_and_caps() {
    let b = Duration::from_millis(200);
    let m = Duration::from_secs(1);
    assert_eq!(next_poll_backoff(None, b, m), b);
    assert_eq!(next_poll_backoff(Some(b), b, m), b * 2);
    assert_eq!(next_poll_backoff(Some(m), b, m), m);
}
