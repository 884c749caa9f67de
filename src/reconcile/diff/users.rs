//! Users: created through `noHash` with FreePBX's stored password hash, their `full` flag and
//! password kept in step, managed ones deleted; each desired user's contact, e-mails and phones
//! follow ([`super::contact`]).

use super::changes::{changed_fields, password_change};
use super::Ctx;
use crate::api::confirm::Confirm;
use crate::api::resource::USERS;
use crate::api::types::User;
use crate::model::Kind;
use crate::model::UserSpec;
use crate::reconcile::facts::{hash_of_hash, Effect};
use crate::reconcile::passwords::{create_password, password_rule, Pw};
use crate::reconcile::plan::{Action, Body, Method, Op};
use std::collections::HashMap;

impl Ctx<'_> {
    /// The user JSON posted to `managingUser` and the user's id, for existing or new users.
    pub(super) fn user_body(&self, name: &str) -> Option<(String, Body, bool)> {
        if let Some(u) = self.users_by_name.get(name) {
            return u.id.clone().map(|id| (id, Body::of(u), false));
        }
        let spec = self.d.users.get(name)?;
        let id = self.own.id(Kind::User, name);
        let body = User {
            id: Some(id.clone()),
            username: name.to_string(),
            password: create_password(self.own, Kind::User, name, &spec.password),
            enabled: spec.enabled,
            full: spec.full,
            restricted: false,
            ..Default::default()
        };
        Some((id, Body::of(&body), true))
    }

    pub(super) fn users(&mut self) {
        let mut by_key: HashMap<&str, &User> = HashMap::new();
        for u in &self.o.users {
            by_key.entry(u.username.as_str()).or_insert(u);
        }
        let mut managed = 0;
        for (name, s) in &self.d.users {
            let (uid, is_new) = match by_key.get(name.as_str()) {
                None => match self.create_user(name, s) {
                    Some(id) => (id, true),
                    None => continue,
                },
                Some(u) => {
                    managed += 1;
                    let Some(id) = u.id.clone() else { continue };
                    let op = self.update_user(name, s, u, &id);
                    self.finish_match(Kind::User, &id, name, op);
                    (id, false)
                }
            };
            self.user_subs(name, s, &uid, is_new);
        }
        for u in &self.o.users {
            if self.d.users.contains_key(&u.username) {
                continue;
            }
            if let Some(op) =
                self.delete_if_managed(Kind::User, &u.username, u.id.as_deref(), |id| {
                    USERS.item(&self.cs, id)
                })
            {
                managed += 1;
                self.push(op);
            }
        }
        self.count_managed(Kind::User, managed);
    }

    /// Plan the creation of a user; its id.
    fn create_user(&mut self, name: &str, s: &UserSpec) -> Option<String> {
        let (id, body, _) = self.user_body(name)?;
        let path = USERS.list_nohash(&self.cs);
        let mut op = self.op(Action::Create, Kind::User, name, Method::Post, path);
        op.request.body = Some(body);
        op.request.confirm = Some(Confirm::Get(USERS.item(&self.cs, &id)));
        if let Some(h) = s.password.hash.as_ref().filter(|h| !h.is_empty()) {
            op.effects.push(Effect::Password {
                kind: Kind::User,
                key: name.to_string(),
                hh: hash_of_hash(h.expose()),
            });
        }
        self.push(op);
        Some(id)
    }

    /// The update of an existing user (None: nothing differs).
    fn update_user(&mut self, name: &str, s: &UserSpec, u: &User, id: &str) -> Option<Op> {
        let mut body = u.clone();
        body.full = s.full;
        let mut c = changed_fields(u, &body);
        let mut effects = Vec::new();
        match password_rule(self.own, Kind::User, name, &s.password, &u.password) {
            Pw::Keep => {}
            Pw::Unverifiable => self
                .unverifiable
                .entry(Kind::User)
                .or_default()
                .push(name.to_string()),
            Pw::Record(hh) => self.plan.verified.push(Effect::Password {
                kind: Kind::User,
                key: name.to_string(),
                hh,
            }),
            Pw::Push(h, hh) => {
                body.password = h;
                c.push(password_change());
                effects.push(Effect::Password {
                    kind: Kind::User,
                    key: name.to_string(),
                    hh,
                });
            }
        }
        if c.is_empty() {
            return None;
        }
        let path = USERS.item_nohash(&self.cs, id);
        let mut op = self.update(Kind::User, name, path, c, Body::of(&body));
        op.effects = effects;
        Some(op)
    }
}
