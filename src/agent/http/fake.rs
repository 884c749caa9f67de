//! A fake agent behind the agent's HTTP side, shared by the tests of its resources and of
//! the status page (the browser test drives a real one).

use super::agent_api::{AgentApi, ExplainFuture, KeysFuture, PlanError, PlanFuture};
use crate::agent::state::AgentState;
use crate::explain::{ExplainError, Explanation, ObjectRef};
use crate::model::Kind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Fake {
    pub(crate) state: Arc<AgentState>,
    /// The `full` flag of every pass asked for.
    pub(crate) triggers: Mutex<Vec<bool>>,
    /// The plan, numbered `n` by the plans computed before it.
    plan: Result<serde_json::Value, PlanError>,
    /// Plans computed, and how long one takes.
    pub(crate) computed: AtomicUsize,
    plan_delay: Duration,
    /// Explanations computed, and how long one takes.
    pub(crate) explained: AtomicUsize,
    pub(crate) explain_delay: Mutex<Duration>,
}

/// Keys the fake FreePBX knows (one hostile).
pub(crate) const KNOWN: [&str; 3] = ["1001", "1002", "10<b>0</b>3"];

impl Fake {
    pub(crate) fn new(plan: Result<serde_json::Value, PlanError>, plan_delay: Duration) -> Fake {
        Fake {
            state: Arc::new(AgentState::new()),
            triggers: Mutex::new(vec![]),
            plan,
            computed: AtomicUsize::new(0),
            plan_delay,
            explained: AtomicUsize::new(0),
            explain_delay: Mutex::new(Duration::ZERO),
        }
    }
}

impl AgentApi for Fake {
    fn state(&self) -> &AgentState {
        &self.state
    }
    fn trigger_sync(&self, full: bool) {
        self.triggers.lock().unwrap().push(full);
    }
    fn plan(&self) -> PlanFuture<'_> {
        let p = self.plan.clone();
        let n = self.computed.fetch_add(1, Ordering::SeqCst);
        let delay = self.plan_delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            p.map(|mut v| {
                v["n"] = serde_json::json!(n);
                v
            })
        })
    }
    fn explain(&self, obj: ObjectRef) -> ExplainFuture<'_> {
        let delay = *self.explain_delay.lock().unwrap();
        Box::pin(async move {
            // Counted when it runs (the page makes the future before it may run it).
            self.explained.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            if KNOWN.contains(&obj.key.as_str()) {
                return Ok(hostile_explanation(obj));
            }
            let known: Vec<String> = KNOWN.map(String::from).to_vec();
            Err(ExplainError::Unknown {
                label: obj.kind.label(),
                suggestions: crate::explain::closest(&obj.key, &known),
                key: obj.key,
            })
        })
    }
    fn keys(&self, _: Kind) -> KeysFuture<'_> {
        Box::pin(async { Ok(KNOWN.map(String::from).to_vec()) })
    }
}

/// An explanation whose every foreign value is markup.
fn hostile_explanation(object: ObjectRef) -> Explanation {
    use crate::explain::*;
    Explanation {
        object,
        target: "http://<i>host</i>:58080 core <u>1</u>".into(),
        freepbx: FreepbxSide {
            mode: "cxpanel <em>tables</em>".into(),
            found: true,
            rows: vec!["users: extension=1001 name=<script>alert(1)</script>".into()],
            voicemail: Some("/etc/<b>voicemail.conf</b>:12".into()),
            skipped: None,
            rules: vec!["frozen: <img src=x onerror=alert(2)>".into()],
        },
        desired: Some(
            serde_json::json!({"extension": "1001", "name": "</pre><script>alert(3)</script>"}),
        ),
        isymphony: Some(HeldObject {
            id: Some("\"><svg onload=alert(4)>".into()),
            ownership: "agent".into(),
            notes: vec!["managed by user <a href=x>alice</a>".into()],
            last_written: "last written by the pass of 2026-12-06T04:12:03Z (<i>create</i>)".into(),
            last_write: None,
        }),
        pending: vec![Pending {
            line: "~ update extension 1001: name \"<b>old</b>\" -> \"new\"".into(),
            action: "update".into(),
            kind: Kind::Extension,
            changes: vec![
                crate::reconcile::plan::Change {
                    field: "name".into(),
                    from: "<b>old</b>".into(),
                    to: "new".into(),
                },
                crate::reconcile::plan::Change {
                    field: "password".into(),
                    from: "***".into(),
                    to: "***".into(),
                },
            ],
        }],
        held: vec![],
        live: Liveness::NotLive("its user <script>alert(5)</script> is a lite user".into()),
        requests: Default::default(),
        live_requests: Default::default(),
        warnings: vec!["<iframe src=javascript:alert(6)>".into()],
    }
}
