//! Actions → AMI, exactly as FreePBX performs them (reference Part II.4), and Asterisk's
//! answers → [`ActionError`]. Every value is an [`AmiValue`] or a constant.

use super::Handle;
use crate::live::action::{Action, ActionError};
use crate::live::ami::{ActionBuilder, Piece, Reply};
use crate::live::value::{AmiValue, Grammar};

pub(super) async fn perform(h: &Handle, action: Action) -> Result<(), ActionError> {
    match action {
        Action::Originate {
            channel,
            context,
            exten,
            caller_name,
            caller_number,
            timeout_ms,
            auto_answer,
        } => {
            let mut a = ActionBuilder::new("Originate")
                .value("Channel", &channel)
                .value("Context", &context)
                .value("Exten", &exten)
                .constant("Priority", "1")
                .compose(
                    "CallerID",
                    &[
                        Piece::Lit("\""),
                        Piece::Val(&caller_name),
                        Piece::Lit("\" <"),
                        Piece::Val(&caller_number),
                        Piece::Lit(">"),
                    ],
                )
                .value("Timeout", &AmiValue::number(timeout_ms))
                // 204 once accepted: the OriginateResponse comes when the phone answered.
                .constant("Async", "true");
            if auto_answer {
                a = a.constant("Variable", "__SIPADDHEADER51=Call-Info: answer-after=0");
            }
            expect_success(h.ask(a).await?, "Originate")
        }
        Action::Dnd { extension, enabled } => dnd(h, &extension, enabled).await,
        Action::QueueAdd {
            queue,
            interface,
            state_interface,
            member_name,
            penalty,
            paused,
            extension,
        } => {
            let a = ActionBuilder::new("QueueAdd")
                .value("Queue", &queue)
                .value("Interface", &interface)
                .value("Penalty", &AmiValue::number(penalty.into()))
                .constant("Paused", if paused { "true" } else { "false" })
                .value("MemberName", &member_name)
                .value("StateInterface", &state_interface);
            let r = h.ask(a).await?;
            queue_answer(r, &queue, "QueueAdd")?;
            queue_lamps(h, extension.as_ref(), &queue, "INUSE").await
        }
        Action::QueueRemove {
            queue,
            interface,
            extension,
        } => {
            let a = ActionBuilder::new("QueueRemove")
                .value("Queue", &queue)
                .value("Interface", &interface);
            let r = h.ask(a).await?;
            queue_answer(r, &queue, "QueueRemove")?;
            queue_lamps(h, extension.as_ref(), &queue, "NOT_INUSE").await
        }
        other => perform_member_call(h, other).await,
    }
}

/// Pause, penalty, transfer and presence.
async fn perform_member_call(h: &Handle, action: Action) -> Result<(), ActionError> {
    match action {
        Action::QueuePause {
            queue,
            interface,
            paused,
            reason,
        } => {
            let mut a = ActionBuilder::new("QueuePause")
                .value("Queue", &queue)
                .value("Interface", &interface)
                .constant("Paused", if paused { "true" } else { "false" });
            if !reason.as_str().is_empty() {
                a = a.value("Reason", &reason);
            }
            member_answer(h.ask(a).await?, &queue, &interface, "QueuePause")
        }
        Action::QueuePenalty {
            queue,
            interface,
            penalty,
        } => {
            let a = ActionBuilder::new("QueuePenalty")
                .value("Queue", &queue)
                .value("Interface", &interface)
                .value("Penalty", &AmiValue::number(penalty.into()));
            member_answer(h.ask(a).await?, &queue, &interface, "QueuePenalty")
        }
        Action::Redirect {
            channel,
            context,
            exten,
        } => {
            let a = ActionBuilder::new("Redirect")
                .value("Channel", &channel)
                .value("Context", &context)
                .value("Exten", &exten)
                .constant("Priority", "1");
            let r = h.ask(a).await?;
            if !r.is_success() && mentions(&r, &["not exist", "no such channel", "not found"]) {
                return Err(ActionError::NotFound(format!(
                    "the call segment's channel {channel} is gone"
                )));
            }
            expect_success(r, "Redirect")
        }
        Action::Presence {
            extensions,
            state,
            note,
        } => {
            for ext in &extensions {
                let a = ActionBuilder::new("Setvar")
                    .compose(
                        "Variable",
                        &[
                            Piece::Lit("PRESENCE_STATE(CustomPresence:"),
                            Piece::Val(ext),
                            Piece::Lit(")"),
                        ],
                    )
                    // `e`: the note travels base64-encoded, so no character of it is syntax.
                    .compose(
                        "Value",
                        &[
                            Piece::Lit(state),
                            Piece::Lit(",,"),
                            Piece::Base64(&note),
                            Piece::Lit(",e"),
                        ],
                    );
                expect_success(h.ask(a).await?, "Setvar PRESENCE_STATE")?;
            }
            Ok(())
        }
        _ => Err(ActionError::Failed("unexpected action".into())),
    }
}

