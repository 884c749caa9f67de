//! The HTML of the status page: the shell ([`page`]) and its live part ([`live`]), which the
//! script re-fetches and swaps in. Plain functions writing strings: the page is small, and a
//! template engine would be one more thing to build for a dozen sections.

use super::{esc, localtime, svg, Unavailable, PAGE};
use crate::agent::state::history::History;
use crate::agent::state::status::{AgentStatus, PassRecord, PassResultKind, Reachability};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::SystemTime;

pub(super) const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:0 .8em 2em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:.6em 0 .2em}h2{font-size:1.05em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14em,1fr));gap:.6em}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em .8em;overflow-wrap:anywhere}
.ok{color:#1e7b34}.bad{color:#c0392b}.warn{color:#9a6700}.muted{color:#666}
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff;font-size:.9em}
td,th{border:1px solid #ddd;padding:.2em .45em;text-align:left;vertical-align:top}
tr.failed td{background:#fdecea}tr.partial td{background:#fff6dd}
.chart{display:block;width:100%;max-width:640px;height:auto;background:#fff;border:1px solid #ddd}
.chart text{font-size:11px}@media (max-width:32em){.chart text{font-size:15px}}
.nw{white-space:nowrap}td.msg{min-width:16em}
form.trigger{display:inline}button{font-size:1em;padding:.4em 1em;margin:.2em .4em .2em 0}
code,.op{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
";

/// Refreshes `#live` every two seconds; the buttons post without leaving the page. URLs are
/// built from `location.origin`, so they never carry credentials typed into the address.
pub(super) const SCRIPT: &str = r#"(function(){
var live=document.getElementById('live'),note=document.getElementById('note'),base=location.origin;
function refresh(){fetch(base+'/isymphony-sync/live',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text();}).then(function(t){live.innerHTML=t;note.textContent='live (refreshes every 2 s)';}).catch(function(e){note.textContent='not refreshed: '+e.message+'; retrying';});}
setInterval(refresh,2000);note.textContent='live (refreshes every 2 s)';
document.querySelectorAll('form.trigger').forEach(function(f){f.addEventListener('submit',function(ev){ev.preventDefault();
var body=new URLSearchParams(new FormData(f));if(ev.submitter&&ev.submitter.name)body.set(ev.submitter.name,ev.submitter.value);
fetch(base+f.getAttribute('action'),{method:'POST',body:body,redirect:'manual'}).then(function(r){note.textContent=(r.type==='opaqueredirect'||r.ok)?'pass requested':'refused: HTTP '+r.status;setTimeout(refresh,300);}).catch(function(e){note.textContent='not sent: '+e.message;});});});
})();"#;

/// The whole page around `live` (the output of [`live`]); `token` guards the buttons.
pub(crate) fn page(live: &str, token: &str) -> String {
    let mut o = String::with_capacity(live.len() + 4096);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>isymphony-sync status</title><style>{STYLE}</style></head><body>
<h1>isymphony-sync <span class="muted">{ver}</span></h1>
<form class="trigger" method="post" action="{PAGE}/sync"><input type="hidden" name="token" value="{tok}"><button id="sync-now" type="submit" name="full" value="0">Sync now</button><button id="full-verify" type="submit" name="full" value="1">Full verify</button></form>
<span id="note" class="muted">without JavaScript: reload the page to refresh</span>
<div id="live">{live}</div>
<script>{SCRIPT}</script></body></html>"#,
        ver = esc(env!("CARGO_PKG_VERSION")),
        tok = esc(token),
    );
    o
}

/// The live part: everything that changes.
/// `holder`: who holds the writer lock, as MariaDB says.
pub(crate) fn live(
    st: &AgentStatus,
    h: &History,
    plan: &Result<Value, Unavailable>,
    holder: &Result<Option<String>, Unavailable>,
) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let _ = write!(
        o,
        r#"<p class="muted">Shown {now} (times in the host's time zone, {zone}).</p>"#,
        now = esc(&localtime::format(SystemTime::now())),
        zone = esc(&localtime::zone_name())
    );
    cards(&mut o, st, holder);
    warnings(&mut o, st, h);
    o.push_str("<h2>Managed objects</h2>");
    counts(&mut o, st);
    o.push_str("<h2>Pending plan</h2>");
    pending(&mut o, plan);
    o.push_str("<h2>Pass duration</h2>");
    let d: Vec<_> = h.durations.iter().copied().collect();
    o.push_str(&svg::chart("chart-duration", "Pass duration (seconds)", &d));
    o.push_str("<h2>Change to converged</h2>");
    let l: Vec<_> = h.latencies.iter().copied().collect();
    o.push_str(&svg::chart(
        "chart-latency",
        "Seconds from a FreePBX change to the pass that converged it",
        &l,
    ));
    passes(&mut o, h);
    o
}

