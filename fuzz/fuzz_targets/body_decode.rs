//! Fuzz the embedded server's request-body decoding: the exact function every handler's
//! `JsonBody` extractor uses, then the typed normalisation of the handlers (through the one
//! wire type of each resource family in `api::types`). Errors are fine; panics, stack
//! overflows and runaway memory are not.
#![no_main]

use isymphony_sync::api::types::{
    Administrator, AsteriskSettings, ConferenceRoom, Contact, CoreServer, EmailAddress,
    Extension, ExtensionGroup, License, ParkingLot, PbxServer, PhoneNumber, Queue,
    RecordingAgent, User, VoicemailAgent,
};
use isymphony_sync::server::decode_json_body;
use isymphony_sync::server::resources::normalise;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = decode_json_body(data) else {
        return;
    };
    let _ = normalise::<CoreServer>(v.clone(), &[("slug", "No slug provided.")]);
    let _ = normalise::<AsteriskSettings>(v.clone(), &[]);
    let _ = normalise::<User>(v.clone(), &[("username", "No username provided.")]);
    let _ = normalise::<Contact>(v.clone(), &[]);
    let _ = normalise::<EmailAddress>(v.clone(), &[]);
    let _ = normalise::<PhoneNumber>(v.clone(), &[]);
    let _ = normalise::<Extension>(v.clone(), &[("extension", "No extension provided.")]);
    let _ = normalise::<Queue>(v.clone(), &[]);
    let _ = normalise::<ConferenceRoom>(v.clone(), &[]);
    let _ = normalise::<ParkingLot>(v.clone(), &[]);
    let _ = normalise::<PbxServer>(v.clone(), &[]);
    let _ = normalise::<VoicemailAgent>(v.clone(), &[]);
    let _ = normalise::<RecordingAgent>(v.clone(), &[]);
    let _ = normalise::<Administrator>(v.clone(), &[]);
    let _ = normalise::<ExtensionGroup>(v.clone(), &[]);
    let _ = normalise::<License>(v, &[]);
});
