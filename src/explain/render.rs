//! An [`Explanation`] as text for people and as JSON for tools. Every foreign value is
//! escaped for a terminal; passwords were masked when the explanation was gathered.

use super::{Explanation, Liveness};
use crate::text::escape_control;
use std::fmt::Write;

/// The text form: one section per step from FreePBX to live.
pub fn text(e: &Explanation) -> String {
    let mut s = String::new();
    let esc = |v: &str| escape_control(v).to_string();
    let _ = writeln!(s, "{} {}", e.object.kind.label(), esc(&e.object.key));
    let _ = writeln!(s, "  target: {}", esc(&e.target));
    let _ = writeln!(s, "FreePBX ({})", esc(&e.freepbx.mode));
    if e.freepbx.rows.is_empty() {
        let _ = writeln!(s, "  no rows: FreePBX does not have it");
    }
    for r in &e.freepbx.rows {
        let _ = writeln!(s, "  {}", esc(r));
    }
    if let Some(v) = &e.freepbx.voicemail {
        let _ = writeln!(s, "  voicemail.conf: {}", esc(v));
    }
    let _ = writeln!(s, "Desired in iSymphony");
    match (&e.desired, &e.freepbx.skipped) {
        (Some(d), _) => {
            let _ = writeln!(s, "  {}", esc(&d.to_string()));
        }
        (None, Some(why)) => {
            let _ = writeln!(s, "  skipped: {}", esc(why));
        }
        (None, None) => {
            let _ = writeln!(s, "  not wanted (FreePBX does not have it)");
        }
    }
    for r in &e.freepbx.rules {
        let _ = writeln!(s, "  rule: {}", esc(r));
    }
    let _ = writeln!(s, "Held by iSymphony");
    match &e.isymphony {
        Some(h) => {
            let id = h.id.as_deref().unwrap_or("(no id)");
            let _ = writeln!(s, "  id {}, owner: {}", esc(id), esc(&h.ownership));
            let _ = writeln!(s, "  {}", esc(&h.last_written));
            for n in &h.notes {
                let _ = writeln!(s, "  {}", esc(n));
            }
        }
        None => {
            let _ = writeln!(s, "  not present");
        }
    }
    let _ = writeln!(s, "Pending");
    if e.pending.is_empty() && e.held.is_empty() {
        let _ = writeln!(s, "  nothing: in sync");
    }
    for p in &e.pending {
        let _ = writeln!(s, "  {}", esc(&p.line));
    }
    for h in &e.held {
        let _ = writeln!(s, "  held: {}", esc(h));
    }
    let _ = writeln!(s, "Live");
    let _ = match &e.live {
        Liveness::Live => writeln!(s, "  live: the Live API lists it under its configurationId"),
        Liveness::NotLive(why) => writeln!(s, "  NOT live: {}", esc(why)),
        Liveness::NotApplicable(why) => writeln!(s, "  not applicable: {}", esc(why)),
        Liveness::Unknown(why) => writeln!(s, "  unknown: {}", esc(why)),
    };
    for w in &e.warnings {
        let _ = writeln!(s, "warning: {}", esc(w));
    }
    let _ = writeln!(
        s,
        "read: Configuration API {}; Live API {}",
        e.requests, e.live_requests
    );
    s
}

/// The JSON form, with the exit code it leads to.
pub fn json(e: &Explanation) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("exit_code".into(), e.exit_code().into());
    }
    v
}
