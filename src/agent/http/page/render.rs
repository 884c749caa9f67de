//! The HTML of the status page: the shell ([`page`]) and its live part ([`live`]), which the
//! script re-fetches and swaps in.
//!
//! Written with `maud`, whose `html!` escapes every value it inserts: a FreePBX name, an error
//! message or a plan line cannot add markup. Only the page's own style sheet and script and
//! the charts' SVG (drawn by [`svg`] with the same macro) go in as they are ([`PreEscaped`]).
//! One function per card or section, each returning its [`Markup`]: a new card, or a page of
//! its own, is one more such function.

use super::object::{kind_named, kind_url, object_link, search_form};
use super::{document, localtime, svg, Unavailable, PAGE};
use crate::agent::state::history::History;
use crate::agent::state::status::{AgentStatus, PassRecord, Reachability};
use crate::explain::readiness::Readiness;
use crate::reconcile::PassOutcome;
use maud::{html, Markup, PreEscaped};
use serde_json::Value;
use std::time::SystemTime;

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
    let body = html! {
        h1 { "isymphony-sync " span.muted { (env!("CARGO_PKG_VERSION")) } }
        form.trigger method="post" action={ (PAGE) "/sync" } {
            input type="hidden" name="token" value=(token);
            button #sync-now type="submit" name="full" value="0" { "Sync now" }
            button #full-verify type="submit" name="full" value="1" { "Full verify" }
        }
        span #note .muted { "without JavaScript: reload the page to refresh" }
        // Outside the live part, which is swapped every two seconds.
        (search_form(None, ""))
        // `live` is this module's own output, already escaped.
        div #live { (PreEscaped(live)) }
        script { (PreEscaped(SCRIPT)) }
    };
    document("isymphony-sync status", body)
}

/// The live part: everything that changes.
/// `holder`: who holds the writer lock, as MariaDB says.
pub(crate) fn live(
    st: &AgentStatus,
    h: &History,
    plan: &Result<Value, Unavailable>,
    holder: &Result<Option<String>, Unavailable>,
) -> String {
    let durations: Vec<_> = h.durations.iter().copied().collect();
    let latencies: Vec<_> = h.latencies.iter().copied().collect();
    html! {
        p.muted {
            "Shown " (localtime::format(SystemTime::now()))
            " (times in the host's time zone, " (localtime::zone_name()) ")."
        }
        (cards(st, holder))
        (warnings(st, h))
        h2 { "Managed objects" }
        (counts(st))
        (readiness(st.readiness.as_ref()))
        h2 { "Pending plan" }
        (pending(plan))
        h2 { "Pass duration" }
        (svg::chart("chart-duration", "Pass duration (seconds)", &durations))
        h2 { "Change to converged" }
        (svg::chart(
            "chart-latency",
            "Seconds from a FreePBX change to the pass that converged it",
            &latencies,
        ))
        (passes(h))
    }
    .into_string()
}

fn reach(id: &str, name: &str, r: &Reachability) -> Markup {
    let (class, word) = match r.reachable {
        Some(true) => ("ok", "reachable"),
        Some(false) => ("bad", "unreachable"),
        None => ("muted", "not checked yet"),
    };
    html! {
        div.card id=(id) {
            b { (name) } br;
            span class=(class) { (word) }
            span.muted {
                @if let Some(t) = r.since { " since " (localtime::format(t)) }
            }
            @if let Some(e) = &r.last_error {
                br;
                span.bad { "last error: " (e) }
            }
        }
    }
}

/// The Live API's AMI connection: since when, events per second, calls now; or why down.
fn ami_card(a: &crate::live::asterisk::AmiStats) -> Markup {
    let (class, word, detail) = match (a.connected_since, &a.down_reason) {
        (Some(t), _) => (
            "ok",
            "connected",
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
            "down",
            format!(
                "since {}: {}",
                a.down_since.map(localtime::format).unwrap_or_default(),
                reason.as_deref().unwrap_or("")
            ),
        ),
    };
    html! {
        div.card #ami {
            b { "Asterisk (AMI)" } br;
            span class=(class) { (word) } br;
            span.muted { (detail) }
        }
    }
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

