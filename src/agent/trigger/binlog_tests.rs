//! The binary-log classifier: which events are changes to what the sync reads. The stream
//! itself is tested against a real MariaDB with the log on (`tests/testsuite/agent/binlog.rs`).

use super::*;

fn cls() -> Classifier {
    Classifier::new("asterisk", WATCHED_TABLES)
}

#[test]
fn a_row_transaction_on_a_watched_table_triggers_at_its_commit() {
    let mut c = cls();
    assert!(!c.query("BEGIN"));
    c.table_map("asterisk", "users");
    assert!(c.commit(), "XID after a watched table");
    assert!(!c.commit(), "one trigger per transaction");
    // The same with the COMMIT query of a non-transactional engine.
    assert!(!c.query("BEGIN"));
    c.table_map("ASTERISK", "kvstore_freepbx_modules_cxpanel");
    assert!(c.query("COMMIT"));
}

#[test]
fn rows_of_other_tables_or_databases_do_not_trigger() {
    let mut c = cls();
    c.query("BEGIN");
    c.table_map("asterisk", "cdr");
    c.table_map("asteriskcdrdb", "users");
    c.table_map("other", "devices");
    assert!(!c.commit());
}

#[test]
fn statements_trigger_when_they_name_a_watched_table() {
    let mut c = cls();
    assert!(c.query("UPDATE users SET name = 'x' WHERE extension = '1001'"));
    assert!(c.query("update `asterisk`.`Devices` set description='x'"));
    assert!(c.query("TRUNCATE TABLE queues_config"));
    assert!(c.query("RENAME TABLE sip_new TO sip"));
    // A literal that spells a table name is a false positive: one pass too many, never a miss.
    assert!(c.query("INSERT INTO cdr (src) VALUES ('users')"));
    // Whole words only: `users_archive` and `my_users` are other tables.
    assert!(!c.query("DELETE FROM users_archive"));
    assert!(!c.query("DELETE FROM my_users"));
    assert!(!c.query("INSERT INTO cel VALUES (1)"));
    assert!(!c.query("# Dummy event replacing event type 160 that slave cannot handle."));
}

#[test]
fn a_statement_inside_a_transaction_triggers_again_at_its_commit() {
    let mut c = cls();
    c.query("BEGIN");
    assert!(c.query("UPDATE sip SET data = 'x'"));
    assert!(c.commit(), "visible only after the commit: trigger again");
    assert!(!c.query("ROLLBACK"));
}

#[test]
fn the_safety_poll_is_slower_only_while_the_stream_runs() {
    let i = Duration::from_millis(150);
    assert_eq!(poll_every(Source::Poll, i), i);
    assert_eq!(poll_every(Source::Binlog, i), SAFETY_POLL);
    assert_eq!(
        poll_every(Source::Binlog, Duration::from_secs(9)),
        Duration::from_secs(9)
    );
    assert_ne!(replica_id(), 0);
    assert!(replica_id() >= 0x8000_0000);
}
