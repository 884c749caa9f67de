//! Relative paths of the Configuration API resources, below the base URL
//! (`…/communication_manager/api/resource/`), the prefixes and (re-exported from
//! [`super::segment`]) the percent-encoding of a segment. One definition, used by the client,
//! the embedded server and tests; the managed collections' paths come from their
//! [`super::resource`] descriptions.

use super::resource::*;
pub use super::segment::{seg, unseg, unseg_bytes};

macro_rules! api_root {
    () => {
        "communication_manager/api/resource"
    };
}
macro_rules! alt_root {
    () => {
        "communication_manager/rest/config"
    };
}

/// The prefix the client appends to a base URL; the embedded server also serves [`ALT_PREFIX`].
pub const PREFIX: &str = concat!(api_root!(), "/");
/// The prefix most doc pages show.
pub const ALT_PREFIX: &str = concat!(alt_root!(), "/");
/// [`PREFIX`] as a route below the host root (what the embedded server nests its routes in).
pub const API_ROOT: &str = concat!("/", api_root!());
/// [`ALT_PREFIX`] as a path below the host root (rewritten to [`API_ROOT`] by the server).
pub const ALT_ROOT: &str = concat!("/", alt_root!());

pub fn core_servers() -> String {
    "server/coreServers".into()
}
pub fn core_server_by_slug(slug: &str) -> String {
    format!("server/coreServers/getBySlug/{}", seg(slug))
}
pub fn asterisk(cs: &str) -> String {
    format!("asterisk/{cs}")
}
pub fn extensions(cs: &str) -> String {
    EXTENSIONS.list(cs)
}
pub fn extension(cs: &str, id: &str) -> String {
    EXTENSIONS.item(cs, id)
}
pub fn managing_user(cs: &str, ext_id: &str) -> String {
    format!("asterisk/{cs}/extensions/{}/managingUser", seg(ext_id))
}
pub fn users(cs: &str) -> String {
    USERS.list(cs)
}
pub fn users_nohash(cs: &str) -> String {
    USERS.list_nohash(cs)
}
pub fn user(cs: &str, id: &str) -> String {
    USERS.item(cs, id)
}
pub fn user_nohash(cs: &str, id: &str) -> String {
    USERS.item_nohash(cs, id)
}
pub fn contact(cs: &str, user_id: &str) -> String {
    format!("contact/{cs}/users/{}", seg(user_id))
}
pub fn email_addresses(cs: &str, user_id: &str) -> String {
    format!("contact/{cs}/users/{}/emailAddresses", seg(user_id))
}
pub fn email_address(cs: &str, user_id: &str, id: &str) -> String {
    format!(
        "contact/{cs}/users/{}/emailAddresses/{}",
        seg(user_id),
        seg(id)
    )
}
pub fn phone_numbers(cs: &str, user_id: &str) -> String {
    format!("contact/{cs}/users/{}/phoneNumbers", seg(user_id))
}
pub fn phone_number(cs: &str, user_id: &str, id: &str) -> String {
    format!(
        "contact/{cs}/users/{}/phoneNumbers/{}",
        seg(user_id),
        seg(id)
    )
}
pub fn queues(cs: &str) -> String {
    QUEUES.list(cs)
}
pub fn queue(cs: &str, id: &str) -> String {
    QUEUES.item(cs, id)
}
pub fn conference_rooms(cs: &str) -> String {
    CONFERENCE_ROOMS.list(cs)
}
pub fn conference_room(cs: &str, id: &str) -> String {
    CONFERENCE_ROOMS.item(cs, id)
}
pub fn parking_lots(cs: &str) -> String {
    PARKING_LOTS.list(cs)
}
pub fn parking_lot(cs: &str, id: &str) -> String {
    PARKING_LOTS.item(cs, id)
}
pub fn pbx_servers(cs: &str) -> String {
    PBX_SERVERS.list(cs)
}
pub fn pbx_server(cs: &str, id: &str) -> String {
    PBX_SERVERS.item(cs, id)
}
pub fn voicemail_agent_identifiers(cs: &str) -> String {
    format!("asterisk/{cs}/voicemailAgentIdentifiers")
}
pub fn voicemail_agent_identifier(cs: &str, ident: &str) -> String {
    format!("asterisk/{cs}/voicemailAgentIdentifiers/{}", seg(ident))
}
pub fn voicemail_agent(ident: &str) -> String {
    format!("asterisk/voicemailAgents/{}", seg(ident))
}
pub fn recording_agent(ident: &str) -> String {
    format!("asterisk/recordingAgents/{}", seg(ident))
}
pub fn administrators() -> String {
    ADMINISTRATORS.list("")
}
pub fn administrators_nohash() -> String {
    ADMINISTRATORS.list_nohash("")
}
pub fn administrator(id: &str) -> String {
    ADMINISTRATORS.item("", id)
}
pub fn administrator_nohash(id: &str) -> String {
    ADMINISTRATORS.item_nohash("", id)
}
pub fn brand() -> String {
    "server/brand".into()
}