fn role_card(st: &AgentStatus, holder: &Result<Option<String>, Unavailable>) -> Markup {
    let activity = if st.pass_running {
        "a pass is running"
    } else if st.pass_pending {
        "a pass is pending"
    } else {
        "idle"
    };
    let class = if st.role.as_str() == "leader" {
        "ok"
    } else {
        "warn"
    };
    html! {
        div.card #role {
            b { "Role" } br;
            span class=(class) { (st.role.as_str()) } br;
            span.muted { (lock_line(st, holder)) "; " (activity) }
            // A lock held by another account, a standby that lasts (issue 18 point 11).
            @for w in &st.lock_check.warnings {
                br;
                span.bad { (w) }
            }
        }
    }
}

fn last_pass_card(st: &AgentStatus) -> Markup {
    html! {
        div.card #last-pass {
            b { "Last pass" } br;
            @match &st.last_pass {
                Some(p) => { (p.result.as_str()) " at " (localtime::format(p.finished)) }
                None => "no pass yet",
            }
            br;
            span.muted {
                @if let Some(t) = st.next_verify { "next full verify " (localtime::format(t)) }
            }
        }
    }
}

fn cards(st: &AgentStatus, holder: &Result<Option<String>, Unavailable>) -> Markup {
    html! {
        div.cards {
            (role_card(st, holder))
            (reach("freepbx", "FreePBX", &st.freepbx))
            (reach("isymphony", "iSymphony", &st.isymphony))
            @if let Some(a) = &st.ami { (ami_card(a)) }
            (last_pass_card(st))
        }
    }
}

/// The warnings of the last pass and of the agent, each once.
fn warning_lines(st: &AgentStatus, h: &History) -> Vec<String> {
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
    w
}

fn warnings(st: &AgentStatus, h: &History) -> Markup {
    let w = warning_lines(st, h);
    html! {
        h2 { "Warnings" }
        ul #warnings {
            @if w.is_empty() { li.muted { "none" } }
            @for line in &w { li.warn { (line) } }
        }
    }
}

fn counts(st: &AgentStatus) -> Markup {
    if st.counts_by_kind.is_empty() {
        return html! { p #managed .muted { "none known yet (no completed pass)" } };
    }
    html! {
        div.scroll {
            table #managed {
                tr { th { "kind" } th { "objects" } }
                @for (k, n) in &st.counts_by_kind {
                    @let name = k.name();
                    tr data-kind=(name) {
                        td { (name) }
                        td.count {
                            @if kind_named(name).is_some() { a href=(kind_url(*k)) { (n) } }
                            @else { (n) }
                        }
                    }
                }
            }
        }
    }
}

/// One operation of the plan: its line, and its object's page when `--explain` knows its kind.
type Op<'a> = (&'a str, Option<String>);

