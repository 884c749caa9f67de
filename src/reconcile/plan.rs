//! A Plan: the ordered operations one pass will run, with text and JSON renderings.
//!
//! Each [`Op`] says what changes for people (action, kind, natural key, field changes with
//! passwords masked) and carries the HTTP request that performs it for [`super::apply`]. The
//! request body may hold password hashes, so it is never rendered or printed (`Request`'s
//! `Debug` shows the method and path only). Stages order execution: parents before children,
//! bindings after both ends exist, deletes of children before deletes of parents.

use super::facts::Effect;
use crate::api::confirm::Confirm;
use crate::model::Kind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One changed field, values already rendered (strings quoted, passwords `***`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Delete,
}

/// A request's JSON body, serialised once when the plan is made: the request sends these
/// bytes (a `Value` per body cost a first sync two serialisations per request, one into the
/// `Value` and one out of it). Not `Debug`: it may hold password hashes.
#[derive(Clone, PartialEq)]
pub struct Body(bytes::Bytes);

impl Body {
    /// The JSON of a wire object. Serialising the wire types cannot fail (string keys, no
    /// non-finite numbers).
    pub fn of<T: serde::Serialize + ?Sized>(v: &T) -> Body {
        Body(
            serde_json::to_vec(v)
                .expect("wire types serialise to JSON")
                .into(),
        )
    }
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.0
    }
    /// The body parsed (for tests and the rare reader; the bytes are JSON by construction).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

/// As the JSON it holds (what a fingerprint of an operation hashes).
impl serde::Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// The HTTP call that performs an operation. Not rendered: the body may hold secrets.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<Body>,
    pub confirm: Option<Confirm>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.method, self.path)
    }
}

/// One operation of a plan.
#[derive(Debug, Clone)]
pub struct Op {
    pub action: Action,
    pub kind: Kind,
    /// The natural key (extension number, username, queue number, …).
    pub key: String,
    /// A display name shown in quotes after the key, or the sub-item (e-mail address).
    pub label: Option<String>,
    pub changes: Vec<Change>,
    /// Execution stage; lower first (see module docs).
    pub stage: u8,
    pub request: Request,
    /// What the state store records once the server confirmed this operation.
    pub effects: Vec<Effect>,
    /// Operations (kind, key) that must have succeeded first.
    pub needs: Vec<(Kind, String)>,
    /// The sub-resource fingerprint this operation belongs to.
    pub fingerprint: Option<String>,
}

/// A sub-resource fingerprint to store once everything it depends on succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The kind of sub-resource it covers (contact, e-mails, phones, binding).
    pub kind: Kind,
    pub key: String,
    pub value: String,
    pub needs: Vec<(Kind, String)>,
}

/// What a pass would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub warnings: Vec<String>,
    /// Facts verified by reading (adoption, a password already equal) to record after the pass.
    pub verified: Vec<Effect>,
    /// Sub-resource fingerprints to store after the pass.
    pub fingerprints: Vec<Fingerprint>,
    /// Managed server objects per guarded kind (denominator of the safety valve).
    pub managed_counts: BTreeMap<Kind, usize>,
    /// What `--adopt-cxpanel-items` takes over (recorded with `verified`).
    pub adoptions: Vec<Adoption>,
}

/// Execution stage of an operation (see module docs; the stages are [`Kind::facts`]).
pub(crate) fn stage_of(kind: Kind, action: Action) -> u8 {
    let f = kind.facts();
    if action == Action::Delete {
        f.delete_stage
    } else {
        f.stage
    }
}

