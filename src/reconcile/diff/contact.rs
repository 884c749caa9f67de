//! A user's sub-resources: the contact record (first and last name), the e-mail addresses and
//! the phone numbers. FreePBX's e-mails and phones are added; only those the agent added
//! earlier (or whose id is one of ours) are removed. Each set carries a fingerprint of its
//! desired state, so a converged pass need not read it again ([`super::sub_reads`]).

use super::changes::changed_fields;
use super::Ctx;
use crate::api::confirm::Confirm;
use crate::api::paths;
use crate::api::types::{Contact, EmailAddress, PhoneNumber};
use crate::model::Kind;
use crate::model::{PhoneSpec, UserSpec};
use crate::reconcile::facts::{fingerprint, Effect};
use crate::reconcile::plan::{Action, Body, Fingerprint, Method};
use std::collections::{BTreeMap, BTreeSet};

/// Operations that must succeed first (the user, when it is created this pass).
type Needs = Vec<(Kind, String)>;

fn fp(kind: Kind, key: String, value: String, needs: &Needs) -> Fingerprint {
    Fingerprint {
        kind,
        key,
        value,
        needs: needs.clone(),
    }
}

pub(super) fn contact_key(uid: &str) -> String {
    format!("contact/{uid}")
}
pub(super) fn emails_key(uid: &str) -> String {
    format!("emails/{uid}")
}
pub(super) fn phones_key(uid: &str) -> String {
    format!("phones/{uid}")
}
pub(crate) fn norm_email(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}
pub(crate) fn phone_value(kind: &str, number: &str) -> String {
    format!("{}|{}", kind.trim(), number.trim())
}
pub(super) fn contact_fp(u: &UserSpec) -> String {
    fingerprint(&(&u.first_name, &u.last_name))
}
pub(super) fn emails_fp(u: &UserSpec) -> String {
    let set: BTreeSet<String> = u.emails.iter().map(|e| norm_email(e)).collect();
    fingerprint(&set)
}
pub(super) fn phones_fp(u: &UserSpec) -> String {
    let set: BTreeSet<String> = u
        .phones
        .iter()
        .map(|p| phone_value(&p.kind, &p.number))
        .collect();
    fingerprint(&set)
}

