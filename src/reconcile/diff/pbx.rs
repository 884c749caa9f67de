//! The AMI connection to this PBX: matched by host, port, username and password (a changed
//! login is a new connection), its CDR settings updated in place, other managed connections
//! deleted. CDR login values the agent does not know are never sent.

use super::changes::changed_fields_masked;
use super::{to_value, Ctx};
use crate::api::confirm::Confirm;
use crate::api::resource::PBX_SERVERS;
use crate::api::types::PbxServer;
use crate::model::Kind;
use crate::model::PbxServerSpec;
use crate::reconcile::plan::{Action, Body, Method};
use crate::secret::Secret;
use serde_json::Value;

const PROBE: &str = "\u{0}field-probe";

/// The wire (serde) name of the one field `probe` sets to [`PROBE`]: names stay written once,
/// in `api::types`.
fn wire_name(probe: PbxServer) -> Option<String> {
    match to_value(&probe) {
        Value::Object(m) => m
            .into_iter()
            .find(|(_, v)| v.as_str() == Some(PROBE))
            .map(|(k, _)| k),
        _ => None,
    }
}

fn cdr_username_field() -> Option<String> {
    wire_name(PbxServer {
        cdr_username: PROBE.into(),
        ..Default::default()
    })
}

fn cdr_password_field() -> Option<String> {
    wire_name(PbxServer {
        cdr_password: Secret::new(PROBE),
        ..Default::default()
    })
}

/// The fields whose values a plan never shows.
fn secret_fields() -> Vec<String> {
    let password = wire_name(PbxServer {
        password: Secret::new(PROBE),
        ..Default::default()
    });
    password.into_iter().chain(cdr_password_field()).collect()
}

/// The natural key of a connection.
fn key_of(host: &str, port: i64, username: &str) -> String {
    format!("{host}:{port}:{username}")
}

impl Ctx<'_> {
    pub(super) fn pbx_servers(&mut self) {
        let mut matched: Option<usize> = None;
        if let Some(spec) = &self.d.pbx_server {
            matched = self.o.pbx_servers.iter().position(|p| {
                p.host == spec.host
                    && p.port == spec.port
                    && p.username == spec.username
                    && p.password == spec.password
            });
            match matched {
                None => self.create_pbx(spec),
                Some(i) => self.update_pbx(spec, &self.o.pbx_servers[i]),
            }
        }
        let mut managed = 0;
        for (i, p) in self.o.pbx_servers.iter().enumerate() {
            if Some(i) == matched {
                managed += 1;
                continue;
            }
            let key = key_of(&p.host, p.port, &p.username);
            let Some(id) = p.id.as_deref() else { continue };
            if !self.own.is_managed(Kind::PbxServer, Some(id), &key) {
                continue;
            }
            let path = PBX_SERVERS.item(&self.cs, id);
            let mut op = self.op(
                Action::Delete,
                Kind::PbxServer,
                &p.host,
                Method::Delete,
                path,
            );
            op.label = Some(p.display_name.clone());
            managed += 1;
            self.push(op);
        }
        self.count_managed(Kind::PbxServer, managed);
    }

    fn create_pbx(&mut self, spec: &PbxServerSpec) {
        let key = key_of(&spec.host, spec.port, &spec.username);
        let id = self.own.id(Kind::PbxServer, &key);
        let body = PbxServer {
            id: Some(id.clone()),
            display_name: spec.display_name.clone(),
            host: spec.host.clone(),
            port: spec.port,
            username: spec.username.clone(),
            password: spec.password.clone(),
            enabled: true,
            cdr_name: String::new(),
            cdr_host: spec.cdr_host.clone(),
            cdr_port: spec.cdr_port,
            cdr_username: spec.cdr_username.clone().unwrap_or_default(),
            cdr_password: spec.cdr_password.clone().unwrap_or_default(),
            recording_agent_identifier: spec.recording_agent_identifier.clone(),
            extra: Default::default(),
        };
        let path = PBX_SERVERS.list(&self.cs);
        let mut op = self.op(
            Action::Create,
            Kind::PbxServer,
            &spec.host,
            Method::Post,
            path,
        );
        op.label = Some(spec.display_name.clone());
        op.request.confirm = Some(Confirm::Get(PBX_SERVERS.item(&self.cs, &id)));
        let mut value = to_value(&body);
        // A CDR login value the agent does not have is never sent.
        if let Some(m) = value.as_object_mut() {
            if spec.cdr_username.is_none() {
                cdr_username_field().map(|f| m.remove(&f));
            }
            if spec.cdr_password.is_none() {
                cdr_password_field().map(|f| m.remove(&f));
            }
        }
        op.request.body = Some(Body::of(&value));
        self.push(op);
    }

    fn update_pbx(&mut self, spec: &PbxServerSpec, p: &PbxServer) {
        let key = key_of(&spec.host, spec.port, &spec.username);
        // Unknown CDR values stay as the server has them.
        let mut body = p.clone();
        body.cdr_host = spec.cdr_host.clone();
        body.cdr_port = spec.cdr_port;
        body.cdr_username = spec.cdr_username.clone().unwrap_or(body.cdr_username);
        body.cdr_password = spec.cdr_password.clone().unwrap_or(body.cdr_password);
        body.recording_agent_identifier = spec.recording_agent_identifier.clone();
        let c = changed_fields_masked(p, &body, &secret_fields());
        // The display name follows FreePBX but is not compared (cxpanel never does).
        body.display_name = spec.display_name.clone();
        let Some(id) = p.id.clone().filter(|id| !id.is_empty()) else {
            return;
        };
        let op = (!c.is_empty()).then(|| {
            let path = PBX_SERVERS.item(&self.cs, &id);
            self.update(Kind::PbxServer, &spec.host, path, c, Body::of(&body))
        });
        self.finish_match(Kind::PbxServer, &id, &key, op);
    }
}
