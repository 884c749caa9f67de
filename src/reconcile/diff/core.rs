//! The core server (created when missing, never updated or deleted) and its Asterisk
//! settings (updated in place).

use super::changes::changed_fields;
use super::Ctx;
use crate::api::confirm::Confirm;
use crate::api::paths;
use crate::api::types::CoreServer;
use crate::model::Kind;
use crate::reconcile::plan::{Action, Body, Method};

impl Ctx<'_> {
    pub(super) fn core_server(&mut self) {
        if self.o.core_server.is_some() {
            return;
        }
        let slug = self.d.core_server.slug.clone();
        let name = if self.d.core_server.name.is_empty() {
            slug.clone()
        } else {
            self.d.core_server.name.clone()
        };
        let body = CoreServer {
            id: Some(self.cs.clone()),
            slug: slug.clone(),
            name: name.clone(),
            broker_host: Some("localhost".into()),
            broker_port: Some(50000),
            extra: Default::default(),
        };
        let mut op = self.op(
            Action::Create,
            Kind::CoreServer,
            &slug,
            Method::Post,
            paths::core_servers(),
        );
        op.needs.clear();
        op.label = Some(name);
        op.request.body = Some(Body::of(&body));
        op.request.confirm = Some(Confirm::Get(paths::core_server_by_slug(&slug)));
        self.push(op);
        self.core_need = Some((Kind::CoreServer, slug));
    }

    pub(super) fn asterisk(&mut self) {
        let Some(a) = &self.o.asterisk else { return };
        let s = &self.d.asterisk;
        let mut body = a.clone();
        body.originating_context = s.originating_context.clone();
        body.redirecting_context = s.redirecting_context.clone();
        body.music_on_hold_class = s.music_on_hold_class.clone();
        let c = changed_fields(a, &body);
        if c.is_empty() {
            return;
        }
        let slug = self.d.core_server.slug.clone();
        let op = self.update(
            Kind::AsteriskSettings,
            &slug,
            paths::asterisk(&self.cs),
            c,
            Body::of(&body),
        );
        self.push(op);
    }
}