fn reach(o: &mut String, id: &str, name: &str, r: &Reachability) {
    let (class, word) = match r.reachable {
        Some(true) => ("ok", "reachable"),
        Some(false) => ("bad", "unreachable"),
        None => ("muted", "not checked yet"),
    };
    let since = r
        .since
        .map(|t| format!(" since {}", localtime::format(t)))
        .unwrap_or_default();
    let _ = write!(
        o,
        r#"<div class="card" id="{id}"><b>{name}</b><br><span class="{class}">{word}</span><span class="muted">{}</span>"#,
        esc(&since)
    );
    if let Some(e) = &r.last_error {
        let _ = write!(o, r#"<br><span class="bad">last error: {}</span>"#, esc(e));
    }
    o.push_str("</div>");
}

/// The Live API's AMI connection: since when, events per second, calls now; or why down.
fn ami_card(o: &mut String, a: &crate::live::asterisk::AmiStats) {
    let (class, word, detail) = match (a.connected_since, &a.down_reason) {
        (Some(t), _) => (
            "ok",
            "connected".to_string(),
            format!(
                "{} since {}; {:.1} events/s; {} calls now",
                a.server.as_deref().unwrap_or("Asterisk"),
                localtime::format(t),
                a.events_per_second,
                a.calls_now
            ),
        ),
        (None, reason) => (
            "bad",
            "down".to_string(),
            format!(
                "since {}: {}",
                a.down_since.map(localtime::format).unwrap_or_default(),
                reason.as_deref().unwrap_or("")
            ),
        ),
    };
    let _ = write!(
        o,
        r#"<div class="card" id="ami"><b>Asterisk (AMI)</b><br><span class="{class}">{word}</span><br><span class="muted">{}</span></div>"#,
        esc(&detail)
    );
}

/// The role card's line about the lock: which lock, and who holds it.
fn lock_line(st: &AgentStatus, holder: &Result<Option<String>, Unavailable>) -> String {
    let Some(name) = st.lock.as_deref() else {
        return "no writer lock (a snapshot file is the source, or the database is not reached yet)"
            .into();
    };
    let who = match (holder, st.role.as_str()) {
        (Ok(Some(h)), "leader") => format!("held by this agent ({h})"),
        // Any MariaDB account can take the lock: name it, never assume an agent.
        (Ok(Some(h)), _) => format!("held by {h}"),
        (Ok(None), _) => "held by nobody at the moment (an election is due)".into(),
        (Err(e), _) => format!("holder unknown: {e}"),
    };
    format!("lock {name}: {who}")
}

fn cards(o: &mut String, st: &AgentStatus, holder: &Result<Option<String>, Unavailable>) {
    o.push_str(r#"<div class="cards">"#);
    let lock = lock_line(st, holder);
    let activity = if st.pass_running {
        "a pass is running"
    } else if st.pass_pending {
        "a pass is pending"
    } else {
        "idle"
    };
    let _ = write!(
        o,
        r#"<div class="card" id="role"><b>Role</b><br><span class="{}">{}</span><br><span class="muted">{}; {}</span>"#,
        if st.role.as_str() == "leader" {
            "ok"
        } else {
            "warn"
        },
        st.role.as_str(),
        esc(&lock),
        activity
    );
    // A lock held by another account, a standby that lasts (issue 18 point 11).
    for w in &st.lock_check.warnings {
        let _ = write!(o, r#"<br><span class="bad">{}</span>"#, esc(w));
    }
    o.push_str("</div>");
    reach(o, "freepbx", "FreePBX", &st.freepbx);
    reach(o, "isymphony", "iSymphony", &st.isymphony);
    if let Some(a) = &st.ami {
        ami_card(o, a);
    }
    let last = match &st.last_pass {
        Some(p) => format!("{} at {}", p.result.as_str(), localtime::format(p.finished)),
        None => "no pass yet".into(),
    };
    let next = st
        .next_verify
        .map(|t| format!("next full verify {}", localtime::format(t)))
        .unwrap_or_default();
    let _ = write!(
        o,
        r#"<div class="card" id="last-pass"><b>Last pass</b><br>{}<br><span class="muted">{}</span></div></div>"#,
        esc(&last),
        esc(&next)
    );
}

fn warnings(o: &mut String, st: &AgentStatus, h: &History) {
    let mut w: Vec<String> = Vec::new();
    if let Some(p) = h.passes.back() {
        w.extend(p.warnings.iter().cloned());
    }
    for u in &st.isymphony_unreadable {
        let line = format!("unreadable: {u}");
        if !w.contains(&line) {
            w.push(line);
        }
    }
    if let Some(e) = &st.last_reload_error {
        w.push(format!("configuration not reloaded: {e}"));
    }
    if let Some(c) = &st.target_change {
        w.push(format!("iSymphony target changed {c}"));
    }
    if let Some(f) = st
        .isymphony_check
        .as_ref()
        .and_then(|c| c.last_finding.as_ref())
    {
        w.push(format!(
            "iSymphony check at {}: {}",
            localtime::format(f.at),
            f.found
        ));
    }
    o.push_str(r#"<h2>Warnings</h2><ul id="warnings">"#);
    if w.is_empty() {
        o.push_str(r#"<li class="muted">none</li>"#);
    }
    for line in &w {
        let _ = write!(o, r#"<li class="warn">{}</li>"#, esc(line));
    }
    o.push_str("</ul>");
}

fn counts(o: &mut String, st: &AgentStatus) {
    if st.counts_by_kind.is_empty() {
        o.push_str(r#"<p id="managed" class="muted">none known yet (no completed pass)</p>"#);
        return;
    }
    o.push_str(r#"<div class="scroll"><table id="managed"><tr><th>kind</th><th>objects</th></tr>"#);
    for (k, n) in &st.counts_by_kind {
        let _ = write!(
            o,
            r#"<tr data-kind="{k}"><td>{k}</td><td class="count">{n}</td></tr>"#,
            k = esc(&k.name())
        );
    }
    o.push_str("</table></div>");
}

/// The plan as `--dry-run` prints it, grouped by kind (the plan's descriptions mask passwords).
/// `report` is the dry-run report as `GET …/api/plan` serves it (the plan under `plan`).
fn pending(o: &mut String, report: &Result<Value, Unavailable>) {
    let (plan, age) = match report {
        Ok(r) => (&r["plan"], r["age_seconds"].as_f64().unwrap_or(0.0)),
        Err(e) => {
            let _ = write!(
                o,
                r#"<p id="plan" class="warn">plan not available: {}</p>"#,
                esc(&e.to_string())
            );
            return;
        }
    };
    let ops = plan["operations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for op in ops {
        let kind = op["kind"].as_str().unwrap_or("other").to_string();
        let line = op["description"].as_str().unwrap_or("");
        match groups.last_mut() {
            Some((k, lines)) if *k == kind => lines.push(line),
            _ => groups.push((kind, vec![line])),
        }
    }
    o.push_str(r#"<div id="plan">"#);
    if groups.is_empty() {
        o.push_str(r#"<p class="ok">in sync: nothing pending</p>"#);
    }
    for (kind, lines) in &groups {
        let _ = write!(
            o,
            r#"<details open data-kind="{k}"><summary>{k} ({n})</summary><ul>"#,
            k = esc(kind),
            n = lines.len()
        );
        for l in lines {
            let _ = write!(o, r#"<li class="op">{}</li>"#, esc(l));
        }
        o.push_str("</ul></details>");
    }
    let extra = plan["warnings"].as_array().into_iter().flatten();
    let adopt = plan["adoptions"].as_array().into_iter().flatten();
    for w in extra {
        let _ = write!(
            o,
            r#"<p class="warn">warning: {}</p>"#,
            esc(w.as_str().unwrap_or(""))
        );
    }
    for a in adopt {
        let d = a["description"].as_str().unwrap_or("");
        let _ = write!(o, r#"<p class="muted">to adopt: {}</p>"#, esc(d));
    }
    let _ = write!(o, r#"<p class="muted">computed {age:.1} s ago</p></div>"#);
}

/// A time for a narrow table cell: it may break between the date and the clock, not inside.
fn when(t: SystemTime) -> String {
    let text = localtime::format(t);
    match text.split_once(' ') {
        Some((date, clock)) => format!(
            r#"<span class="nw">{}</span> <span class="nw">{}</span>"#,
            esc(date),
            esc(clock)
        ),
        None => esc(&text),
    }
}

fn pass_row(o: &mut String, p: &PassRecord) {
    let secs = p
        .finished
        .duration_since(p.started)
        .unwrap_or_default()
        .as_secs_f64();
    let triggers: Vec<&str> = p.triggers.iter().map(|t| t.as_str()).collect();
    let message = match (&p.error, p.result) {
        (Some(e), PassResultKind::Failed | PassResultKind::Partial) => e.as_str(),
        _ => p.summary.as_str(),
    };
    let _ = write!(
        o,
        r#"<tr class="{r}"><td>{start}</td><td>{trig}</td><td>{full}</td><td class="result">{r}</td><td>{a} / {f}</td><td>{req}</td><td>{secs:.2} s</td><td class="msg">{msg}</td></tr>"#,
        r = p.result.as_str(),
        start = when(p.started),
        trig = esc(&triggers.join(", ")),
        full = if p.full { "full" } else { "" },
        a = p.applied,
        f = p.failed,
        req = p.requests.total(),
        msg = esc(message),
    );
}

fn passes(o: &mut String, h: &History) {
    let _ = write!(
        o,
        r#"<h2>Last passes</h2><div class="scroll"><table id="passes"><tr><th>start</th><th>trigger</th><th>full</th><th>result</th><th>applied / failed</th><th>requests</th><th>duration</th><th>message</th></tr>"#
    );
    if h.passes.is_empty() {
        o.push_str(r#"<tr><td colspan="8" class="muted">no pass yet</td></tr>"#);
    }
    for p in h.passes.iter().rev() {
        pass_row(o, p);
    }
    o.push_str("</table></div>");
}
