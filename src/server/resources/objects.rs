//! The plain per-core-server collections (R11-R14): queues, conference rooms, parking lots
//! and PBX server connections. Each is a collection (GET, POST) plus an instance (GET, PUT,
//! DELETE); they differ only in wire type, natural key and derived fields.

use super::*;
use crate::api::resource::{Resource, CONFERENCE_ROOMS, PARKING_LOTS, PBX_SERVERS, QUEUES};
use crate::api::types::{ConferenceRoom, ParkingLot, PbxServer, Queue};

const QUEUE: Family = Family {
    a: "A queue",
    key: Some((QUEUES.key, "identifier")),
    required: &[(QUEUES.key, "No identifier provided.")],
};
const ROOM: Family = Family {
    a: "A conference room",
    key: Some((CONFERENCE_ROOMS.key, "identifier")),
    required: &[(CONFERENCE_ROOMS.key, "No identifier provided.")],
};
const LOT: Family = Family {
    a: "A parking lot",
    key: Some((PARKING_LOTS.key, "identifier")),
    required: &[(PARKING_LOTS.key, "No identifier provided.")],
};
const PBX: Family = Family {
    a: "A PBX server",
    // iSymphony keeps several connections to one host: no 409 on the natural key.
    key: None,
    required: &[(PBX_SERVERS.key, "No host provided.")],
};

pub fn router() -> Router<App> {
    Router::new()
        .merge(family::<Queue>(&QUEUES, &QUEUE, finish_queue))
        .merge(family::<ConferenceRoom>(
            &CONFERENCE_ROOMS,
            &ROOM,
            finish_room,
        ))
        .merge(family::<ParkingLot>(&PARKING_LOTS, &LOT, no_finish))
        .merge(family::<PbxServer>(&PBX_SERVERS, &PBX, finish_pbx))
}

fn permission(m: &mut Obj, id: &str, name_field: &str) {
    let label = format!(
        "{} <{}>",
        str_field(m, name_field),
        str_field(m, "identifier")
    );
    set_str(m, "permissionId", id);
    set_str(m, "permissionDisplayName", label);
}

fn finish_queue(m: &mut Obj, id: &str, _: Option<&Value>) -> Result<(), Error> {
    permission(m, id, "displayName");
    Ok(())
}

fn finish_room(m: &mut Obj, id: &str, _: Option<&Value>) -> Result<(), Error> {
    permission(m, id, "name");
    Ok(())
}

fn finish_pbx(m: &mut Obj, _: &str, _: Option<&Value>) -> Result<(), Error> {
    // cxpanel never sends cdrName; the docs' example value is the FreePBX default.
    if str_field(m, "cdrName").is_empty() {
        set_str(m, "cdrName", "asteriskcdrdb");
    }
    Ok(())
}

/// The routes of one described collection (its path template has the router's `{cs}`).
fn family<T>(res: &'static Resource, fam: &'static Family, finish: Finish) -> Router<App>
where
    T: serde::de::DeserializeOwned + Serialize + Send + 'static,
{
    collection::routes::<T>(
        res.collection,
        collection::in_cs(res.name()),
        fam,
        finish,
        collection::nothing_depends,
    )
}
