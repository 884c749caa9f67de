//! Reading the iSymphony side into an [`Observed`]: the core server, then every top-level
//! collection in parallel, then only the sub-resources [`super::diff::sub_reads`] asks for, with
//! bounded concurrency.
//!
//! Only the core server is required: a server that does not answer is "unreachable", one that
//! refuses the core server is an error naming the path and status. Any other collection or
//! sub-resource that answers 403 (licensing), 404 (an older server without it) or a body that
//! cannot be read becomes a [`Gaps`] entry: the kinds that depend on it get no operation this
//! pass (see [`super::partial`]), everything else is read, planned and applied. One object whose
//! JSON holds an unexpected value is reported and left alone; the rest of its collection is used.

use super::diff::{Observed, SubReads};
use super::progress::{Progress, Stage};
use crate::api::client::{ApiError, Client};
use crate::api::paths;
use crate::api::resource::{self, Resource};
use crate::api::types::*;
use crate::model::Desired;
use crate::model::Kind;
use futures::stream::{self, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

pub use super::partial::{GapKey, Gaps};

impl GapKey {
    fn of(e: &ApiError, sub: bool) -> GapKey {
        GapKey {
            path: e.path().unwrap_or_default().to_string(),
            status: e.status(),
            sub,
        }
    }
}

/// What to do about a read refused with `e`, for the warning (none for other failures).
fn advice(e: &ApiError) -> &'static str {
    match e.status() {
        Some(401 | 403) => {
            "; iSymphony refuses it: check that the iSymphony licence covers this feature"
        }
        Some(404) => "; this iSymphony does not have it (an older version without this feature?)",
        _ => "",
    }
}

impl Gaps {
    fn collection(&mut self, kind: Kind, e: &ApiError) {
        let why = e.to_string();
        self.warnings.push(format!(
            "{why}: {} skipped this pass (nothing of them is created, changed or deleted){}",
            super::partial::skipped_text(kind),
            advice(e)
        ));
        self.keys.insert(GapKey::of(e, false));
        self.kinds.insert(kind, why);
    }
}

/// One object of a collection that did not decode.
#[derive(Debug, Clone)]
struct BadObject {
    key: Option<String>,
    id: Option<String>,
    /// The field whose value is unexpected, when one field alone is to blame.
    field: Option<String>,
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decode a collection element by element when it does not decode as a whole.
fn decode_list<T: DeserializeOwned>(
    path: &str,
    bytes: &[u8],
    res: &Resource,
) -> Result<(Vec<T>, Vec<BadObject>), ApiError> {
    if let Ok(v) = serde_json::from_slice::<Vec<T>>(bytes) {
        return Ok((v, Vec::new()));
    }
    let raw: Vec<Value> = serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        method: "GET".into(),
        path: path.into(),
        message: format!("unreadable body ({e})"),
    })?;
    let mut items = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for v in raw {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => items.push(t),
            Err(_) => bad.push(BadObject {
                key: scalar(v.get(res.key)),
                id: scalar(v.get(res.id)),
                field: culprit::<T>(&v),
            }),
        }
    }
    Ok((items, bad))
}

/// The one field whose removal makes `v` decode (the value itself is never quoted: it may be
/// anything, a password included).
fn culprit<T: DeserializeOwned>(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    obj.keys()
        .find(|k| {
            let mut o = obj.clone();
            o.remove(*k);
            serde_json::from_value::<T>(Value::Object(o)).is_ok()
        })
        .cloned()
}

/// GET one described collection of core server `cs`; what cannot be read lands in `gaps`.
async fn list<T: DeserializeOwned>(client: &Client, res: &Resource, cs: &str) -> Listed<T> {
    let path = res.list(cs);
    let r = match client.get_raw(&path).await {
        Ok(bytes) => decode_list::<T>(&path, &bytes, res),
        Err(e) => Err(e),
    };
    Listed {
        path,
        kind: res.kind,
        r,
    }
}

struct Listed<T> {
    path: String,
    kind: Kind,
    r: Result<(Vec<T>, Vec<BadObject>), ApiError>,
}

impl<T> Listed<T> {
    /// The readable objects; gaps recorded.
    fn take(self, gaps: &mut Gaps) -> Vec<T> {
        match self.r {
            Ok((items, bad)) => {
                for b in bad {
                    let what = match (&b.key, &b.id) {
                        (Some(k), _) => format!("{} {k}", self.kind.label()),
                        (None, Some(id)) => format!("{} with id {id}", self.kind.label()),
                        (None, None) => format!("a {} without key or id", self.kind.label()),
                    };
                    let field = b
                        .field
                        .map(|f| format!("field {f} has an unexpected value"))
                        .unwrap_or_else(|| "its JSON does not have the expected shape".into());
                    gaps.warnings.push(format!(
                        "GET {}: {what}: {field}; left alone this pass",
                        self.path
                    ));
                    gaps.keys.insert(GapKey {
                        path: self.path.clone(),
                        status: None,
                        sub: false,
                    });
                    if let Some(k) = b.key {
                        gaps.objects.insert((self.kind, k));
                    }
                }
                items
            }
            Err(e) => {
                gaps.collection(self.kind, &e);
                Vec::new()
            }
        }
    }
}