impl Ctx<'_> {
    /// Contact, e-mails and phones of one desired user (new, or read this pass).
    pub(super) fn user_subs(&mut self, name: &str, s: &UserSpec, uid: &str, is_new: bool) {
        let needs: Vec<(Kind, String)> = if is_new {
            vec![(Kind::User, name.to_string())]
        } else {
            Vec::new()
        };
        self.user_contact(name, s, uid, is_new, &needs);
        self.user_emails(name, s, uid, is_new, &needs);
        self.user_phones(name, s, uid, is_new, &needs);
    }

    /// The contact record.
    fn user_contact(&mut self, name: &str, s: &UserSpec, uid: &str, is_new: bool, needs: &Needs) {
        let contact = if is_new {
            Some(&None)
        } else {
            self.o.contacts.get(uid)
        };
        let Some(cur) = contact else { return };
        let wire = |first: &str, last: &str| Contact {
            first_name: first.to_string(),
            last_name: last.to_string(),
            ..Default::default()
        };
        let before = cur
            .as_ref()
            .map(|c| wire(&c.first_name, &c.last_name))
            .unwrap_or_default();
        let after = wire(&s.first_name, &s.last_name);
        let c = changed_fields(&before, &after);
        let fkey = contact_key(uid);
        if !c.is_empty() {
            let action = if cur.is_none() {
                Action::Create
            } else {
                Action::Update
            };
            let path = paths::contact(&self.cs, uid);
            let mut op = self.op(action, Kind::Contact, name, Method::Put, path);
            if action == Action::Update {
                op.changes = c;
            } else {
                let label = format!("{} {}", s.first_name, s.last_name);
                op.label = Some(label.trim().to_string());
            }
            op.request.body = Some(Body::of(&after));
            op.needs.extend(needs.iter().cloned());
            op.fingerprint = Some(fkey.clone());
            self.push(op);
        }
        self.plan
            .fingerprints
            .push(fp(Kind::Contact, fkey, contact_fp(s), needs));
    }

    /// E-mail addresses: add FreePBX's; remove only those the agent added earlier.
    fn user_emails(&mut self, name: &str, s: &UserSpec, uid: &str, is_new: bool, needs: &Needs) {
        let empty = Vec::new();
        let emails = if is_new {
            Some(&empty)
        } else {
            self.o.emails.get(uid)
        };
        let Some(cur) = emails else { return };
        {
            let fkey = emails_key(uid);
            // Compared case-insensitively, posted as FreePBX writes it (the first spelling wins).
            let mut want: BTreeMap<String, &str> = BTreeMap::new();
            for e in &s.emails {
                let n = norm_email(e);
                if !n.is_empty() {
                    want.entry(n).or_insert(e.trim());
                }
            }
            let added = self.own.added(Kind::Email, name);
            let have: BTreeSet<String> = cur.iter().map(|e| norm_email(&e.address)).collect();
            for (addr, written) in want.iter().filter(|(a, _)| !have.contains(*a)) {
                let id = self.own.id(Kind::Email, &format!("{name}\0{addr}"));
                let mut op = self.op(
                    Action::Create,
                    Kind::Email,
                    name,
                    Method::Post,
                    paths::email_addresses(&self.cs, uid),
                );
                op.label = Some(written.to_string());
                op.request.body = Some(Body::of(&EmailAddress {
                    id: Some(id.clone()),
                    kind: "Work".into(),
                    address: written.to_string(),
                    ..Default::default()
                }));
                op.request.confirm = Some(Confirm::ListHasId {
                    list: paths::email_addresses(&self.cs, uid),
                    id,
                });
                op.effects.push(Effect::Added {
                    kind: Kind::Email,
                    owner: name.into(),
                    value: addr.clone(),
                });
                op.needs.extend(needs.iter().cloned());
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for e in cur {
                let addr = norm_email(&e.address);
                if want.contains_key(&addr) {
                    continue;
                }
                let ours = added.contains(&addr)
                    || self
                        .own
                        .is_ours(Kind::Email, e.id.as_deref(), &format!("{name}\0{addr}"));
                let Some(eid) = e.id.as_deref().filter(|_| ours) else {
                    continue;
                };
                let mut op = self.op(
                    Action::Delete,
                    Kind::Email,
                    name,
                    Method::Delete,
                    paths::email_address(&self.cs, uid, eid),
                );
                op.label = Some(e.address.clone());
                op.effects.push(Effect::Removed {
                    kind: Kind::Email,
                    owner: name.into(),
                    value: addr.clone(),
                });
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            // Addresses the agent added that someone removed since: forget them.
            for addr in added
                .iter()
                .filter(|a| !have.contains(*a) && !want.contains_key(*a))
            {
                self.plan.verified.push(Effect::Removed {
                    kind: Kind::Email,
                    owner: name.into(),
                    value: addr.clone(),
                });
            }
            let f = fp(Kind::Email, fkey, emails_fp(s), needs);
            self.plan.fingerprints.push(f);
        }
    }

    /// Phone numbers, keyed by (type, number); same ownership rule as e-mails.
    fn user_phones(&mut self, name: &str, s: &UserSpec, uid: &str, is_new: bool, needs: &Needs) {
        let empty = Vec::new();
        let phones = if is_new {
            Some(&empty)
        } else {
            self.o.phones.get(uid)
        };
        let Some(cur) = phones else { return };
        {
            let fkey = phones_key(uid);
            let want: BTreeMap<String, &PhoneSpec> = s
                .phones
                .iter()
                .filter(|p| !p.number.trim().is_empty())
                .map(|p| (phone_value(&p.kind, &p.number), p))
                .collect();
            let added = self.own.added(Kind::Phone, name);
            let have: BTreeSet<String> = cur
                .iter()
                .map(|p| phone_value(&p.kind, &p.number))
                .collect();
            for (v, p) in &want {
                if have.contains(v) {
                    continue;
                }
                let id = self.own.id(Kind::Phone, &format!("{name}\0{v}"));
                let mut op = self.op(
                    Action::Create,
                    Kind::Phone,
                    name,
                    Method::Post,
                    paths::phone_numbers(&self.cs, uid),
                );
                op.label = Some(format!("{} {}", p.kind.trim(), p.number.trim()));
                op.request.body = Some(Body::of(&PhoneNumber {
                    id: Some(id.clone()),
                    kind: p.kind.trim().to_string(),
                    number: p.number.trim().to_string(),
                    ..Default::default()
                }));
                op.request.confirm = Some(Confirm::ListHasId {
                    list: paths::phone_numbers(&self.cs, uid),
                    id,
                });
                op.effects.push(Effect::Added {
                    kind: Kind::Phone,
                    owner: name.into(),
                    value: v.clone(),
                });
                op.needs.extend(needs.iter().cloned());
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for p in cur {
                let v = phone_value(&p.kind, &p.number);
                if want.contains_key(&v) {
                    continue;
                }
                let ours = added.contains(&v)
                    || self
                        .own
                        .is_ours(Kind::Phone, p.id.as_deref(), &format!("{name}\0{v}"));
                let Some(pid) = p.id.as_deref().filter(|_| ours) else {
                    continue;
                };
                let mut op = self.op(
                    Action::Delete,
                    Kind::Phone,
                    name,
                    Method::Delete,
                    paths::phone_number(&self.cs, uid, pid),
                );
                op.label = Some(format!("{} {}", p.kind.trim(), p.number.trim()));
                op.effects.push(Effect::Removed {
                    kind: Kind::Phone,
                    owner: name.into(),
                    value: v.clone(),
                });
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for v in added
                .iter()
                .filter(|a| !have.contains(*a) && !want.contains_key(*a))
            {
                self.plan.verified.push(Effect::Removed {
                    kind: Kind::Phone,
                    owner: name.into(),
                    value: v.clone(),
                });
            }
            let f = fp(Kind::Phone, fkey, phones_fp(s), needs);
            self.plan.fingerprints.push(f);
        }
    }
}
