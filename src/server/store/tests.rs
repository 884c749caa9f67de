//! Unit tests of the store: order, reopen, locking, rollback of a failed commit.

use super::*;
use serde_json::json;

#[tokio::test]
async fn writes_survive_reopen_and_keep_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.write(|tx| {
        tx.put("a", "2", Some("k2".into()), json!({"n": 2}));
        tx.put("a", "1", Some("k1".into()), json!({"n": 1}));
        tx.put("cs/x/e", "9", None, json!(9));
        Ok(())
    })
    .await
    .unwrap();
    s.write(|tx| {
        tx.put("a", "2", Some("k3".into()), json!({"n": 3}));
        tx.delete_prefix("cs/x/");
        Ok(())
    })
    .await
    .unwrap();
    s.close().await;
    let s = Store::open(dir.path()).unwrap();
    s.read(|st| {
        let ids: Vec<_> = st.items("a").map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(st.id_by_key("a", "k3"), Some("2"));
        assert_eq!(st.id_by_key("a", "k2"), None);
        assert!(st.coll("cs/x/e").is_none());
    });
    s.close().await;
}

#[tokio::test]
async fn second_open_of_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let e = Store::open(dir.path()).err().unwrap();
    assert!(e.to_string().contains("in use"), "{e}");
    s.close().await;
    Store::open(dir.path()).unwrap().close().await;
}

#[tokio::test]
async fn ids_with_matches_whole_field_values_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.write(|tx| {
        tx.put("b", "e1", None, json!({"userId": "u1"}));
        tx.put("b", "e2", None, json!({"userId": "u10"}));
        tx.put("b", "e3", None, json!({"userId": "a\"b"}));
        tx.put("b", "e4", None, json!({"other": "u1", "userId": "u2"}));
        tx.put("b", "e5", None, json!({"userId": "u1"}));
        Ok(())
    })
    .await
    .unwrap();
    s.read(|st| {
        let mut ids = st.ids_with("b", "userId", "u1");
        ids.sort();
        assert_eq!(ids, ["e1", "e5"]);
        assert_eq!(st.ids_with("b", "userId", "a\"b"), ["e3"]);
        assert!(st.ids_with("b", "userId", "u").is_empty());
        assert!(st.ids_with("missing", "userId", "u1").is_empty());
        // Listing order is insertion order, whatever the map's order.
        let order: Vec<_> = st.items("b").map(|(id, _)| id.to_string()).collect();
        assert_eq!(order, ["e1", "e2", "e3", "e4", "e5"]);
    });
    s.close().await;
}

/// Everything a write did to memory (new, replaced, deleted, deleted by prefix) is undone
/// when it fails part-way, exactly: order, keys and bytes as before. The leader of a group
/// commit uses the same rollback for a failed commit (tests/testsuite/server/store_full_disk.rs makes one for real).
#[tokio::test]
async fn a_failed_write_leaves_memory_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.write(|tx| {
        tx.put("a", "1", Some("k1".into()), json!({"n": 1}));
        tx.put("a", "2", Some("k2".into()), json!({"n": 2}));
        tx.put("cs/x/e", "9", None, json!(9));
        Ok(())
    })
    .await
    .unwrap();
    let snapshot = |s: &Store| {
        s.read(|st| {
            let mut out = Vec::new();
            for scope in ["a", "a2", "cs/x/e"] {
                for (id, it) in st.items(scope) {
                    out.push((scope.to_string(), id.to_string(), it.bytes.clone()));
                }
            }
            (out, st.id_by_key("a", "k1").map(str::to_string), st.seq)
        })
    };
    let before = snapshot(&s);
    let r: Result<(), Error> = s
        .write(|tx| {
            tx.put("a", "1", Some("k9".into()), json!({"n": 10}));
            tx.put("a2", "new", None, json!("new"));
            tx.delete("a", "2");
            tx.delete_prefix("cs/x/");
            tx.put("cs/x/e", "10", None, json!(10));
            Err(Error::conflict("late refusal"))
        })
        .await;
    assert!(r.is_err());
    assert_eq!(snapshot(&s), before);
    s.read(|st| assert_eq!(st.id_by_key("a", "k9"), None));
    // A later write still works and lands after the restored objects.
    s.write(|tx| {
        tx.put("a", "3", None, json!(3));
        Ok(())
    })
    .await
    .unwrap();
    s.read(|st| {
        let ids: Vec<_> = st.items("a").map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
    });
    s.close().await;
}

/// Concurrent writes are committed in groups by whichever of them leads: every acknowledged
/// write is on disk after a reopen, in memory order, and close waits for the last group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.write(|tx| {
                tx.put("c", &format!("{i}"), None, json!(i));
                Ok(())
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    s.close().await;
    let refused = s.write(|tx| {
        tx.put("c", "late", None, json!(0));
        Ok(())
    });
    assert!(refused.await.is_err());
    assert!(!s.read(|st| st.contains("c", "late")));
    let s = Store::open(dir.path()).unwrap();
    s.read(|st| {
        let stored: Vec<u64> = st.items("c").map(|(_, it)| it.seq()).collect();
        assert_eq!(stored.len(), 200);
        assert!(stored.windows(2).all(|w| w[0] < w[1]));
    });
    s.close().await;
}