/// FreePBX's `donotdisturb_set()`: AstDB `DND/<ext>`, the `Custom:DND<ext>` lamp, and the
/// `Custom:DEVDND<dev>` lamp of every device of the extension (`AMPUSER/<ext>/device`).
async fn dnd(h: &Handle, ext: &AmiValue, enabled: bool) -> Result<(), ActionError> {
    if enabled {
        let a = ActionBuilder::new("DBPut")
            .constant("Family", "DND")
            .value("Key", ext)
            .constant("Val", "YES");
        expect_success(h.ask(a).await?, "DBPut DND")?;
    } else {
        // "Database entry not found" is fine: DND was already off.
        let a = ActionBuilder::new("DBDel")
            .constant("Family", "DND")
            .value("Key", ext);
        h.ask(a).await?;
    }
    let state = if enabled { "BUSY" } else { "UNAVAILABLE" };
    set_custom(h, "DND", ext, state).await?;
    for dev in devices(h, ext).await? {
        set_custom(h, "DEVDND", &dev, state).await?;
    }
    Ok(())
}

/// The devices of extension `ext`, as FreePBX keeps them (AstDB `AMPUSER/<ext>/device`,
/// `&`-separated); a name that fails the grammar is left out with a warning.
async fn devices(h: &Handle, ext: &AmiValue) -> Result<Vec<AmiValue>, ActionError> {
    let a = ActionBuilder::new("DBGet")
        .constant("Family", "AMPUSER")
        .compose("Key", &[Piece::Val(ext), Piece::Lit("/device")]);
    let r = h.ask(a).await?;
    let list = r.events.iter().find_map(|m| m.get("Val")).unwrap_or("");
    let mut out = Vec::new();
    for dev in list.split('&').filter(|d| !d.is_empty()) {
        match AmiValue::parse("device", dev, Grammar::Exten) {
            Ok(d) => out.push(d),
            Err(_) => {
                tracing::warn!(extension = %ext, "AstDB AMPUSER/<ext>/device has a device name that is not a number; its lamps are left alone")
            }
        }
    }
    Ok(out)
}

/// FreePBX's queue-toggle lamps: `Custom:QUEUE<dev>*<queue>` for each device of `ext`.
async fn queue_lamps(
    h: &Handle,
    ext: Option<&AmiValue>,
    queue: &AmiValue,
    state: &'static str,
) -> Result<(), ActionError> {
    let Some(ext) = ext else { return Ok(()) };
    for dev in devices(h, ext).await? {
        let name = format!("{dev}*{queue}");
        match AmiValue::parse("device", &name, Grammar::Exten) {
            Ok(n) => set_custom(h, "QUEUE", &n, state).await?,
            Err(_) => tracing::warn!(extension = %ext, "a queue lamp name is too long; left alone"),
        }
    }
    Ok(())
}

/// `Setvar DEVICE_STATE(Custom:<prefix><name>)=<state>` (a global write, as FreePBX does).
async fn set_custom(
    h: &Handle,
    prefix: &'static str,
    name: &AmiValue,
    state: &'static str,
) -> Result<(), ActionError> {
    let a = ActionBuilder::new("Setvar")
        .compose(
            "Variable",
            &[
                Piece::Lit("DEVICE_STATE(Custom:"),
                Piece::Lit(prefix),
                Piece::Val(name),
                Piece::Lit(")"),
            ],
        )
        .constant("Value", state);
    expect_success(h.ask(a).await?, "Setvar DEVICE_STATE")
}

fn mentions(r: &Reply, needles: &[&str]) -> bool {
    let m = r.message().to_ascii_lowercase();
    needles.iter().any(|n| m.contains(n))
}

fn expect_success(r: Reply, what: &str) -> Result<(), ActionError> {
    if r.is_success() {
        return Ok(());
    }
    let msg = r.message();
    if msg.to_ascii_lowercase().contains("permission denied") {
        return Err(ActionError::Failed(format!(
            "Asterisk refused {what}: permission denied (the AMI user lacks the class this action needs; see --check-config)"
        )));
    }
    Err(ActionError::Failed(format!(
        "Asterisk refused {what}: {msg}"
    )))
}

/// QueueAdd / QueueRemove answers (apps/app_queue.c manager_add/remove_queue_member).
fn queue_answer(r: Reply, queue: &AmiValue, what: &str) -> Result<(), ActionError> {
    if r.is_success() {
        return Ok(());
    }
    if mentions(&r, &["no such queue"]) {
        return Err(ActionError::NotFound(format!(
            "queue {queue} does not exist in Asterisk"
        )));
    }
    if mentions(&r, &["already there"]) {
        return Err(invalid(format!("is already logged in to queue {queue}")));
    }
    if mentions(&r, &["not dynamic"]) {
        return Err(invalid(format!(
            "is a static member of queue {queue} and cannot be logged out"
        )));
    }
    if mentions(&r, &["not there"]) {
        return Err(invalid(format!("is not logged in to queue {queue}")));
    }
    expect_success(r, what)
}

fn invalid(message: String) -> ActionError {
    ActionError::Invalid {
        field: "extension".into(),
        message,
    }
}

/// QueuePause / QueuePenalty answers: an unknown member is gone (404).
fn member_answer(
    r: Reply,
    queue: &AmiValue,
    interface: &AmiValue,
    what: &str,
) -> Result<(), ActionError> {
    if !r.is_success() && mentions(&r, &["not found", "invalid interface"]) {
        return Err(ActionError::NotFound(format!(
            "no agent {interface} in queue {queue}"
        )));
    }
    expect_success(r, what)
}
