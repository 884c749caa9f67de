//! One-time adoption of what the cxpanel module posted but never recorded as managed
//! (`--adopt-cxpanel-items`, issue 10 point 10).
//!
//! `modify.php` records extensions, users, queues, rooms and administrators in
//! `cxpanel_managed_items`, but not the e-mail addresses and phone numbers it posts to its users
//! (`POST …/emailAddresses`, `…/phoneNumbers`, without an id), nor the `default` parking lot.
//! To this agent they look added by people and are never removed, so a number changed later
//! in FreePBX would stand beside the old one forever. Adoption records them as the agent's own:
//!
//! - on each user listed in `cxpanel_managed_items`, the e-mail addresses and phone numbers that
//!   equal what FreePBX holds for that user now (what the module last posted), and nothing
//!   else: an address someone added in iSymphony stays theirs;
//! - the `default` parking lot, when FreePBX has no parking lot to match it with (a matched lot
//!   is adopted by every pass anyway).
//!
//! Afterwards FreePBX changes replace them, as the module would have replaced its phone numbers
//! and parking lot (it never removed an e-mail address; the agent does, like its own).
//! Adoptions are listed in the plan, so `--dry-run --adopt-cxpanel-items` shows them before
//! anything is recorded; a pass records them with its other verified facts.

use super::diff::contact::{norm_email, phone_value};
use super::diff::Observed;
use super::facts::Effect;
use super::ownership::Ownership;
pub use super::plan::Adoption;
use crate::model::Desired;
use crate::model::Kind;
use std::collections::BTreeSet;

/// The parking lot identifier cxpanel posts (and deletes when FreePBX parking is off).
const CXPANEL_LOT: &str = "default";

/// What to adopt from the module. `cxpanel` says whether the module is (or was) installed.
/// Needs the e-mails and phones of the module's users in `o` (a full read).
pub fn cxpanel_items(d: &Desired, o: &Observed, own: &Ownership, cxpanel: bool) -> Vec<Adoption> {
    let mut out = Vec::new();
    if !cxpanel {
        return out;
    }
    for u in &o.users {
        let Some(uid) = u.id.as_deref() else { continue };
        if !own
            .module_items
            .contains(&(Kind::User, uid.to_ascii_lowercase()))
        {
            continue;
        }
        let Some(spec) = d.users.get(&u.username) else {
            continue;
        };
        let name = u.username.as_str();
        let want: BTreeSet<String> = spec.emails.iter().map(|e| norm_email(e)).collect();
        let added = own.added(Kind::Email, name);
        let mut seen = BTreeSet::new();
        for e in o.emails.get(uid).into_iter().flatten() {
            let v = norm_email(&e.address);
            if want.contains(&v) && !added.contains(&v) && seen.insert(v.clone()) {
                out.push(sub_item(Kind::Email, name, e.address.trim(), v));
            }
        }
        let want: BTreeSet<String> = spec
            .phones
            .iter()
            .map(|p| phone_value(&p.kind, &p.number))
            .collect();
        let added = own.added(Kind::Phone, name);
        for p in o.phones.get(uid).into_iter().flatten() {
            let v = phone_value(&p.kind, &p.number);
            if want.contains(&v) && !added.contains(&v) && seen.insert(v.clone()) {
                let shown = format!("{} {}", p.kind.trim(), p.number.trim());
                out.push(sub_item(Kind::Phone, name, &shown, v));
            }
        }
    }
    let matched = d
        .parking_lot
        .as_ref()
        .is_some_and(|l| l.identifier == CXPANEL_LOT);
    for l in o
        .parking_lots
        .iter()
        .filter(|l| l.identifier == CXPANEL_LOT)
    {
        let Some(id) = l.id.as_deref() else { continue };
        if matched || own.is_managed(Kind::ParkingLot, Some(id), &l.identifier) {
            continue;
        }
        out.push(Adoption {
            kind: Kind::ParkingLot,
            key: l.identifier.clone(),
            value: l.name.clone(),
            effect: Effect::Adopt {
                kind: Kind::ParkingLot,
                id: id.to_ascii_lowercase(),
                key: l.identifier.clone(),
            },
        });
    }
    out
}

fn sub_item(kind: Kind, owner: &str, shown: &str, value: String) -> Adoption {
    Adoption {
        kind,
        key: owner.to_string(),
        value: shown.to_string(),
        effect: Effect::Added {
            kind,
            owner: owner.to_string(),
            value,
        },
    }
}

/// Make the diff of this pass treat the adopted items as the agent's own already.
/// With `--adopt-cxpanel-items`: what to adopt, already recorded in `own` so the diff treats
/// it as managed; nothing otherwise.
pub fn if_asked(
    asked: bool,
    d: &Desired,
    o: &Observed,
    own: &mut Ownership,
    cxpanel: bool,
) -> Vec<Adoption> {
    if !asked {
        return Vec::new();
    }
    let adoptions = cxpanel_items(d, o, own, cxpanel);
    record(own, &adoptions);
    adoptions
}

