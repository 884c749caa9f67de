//! A kept state store (the daemon's, see `crate::kept`): what it loads from memory is what a
//! fresh connection reads from the file, after its own writes and after another's.

use super::*;
use crate::reconcile::facts::hash_of_hash;

const SCOPE: &str = "default@http://a/";

fn fresh(dir: &Path) -> Known {
    StateStore::load_read_only(dir, SCOPE).unwrap()
}

fn added(owner: &str, value: &str) -> Effect {
    Effect::Added {
        kind: Kind::Email,
        owner: owner.into(),
        value: value.into(),
    }
}

/// Open the kept store (or a new one), load, hand it back as a pass does; what it loaded.
fn pass(dir: &Path, write: impl FnOnce(&mut StateStore)) -> Known {
    let mut s = StateStore::open_keeping(dir, SCOPE, true).unwrap();
    let k = s.load().unwrap();
    write(&mut s);
    s.keep();
    k
}

#[test]
fn what_a_kept_store_loads_from_memory_is_what_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pass(d, |s| {
        let adopt = Effect::Adopt {
            kind: Kind::Extension,
            id: "x1".into(),
            key: "1001".into(),
        };
        let hh = hash_of_hash("abc");
        let password = Effect::Password {
            kind: Kind::User,
            key: "1001".into(),
            hh,
        };
        s.commit(
            &[
                adopt,
                password,
                added("1001", "a@b.c"),
                added("1001", "d@e.f"),
                added("1002", "g@h.i"),
            ],
            &[
                ("contact/u1".into(), "fp1".into()),
                ("e/u2".into(), "fp2".into()),
            ],
            &[],
        )
        .unwrap();
    });
    let before = fresh(d);
    let k = pass(d, |s| {
        s.commit(
            &[
                Effect::Removed {
                    kind: Kind::Email,
                    owner: "1002".into(),
                    value: "g@h.i".into(),
                },
                Effect::Removed {
                    kind: Kind::Email,
                    owner: "1001".into(),
                    value: "a@b.c".into(),
                },
            ],
            &[("contact/u1".into(), "fp1b".into())],
            &["e/u2".into()],
        )
        .unwrap();
        let r = Refusal {
            kind: Kind::Queue,
            key: "400".into(),
            action: "create".into(),
            fp: "f".into(),
            message: "HTTP 402".into(),
        };
        s.replace_refusals(&[r]).unwrap();
    });
    assert_eq!(k, before, "the second pass loaded the first one's writes");
    assert!(!k.adopted.is_empty() && k.fingerprints.len() == 2);
    let k = pass(d, |_| {});
    assert_eq!(k, fresh(d), "from memory after the second pass's writes");
    assert!(!k.added.contains_key(&(Kind::Email, "1002".into())));
    assert_eq!(k.refusals.len(), 1);
    assert_eq!(k.fingerprints.len(), 1);

    // Another connection writes: the kept store reads the file again.
    let mut other = StateStore::open(d, SCOPE).unwrap();
    other.commit(&[added("1003", "j@k.l")], &[], &[]).unwrap();
    drop(other);
    let k = pass(d, |_| {});
    assert!(k.added.contains_key(&(Kind::Email, "1003".into())), "{k:?}");
    assert_eq!(k, fresh(d));

    // A file replaced meanwhile (deleted: a reset) is opened afresh, not written through the
    // kept connection.
    std::fs::remove_file(d.join(STATE_FILE)).unwrap();
    let k = pass(d, |s| {
        s.commit(&[added("1004", "m@n.o")], &[], &[]).unwrap()
    });
    assert_eq!(k, Known::default());
    assert!(fresh(d).added.contains_key(&(Kind::Email, "1004".into())));
}
