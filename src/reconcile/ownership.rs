//! Which server objects this agent manages, and the ids it gives the objects it creates.
//!
//! Ids are UUID v5 over a fixed namespace of (core server slug, type, natural key), so they can
//! be recomputed after a crash: a POST that reached the server before the agent died is
//! recognised on the next pass, and no state must be written in step with the server.
//! An object is managed when its id is one of ours, when the agent adopted it (recorded in the
//! state store once the server confirmed it), or when the cxpanel module's
//! `cxpanel_managed_items` lists it. With `[sync] clean_unknown_items = true` every object is
//! treated as managed (the module's behaviour, opt-in here).

use super::facts::Known;
use crate::model::Kind;
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// The fixed namespace of the agent's UUID v5 ids (never change it: ids would no longer match).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b47_4d8a_a5e3_0c1d_7f92_b6e4);

pub use crate::model::ManagedItem;

/// The id the agent gives the object of `kind` with `key` on core server `slug`.
pub fn object_id(slug: &str, kind: Kind, key: &str) -> String {
    let name = format!("{slug}\0{}\0{key}", kind.type_name());
    Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// Everything `diff` needs to know about ownership and the agent's own history.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    pub core_slug: String,
    pub clean_unknown_items: bool,
    /// (type name, server id) pairs from `cxpanel_managed_items`.
    pub module_items: HashSet<(Kind, String)>,
    /// What the state store knows (adoptions, pushed passwords, added items, fingerprints).
    pub known: Known,
}

impl Ownership {
    pub fn new(
        core_slug: &str,
        clean_unknown_items: bool,
        known: Known,
        module_items: &[ManagedItem],
    ) -> Ownership {
        Ownership {
            core_slug: core_slug.to_string(),
            clean_unknown_items,
            module_items: module_items
                .iter()
                .map(|m| (m.kind, m.cxpanel_id.to_ascii_lowercase()))
                .collect(),
            known,
        }
    }

    /// Our id for an object.
    pub fn id(&self, kind: Kind, key: &str) -> String {
        object_id(&self.core_slug, kind, key)
    }

    /// The id is the one the agent would give this object.
    pub fn is_ours(&self, kind: Kind, id: Option<&str>, key: &str) -> bool {
        id.is_some_and(|id| id.eq_ignore_ascii_case(&self.id(kind, key)))
    }

    /// The agent may change or delete this server object.
    pub fn is_managed(&self, kind: Kind, id: Option<&str>, key: &str) -> bool {
        if self.clean_unknown_items || self.is_ours(kind, id, key) {
            return true;
        }
        let Some(id) = id else { return false };
        let id = id.to_ascii_lowercase();
        self.known.adopted.contains(&(kind, id.clone())) || self.module_items.contains(&(kind, id))
    }

    /// Sub-items (e-mails, phones) the agent itself added to `owner`.
    pub fn added(&self, kind: Kind, owner: &str) -> BTreeSet<String> {
        self.known
            .added
            .get(&(kind, owner.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// How many sub-items of this kind (e-mails, phones) the agent added, over all owners.
    pub fn added_total(&self, kind: Kind) -> usize {
        self.known
            .added
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, v)| v.len())
            .sum()
    }

    /// The hash-of-hash of the password last pushed for this object.
    pub fn pushed_password(&self, kind: Kind, key: &str) -> Option<&str> {
        self.known
            .passwords
            .get(&(kind, key.to_string()))
            .map(String::as_str)
    }

    pub fn fingerprint(&self, key: &str) -> Option<&str> {
        self.known.fingerprints.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = object_id("default", Kind::Extension, "1001");
        assert_eq!(a, object_id("default", Kind::Extension, "1001"));
        assert_ne!(a, object_id("default", Kind::User, "1001"));
        assert_ne!(a, object_id("other", Kind::Extension, "1001"));
        assert_eq!(Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }

    #[test]
    fn managed_by_id_adoption_module_or_clean_flag() {
        let mut known = Known::default();
        known
            .adopted
            .insert((Kind::Extension, "aaaa-adopted".into()));
        let items = vec![ManagedItem {
            kind: Kind::Queue,
            fpbx_id: "400".into(),
            cxpanel_id: "QQQQ-MODULE".into(),
        }];
        let o = Ownership::new("default", false, known, &items);
        let ours = o.id(Kind::Extension, "1001");
        assert!(o.is_managed(Kind::Extension, Some(&ours), "1001"));
        assert!(!o.is_managed(Kind::Extension, Some(&ours), "1002"));
        assert!(o.is_managed(Kind::Extension, Some("AAAA-adopted"), "x"));
        assert!(o.is_managed(Kind::Queue, Some("qqqq-module"), "400"));
        assert!(!o.is_managed(Kind::Extension, Some("qqqq-module"), "400"));
        assert!(!o.is_managed(Kind::Extension, Some("someone-else"), "1003"));
        assert!(!o.is_managed(Kind::Extension, None, "1003"));
        let mut o2 = o.clone();
        o2.clean_unknown_items = true;
        assert!(o2.is_managed(Kind::Extension, Some("someone-else"), "1003"));
    }
}
