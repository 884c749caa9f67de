//! `--check-config`'s `ami` line: the login works, and the AMI user may run every action the
//! backend needs. `ListCommands` lists only the actions the session's write classes allow
//! (main/manager.c `action_listcommands`), so a needed action missing from it names the class
//! to grant. (Read classes for events, `call,agent,dialplan,system`, cannot be asked for;
//! docs/README-live.md lists them.)

use crate::live::ami::{ActionBuilder, AmiError, AmiSettings, Conn, Message};
use std::collections::BTreeSet;
use std::time::Duration;

/// Action, the write class it needs, what the backend uses it for.
pub const NEEDED: &[(&str, &str, &str)] = &[
    ("CoreShowChannels", "reporting", "the snapshot of calls"),
    ("QueueStatus", "(none)", "the snapshot of agents"),
    ("ConfbridgeList", "reporting", "the snapshot of conferences"),
    ("DBGetTree", "reporting", "the snapshot of DND"),
    ("DBGet", "reporting", "the devices of an extension (DND)"),
    ("DBPut", "system", "DND on"),
    ("DBDel", "system", "DND off"),
    ("Setvar", "call", "DND lamps and user status (presence)"),
    ("Originate", "originate", "originate"),
    ("Redirect", "call", "call-segment transfer"),
    ("QueueAdd", "agent", "queue login"),
    ("QueueRemove", "agent", "queue logout"),
    ("QueuePause", "agent", "agent pause"),
    ("QueuePenalty", "agent", "agent penalty"),
];

/// Why the AMI login cannot serve the Live API.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Login refused, unreachable, or the connection failed.
    #[error(transparent)]
    Ami(#[from] AmiError),
    /// The server at the named address did not answer in time.
    #[error("{0}: no answer within 15 s")]
    Timeout(String),
    /// The login works, but these actions are not permitted.
    #[error("{who}: login works but the AMI user may not run: {}", missing.join("; "))]
    NotPermitted { who: String, missing: Vec<String> },
}

/// Ok: what works (`Asterisk 22.10.1, isym@127.0.0.1:5038: every action permitted`); Err:
/// why not (login refused, unreachable, or which classes are missing).
pub async fn check(s: &AmiSettings) -> Result<String, CheckError> {
    let run = async {
        let mut conn = Conn::open(s, "off").await?;
        let commands = ask(&mut conn, ActionBuilder::new("ListCommands")).await?;
        let settings = ask(&mut conn, ActionBuilder::new("CoreSettings")).await?;
        let _ = conn.send(ActionBuilder::new("Logoff")).await;
        Ok::<_, AmiError>((commands, settings))
    };
    let (commands, settings) = match tokio::time::timeout(Duration::from_secs(15), run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(CheckError::Timeout(s.describe())),
    };
    let version = settings.str("AsteriskVersion").to_string();
    let granted: BTreeSet<String> = commands
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|(a, _, _)| !granted.contains(&a.to_ascii_lowercase()))
        .map(|(a, class, what)| format!("{a} ({what}) needs write class '{class}'"))
        .collect();
    let who = format!("Asterisk {version}, {}", s.describe());
    if missing.is_empty() {
        Ok(format!(
            "{who}: login works; every action the Live API needs is permitted (write classes system, call, originate, agent, reporting)"
        ))
    } else {
        Err(CheckError::NotPermitted { who, missing })
    }
}

async fn ask(conn: &mut Conn, a: ActionBuilder) -> Result<Message, AmiError> {
    let id = conn.send(a).await?.to_string();
    loop {
        let m = conn.read().await?;
        if m.response().is_some() && m.action_id() == Some(id.as_str()) {
            return Ok(m);
        }
    }
}
