//! One description per iSymphony collection the sync manages: its kind, the collection path
//! (below the API prefix, `{cs}` standing for the core server id), the wire field holding its
//! natural key and the one holding its id. The client's paths ([`super::paths`]), the embedded
//! server's routes and 409 duplicate checks, `observe`'s reads and the diff's
//! create/update/delete paths all come from here, so a collection is described once.

use super::segment::seg;
use crate::model::Kind;

/// A collection of objects the sync creates, updates and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub kind: Kind,
    /// Path of the collection; `{cs}` is the core server id (the embedded server's route
    /// parameter has the same name).
    pub collection: &'static str,
    /// The JSON field (wire name) holding the natural key the plan and the 409 check use.
    pub key: &'static str,
    /// The JSON field holding the server id.
    pub id: &'static str,
    /// The collection also takes writes of stored password hashes below `…/noHash`.
    pub no_hash: bool,
}

impl Resource {
    /// The collection path for core server `cs`.
    pub fn list(&self, cs: &str) -> String {
        self.collection.replace("{cs}", cs)
    }
    /// One object of the collection.
    pub fn item(&self, cs: &str, id: &str) -> String {
        format!("{}/{}", self.list(cs), seg(id))
    }
    /// The collection's `noHash` variant (creates carrying a stored hash).
    pub fn list_nohash(&self, cs: &str) -> String {
        format!("{}/noHash", self.list(cs))
    }
    /// One object's `noHash` variant (updates carrying a stored hash).
    pub fn item_nohash(&self, cs: &str, id: &str) -> String {
        format!("{}/noHash/{}", self.list(cs), seg(id))
    }
    /// Whether the collection lives below a core server (else server-wide).
    pub fn per_core_server(&self) -> bool {
        self.collection.contains("{cs}")
    }
    /// The last path segment: the embedded store's scope name of the collection.
    pub fn name(&self) -> &'static str {
        self.collection
            .rsplit('/')
            .next()
            .unwrap_or(self.collection)
    }
}

pub const ADMINISTRATORS: Resource = Resource {
    kind: Kind::Administrator,
    collection: "server/administrators",
    key: "userName",
    id: "id",
    no_hash: true,
};
pub const EXTENSIONS: Resource = Resource {
    kind: Kind::Extension,
    collection: "asterisk/{cs}/extensions",
    key: "extension",
    id: "id",
    no_hash: false,
};
pub const USERS: Resource = Resource {
    kind: Kind::User,
    collection: "core/{cs}/users",
    key: "username",
    id: "id",
    no_hash: true,
};
pub const QUEUES: Resource = Resource {
    kind: Kind::Queue,
    collection: "asterisk/{cs}/queues",
    key: "identifier",
    id: "id",
    no_hash: false,
};
pub const CONFERENCE_ROOMS: Resource = Resource {
    kind: Kind::ConferenceRoom,
    collection: "asterisk/{cs}/conferenceRooms",
    key: "identifier",
    id: "id",
    no_hash: false,
};
pub const PARKING_LOTS: Resource = Resource {
    kind: Kind::ParkingLot,
    collection: "asterisk/{cs}/parkingLots",
    key: "identifier",
    id: "id",
    no_hash: false,
};
pub const PBX_SERVERS: Resource = Resource {
    kind: Kind::PbxServer,
    collection: "asterisk/{cs}/pbxServers",
    key: "host",
    id: "id",
    no_hash: false,
};

/// Every described collection.
pub const ALL: [Resource; 7] = [
    ADMINISTRATORS,
    EXTENSIONS,
    USERS,
    QUEUES,
    CONFERENCE_ROOMS,
    PARKING_LOTS,
    PBX_SERVERS,
];

/// The description of `kind`'s collection, if it is one.
pub fn of(kind: Kind) -> Option<&'static Resource> {
    ALL.iter().find(|r| r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_template() {
        assert_eq!(EXTENSIONS.list("c1"), "asterisk/c1/extensions");
        assert_eq!(QUEUES.item("c1", "a b"), "asterisk/c1/queues/a%20b");
        assert_eq!(USERS.item_nohash("c1", "u"), "core/c1/users/noHash/u");
        assert_eq!(
            ADMINISTRATORS.list_nohash(""),
            "server/administrators/noHash"
        );
        assert!(!ADMINISTRATORS.per_core_server() && EXTENSIONS.per_core_server());
        assert_eq!(CONFERENCE_ROOMS.name(), "conferenceRooms");
    }

    #[test]
    fn each_kind_is_described_once() {
        for r in ALL {
            assert_eq!(of(r.kind), Some(&r));
        }
    }
}
