//! Extensions: display names and dial strings from the core tables (`users`, `devices`, the
//! per-technology `sip`/`iax`/`dahdi` keywords) and voicemail e-mail addresses.

use super::*;

impl<'a> Mapper<'a> {
    /// The dial string of an extension's device, from the core tables (§3.2, §3.3).
    pub(super) fn peer(&self, dev: Option<&DeviceRow>, dials: &Dials) -> String {
        let Some(dev) = dev else {
            // A virtual extension (or a user without a device) has nothing to dial.
            return String::new();
        };
        let id = dev.id.as_str();
        let tech = dev.tech.to_ascii_lowercase();
        let keyword = match tech.as_str() {
            "sip" | "pjsip" => dials.sip.get(id),
            "iax2" | "iax" => dials.iax.get(id),
            "dahdi" | "zap" => dials.dahdi.get(id),
            _ => None,
        };
        if let Some(d) = keyword.map(|s| s.trim()).filter(|s| !s.is_empty()) {
            return d.to_string();
        }
        if !dev.dial.trim().is_empty() {
            return dev.dial.trim().to_string();
        }
        // Core fills a blank dial with UPPER(tech)/<id>; the sip driver keyword tells which
        // channel driver a `sip`-table device really uses.
        let tech = match (tech.as_str(), dials.driver.get(id).map(String::as_str)) {
            ("sip" | "pjsip", Some("chan_pjsip")) => "pjsip".to_string(),
            ("sip" | "pjsip", Some("chan_sip")) => "sip".to_string(),
            ("custom", _) | ("", _) => return String::new(),
            (t, _) => t.to_string(),
        };
        format!("{}/{}", tech.to_ascii_uppercase(), dev.id)
    }

    pub(super) fn extensions(&mut self) -> BTreeMap<String, ExtensionSpec> {
        let devices: FastMap<&str, &DeviceRow> =
            super::super::source_rules::device_index(self.snap)
                .into_iter()
                .collect();
        let dials = Dials::new(self.snap);
        // Built as a sorted Vec and bulk-loaded: much cheaper than 10k BTreeMap inserts.
        let mut out = Vec::with_capacity(self.users.len());
        for (&ext, u) in &self.users {
            let auto_answer = match self.mode {
                Mode::NoCxpanel if !self.cfg.sync.default_add_extensions => continue,
                Mode::NoCxpanel => self.cfg.sync.default_auto_answer,
                // No cxpanel row yet: cxpanel's next sync would add one (add_extension=1,
                // auto_answer=0).
                _ => match self.cx_users.get(ext) {
                    Some(c) if !c.add_extension => continue,
                    Some(c) => c.auto_answer,
                    None => false,
                },
            };
            let display = display_name(&u.name, ext);
            let peer = self.peer(devices.get(ext).copied(), &dials);
            let vm = u.voicemail.trim();
            out.push((
                ext.to_string(),
                ExtensionSpec {
                    extension: ext.to_string(),
                    display_name: display.clone(),
                    auto_answer,
                    agent_interface: peer.clone(),
                    peer,
                    agent_name: display,
                    agent_location: format!("Local/{ext}@from-queue/n"),
                    voice_mail_context: if vm.is_empty() || vm.eq_ignore_ascii_case("novm") {
                        "default".into()
                    } else {
                        vm.to_string()
                    },
                    voice_mail_box: ext.to_string(),
                },
            ));
        }
        out.into_iter().collect()
    }

    /// Voicemail e-mail addresses of an extension (voicemail module `getMailbox`: the user's
    /// context first, else the first context holding the mailbox).
    pub(super) fn mailbox_emails(&self, ext: &str, index: &MailboxIndex<'a>) -> Vec<String> {
        let ctx = self
            .users
            .get(ext)
            .map(|u| u.voicemail.trim())
            .unwrap_or("");
        index
            .by_ctx
            .get(&(ctx, ext))
            .or_else(|| index.first.get(ext))
            .map(|m| m.emails.clone())
            .unwrap_or_default()
    }
}

/// `dial` (and `sipdriver`) keywords of the per-technology device tables, by device id.
pub(super) struct Dials<'a> {
    sip: FastMap<&'a str, &'a str>,
    iax: FastMap<&'a str, &'a str>,
    dahdi: FastMap<&'a str, &'a str>,
    driver: FastMap<&'a str, String>,
}

impl<'a> Dials<'a> {
    pub(super) fn new(snap: &'a Snapshot) -> Self {
        let dial = |rows: &'a [KeywordRow]| {
            rows.iter()
                .filter(|r| r.keyword == "dial")
                .map(|r| (r.id.as_str(), r.data.as_str()))
                .collect::<FastMap<_, _>>()
        };
        Dials {
            sip: dial(&snap.sip),
            iax: dial(&snap.iax),
            dahdi: dial(&snap.dahdi),
            driver: snap
                .sip
                .iter()
                .filter(|r| r.keyword == "sipdriver")
                .map(|r| (r.id.as_str(), r.data.trim().to_ascii_lowercase()))
                .collect(),
        }
    }
}

pub(super) struct MailboxIndex<'a> {
    by_ctx: FastMap<(&'a str, &'a str), &'a Mailbox>,
    first: FastMap<&'a str, &'a Mailbox>,
}

impl<'a> MailboxIndex<'a> {
    pub(super) fn new(snap: &'a Snapshot) -> Self {
        let mut by_ctx = FastMap::default();
        let mut first = FastMap::default();
        for m in &snap.voicemail {
            by_ctx
                .entry((m.context.as_str(), m.mailbox.as_str()))
                .or_insert(m);
            first.entry(m.mailbox.as_str()).or_insert(m);
        }
        MailboxIndex { by_ctx, first }
    }
}
