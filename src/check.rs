//! `--check-config`: validate a configuration the way an administrator would, one line per
//! check (`ok` or the reason), before the first `--dry-run`.
//!
//! Checks, in order: the file parses; the FreePBX credentials resolve; the database answers;
//! every table FreePBX and its installed modules imply is readable; how changes will be
//! detected (the binary log, where it is on and the login may follow it, else the poll: a
//! warning when the log is on but the login lacks the grant); voicemail.conf reads
//! (missing: a warning, e-mails are left alone; a limit exceeded: a failure); the iSymphony
//! API answers with these credentials and the core server exists; the cxpanel module's own
//! sync does not write to the same iSymphony (a warning naming the setting to change, see
//! [`crate::cxpanel`]); with `[live] backend = "asterisk"`, AMI logs in and permits every
//! action the Live API needs. Passwords are never printed.

use crate::api::types::Brand;
use crate::config::Config;
use crate::reconcile::source::{self, TargetDefaults};
use std::path::Path;

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Worth knowing, not a failure.
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Verdict,
    pub detail: String,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Ok,
            detail: detail.into(),
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Warn,
            detail: detail.into(),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Fail,
            detail: detail.into(),
        }
    }

    /// `ok    database    freepbxuser@localhost:3306/asterisk`. Details quote what servers
    /// and files said, so control characters are escaped: one check is one line.
    pub fn line(&self) -> String {
        let tag = match self.status {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        format!(
            "{tag:<5} {:<10} {}",
            self.name,
            crate::text::escape_control(&self.detail)
        )
    }
}

/// Run every check that can run; later checks are skipped when an earlier one they need failed.
pub async fn run(path: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let cfg = match Config::load(path) {
        Ok(c) => {
            out.push(Check::ok("config", path.display().to_string()));
            c
        }
        Err(e) => {
            out.push(Check::fail("config", e.to_string()));
            return out;
        }
    };

    out.push(password_check(&cfg.server));

    let mut defaults = TargetDefaults::default();
    let mut snapshot = None;
    if let Some(snap) = &cfg.freepbx.snapshot {
        match crate::freepbx::read(&cfg).await {
            Ok(s) => {
                out.push(Check::ok(
                    "freepbx",
                    format!("snapshot file {}", snap.display()),
                ));
                out.push(tables_check(&s));
                defaults = source::from_snapshot(&s, &cfg).defaults;
                snapshot = Some(s);
            }
            Err(e) => out.push(Check::fail("freepbx", e.to_string())),
        }
    } else {
        match crate::freepbx::resolve_target(&cfg) {
            Err(e) => out.push(Check::fail("freepbx", e.to_string())),
            Ok(target) => {
                out.push(Check::ok(
                    "freepbx",
                    format!("credentials for {}", target.describe()),
                ));
                // A full read proves the login, the database and the tables at once, and
                // yields the cxpanel settings that default the iSymphony target.
                match crate::freepbx::read(&cfg).await {
                    Ok(s) => {
                        out.push(Check::ok(
                            "database",
                            format!(
                                "{}: {} extensions, {} queues, {} conference rooms",
                                target.describe(),
                                s.users.len(),
                                s.queues.len(),
                                s.conferences.len()
                            ),
                        ));
                        out.push(tables_check(&s));
                        out.push(changes_check(&cfg).await);
                        out.push(voicemail_check(&s));
                        defaults = source::from_snapshot(&s, &cfg).defaults;
                        snapshot = Some(s);
                    }
                    Err(e) => {
                        out.push(Check::fail("database", e.to_string()));
                        let vm = &cfg.freepbx.voicemail_conf;
                        let mut s = crate::freepbx::snapshot::Snapshot::default();
                        let read = crate::freepbx::voicemail::read_voicemail_conf(vm);
                        s.voicemail = read.mailboxes;
                        s.voicemail_unknown = read.unknown;
                        s.voicemail_error = read.error;
                        s.voicemail_missing_include = read.missing_include;
                        out.push(voicemail_check(&s));
                    }
                }
            }
        }
    }

    out.push(ami_check(&cfg).await);
    let (target_cfg, target, embedded) = agent_target(&cfg, &defaults);
    out.push(api_check(&target_cfg, &target, embedded).await);
    let cx = snapshot
        .as_ref()
        .and_then(|s| Some((s, crate::cxpanel::CxApi::from_snapshot(s)?)));
    if let Some((snap, cx)) = cx {
        let v = crate::cxpanel::assess(&target_cfg, snap, &cx, &target).await;
        let (warn, text) = crate::cxpanel::describe(&v, &cx, &target, &path.display().to_string());
        out.push(if warn {
            Check::warn("cxpanel", text)
        } else {
            Check::ok("cxpanel", text)
        });
    }
    out
}

/// How the agent will notice database changes: by following the binary log (one stream
/// opened and closed, as the agent's login) or by polling.
async fn changes_check(cfg: &Config) -> Check {
    use crate::agent::trigger::binlog::{probe, Unavailable};
    let every = cfg.freepbx.poll_interval;
    let opts = match crate::freepbx::connect_opts(cfg) {
        Ok(o) => o,
        Err(e) => return Check::fail("changes", e.to_string()),
    };
    match probe(&opts).await {
        Ok(format) => Check::ok(
            "changes",
            format!(
                "binary log followed (binlog_format {format}), a safety poll every {:?}",
                crate::agent::trigger::binlog::SAFETY_POLL
            ),
        ),
        Err(Unavailable::Off) => Check::ok(
            "changes",
            format!("polled every {every:?} (the binary log is off)"),
        ),
        Err(e) => Check::warn("changes", format!("polled every {every:?}: {e}")),
    }
}