/// A string value as the plan shows it.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl Op {
    /// `+ create extension 1001 "Alice"`, `~ update queue 400: displayName "Sales" -> "Sales EU"`.
    /// Keys, names and values come from FreePBX and iSymphony: control characters in them are
    /// escaped, so one operation is one line whatever they hold.
    pub fn describe(&self) -> String {
        let sym = match self.action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
        };
        let verb = match self.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        };
        let label = self.label.as_deref().unwrap_or("");
        let mut s = match (self.kind, self.action) {
            (Kind::Email | Kind::Phone, Action::Create) => {
                format!(
                    "{sym} add {} {label} to user {}",
                    self.kind.label(),
                    self.key
                )
            }
            (Kind::Email | Kind::Phone, _) => {
                format!(
                    "{sym} remove {} {label} from user {}",
                    self.kind.label(),
                    self.key
                )
            }
            (Kind::ManagingUser, Action::Create) => {
                format!("{sym} bind extension {} to user {}", self.key, quote(label))
            }
            (Kind::ManagingUser, Action::Update) => {
                format!("{sym} rebind extension {}", self.key)
            }
            (Kind::ManagingUser, Action::Delete) => {
                format!(
                    "{sym} unbind extension {} from user {}",
                    self.key,
                    quote(label)
                )
            }
            (Kind::Contact, Action::Create) if !label.is_empty() => {
                format!("{sym} {verb} contact of user {} {}", self.key, quote(label))
            }
            (Kind::Contact, _) => format!("{sym} {verb} contact of user {}", self.key),
            (Kind::AsteriskSettings, _) => {
                format!("{sym} {verb} asterisk settings of core server {}", self.key)
            }
            (Kind::VoicemailAgentIdentifier, Action::Create) => {
                format!("{sym} bind voicemail agent {}", self.key)
            }
            (Kind::VoicemailAgentIdentifier, _) => {
                format!("{sym} unbind voicemail agent {}", self.key)
            }
            _ => {
                let mut s = format!("{sym} {verb} {} {}", self.kind.label(), self.key);
                if !label.is_empty() && self.action != Action::Update {
                    s.push(' ');
                    s.push_str(&quote(label));
                }
                s
            }
        };
        if !self.changes.is_empty() {
            s.push_str(": ");
            let parts: Vec<String> = self
                .changes
                .iter()
                .map(|c| format!("{} {} -> {}", c.field, c.from, c.to))
                .collect();
            s.push_str(&parts.join(", "));
        }
        crate::text::escape_control(&s).into_owned()
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "action": self.action,
            "kind": self.kind,
            "key": self.key,
            "description": self.describe(),
        });
        if let Some(l) = &self.label {
            v["label"] = json!(l);
        }
        if !self.changes.is_empty() {
            v["changes"] = json!(self.changes);
        }
        v
    }
}

/// Counts of a plan by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Plan {
    /// Nothing to change on the server and nothing to adopt.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.adoptions.is_empty()
    }

    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for op in &self.ops {
            match op.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    /// Operations grouped by kind (display order), creates then updates then deletes.
    fn grouped(&self) -> BTreeMap<Kind, Vec<&Op>> {
        let mut g: BTreeMap<Kind, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            g.entry(op.kind).or_default().push(op);
        }
        for ops in g.values_mut() {
            ops.sort_by(|a, b| (a.action, &a.key, &a.label).cmp(&(b.action, &b.key, &b.label)));
        }
        g
    }

    /// The plan for people: grouped by kind, passwords masked; `color` adds ANSI colours.
    pub fn render_text(&self, color: bool) -> String {
        let mut out = String::new();
        for w in &self.warnings {
            out.push_str(&format!("warning: {}\n", crate::text::escape_control(w)));
        }
        if !self.adoptions.is_empty() {
            out.push_str("Adopted from the cxpanel module (--adopt-cxpanel-items):\n");
            for a in &self.adoptions {
                out.push_str(&format!("  {}\n", a.describe()));
            }
        }
        if self.ops.is_empty() {
            out.push_str(if self.adoptions.is_empty() {
                "No changes: iSymphony is in sync with FreePBX.\n"
            } else {
                "No changes to iSymphony.\n"
            });
            return out;
        }
        for (kind, ops) in self.grouped() {
            out.push_str(&format!("{}:\n", kind.heading()));
            for op in ops {
                let line = op.describe();
                let line = if color {
                    let code = match op.action {
                        Action::Create => "32",
                        Action::Update => "33",
                        Action::Delete => "31",
                    };
                    format!("\x1b[{code}m{line}\x1b[0m")
                } else {
                    line
                };
                out.push_str("  ");
                out.push_str(&line);
                out.push('\n');
            }
        }
        let s = self.summary();
        out.push_str(&format!(
            "Plan: {} to create, {} to update, {} to delete.\n",
            s.create, s.update, s.delete
        ));
        out
    }

    /// The plan for tools.
    pub fn to_json(&self) -> Value {
        let ops: Vec<Value> = self
            .grouped()
            .into_values()
            .flatten()
            .map(Op::to_json)
            .collect();
        json!({
            "in_sync": self.is_empty(),
            "summary": self.summary(),
            "operations": ops,
            "warnings": self.warnings,
            "adoptions": self.adoptions.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
        })
    }
}

/// One server object or sub-item to take over ([`super::adopt`] finds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub kind: Kind,
    /// The owning user's name, or the parking lot identifier.
    pub key: String,
    /// The adopted value as the server holds it (address, `Type number`, lot name).
    pub value: String,
    pub effect: Effect,
}

impl Adoption {
    /// `= adopt e-mail ann@corp.com of user 1001`.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::ParkingLot => format!("= adopt parking lot {} {}", self.key, quote(&self.value)),
            k => format!("= adopt {} {} of user {}", k.label(), self.value, self.key),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "key": self.key,
            "value": self.value,
            "description": self.describe(),
        })
    }
}
