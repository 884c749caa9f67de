//! The HTML of the status page's object pages: one object explained (the same
//! [`Explanation`] `--explain KIND/KEY` prints, gathered by [`crate::explain`]), a kind's
//! objects as links, an unknown key with the closest keys as links, and the search form.
//!
//! Like the rest of the page, written with `maud`, whose `html!` escapes every value: a key,
//! a FreePBX name or an error cannot add markup. Only the page's own style sheet goes in as
//! it is.

use super::{document, PAGE};
use crate::explain::{Explanation, Liveness, KINDS};
use crate::model::Kind;
use maud::{html, Markup};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a key keeps as it is in an object page's path: the unreserved characters and `/` (the
/// endpoint refuses an encoded `/`; the route takes the rest of the path as the key).
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The kind `--explain` knows by this name.
pub(crate) fn kind_named(name: &str) -> Option<Kind> {
    KINDS.into_iter().find(|k| k.name() == name)
}

/// The page listing a kind's objects.
pub(crate) fn kind_url(kind: Kind) -> String {
    format!("{PAGE}/explain/{}", kind.name())
}

/// One object's page.
pub(crate) fn object_url(kind: Kind, key: &str) -> String {
    format!("{}/{}", kind_url(kind), utf8_percent_encode(key, KEY))
}

/// A link to an object's page.
pub(crate) fn object_link(kind: Kind, key: &str) -> Markup {
    html! { a.obj href=(object_url(kind, key)) { (key) } }
}

/// The search box: a plain GET form (no script needed), answered by a redirect to the
/// object's page. `kind` and `key` fill it in again on the page it leads to.
pub(crate) fn search_form(kind: Option<Kind>, key: &str) -> Markup {
    html! {
        form #search method="get" action={ (PAGE) "/explain" } {
            label for="search-kind" { "Explain " }
            select #search-kind name="kind" {
                @for k in KINDS {
                    @let name = k.name();
                    option value=(name) selected[kind == Some(k)] { (name) }
                }
            }
            " "
            input #search-key type="search" name="key" value=(key) required
                placeholder="key, e.g. 1001" aria-label="key";
            " "
            button #search-go type="submit" { "Explain" }
        }
    }
}

/// A whole object page: `title`, the search form, `body`.
pub(crate) fn shell(title: &str, kind: Option<Kind>, key: &str, body: Markup) -> String {
    let page = html! {
        p { a href={ (PAGE) "/" } { "← status page" } }
        (search_form(kind, key))
        h1 #title { (title) }
        (body)
    };
    document(&format!("{title} · isymphony-sync"), page)
}

/// The verdict first, as `--explain`'s exit code says it (0: in sync and live; 2: pending or
/// not live, both named when both hold).
fn verdict(e: &Explanation) -> Markup {
    let mut why = Vec::new();
    if !e.pending.is_empty() {
        why.push("changes pending");
    }
    if matches!(e.live, Liveness::NotLive(_)) {
        why.push("configured but not live");
    }
    let (class, word) = match (why.is_empty(), &e.live) {
        (true, Liveness::Live) => ("ok", "in sync and live".to_string()),
        (true, _) => ("ok", "in sync".to_string()),
        (false, _) => ("bad", why.join("; ")),
    };
    html! { p #verdict class=(class) { b { (word) } } }
}

fn freepbx(e: &Explanation) -> Markup {
    let f = &e.freepbx;
    html! {
        h2 { "FreePBX " span.muted { "(" (f.mode) ")" } }
        ul #freepbx {
            @if f.rows.is_empty() { li.muted { "no rows: FreePBX does not have it" } }
            @for r in &f.rows { li { code { (r) } } }
            @if let Some(v) = &f.voicemail { li { "voicemail.conf: " code { (v) } } }
        }
    }
}

