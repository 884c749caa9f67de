//! The write gate of a pass, on the real embedded server and real MariaDB:
//! a refused confirmation stops the pass before the stage, a revoked gate stops the
//! operations not yet started, nothing is sent after either, and the next pass converges.

use crate::support;
use support::e2e;

use e2e::*;
use futures::future::BoxFuture;
use isymphony_sync::reconcile::gate::{Denied, WriteGate};
use isymphony_sync::reconcile::{run_pass_gated, PassOptions, ReconcileError};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A gate that confirms `stages` stages and lets `ops` operations start, then refuses (the
/// lock lost at a chosen moment; the real lock is tested in `agent_one_writer`).
struct Budget {
    stages: usize,
    ops: usize,
    confirmed: AtomicUsize,
    started: AtomicUsize,
}

const WHY: &str = "the writer lock was lost (test)";

impl WriteGate for Budget {
    fn confirm(&self) -> BoxFuture<'_, Result<(), Denied>> {
        Box::pin(async move {
            if self.confirmed.fetch_add(1, Ordering::SeqCst) < self.stages {
                Ok(())
            } else {
                Err(Denied::Stopping(WHY.to_string()))
            }
        })
    }
    fn revoked(&self) -> Option<Denied> {
        if self.started.fetch_add(1, Ordering::SeqCst) < self.ops {
            None
        } else {
            Some(Denied::Stopping(WHY.to_string()))
        }
    }
}

fn writes(env: &Env) -> u64 {
    let s = env.stats();
    s.post + s.put + s.delete
}

async fn gated(env: &Env, stages: usize, ops: usize) -> (ReconcileError, u64) {
    let gate = Budget {
        stages,
        ops,
        confirmed: AtomicUsize::new(0),
        started: AtomicUsize::new(0),
    };
    let before = writes(env);
    let opts = PassOptions {
        full: true,
        ..PassOptions::default()
    };
    let e = run_pass_gated(&env.cfg, &opts, Some(&gate))
        .await
        .expect_err("the gate stops the pass");
    (e, writes(env) - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stage_and_a_revoked_gate_send_nothing_more() {
    let mut env = Env::new(3).await;
    env.cfg.sync.concurrency = 1;

    // The core server is created (stage one), then the next stage is refused.
    let (e, sent) = gated(&env, 1, usize::MAX).await;
    let ReconcileError::Stopped { reason, report } = &e else {
        panic!("{e}");
    };
    assert_eq!(reason.to_string(), WHY);
    assert_eq!(sent as usize, report.applied + report.failed, "{e}");
    assert!(report.applied >= 1, "the confirmed stage was applied");
    assert!(
        report.applied < report.plan.ops.len(),
        "{} of {}",
        report.applied,
        report.plan.ops.len()
    );
    eprintln!(
        "refused second stage: {} of {} operations sent",
        report.applied,
        report.plan.ops.len()
    );

    // Every stage confirmed, but the gate revoked after three operations: a fourth never
    // starts.
    let (e, sent) = gated(&env, usize::MAX, 3).await;
    let ReconcileError::Stopped { reason, report } = &e else {
        panic!("{e}");
    };
    assert_eq!(reason.to_string(), WHY);
    assert_eq!(sent, 3, "{e}");
    assert_eq!(report.applied + report.failed, 3);

    // Nothing was lost: an ungated pass converges, and then nothing is left to do.
    let r = env.sync().await;
    assert!(r.applied > 0);
    let dry = env.pass(true, true, false).await.unwrap();
    assert!(dry.plan.is_empty(), "{:?}", plan_lines(&dry));
}