/// The plan's operations grouped by kind, in plan order (a kind seen again starts a group).
fn groups(ops: &[Value]) -> Vec<(&str, Vec<Op<'_>>)> {
    let mut groups: Vec<(&str, Vec<Op<'_>>)> = Vec::new();
    for op in ops {
        let kind = op["kind"].as_str().unwrap_or("other");
        let page = kind_named(kind).zip(op["key"].as_str());
        let line = (
            op["description"].as_str().unwrap_or(""),
            page.map(|(k, key)| super::object::object_url(k, key)),
        );
        match groups.last_mut() {
            Some((k, lines)) if *k == kind => lines.push(line),
            _ => groups.push((kind, vec![line])),
        }
    }
    groups
}

/// The plan as `--dry-run` prints it, grouped by kind (the plan's descriptions mask passwords).
/// `report` is the dry-run report as `GET …/api/plan` serves it (the plan under `plan`).
fn pending(report: &Result<Value, Unavailable>) -> Markup {
    let (plan, age) = match report {
        Ok(r) => (&r["plan"], r["age_seconds"].as_f64().unwrap_or(0.0)),
        Err(e) => return html! { p #plan .warn { "plan not available: " (e) } },
    };
    let ops = plan["operations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let groups = groups(ops);
    let extra = plan["warnings"].as_array().into_iter().flatten();
    let adopt = plan["adoptions"].as_array().into_iter().flatten();
    html! {
        div #plan {
            @if groups.is_empty() { p.ok { "in sync: nothing pending" } }
            @for (kind, lines) in &groups {
                details open data-kind=(kind) {
                    summary { (kind) " (" (lines.len()) ")" }
                    ul {
                        @for (l, page) in lines {
                            li.op {
                                (l)
                                @if let Some(p) = page { " " a.explain href=(p) { "explain" } }
                            }
                        }
                    }
                }
            }
            @for w in extra { p.warn { "warning: " (w.as_str().unwrap_or("")) } }
            @for a in adopt {
                p.muted { "to adopt: " (a["description"].as_str().unwrap_or("")) }
            }
            p.muted { "computed " (format!("{age:.1}")) " s ago" }
        }
    }
}

/// Readiness after the last pass that applied changes or verified: per kind, the managed
/// objects configured but not live, each linked to its page.
fn readiness(r: Option<&Readiness>) -> Markup {
    html! {
        h2 { "Live in iSymphony" }
        div #readiness {
            @match r {
                None => p.muted {
                    "not checked yet (after a pass that applies changes, and at each full verify)"
                },
                Some(Readiness::Unknown { at, reason }) => p.warn {
                    "unknown: " (reason) span.muted { " (" (localtime::format(*at)) ")" }
                },
                Some(Readiness::Known { at, not_live }) => {
                    p.muted { "checked " (localtime::format(*at)) }
                    div.scroll { table {
                        tr { th { "kind" } th { "not live" } th { "objects" } }
                        @for (k, keys) in not_live {
                            tr data-kind=(k.name()) {
                                td { (k.name()) }
                                td class={ "count " (if keys.is_empty() { "ok" } else { "bad" }) } { (keys.len()) }
                                td {
                                    @if keys.is_empty() { span.ok { "all live" } }
                                    @for (i, key) in keys.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (object_link(*k, key))
                                    }
                                }
                            }
                        }
                    } }
                }
            }
        }
    }
}

/// A time for a narrow table cell: it may break between the date and the clock, not inside.
fn when(t: SystemTime) -> Markup {
    let text = localtime::format(t);
    match text.split_once(' ') {
        Some((date, clock)) => html! { span.nw { (date) } " " span.nw { (clock) } },
        None => html! { (text) },
    }
}

fn pass_row(p: &PassRecord) -> Markup {
    let secs = p
        .finished
        .duration_since(p.started)
        .unwrap_or_default()
        .as_secs_f64();
    let triggers: Vec<&str> = p.triggers.iter().map(|t| t.as_str()).collect();
    let message = match (&p.error, p.result) {
        (Some(e), PassOutcome::Failed | PassOutcome::Partial) => e.as_str(),
        _ => p.summary.as_str(),
    };
    let r = p.result.as_str();
    html! {
        tr class=(r) {
            td { (when(p.started)) }
            td { (triggers.join(", ")) }
            td { @if p.full { "full" } }
            td.result { (r) }
            td { (p.applied) " / " (p.failed) }
            td { (p.requests.total()) }
            td { (format!("{secs:.2}")) " s" }
            td.msg { (message) }
        }
    }
}

fn passes(h: &History) -> Markup {
    html! {
        h2 { "Last passes" }
        div.scroll {
            table #passes {
                tr {
                    th { "start" } th { "trigger" } th { "full" } th { "result" }
                    th { "applied / failed" } th { "requests" } th { "duration" } th { "message" }
                }
                @if h.passes.is_empty() { tr { td colspan="8" .muted { "no pass yet" } } }
                @for p in h.passes.iter().rev() { (pass_row(p)) }
            }
        }
    }
}
