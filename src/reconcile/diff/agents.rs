//! The voicemail and recording agents (they register themselves: the diff only updates their
//! settings) and the core server's voicemail agent bindings.

use super::changes::changed_fields;
use super::Ctx;
use crate::api::confirm::Confirm;
use crate::api::paths;
use crate::model::Kind;
use crate::reconcile::plan::{Action, Body, Method};

/// The warning for a desired agent the server does not know.
fn unknown_agent(what: &str, ident: &str) -> String {
    format!(
        "{what} agent {ident} is not known to the iSymphony server (agents register themselves); its settings were not pushed"
    )
}

impl Ctx<'_> {
    pub(super) fn agents(&mut self) {
        self.voicemail_agent();
        self.recording_agent();
    }

    fn voicemail_agent(&mut self) {
        let Some(spec) = &self.d.voicemail_agent else {
            return self.unbind_voicemail_agents();
        };
        match &self.o.voicemail_agent {
            None => self
                .plan
                .warnings
                .push(unknown_agent("voicemail", &spec.identifier)),
            Some(a) => {
                let mut body = a.clone();
                body.root_path = spec.root_path.clone();
                body.resource_host = spec.resource_host.clone();
                body.resource_extension = spec.resource_extension.clone();
                let c = changed_fields(a, &body);
                if !c.is_empty() {
                    let path = paths::voicemail_agent(&spec.identifier);
                    let kind = Kind::VoicemailAgent;
                    let mut op = self.update(kind, &spec.identifier, path, c, Body::of(&body));
                    op.needs.clear();
                    self.push(op);
                }
            }
        }
        if !self.o.voicemail_identifiers.contains(&spec.identifier) {
            let mut op = self.op(
                Action::Create,
                Kind::VoicemailAgentIdentifier,
                &spec.identifier,
                Method::Post,
                paths::voicemail_agent_identifiers(&self.cs),
            );
            op.request.body = Some(Body::of(&spec.identifier));
            op.request.confirm = Some(Confirm::ListHasValue {
                list: paths::voicemail_agent_identifiers(&self.cs),
                value: spec.identifier.clone(),
            });
            self.push(op);
        }
        self.unbind_voicemail_agents();
    }

    /// With `clean_unknown_items`, bindings of other voicemail agents go.
    fn unbind_voicemail_agents(&mut self) {
        if !self.own.clean_unknown_items {
            return;
        }
        let want = self
            .d
            .voicemail_agent
            .as_ref()
            .map(|a| a.identifier.as_str());
        for ident in &self.o.voicemail_identifiers {
            if Some(ident.as_str()) != want {
                let op = self.op(
                    Action::Delete,
                    Kind::VoicemailAgentIdentifier,
                    ident,
                    Method::Delete,
                    paths::voicemail_agent_identifier(&self.cs, ident),
                );
                self.push(op);
            }
        }
    }

    fn recording_agent(&mut self) {
        let Some(spec) = &self.d.recording_agent else {
            return;
        };
        let Some(a) = &self.o.recording_agent else {
            let w = unknown_agent("recording", &spec.identifier);
            return self.plan.warnings.push(w);
        };
        let mut body = a.clone();
        body.root_path = spec.root_path.clone();
        body.resource_host = spec.resource_host.clone();
        body.resource_extension = spec.resource_extension.clone();
        body.file_name_mask = spec.file_name_mask.clone();
        let c = changed_fields(a, &body);
        if !c.is_empty() {
            let path = paths::recording_agent(&spec.identifier);
            let mut op = self.update(
                Kind::RecordingAgent,
                &spec.identifier,
                path,
                c,
                Body::of(&body),
            );
            op.needs.clear();
            self.push(op);
        }
    }
}
