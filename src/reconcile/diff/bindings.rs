//! Managing-user bindings of extensions (who manages extension 1001): bound, rebound or
//! unbound after both ends exist. A retried bind whose first attempt was applied is confirmed
//! by reading the binding back.

use super::Ctx;
use crate::api::confirm::Confirm;
use crate::api::paths;
use crate::api::resource::USERS;
use crate::api::types::{Extension, User};
use crate::model::Desired;
use crate::model::Kind;
use crate::reconcile::facts::fingerprint;
use crate::reconcile::plan::{quote, Action, Change, Fingerprint, Method};
use std::collections::{BTreeMap, HashMap};

pub(super) fn binding_key(ext_id: &str) -> String {
    format!("binding/{ext_id}")
}

pub(super) fn binding_fp(user: Option<&str>) -> String {
    fingerprint(&user.unwrap_or(""))
}

/// Extension number → username of its desired managing user (last claim wins, with a warning).
pub(super) fn desired_bindings(
    d: &Desired,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, u) in &d.users {
        for ext in &u.extensions {
            if !d.extensions.contains_key(ext) {
                warnings.push(format!(
                    "user {name} should manage extension {ext}, which is not synced; binding skipped"
                ));
                continue;
            }
            if let Some(prev) = out.insert(ext.clone(), name.clone()) {
                if prev != *name {
                    warnings.push(format!(
                        "extension {ext} is claimed by users {prev} and {name}; {name} wins"
                    ));
                }
            }
        }
    }
    out
}

impl Ctx<'_> {
    pub(super) fn bindings(&mut self) {
        let mut warnings = Vec::new();
        let want = desired_bindings(self.d, &mut warnings);
        self.plan.warnings.extend(warnings);
        let by_key: HashMap<&str, &Extension> = self
            .o
            .extensions
            .iter()
            .map(|x| (x.extension.as_str(), x))
            .collect();
        for k in self.d.extensions.keys() {
            let wanted = want.get(k).map(String::as_str);
            let (ext_id, ext_new, managed) = match by_key.get(k.as_str()) {
                Some(x) => match x.id.clone() {
                    Some(id) => (id, false, true),
                    None => continue,
                },
                None => (self.own.id(Kind::Extension, k), true, true),
            };
            let current: Option<&Option<User>> = if ext_new {
                Some(&None)
            } else {
                self.o.managing_users.get(&ext_id)
            };
            let Some(current) = current else { continue };
            let fkey = binding_key(&ext_id);
            let mut needs: Vec<(Kind, String)> = Vec::new();
            if ext_new {
                needs.push((Kind::Extension, k.clone()));
            }
            let cur_name = current.as_ref().map(|u| u.username.as_str());
            match (cur_name, wanted) {
                (cur, Some(u)) if cur != Some(u) => {
                    let Some((_, body, user_new)) = self.user_body(u) else {
                        continue;
                    };
                    if user_new {
                        needs.push((Kind::User, u.to_string()));
                    }
                    let action = if cur.is_some() {
                        Action::Update
                    } else {
                        Action::Create
                    };
                    let mut op = self.op(
                        action,
                        Kind::ManagingUser,
                        k,
                        Method::Post,
                        paths::managing_user(&self.cs, &ext_id),
                    );
                    op.label = Some(u.to_string());
                    if let Some(c) = cur {
                        op.changes.push(Change {
                            field: "user".into(),
                            from: quote(c),
                            to: quote(u),
                        });
                    }
                    op.request.body = Some(body);
                    // A retried binding whose first attempt was applied meets 409 ("already
                    // set to the given user"): done once the binding is seen to be this user.
                    op.request.confirm = Some(Confirm::GetHasField {
                        path: paths::managing_user(&self.cs, &ext_id),
                        field: USERS.key.into(),
                        value: u.to_string(),
                    });
                    op.needs.extend(needs.iter().cloned());
                    op.fingerprint = Some(fkey.clone());
                    self.push(op);
                }
                (Some(c), None) if managed => {
                    let mut op = self.op(
                        Action::Delete,
                        Kind::ManagingUser,
                        k,
                        Method::Delete,
                        paths::managing_user(&self.cs, &ext_id),
                    );
                    op.label = Some(c.to_string());
                    op.fingerprint = Some(fkey.clone());
                    self.push(op);
                }
                _ => {}
            }
            self.plan.fingerprints.push(Fingerprint {
                kind: Kind::ManagingUser,
                key: fkey,
                value: binding_fp(wanted),
                needs,
            });
        }
    }
}
