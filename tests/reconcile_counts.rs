//! Cheap passes (issue 4, point 8), counted at the embedded server: with 1,000 extensions
//! converged, one FreePBX change costs ≤ 20 requests; a full verify makes no writes and at
//! most the cxpanel module's 16 + 5N requests.

mod support;
use support::e2e;

use e2e::*;
use isymphony_sync::server::RequestStats;

fn delta(a: RequestStats, b: RequestStats) -> RequestStats {
    RequestStats {
        get: b.get - a.get,
        post: b.post - a.post,
        put: b.put - a.put,
        delete: b.delete - a.delete,
        other: b.other - a.other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_at_1000_extensions_is_cheap_and_full_verify_is_bounded() {
    let n = 1000;
    let env = Env::new(n).await;
    let first = env.sync().await;
    assert_eq!(first.counts_by_kind["extension"], n);

    // One FreePBX change: a display name (extension fields, agent name, contact).
    env.db
        .exec("UPDATE users SET name = 'Renamed Person' WHERE extension = '1500';")
        .await;
    let before = env.stats();
    let r = env.sync().await;
    let d = delta(before, env.stats());
    assert_eq!(
        plan_lines(&r),
        vec![
            "~ update contact of user 1500: firstName \"Bob\" -> \"Renamed\", lastName \"Miller\" -> \"Person\"",
            "~ update extension 1500: displayName \"Bob Miller\" -> \"Renamed Person\", agentName \"Bob Miller\" -> \"Renamed Person\"",
        ]
    );
    eprintln!("one change: {d:?}");
    assert!(d.total() <= 20, "one change cost {d:?}");
    assert_eq!((d.put, d.post, d.delete), (2, 0, 0), "{d:?}");

    // Converged: a normal pass only lists the collections.
    let before = env.stats();
    let r = env.sync().await;
    assert!(r.plan.is_empty());
    let d = delta(before, env.stats());
    assert!(d.total() <= 16, "converged pass cost {d:?}");

    // Full verify: re-reads every sub-resource, writes nothing.
    let before = env.stats();
    let r = env.pass(false, true, false).await.unwrap();
    assert!(r.plan.is_empty(), "{:#?}", plan_lines(&r));
    let d = delta(before, env.stats());
    assert_eq!(d.post + d.put + d.delete, 0, "{d:?}");
    eprintln!("full verify: {d:?}");
    assert!(d.total() <= 16 + 5 * n as u64, "full verify cost {d:?}");
    assert!(
        d.get >= 4 * n as u64,
        "a full verify must re-read sub-resources: {d:?}"
    );
}
