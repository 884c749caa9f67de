//! Unit tests of the log format: round trip, unfinished ends, damage in the middle.

use super::*;

fn put<'a>(id: &'a str, body: &'a [u8]) -> Record<'a> {
    Record::Put {
        seq: 7,
        scope: "cs/a/extensions",
        id,
        key: Some("1001"),
        body,
    }
}

/// A log of `groups`, each committed.
fn log_of(groups: &[Vec<Record>]) -> Vec<u8> {
    let mut buf = HEADER.to_vec();
    for g in groups {
        for r in g {
            encode(r, &mut buf);
        }
        encode(&Record::Commit, &mut buf);
    }
    buf
}

fn three_groups() -> Vec<Vec<Record<'static>>> {
    vec![
        vec![put("e1", b"{\"n\":1}"), put("e2", b"{}")],
        vec![
            Record::Del {
                scope: "cs/a/extensions",
                id: "e1",
            },
            Record::DelPrefix("cs/b/"),
            Record::Put {
                seq: u64::MAX,
                scope: "s",
                id: "\u{e9}",
                key: None,
                body: b"null",
            },
        ],
        vec![put("e3", b"[1,2]")],
    ]
}

#[test]
fn every_record_reads_back_as_written() {
    let groups = three_groups();
    let buf = log_of(&groups);
    let scan = scan(&buf).unwrap();
    assert_eq!(scan.tail, Tail::Clean);
    assert_eq!(scan.end, buf.len());
    let all: Vec<Record> = groups.concat();
    assert_eq!(scan.records, all);
    for r in &all {
        let mut b = Vec::new();
        encode(r, &mut b);
        assert_eq!(encoded_len(r), b.len(), "{r:?}");
    }
}

#[test]
fn a_write_cut_short_or_not_committed_is_unfinished_not_damage() {
    let buf = log_of(&three_groups());
    let whole = scan(&buf).unwrap().records.len();
    let two_groups = log_of(&three_groups()[..2]).len();
    // Cut anywhere inside the last group: the first two groups stay, the rest is unfinished.
    for cut in two_groups + 1..buf.len() {
        let s = scan(&buf[..cut]).unwrap();
        assert_eq!(s.end, two_groups, "cut at {cut}");
        assert_eq!(
            s.tail,
            Tail::Unfinished {
                bytes: cut - two_groups
            }
        );
        assert_eq!(s.records.len(), whole - 1);
    }
    // A last record whose bytes are wrong (written only in part) is unfinished too.
    let mut bad = buf.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0xff;
    assert_eq!(
        scan(&bad).unwrap().tail,
        Tail::Unfinished {
            bytes: buf.len() - two_groups
        }
    );
}

#[test]
fn a_bad_record_followed_by_intact_ones_is_damage() {
    let buf = log_of(&three_groups());
    let first_group = log_of(&three_groups()[..1]).len();
    let mut bad = buf.clone();
    // A byte in the body of the first group's second put.
    bad[first_group - 12] ^= 0x01;
    let s = scan(&bad).unwrap();
    match s.tail {
        Tail::Damaged { at, intact } => {
            assert!(at < first_group, "{at}");
            // The commit of group one, the three records and commit of group two, group three.
            assert_eq!(intact, 1 + 4 + 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.end,
        HEADER.len(),
        "nothing before the damage was committed"
    );
    assert!(s.records.is_empty());
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    assert!(scan(b"SQLite format 3\0").is_err());
    assert!(scan(b"ISY").is_err());
    let s = scan(HEADER).unwrap();
    assert_eq!((s.records.len(), s.tail), (0, Tail::Clean));
}

#[test]
fn a_rewritten_log_takes_appends_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.log");
    let mut log = LogFile::rewrite(&path, [put("e1", b"{}")].into_iter()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut group = Vec::new();
    encode(&put("e2", b"{}"), &mut group);
    encode(&Record::Commit, &mut group);
    log.append(&group).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        before.len() + group.len()
    );
    assert!(!log.wants_rewrite());
    let s = std::fs::read(&path).unwrap();
    assert_eq!(scan(&s).unwrap().records.len(), 2);
}
