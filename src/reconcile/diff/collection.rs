//! The one generic diff of the simple collections (administrators, extensions, queues,
//! conference rooms, parking lots): match observed objects to desired ones by natural key,
//! create what is missing, update what differs (the changed fields found from the wire JSON),
//! adopt what the agent did not create, delete only what it manages. A kind supplies its
//! [`Resource`] description and how its FreePBX spec maps onto its wire type, nothing else.

use super::changes::{changed_fields, password_change};
use super::{Ctx, Observed};
use crate::api::confirm::Confirm;
use crate::api::resource::{self, Resource};
use crate::api::types::{Administrator, ConferenceRoom, Extension, ParkingLot, Queue};
use crate::model::*;
use crate::reconcile::facts::{hash_of_hash, Effect};
use crate::reconcile::passwords::{create_password, password_rule, Pw};
use crate::reconcile::plan::{Action, Body, Method, Op};
use crate::secret::Secret;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A wire type diffed as a plain collection.
pub(super) trait Simple: Serialize + Clone + PartialEq + Sized + 'static {
    /// The desired state of one object, from `model`.
    type Spec;
    const RES: Resource;
    /// The desired objects by natural key.
    fn desired(d: &Desired) -> BTreeMap<&str, &Self::Spec>;
    fn observed(o: &Observed) -> &[Self];
    /// The natural key (the value of [`Resource::key`]).
    fn key(&self) -> &str;
    fn id(&self) -> Option<&str>;
    /// The name shown after the key when the object is deleted.
    fn label(&self) -> Option<String> {
        None
    }
    /// The name shown after the key when the object is created.
    fn spec_label(_: &Self::Spec) -> Option<String> {
        None
    }
    /// A new object: natural key, our id, desired values, create-only defaults.
    fn create(key: &str, id: String, s: &Self::Spec) -> Self;
    /// Set the compared fields to their desired values.
    fn apply(&mut self, s: &Self::Spec);
    /// A login password FreePBX holds for the object (pushed through `noHash`).
    fn password(_: &Self::Spec) -> Option<&PasswordSpec> {
        None
    }
    fn current_password(&self) -> Option<&Secret> {
        None
    }
    fn set_password(&mut self, _: Secret) {}
}

impl Ctx<'_> {
    /// An operation on collection `res`; server-wide collections need no core server.
    fn res_op(
        &self,
        res: &Resource,
        action: Action,
        key: &str,
        method: Method,
        path: String,
    ) -> Op {
        let mut op = self.op(action, res.kind, key, method, path);
        if !res.per_core_server() {
            op.needs.clear();
        }
        op
    }

    /// Diff the whole collection of `T`.
    pub(super) fn collection<T: Simple>(&mut self) {
        let want = T::desired(self.d);
        let mut by_key: HashMap<&str, &T> = HashMap::new();
        for x in T::observed(self.o) {
            by_key.entry(x.key()).or_insert(x);
        }
        let kind = T::RES.kind;
        let mut managed = 0;
        for (&k, &s) in &want {
            let Some(x) = by_key.get(k) else {
                let op = self.create_simple::<T>(k, s);
                self.push(op);
                continue;
            };
            managed += 1;
            let Some(id) = x.id().map(str::to_owned) else {
                continue;
            };
            let op = self.update_simple(k, s, *x, &id);
            self.finish_match(kind, &id, k, op);
        }
        for x in T::observed(self.o) {
            if want.contains_key(x.key()) {
                continue;
            }
            let Some(id) = x
                .id()
                .filter(|id| self.own.is_managed(kind, Some(id), x.key()))
            else {
                continue;
            };
            let path = T::RES.item(&self.cs, id);
            let mut op = self.res_op(&T::RES, Action::Delete, x.key(), Method::Delete, path);
            op.label = x.label();
            managed += 1;
            self.push(op);
        }
        self.count_managed(kind, managed);
    }

    fn create_simple<T: Simple>(&self, k: &str, s: &T::Spec) -> Op {
        let res = &T::RES;
        let id = self.own.id(res.kind, k);
        let mut body = T::create(k, id.clone(), s);
        let pw = T::password(s);
        if let Some(p) = pw {
            body.set_password(create_password(self.own, res.kind, k, p));
        }
        let path = if res.no_hash {
            res.list_nohash(&self.cs)
        } else {
            res.list(&self.cs)
        };
        let mut op = self.res_op(res, Action::Create, k, Method::Post, path);
        op.label = T::spec_label(s);
        op.request.body = Some(Body::of(&body));
        op.request.confirm = Some(Confirm::Get(res.item(&self.cs, &id)));
        if let Some(h) = pw.and_then(|p| p.hash.as_ref()).filter(|h| !h.is_empty()) {
            op.effects.push(Effect::Password {
                kind: res.kind,
                key: k.to_string(),
                hh: hash_of_hash(h.expose()),
            });
        }
        op
    }

    /// The update of an observed object (None: nothing differs).
    fn update_simple<T: Simple>(&mut self, k: &str, s: &T::Spec, x: &T, id: &str) -> Option<Op> {
        let res = &T::RES;
        let mut body = x.clone();
        body.apply(s);
        let mut changes = changed_fields(x, &body);
        let mut effects = Vec::new();
        let mut path = res.item(&self.cs, id);
        if let (Some(p), Some(cur)) = (T::password(s), x.current_password()) {
            match password_rule(self.own, res.kind, k, p, cur) {
                Pw::Keep => {}
                Pw::Unverifiable => self
                    .unverifiable
                    .entry(res.kind)
                    .or_default()
                    .push(k.to_string()),
                Pw::Record(hh) => self.plan.verified.push(Effect::Password {
                    kind: res.kind,
                    key: k.to_string(),
                    hh,
                }),
                Pw::Push(h, hh) => {
                    body.set_password(h);
                    changes.push(password_change());
                    effects.push(Effect::Password {
                        kind: res.kind,
                        key: k.to_string(),
                        hh,
                    });
                    path = res.item_nohash(&self.cs, id);
                }
            }
        }
        if changes.is_empty() {
            return None;
        }
        let mut op = self.res_op(res, Action::Update, k, Method::Put, path);
        op.changes = changes;
        op.request.body = Some(Body::of(&body));
        op.effects = effects;
        Some(op)
    }
}