fn desired(e: &Explanation) -> Markup {
    let pretty = e
        .desired
        .as_ref()
        .map(|d| serde_json::to_string_pretty(d).unwrap_or_else(|_| d.to_string()));
    html! {
        h2 { "Desired in iSymphony" }
        div #desired {
            @match (&pretty, &e.freepbx.skipped) {
                (Some(d), _) => { pre.scroll { code { (d) } } }
                (None, Some(why)) => { p.warn { "skipped: " (why) } }
                (None, None) => { p.muted { "not wanted (FreePBX does not have it)" } }
            }
            @for r in &e.freepbx.rules { p.warn { "rule: " (r) } }
        }
    }
}

fn held(e: &Explanation) -> Markup {
    html! {
        h2 { "Held by iSymphony" }
        div #held {
            @match &e.isymphony {
                Some(h) => {
                    p { "id " code { (h.id.as_deref().unwrap_or("(no id)")) } ", owner: " (h.ownership) }
                    p #last-written { (h.last_written) }
                    @for n in &h.notes { p.muted { (n) } }
                }
                None => { p.muted { "not present" } }
            }
        }
    }
}

fn pending(e: &Explanation) -> Markup {
    html! {
        h2 { "Pending" }
        div #pending {
            @if e.pending.is_empty() && e.held.is_empty() { p.ok { "nothing: in sync" } }
            @for p in &e.pending {
                p.op { (p.line) }
                @if !p.changes.is_empty() {
                    div.scroll { table {
                        tr { th { "field" } th { "iSymphony now" } th { "FreePBX wants" } }
                        @for c in &p.changes {
                            tr { td { (c.field) } td.op { (c.from) } td.op { (c.to) } }
                        }
                    } }
                }
            }
            @for h in &e.held { p.warn { "held: " (h) } }
        }
    }
}

fn live(e: &Explanation) -> Markup {
    let (class, text) = match &e.live {
        Liveness::Live => (
            "ok",
            "live: the Live API lists it under its configurationId".to_string(),
        ),
        Liveness::NotLive(why) => ("bad", format!("NOT live: {why}")),
        Liveness::NotApplicable(why) => ("muted", format!("not applicable: {why}")),
        Liveness::Unknown(why) => ("warn", format!("unknown: {why}")),
    };
    html! {
        h2 { "Live" }
        p #live-state class=(class) { (text) }
    }
}

/// One object explained: the same sections, in the same order, as `--explain`'s text.
pub(crate) fn explanation(e: &Explanation) -> Markup {
    html! {
        p.muted { "target: " (e.target) }
        (verdict(e))
        (freepbx(e))
        (desired(e))
        (held(e))
        (pending(e))
        (live(e))
        @if !e.warnings.is_empty() {
            ul #explain-warnings { @for w in &e.warnings { li.warn { (w) } } }
        }
        p.muted #reads {
            "read: Configuration API " (e.requests.to_string())
            "; Live API " (e.live_requests.to_string())
        }
    }
}

/// An object neither side knows, with the closest keys as links.
pub(crate) fn unknown(kind: Kind, message: &str, suggestions: &[String]) -> Markup {
    html! {
        p.bad #unknown { (message) }
        @if !suggestions.is_empty() {
            p { "Closest keys:" }
            ul #suggestions { @for s in suggestions { li { (object_link(kind, s)) } } }
        }
        p { a href=(kind_url(kind)) { "all " (kind.name()) " objects" } }
    }
}

/// A kind's objects as FreePBX knows them, each linked to its page.
pub(crate) fn kind_list(kind: Kind, keys: &[String]) -> Markup {
    html! {
        @if keys.is_empty() { p.muted #objects { "FreePBX has none" } }
        @else {
            p.muted { (keys.len()) " known to FreePBX" }
            ul #objects { @for k in keys { li { (object_link(kind, k)) } } }
        }
    }
}

/// Why there is no answer (the message says what to do; agent errors hold no secrets).
pub(crate) fn failure(message: &str) -> Markup {
    html! { p.bad #failure { (message) } }
}