/// The adoptions become facts the pass records and lines the plan shows.
pub fn into_plan(plan: &mut crate::reconcile::plan::Plan, adoptions: Vec<Adoption>) {
    plan.verified
        .extend(adoptions.iter().map(|a| a.effect.clone()));
    plan.adoptions = adoptions;
}

pub fn record(own: &mut Ownership, adoptions: &[Adoption]) {
    for a in adoptions {
        match &a.effect {
            Effect::Added { kind, owner, value } => {
                own.known
                    .added
                    .entry((*kind, owner.clone()))
                    .or_default()
                    .insert(value.clone());
            }
            Effect::Adopt { kind, id, .. } => {
                own.known.adopted.insert((*kind, id.clone()));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{EmailAddress, ParkingLot, PhoneNumber, User};
    use crate::model::{PhoneSpec, UserSpec};
    use crate::reconcile::facts::Known;
    use crate::reconcile::ownership::ManagedItem;

    fn setup() -> (Desired, Observed, Ownership) {
        let mut d = Desired::default();
        d.users.insert(
            "1001".into(),
            UserSpec {
                emails: vec!["Ann@Corp.example".into()],
                phones: vec![PhoneSpec {
                    kind: "Cell".into(),
                    number: "555-0101".into(),
                }],
                ..UserSpec::default()
            },
        );
        let mut o = Observed::default();
        let user: User = serde_json::from_value(
            serde_json::json!({"id": "CX-U1", "username": "1001", "password": "x"}),
        )
        .unwrap();
        o.users.push(user);
        o.emails.insert(
            "CX-U1".into(),
            vec![
                serde_json::from_value::<EmailAddress>(
                    serde_json::json!({"id": "e1", "type": "Work", "address": "ann@corp.example"}),
                )
                .unwrap(),
                serde_json::from_value::<EmailAddress>(
                    serde_json::json!({"id": "e2", "type": "Home", "address": "private@x.example"}),
                )
                .unwrap(),
            ],
        );
        o.phones.insert(
            "CX-U1".into(),
            vec![
                serde_json::from_value::<PhoneNumber>(
                    serde_json::json!({"id": "p1", "type": "Cell", "number": "555-0101"}),
                )
                .unwrap(),
                serde_json::from_value::<PhoneNumber>(
                    serde_json::json!({"id": "p2", "type": "Home", "number": "555-0999"}),
                )
                .unwrap(),
            ],
        );
        o.parking_lots.push(
            serde_json::from_value::<ParkingLot>(serde_json::json!({
                "id": "LOT-1", "identifier": "default", "name": "Main",
                "destinationExtension": "70", "destinationContext": "from-internal"
            }))
            .unwrap(),
        );
        let items = [ManagedItem {
            kind: Kind::User,
            fpbx_id: "1001".into(),
            cxpanel_id: "cx-u1".into(),
        }];
        let own = Ownership::new("default", false, Known::default(), &items);
        (d, o, own)
    }

    #[test]
    fn adopts_what_freepbx_holds_on_module_users_and_the_unmatched_default_lot() {
        let (d, o, own) = setup();
        let a = cxpanel_items(&d, &o, &own, true);
        let lines: Vec<String> = a.iter().map(Adoption::describe).collect();
        assert_eq!(
            lines,
            vec![
                "= adopt e-mail ann@corp.example of user 1001",
                "= adopt phone number Cell 555-0101 of user 1001",
                "= adopt parking lot default \"Main\"",
            ]
        );
        // Not installed: nothing. A user the module did not manage: nothing of it.
        assert!(cxpanel_items(&d, &o, &own, false).is_empty());
        let stranger = Ownership::new("default", false, Known::default(), &[]);
        let a2 = cxpanel_items(&d, &o, &stranger, true);
        assert!(a2.iter().all(|a| a.kind == Kind::ParkingLot), "{a2:?}");
    }

    #[test]
    fn a_matched_lot_and_recorded_items_are_not_adopted_again() {
        let (mut d, o, mut own) = setup();
        d.parking_lot = Some(crate::model::ParkingLotSpec {
            identifier: "default".into(),
            ..Default::default()
        });
        let a = cxpanel_items(&d, &o, &own, true);
        record(&mut own, &a);
        assert!(a.iter().all(|a| a.kind != Kind::ParkingLot));
        assert!(cxpanel_items(&d, &o, &own, true).is_empty());
        assert!(own.added(Kind::Phone, "1001").contains("Cell|555-0101"));
    }
}