/// `[live] backend = "asterisk"`: the AMI login works and the user may run every action the
/// Live API needs (see [`crate::live::asterisk::check`]).
async fn ami_check(cfg: &Config) -> Check {
    use crate::config::LiveBackend;
    if cfg.live.backend != LiveBackend::Asterisk {
        return Check::ok("ami", "not used ([live] backend is not \"asterisk\")");
    }
    let settings = match crate::live::asterisk::settings_from(cfg).await {
        Ok(s) => s,
        Err(e) => return Check::fail("ami", e.to_string()),
    };
    match crate::live::asterisk::check::check(&settings).await {
        Ok(d) => Check::ok("ami", d),
        Err(e) => Check::fail("ami", e.to_string()),
    }
}

/// The target a pass would use (the embedded endpoint's address when this process would
/// serve it), the config it was resolved from, and whether it is that embedded endpoint.
fn agent_target(cfg: &Config, defaults: &TargetDefaults) -> (Config, source::Target, bool) {
    let mut cfg = cfg.clone();
    let embedded = cfg.server.enabled && cfg.isymphony.url.is_none();
    if embedded {
        let base = format!(
            "http://{}/{}",
            cfg.server.http_listen,
            crate::api::paths::PREFIX
        );
        source::target_embedded(&mut cfg, &base);
    }
    let target = source::resolve_target(&cfg, defaults);
    (cfg, target, embedded)
}

/// Every table FreePBX and its installed modules imply must be there and readable: a missing
/// one would stall the kinds it feeds (see `freepbx::tables`).
fn tables_check(s: &crate::freepbx::snapshot::Snapshot) -> Check {
    let problems = crate::freepbx::tables::table_problems(s);
    if problems.is_empty() {
        return Check::ok(
            "tables",
            "every table FreePBX and its installed modules need is readable",
        );
    }
    let msgs: Vec<String> = problems.into_iter().map(|p| p.message).collect();
    Check::fail("tables", msgs.join(" | "))
}

/// The password of the agent's port (and of the embedded endpoint when it is on): where it is, and
/// whether the service would refuse it (issue 18 point 7). Never the password itself.
fn password_check(s: &crate::config::ServerConfig) -> Check {
    if let Some(e) = &s.password_file_error {
        return Check::fail("password", e.clone());
    }
    // One-shot passes (--sync-now, --dry-run) serve no port: a warning, not a failure.
    if let Some(why) = s.start_refusal() {
        return Check::warn("password", format!("the service refuses to start: {why}"));
    }
    match &s.password_file {
        Some(f) => Check::ok(
            "password",
            format!(
                "[server] password_file {}: the login for the agent's port is {} with the \
                 password in that file (generated at install, readable by root and the \
                 isymphony-sync group: sudo cat {})",
                f.display(),
                s.username,
                f.display()
            ),
        ),
        None if s.password.expose() == crate::config::DEFAULT_API_PASSWORD => Check::ok(
            "password",
            "the factory default, as in the demo set-up (the embedded endpoint is \
             on); set [server] password_file or password before exposing it",
        ),
        None => Check::ok(
            "password",
            "set in the configuration file ([server] password)",
        ),
    }
}

/// voicemail.conf as a pass reads it: a missing or unreadable file is a warning (e-mail
/// addresses are then left alone), a limit or a non-text file fails.
fn voicemail_check(s: &crate::freepbx::snapshot::Snapshot) -> Check {
    match (&s.voicemail_unknown, s.voicemail_error) {
        (None, _) => match &s.voicemail_missing_include {
            None => Check::ok("voicemail", format!("{} mailboxes", s.voicemail.len())),
            Some(why) => Check::warn(
                "voicemail",
                format!("{} mailboxes read; {why}", s.voicemail.len()),
            ),
        },
        (Some(why), false) => Check::warn(
            "voicemail",
            format!("{why} (voicemail e-mail addresses would be left as they are)"),
        ),
        (Some(why), true) => Check::fail(
            "voicemail",
            format!("{why} (voicemail e-mail addresses would be left as they are)"),
        ),
    }
}

/// The iSymphony API answers; an embedded target (served by the agent itself) is probed only
/// if it is running now.
async fn api_check(cfg: &Config, target: &source::Target, embedded: bool) -> Check {
    let shown_url = crate::text::redact_url(&target.url);
    let where_ = format!("{shown_url} as {}", target.username);
    let client = match crate::reconcile::make_client(cfg, target) {
        Ok(c) => c,
        Err(e) => return Check::fail("isymphony", e.to_string()),
    };
    let brand = match client.get::<Brand>(crate::api::paths::brand()).await {
        Ok(b) => b,
        Err(e) if embedded && e.is_unreachable() => {
            return Check::ok(
                "isymphony",
                format!("embedded endpoint {shown_url} (not running now; the agent starts it)"),
            )
        }
        Err(e) => {
            let why = match e.status() {
                Some(401) | Some(403) => format!(
                    "{where_}: HTTP {} (wrong API username or password, or this host is not in the iSymphony ACL)",
                    e.status().unwrap_or_default()
                ),
                _ => format!("{where_}: {e}"),
            };
            return Check::fail("isymphony", why);
        }
    };
    let slug = &target.core_server;
    match client
        .get::<crate::api::types::CoreServer>(crate::api::paths::core_server_by_slug(slug))
        .await
    {
        Ok(_) => Check::ok(
            "isymphony",
            format!("{where_}: iSymphony {} (build {}), core server '{slug}'", brand.version, brand.build),
        ),
        Err(e) if e.is_not_found() => Check::ok(
            "isymphony",
            format!("{where_}: iSymphony {}; core server '{slug}' does not exist yet (the first sync creates it)", brand.version),
        ),
        Err(e) => Check::fail("isymphony", format!("{where_}: {e}")),
    }
}
