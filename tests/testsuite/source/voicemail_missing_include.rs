//! A missing `#include` in voicemail.conf: it holds back deletions of
//! e-mail addresses only, and costs nothing. The mailboxes that were read are known (their
//! addresses are created and changed as usual), and a kind that is frozen or whose deletions
//! are held is never read user by user: a change-free pass stays at its 12 top-level GETs.
//! Real MariaDB, real files, the embedded server on loopback, requests counted there.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::server::RequestStats;

/// voicemail.conf as [`Env::write_voicemail`] writes it, with `#include vm_general.inc` (a file
/// that does not exist and would hold no mailboxes) in `[general]`.
fn write_with_missing_include(env: &Env) {
    let mut s = String::from("[general]\n#include vm_general.inc\n\n[default]\n");
    for (ext, mail) in &env.emails {
        s.push_str(&format!(
            "{ext} => 1234,{},{mail},,attach=yes\n",
            name_of(ext - 1001)
        ));
    }
    std::fs::write(env.vm_path(), s).unwrap();
}

/// One pass that must succeed; its warnings and the requests it made.
async fn counted(env: &Env) -> (Vec<String>, RequestStats) {
    let before = env.stats();
    let r = env.sync().await;
    (r.plan.warnings.clone(), delta(before, env.stats()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_include_at_60_extensions_creates_addresses_and_holds_only_deletions() {
    let mut env = Env::new(60).await;
    write_with_missing_include(&env);
    let (warnings, first) = counted(&env).await;
    eprintln!("60, first pass: {first:?}");
    let named = warnings.iter().any(|w| w.contains("vm_general.inc"));
    assert!(named, "the warning names the missing file: {warnings:?}");
    for user in ["1001", "1030", "1060"] {
        let want = format!("u{user}@example.com");
        assert_eq!(env.emails(user).await, [want], "user {user}");
    }
    let (_, quiet) = counted(&env).await;
    eprintln!("60, change-free pass: {quiet:?}");
    assert_eq!((quiet.get, quiet.total()), (12, 12), "{quiet:?}");

    // A changed address: the new one is created, the old one waits for the include.
    env.emails.insert(1002, "new1002@example.com".into());
    write_with_missing_include(&env);
    let (warnings, changed) = counted(&env).await;
    eprintln!("60, one address changed: {changed:?}");
    assert_eq!((changed.post, changed.delete), (1, 0), "{changed:?}");
    let mut both = env.emails("1002").await;
    both.sort();
    assert_eq!(both, ["new1002@example.com", "u1002@example.com"]);
    let held = warnings.iter().any(|w| w.contains("vm_general.inc"));
    assert!(held, "{warnings:?}");
    let (_, quiet) = counted(&env).await;
    eprintln!("60, change-free pass with a held deletion: {quiet:?}");
    assert_eq!((quiet.get, quiet.total()), (12, 12), "{quiet:?}");

    // The include is back: the held deletion goes through, and nothing else.
    std::fs::write(env.dir.path().join("vm_general.inc"), "; nothing\n").unwrap();
    let (_, back) = counted(&env).await;
    eprintln!("60, include back: {back:?}");
    assert_eq!((back.post, back.put, back.delete), (0, 0, 1), "{back:?}");
    assert_eq!(env.emails("1002").await, ["new1002@example.com"]);
    let (_, quiet) = counted(&env).await;
    assert_eq!((quiet.get, quiet.total()), (12, 12), "{quiet:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_include_or_file_at_1000_extensions_costs_nothing() {
    let env = Env::new(1000).await;
    env.sync().await;
    assert_eq!(env.emails("1500").await, ["u1500@example.com"]);

    write_with_missing_include(&env);
    let (warnings, held) = counted(&env).await;
    eprintln!("1000, include missing: {held:?}");
    assert!(warnings.iter().any(|w| w.contains("vm_general.inc")));
    assert_eq!((held.get, held.total()), (12, 12), "{held:?}");
    let (_, quiet) = counted(&env).await;
    eprintln!("1000, include missing, change-free: {quiet:?}");
    assert_eq!((quiet.get, quiet.total()), (12, 12), "{quiet:?}");

    // The whole file gone: e-mails frozen, and still not read user by user.
    std::fs::remove_file(env.vm_path()).unwrap();
    let (_, frozen) = counted(&env).await;
    eprintln!("1000, file missing: {frozen:?}");
    assert_eq!((frozen.get, frozen.total()), (12, 12), "{frozen:?}");
    assert_eq!(env.emails("1500").await, ["u1500@example.com"]);

    // Back to normal: nothing to do, nothing to read.
    env.write_voicemail();
    let (_, back) = counted(&env).await;
    eprintln!("1000, file back: {back:?}");
    assert_eq!((back.get, back.total()), (12, 12), "{back:?}");
}
