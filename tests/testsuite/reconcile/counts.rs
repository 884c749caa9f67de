//! Cheap passes,
//! counted at the embedded server: with 1,000 extensions converged, a converged pass is
//! exactly 12 GET, one FreePBX change costs ≤ 15 requests (2 of them PUT), and a full verify
//! makes no writes and 4N + 12 GET (a small tolerance above that, none below).

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::model::Kind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_at_1000_extensions_is_cheap_and_full_verify_is_bounded() {
    let n = 1000;
    let env = Env::new(n).await;
    let first = env.sync().await;
    assert_eq!(first.counts_by_kind[&Kind::Extension], n);

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
    assert!(d.total() <= 15, "one change cost {d:?}");
    assert_eq!((d.put, d.post, d.delete), (2, 0, 0), "{d:?}");

    // Converged: a normal pass only lists the collections.
    let before = env.stats();
    let r = env.sync().await;
    assert!(r.plan.is_empty());
    let d = delta(before, env.stats());
    eprintln!("converged: {d:?}");
    assert_eq!(
        (d.get, d.total()),
        (12, 12),
        "a converged pass is 12 GET: {d:?}"
    );

    // Full verify: re-reads every sub-resource, writes nothing.
    let before = env.stats();
    let r = env.pass(false, true, false).await.unwrap();
    assert!(r.plan.is_empty(), "{:#?}", plan_lines(&r));
    let d = delta(before, env.stats());
    assert_eq!(d.post + d.put + d.delete, 0, "{d:?}");
    eprintln!("full verify: {d:?}");
    // Per extension: its user's contact, e-mail and phone lists and its managing user;
    // plus the 12 reads of a converged pass.
    let expected = 4 * n as u64 + 12;
    assert!(
        d.get >= expected && d.total() <= expected + 8,
        "a full verify is 4N + 12 = {expected} GET (+8 at most): {d:?}"
    );
}
