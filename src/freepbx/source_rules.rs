//! Mapping rules that depend on how much of FreePBX the agent could see: which kinds are
//! frozen because their source is unknown, the CDR login given to iSymphony, the device
//! that rings for an extension (`deviceanduser` mode), and the [`Mode`] cxpanel would run in.
//! Used by [`super::mapping`] (which re-exports [`Mode`] and [`mode`]).

use super::snapshot::{CxServerSettings, DeviceRow, Snapshot, REDACTED};
use crate::config::Config;
use crate::model::Desired;
use crate::model::Kind;
use crate::secret::Secret;

/// Which rule set selects the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    CxTables,
    CxUserman,
    NoCxpanel,
}

/// The mode cxpanel would run in for this snapshot.
pub fn mode(snap: &Snapshot) -> Mode {
    if !snap.has_table("cxpanel_users") {
        return Mode::NoCxpanel;
    }
    let sync_with_userman = snap
        .cx_settings
        .as_ref()
        .and_then(|c| c.server.as_ref())
        .map(|s| s.sync_with_userman)
        .unwrap_or_else(|| CxServerSettings::default().sync_with_userman);
    if sync_with_userman && snap.has_table("userman_users") {
        Mode::CxUserman
    } else {
        Mode::CxTables
    }
}

/// Freeze the kinds whose source is unknown this pass (see `reconcile::frozen`): tables
/// FreePBX implies that are missing or unreadable (an error of the pass), and in cxpanel
/// tables mode (the only one whose e-mails come from the file) an untrustworthy
/// voicemail.conf (a warning; an error for a limit or a non-text file). A missing required
/// `#include` only holds deletions of e-mail addresses (`Desired::held_deletes`).
pub(crate) fn freeze_unknown_sources(snap: &Snapshot, mode: Mode, d: &mut Desired) {
    for p in super::tables::table_problems(snap) {
        for kind in &p.kinds {
            d.frozen.entry(*kind).or_insert_with(|| p.message.clone());
        }
        d.errors.push(p.message);
    }
    if mode != Mode::CxTables {
        return;
    }
    if let Some(why) = &snap.voicemail_missing_include {
        d.held_deletes
            .entry(Kind::Email)
            .or_insert_with(|| why.clone());
    }
    if let Some(why) = &snap.voicemail_unknown {
        d.frozen.entry(Kind::Email).or_insert_with(|| why.clone());
        if snap.voicemail_error {
            d.errors.push(format!(
                "{why}; voicemail e-mail addresses are left as they are this pass"
            ));
        }
    }
}

/// The CDR login for iSymphony: `[isymphony] cdr_username`/`cdr_password`, else what FreePBX
/// gives (the snapshot's: CDRDB* settings, else AMPDB* of freepbx.conf). An unknown value is
/// None, with a warning; never the agent's own database login.
pub(crate) fn cdr_login(
    cfg: &Config,
    snap: &Snapshot,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<Secret>) {
    let i = &cfg.isymphony;
    let user = i
        .cdr_username
        .clone()
        .or_else(|| snap.cdr_username.clone())
        .filter(|u| !u.is_empty() && u != REDACTED);
    let password = i
        .cdr_password
        .clone()
        .or_else(|| snap.cdr_password.clone())
        .filter(|p| p.expose() != REDACTED);
    let fields = match (user.is_none(), password.is_none()) {
        (true, true) => Some("cdrUsername and cdrPassword are"),
        (true, false) => Some("cdrUsername is"),
        (false, true) => Some("cdrPassword is"),
        (false, false) => None,
    };
    if let Some(fields) = fields {
        warnings.push(format!(
            "the CDR database login FreePBX gives iSymphony is unknown (no CDRDBUSER/\
             CDRDBPASS setting and no readable AMPDBUSER/AMPDBPASS in the FreePBX \
             configuration file, or a snapshot without secrets): the PBX connection's \
             {fields} left as the server has it; set [isymphony] cdr_username and \
             cdr_password to give it"
        ));
    }
    (user, password)
}

/// The device that rings for each extension, as (extension, device) pairs. In `extensions`
/// mode (FreePBX's default) the device whose id is the extension number; in `deviceanduser`
/// mode (`AMPEXTENSIONS`) users and devices are separate, and an extension's device is the one
/// whose `devices.user` names it: the lowest device id when several do (numerically when they
/// are numbers), none when none does, whatever device happens to share its number.
pub(crate) fn device_index(snap: &Snapshot) -> Vec<(&str, &DeviceRow)> {
    let device_and_user = snap
        .settings
        .get("AMPEXTENSIONS")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("deviceanduser"));
    if !device_and_user {
        return snap.devices.iter().map(|d| (d.id.as_str(), d)).collect();
    }
    let mut devs: Vec<&DeviceRow> = snap
        .devices
        .iter()
        .filter(|d| !d.user.trim().is_empty())
        .collect();
    devs.sort_by_key(|d| (d.id.trim().parse::<u64>().unwrap_or(u64::MAX), d.id.clone()));
    let mut out: Vec<(&str, &DeviceRow)> = Vec::with_capacity(devs.len());
    let mut seen = std::collections::HashSet::new();
    for d in devs {
        if seen.insert(d.user.trim()) {
            out.push((d.user.trim(), d));
        }
    }
    out
}
