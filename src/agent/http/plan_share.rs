//! `GET /isymphony-sync/api/plan` without a pass per request.
//!
//! A plan is a dry-run pass: it reads FreePBX (a database connection) and the iSymphony
//! server. Requests that arrive while one is being computed wait for that one; a request that
//! arrives within [`MAX_AGE`] of the last result gets that result, unless a pass has finished
//! since (the plan would be out of date). The answer says how old it is: `computed_at`,
//! `age_seconds` and the HTTP `Age` header. The computation runs in a task of its own, so a
//! client that hangs up does not cancel it for the others.

use super::agent_api::{AgentApi, PlanError};
use crate::agent::state::status::rfc3339;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The task computing a plan ended without an answer (it panicked or was cancelled).
#[derive(Debug, thiserror::Error)]
#[error("the plan computation failed: {0}")]
struct Crashed(#[source] tokio::task::JoinError);

/// How long a computed plan is handed out again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(5);

/// One computed plan (or the error that stopped it).
#[derive(Debug)]
pub(crate) struct ComputedPlan {
    pub(crate) finished: Instant,
    pub(crate) finished_at: SystemTime,
    pub(crate) result: Result<Value, PlanError>,
}

impl ComputedPlan {
    /// The answer's JSON: the plan with `computed_at` and `age_seconds` added.
    pub(crate) fn json(&self) -> Result<(Value, Duration), PlanError> {
        let age = self.finished.elapsed();
        let mut plan = self.result.clone()?;
        if let Value::Object(m) = &mut plan {
            m.insert("computed_at".into(), Value::from(rfc3339(self.finished_at)));
            let ms = age.as_millis() as f64 / 1000.0;
            m.insert("age_seconds".into(), Value::from(ms));
        }
        Ok((plan, age))
    }
}

type Running = Shared<BoxFuture<'static, Arc<ComputedPlan>>>;

#[derive(Default)]
struct Slot {
    last: Option<Arc<ComputedPlan>>,
    running: Option<Running>,
}

/// The shared plan computation of one agent router.
pub(crate) struct PlanShare {
    max_age: Duration,
    slot: Mutex<Slot>,
}

impl Default for PlanShare {
    fn default() -> Self {
        PlanShare::new(MAX_AGE)
    }
}

impl PlanShare {
    pub(crate) fn new(max_age: Duration) -> PlanShare {
        PlanShare {
            max_age,
            slot: Mutex::new(Slot::default()),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current plan: a recent one, the one being computed, or a new computation.
    pub(crate) async fn get(&self, api: &Arc<dyn AgentApi>) -> Arc<ComputedPlan> {
        let running = {
            let mut slot = self.slot();
            if let Some(last) = &slot.last {
                if last.finished.elapsed() < self.max_age && !pass_since(api, last) {
                    return last.clone();
                }
            }
            match &slot.running {
                Some(r) => r.clone(),
                None => {
                    let r = compute(api.clone());
                    slot.running = Some(r.clone());
                    r
                }
            }
        };
        let out = running.clone().await;
        let mut slot = self.slot();
        if slot.running.as_ref().is_some_and(|r| r.ptr_eq(&running)) {
            slot.running = None;
        }
        if slot
            .last
            .as_ref()
            .map_or(true, |l| l.finished < out.finished)
        {
            slot.last = Some(out.clone());
        }
        out
    }
}

/// Has a pass finished after this plan was computed?
fn pass_since(api: &Arc<dyn AgentApi>, plan: &ComputedPlan) -> bool {
    api.state()
        .status()
        .last_pass
        .is_some_and(|p| p.finished > plan.finished_at)
}

fn compute(api: Arc<dyn AgentApi>) -> Running {
    let task = tokio::spawn(async move {
        let result = api.plan().await;
        Arc::new(ComputedPlan {
            finished: Instant::now(),
            finished_at: SystemTime::now(),
            result,
        })
    });
    async move {
        task.await.unwrap_or_else(|e| {
            Arc::new(ComputedPlan {
                finished: Instant::now(),
                finished_at: SystemTime::now(),
                result: Err(Arc::new(Crashed(e))),
            })
        })
    }
    .boxed()
    .shared()
}
