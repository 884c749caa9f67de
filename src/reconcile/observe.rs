//! Reading the iSymphony side into an [`Observed`]: every top-level collection in parallel
//! (12 GETs), then only the sub-resources [`super::diff::sub_reads`] asks for, with bounded
//! concurrency. A failed sub-resource read leaves that item out (no change is planned for it)
//! and is reported; a failed top-level read fails the pass.

use super::diff::{Observed, SubReads};
use crate::api::client::{ApiError, Client};
use crate::api::paths;
use crate::api::types::*;
use crate::model::Desired;
use futures::stream::{self, StreamExt};

/// Read the core server and every top-level collection.
pub async fn observe_top(client: &Client, d: &Desired) -> Result<Observed, ApiError> {
    let slug = &d.core_server.slug;
    let mut o = Observed::default();
    let vm_ident = d.voicemail_agent.as_ref().map(|a| a.identifier.clone());
    let rec_ident = d.recording_agent.as_ref().map(|a| a.identifier.clone());
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
    let admins = client.get::<Vec<Administrator>>(paths::administrators());
    let Some(core) = core else {
        let (vm, rec, admins) = futures::try_join!(vm, rec, admins)?;
        o.voicemail_agent = vm;
        o.recording_agent = rec;
        o.administrators = admins;
        return Ok(o);
    };
    let cs = core.id.clone().unwrap_or_default();
    let (asterisk, vm, rec, admins, idents, pbx) = futures::try_join!(
        client.get_opt::<AsteriskSettings>(paths::asterisk(&cs)),
        vm,
        rec,
        admins,
        client.get::<Vec<String>>(paths::voicemail_agent_identifiers(&cs)),
        client.get::<Vec<PbxServer>>(paths::pbx_servers(&cs)),
    )?;
    let (exts, users, queues, rooms, lots) = futures::try_join!(
        client.get::<Vec<Extension>>(paths::extensions(&cs)),
        client.get::<Vec<User>>(paths::users(&cs)),
        client.get::<Vec<Queue>>(paths::queues(&cs)),
        client.get::<Vec<ConferenceRoom>>(paths::conference_rooms(&cs)),
        client.get::<Vec<ParkingLot>>(paths::parking_lots(&cs)),
    )?;
    o.core_server = Some(core);
    o.asterisk = asterisk;
    o.voicemail_agent = vm;
    o.recording_agent = rec;
    o.administrators = admins;
    o.voicemail_identifiers = idents;
    o.pbx_servers = pbx;
    o.extensions = exts;
    o.users = users;
    o.queues = queues;
    o.conference_rooms = rooms;
    o.parking_lots = lots;
    Ok(o)
}

enum Read {
    Contact(String, Result<Option<Contact>, ApiError>),
    Emails(String, Result<Vec<EmailAddress>, ApiError>),
    Phones(String, Result<Vec<PhoneNumber>, ApiError>),
    Binding(String, Result<Option<User>, ApiError>),
}

/// Read the requested sub-resources into `o`; returns one message per failed read.
pub async fn observe_subs(
    client: &Client,
    o: &mut Observed,
    reads: &SubReads,
    concurrency: usize,
) -> Vec<String> {
    let Some(cs) = o.core_server.as_ref().and_then(|c| c.id.clone()) else {
        return Vec::new();
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
    let results: Vec<Read> = stream::iter(tasks)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Read::Contact(id, Ok(v)) => {
                o.contacts.insert(id, v);
            }
            Read::Emails(id, Ok(v)) => {
                o.emails.insert(id, v);
            }
            Read::Phones(id, Ok(v)) => {
                o.phones.insert(id, v);
            }
            Read::Binding(id, Ok(v)) => {
                o.managing_users.insert(id, v);
            }
            Read::Contact(_, Err(e))
            | Read::Emails(_, Err(e))
            | Read::Phones(_, Err(e))
            | Read::Binding(_, Err(e)) => errors.push(format!("read failed: {e}")),
        }
    }
    errors
}
