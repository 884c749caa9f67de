//! A pass report as text for people (`--sync-now` / `--dry-run` on a terminal, the tests):
//! the plan grouped by kind, the failures, then the summary line. Printing it is the front
//! end's job (`src/cli/`).

use super::{PassReport, ReconcileError};

/// Plan, then the outcome, for people.
pub fn render_report(r: &PassReport, color: bool) -> String {
    let mut out = String::new();
    if !r.plan.is_empty() || !r.plan.warnings.is_empty() {
        out.push_str(&r.plan.render_text(color));
    }
    for e in &r.errors {
        out.push_str(&format!("failed: {}\n", crate::text::escape_control(e)));
    }
    if !r.unreadable.is_empty() {
        out.push_str("partial pass: what depends on the unreadable resources above was skipped\n");
    }
    out.push_str(&r.summary_line());
    out.push('\n');
    out
}

impl ReconcileError {
    /// A stable name for tools (`error.kind` of the JSON report).
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::FreepbxUnreadable(_) => "freepbx_unreadable",
            ReconcileError::IsymphonyUnreachable(_) => "isymphony_unreachable",
            ReconcileError::IsymphonyRefused(_) => "isymphony_refused",
            ReconcileError::EmptySource { .. } => "empty_source",
            ReconcileError::State(_) => "state",
            ReconcileError::Config(_) => "config",
            ReconcileError::Stopped { .. } => "stopped",
        }
    }

    /// The JSON report of a pass that ended in this error (what it did, when it got as far
    /// as planning, and `error: {kind, message}`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = match self.report() {
            Some(r) => r.to_json(),
            None => serde_json::json!({}),
        };
        v["error"] = serde_json::json!({"kind": self.kind(), "message": self.to_string()});
        v["exit_code"] = serde_json::json!(self.outcome().code(false));
        v
    }
}
