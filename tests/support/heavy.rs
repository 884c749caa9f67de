//! One lock for the heaviest tests. All integration tests share one process (the
//! `tests/testsuite` binary), so tests that each start a whole browser would otherwise run
//! side by side with each other on a 2-core machine and time out; holding this lock, they run
//! one at a time while lighter tests still run beside them. A tokio mutex: it is held across
//! awaits, works across the tests' separate runtimes, and a failed test releases it.

use tokio::sync::{Mutex, MutexGuard};

static HEAVY: Mutex<()> = Mutex::const_new(());

/// Wait until no other heavy test runs; the guard keeps it so until dropped.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}