/// The desired objects of a map keyed by natural key.
fn by_key<S>(m: &BTreeMap<String, S>) -> BTreeMap<&str, &S> {
    m.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

/// The parts of a [`Simple`] impl that every kind writes alike, from its spec, description,
/// where its desired and observed objects are, its natural key field and the field shown as
/// its label: a new object is our id, the key and the create-only defaults (`create { .. }`),
/// then [`Simple::apply`].
macro_rules! simple {
    (
        $t:ident: $spec:ident = $res:ident, $(desired $d:ident,)? observed $o:ident, key $key:ident
        $(, label $label:ident)? $(, create { $($init:tt)* })?;
        $($body:tt)*
    ) => {
        impl Simple for $t {
            type Spec = $spec;
            const RES: Resource = resource::$res;
            $(fn desired(d: &Desired) -> BTreeMap<&str, &$spec> {
                by_key(&d.$d)
            })?
            fn observed(o: &Observed) -> &[Self] {
                &o.$o
            }
            fn key(&self) -> &str {
                &self.$key
            }
            fn id(&self) -> Option<&str> {
                self.id.as_deref()
            }
            $(fn label(&self) -> Option<String> {
                Some(self.$label.clone())
            }
            fn spec_label(s: &$spec) -> Option<String> {
                Some(s.$label.clone())
            })?
            fn create(key: &str, id: String, s: &$spec) -> Self {
                let mut x = $t {
                    id: Some(id),
                    $key: key.to_string(),
                    $($($init)*)?
                    ..Default::default()
                };
                x.apply(s);
                x
            }
            $($body)*
        }
    };
}

simple! {
    Administrator: AdministratorSpec = ADMINISTRATORS, desired administrators,
    observed administrators, key user_name, create { super_user: true, };
    /// Only the password is compared (see [`Simple::password`]).
    fn apply(&mut self, _: &AdministratorSpec) {}
    fn password(s: &AdministratorSpec) -> Option<&PasswordSpec> {
        Some(&s.password)
    }
    fn current_password(&self) -> Option<&Secret> {
        Some(&self.password)
    }
    fn set_password(&mut self, h: Secret) {
        self.password = h;
    }
}

simple! {
    Extension: ExtensionSpec = EXTENSIONS, desired extensions, observed extensions,
    key extension, label display_name;
    /// The context overrides are FreePBX's to clear: the module always sends them empty.
    fn apply(&mut self, s: &ExtensionSpec) {
        self.display_name = s.display_name.clone();
        self.peer = s.peer.clone();
        self.auto_answer = s.auto_answer;
        self.agent_name = s.agent_name.clone();
        self.agent_location = s.agent_location.clone();
        self.agent_interface = s.agent_interface.clone();
        self.originating_context_override.clear();
        self.redirecting_context_override.clear();
        self.voice_mail_context = s.voice_mail_context.clone();
        self.voice_mail_box = s.voice_mail_box.clone();
    }
}

simple! {
    Queue: QueueSpec = QUEUES, desired queues, observed queues, key identifier,
    label display_name;
    fn apply(&mut self, s: &QueueSpec) {
        self.display_name = s.display_name.clone();
        self.destination_extension = s.destination_extension.clone();
        self.destination_context = s.destination_context.clone();
        self.enabled = true;
    }
}

simple! {
    ConferenceRoom: ConferenceRoomSpec = CONFERENCE_ROOMS, desired conference_rooms,
    observed conference_rooms, key identifier, label name;
    fn apply(&mut self, s: &ConferenceRoomSpec) {
        self.name = s.name.clone();
        self.destination_extension = s.destination_extension.clone();
        self.destination_context = s.destination_context.clone();
    }
}

simple! {
    ParkingLot: ParkingLotSpec = PARKING_LOTS, observed parking_lots, key identifier,
    label name;
    /// FreePBX has one default parking lot (or none).
    fn desired(d: &Desired) -> BTreeMap<&str, &ParkingLotSpec> {
        d.parking_lot
            .iter()
            .map(|s| (s.identifier.as_str(), s))
            .collect()
    }
    fn apply(&mut self, s: &ParkingLotSpec) {
        self.name = s.name.clone();
        self.destination_extension = s.destination_extension.clone();
        self.destination_context = s.destination_context.clone();
    }
}