/// An optional single resource (404 = none): a failure other than 404 is a gap of `kind`.
fn single<T>(r: Result<Option<T>, ApiError>, kind: Kind, gaps: &mut Gaps) -> Option<T> {
    r.unwrap_or_else(|e| {
        gaps.collection(kind, &e);
        None
    })
}

/// What the top-level read needs of the desired state: the core server's slug and the
/// identifiers of the voicemail and recording agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRead {
    pub slug: String,
    pub voicemail_agent: Option<String>,
    pub recording_agent: Option<String>,
}

impl TopRead {
    pub fn of(d: &Desired) -> TopRead {
        TopRead {
            slug: d.core_server.slug.clone(),
            voicemail_agent: d.voicemail_agent.as_ref().map(|a| a.identifier.clone()),
            recording_agent: d.recording_agent.as_ref().map(|a| a.identifier.clone()),
        }
    }
}

/// Read the core server and every top-level collection. Errors: the core server could not be
/// read (unreachable, or refused: see [`ApiError::is_unreachable`]).
pub async fn observe_top(client: &Client, d: &Desired) -> Result<(Observed, Gaps), ApiError> {
    observe_top_of(client, &TopRead::of(d)).await
}

/// [`observe_top`] for what [`TopRead`] names.
pub async fn observe_top_of(client: &Client, t: &TopRead) -> Result<(Observed, Gaps), ApiError> {
    let slug = &t.slug;
    let mut o = Observed::default();
    let mut gaps = Gaps::default();
    let vm_ident = t.voicemail_agent.clone();
    let rec_ident = t.recording_agent.clone();
    let core: Option<CoreServer> = client.get_opt(paths::core_server_by_slug(slug)).await?;
    let vm = async {
        match &vm_ident {
            Some(i) => {
                client
                    .get_opt::<VoicemailAgent>(paths::voicemail_agent(i))
                    .await
            }
            None => Ok(None),
        }
    };
    let rec = async {
        match &rec_ident {
            Some(i) => {
                client
                    .get_opt::<RecordingAgent>(paths::recording_agent(i))
                    .await
            }
            None => Ok(None),
        }
    };
    let admins = list::<Administrator>(client, &resource::ADMINISTRATORS, "");
    let Some(core) = core else {
        let (vm, rec, admins) = futures::join!(vm, rec, admins);
        o.voicemail_agent = single(vm, Kind::VoicemailAgent, &mut gaps);
        o.recording_agent = single(rec, Kind::RecordingAgent, &mut gaps);
        o.administrators = admins.take(&mut gaps);
        return Ok((o, gaps));
    };
    let cs = core.id.clone().unwrap_or_default();
    let idents = async {
        client
            .get::<Vec<String>>(paths::voicemail_agent_identifiers(&cs))
            .await
    };
    // One wave: the server works on the big lists while the small answers are decoded.
    let (asterisk, vm, rec, admins, idents, pbx, exts, users, queues, rooms, lots) = futures::join!(
        client.get_opt::<AsteriskSettings>(paths::asterisk(&cs)),
        vm,
        rec,
        admins,
        idents,
        list::<PbxServer>(client, &resource::PBX_SERVERS, &cs),
        list::<Extension>(client, &resource::EXTENSIONS, &cs),
        list::<User>(client, &resource::USERS, &cs),
        list::<Queue>(client, &resource::QUEUES, &cs),
        list::<ConferenceRoom>(client, &resource::CONFERENCE_ROOMS, &cs),
        list::<ParkingLot>(client, &resource::PARKING_LOTS, &cs),
    );
    o.core_server = Some(core);
    o.asterisk = single(asterisk, Kind::AsteriskSettings, &mut gaps);
    o.voicemail_agent = single(vm, Kind::VoicemailAgent, &mut gaps);
    o.recording_agent = single(rec, Kind::RecordingAgent, &mut gaps);
    o.administrators = admins.take(&mut gaps);
    o.voicemail_identifiers = idents.unwrap_or_else(|e| {
        gaps.collection(Kind::VoicemailAgentIdentifier, &e);
        Vec::new()
    });
    o.pbx_servers = pbx.take(&mut gaps);
    o.extensions = exts.take(&mut gaps);
    o.users = users.take(&mut gaps);
    o.queues = queues.take(&mut gaps);
    o.conference_rooms = rooms.take(&mut gaps);
    o.parking_lots = lots.take(&mut gaps);
    Ok((o, gaps))
}

enum Read {
    Contact(String, Result<Option<Contact>, ApiError>),
    Emails(String, Result<Vec<EmailAddress>, ApiError>),
    Phones(String, Result<Vec<PhoneNumber>, ApiError>),
    Binding(String, Result<Option<User>, ApiError>),
}

/// Read the requested sub-resources into `o`; returns one warning per failed read, naming the
/// path, the status and what is left alone (that item only: no change is planned for it).
pub async fn observe_subs(
    client: &Client,
    o: &mut Observed,
    reads: &SubReads,
    concurrency: usize,
    progress: Option<&dyn Progress>,
) -> Gaps {
    let mut gaps = Gaps::default();
    let Some(cs) = o.core_server.as_ref().and_then(|c| c.id.clone()) else {
        return gaps;
    };
    let cs = &cs;
    let mut tasks: Vec<futures::future::BoxFuture<'_, Read>> = Vec::with_capacity(reads.len());
    for id in &reads.contacts {
        tasks.push(Box::pin(async move {
            Read::Contact(id.clone(), client.get_opt(paths::contact(cs, id)).await)
        }));
    }
    for id in &reads.emails {
        tasks.push(Box::pin(async move {
            Read::Emails(id.clone(), client.get(paths::email_addresses(cs, id)).await)
        }));
    }
    for id in &reads.phones {
        tasks.push(Box::pin(async move {
            Read::Phones(id.clone(), client.get(paths::phone_numbers(cs, id)).await)
        }));
    }
    for id in &reads.bindings {
        tasks.push(Box::pin(async move {
            Read::Binding(
                id.clone(),
                client.get_opt(paths::managing_user(cs, id)).await,
            )
        }));
    }
    let total = tasks.len();
    let mut done = 0;
    let results: Vec<Read> = stream::iter(tasks)
        .buffer_unordered(concurrency.max(1))
        .inspect(|_| {
            done += 1;
            if let Some(p) = progress {
                p.step(Stage::Reading, done, total);
            }
        })
        .collect()
        .await;
    let users: HashMap<&str, &str> = o
        .users
        .iter()
        .filter_map(|u| Some((u.id.as_deref()?, u.username.as_str())))
        .collect();
    let exts: HashMap<&str, &str> = o
        .extensions
        .iter()
        .filter_map(|x| Some((x.id.as_deref()?, x.extension.as_str())))
        .collect();
    let user = |id: &str| users.get(id).copied().unwrap_or(id).to_string();
    let ext = |id: &str| exts.get(id).copied().unwrap_or(id).to_string();
    let mut contacts = HashMap::new();
    let mut emails = HashMap::new();
    let mut phones = HashMap::new();
    let mut bindings = HashMap::new();
    for r in results {
        let (e, what) = match r {
            Read::Contact(id, Ok(v)) => {
                contacts.insert(id, v);
                continue;
            }
            Read::Emails(id, Ok(v)) => {
                emails.insert(id, v);
                continue;
            }
            Read::Phones(id, Ok(v)) => {
                phones.insert(id, v);
                continue;
            }
            Read::Binding(id, Ok(v)) => {
                bindings.insert(id, v);
                continue;
            }
            Read::Contact(id, Err(e)) => (e, format!("the contact of user {}", user(&id))),
            Read::Emails(id, Err(e)) => (e, format!("the e-mail addresses of user {}", user(&id))),
            Read::Phones(id, Err(e)) => (e, format!("the phone numbers of user {}", user(&id))),
            Read::Binding(id, Err(e)) => {
                (e, format!("the managing user of extension {}", ext(&id)))
            }
        };
        gaps.warnings
            .push(format!("{e}: {what} left alone this pass{}", advice(&e)));
        gaps.keys.insert(GapKey::of(&e, true));
    }
    o.contacts.extend(contacts);
    o.emails.extend(emails);
    o.phones.extend(phones);
    o.managing_users.extend(bindings);
    gaps.warnings.sort();
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_object_is_left_out_and_named_by_key_and_field() {
        let body = br#"[{"id":"a","extension":"1001","autoAnswer":false},
                        {"id":"b","extension":"1002","autoAnswer":{"odd":1}},
                        {"id":"c","extension":"1003"}]"#;
        let (items, bad) = decode_list::<Extension>("p", body, &resource::EXTENSIONS).unwrap();
        let keys: Vec<&str> = items.iter().map(|x| x.extension.as_str()).collect();
        assert_eq!(keys, vec!["1001", "1003"]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].key.as_deref(), Some("1002"));
        assert_eq!(bad[0].field.as_deref(), Some("autoAnswer"));
    }

    #[test]
    fn a_body_that_is_not_a_list_is_an_error_naming_the_path() {
        let e = decode_list::<Extension>("asterisk/x/extensions", b"<html>", &resource::EXTENSIONS)
            .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("GET asterisk/x/extensions"), "{s}");
        assert!(s.contains("unreadable body"), "{s}");
    }
}
