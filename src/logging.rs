//! Logging setup: `tracing-subscriber` filtered by `RUST_LOG` (default `info`), to stderr.
//!
//! Plain text by default. Under systemd (`$JOURNAL_STREAM` set) lines carry no timestamp of
//! our own, because journald stamps them, and no colours. `--log-format json` writes one JSON
//! object per line (with timestamps) for log shippers.
//!
//! Text lines escape control characters in every field and message ([`EscapedFields`]):
//! names, error bodies and database messages come from elsewhere, and a newline or an ANSI
//! escape in them must not forge a log line or drive the terminal. (JSON escapes them itself.)
//!
//! The `notify` crate's per-event trace lines are never logged: they describe every event in
//! the directories the agent watches, so with a log file kept in such a directory each line
//! would cause an event that is logged again, without end.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

/// Directives added to every filter (see the module docs).
const FIXED_DIRECTIVES: &[&str] = &["notify=warn"];

/// The text format's fields: `message key=value …`, as tracing-subscriber's default, with
/// control characters escaped (`\n`, `\x1b`, …) so that one event is one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

struct EscapingVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // `log` records bridged into tracing carry their metadata as `log.*` fields.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let mut text = String::new();
        self.result = write!(text, "{value:?}");
        let text = crate::text::escape_control(&text);
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = self.result.and_then(|()| {
            if name == "message" {
                write!(self.writer, "{sep}{text}")
            } else {
                write!(self.writer, "{sep}{}={text}", name.trim_start_matches("r#"))
            }
        });
    }
}

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = EscapingVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// `RUST_LOG` (default `info`) plus [`FIXED_DIRECTIVES`].
fn env_filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for d in FIXED_DIRECTIVES {
        if let Ok(d) = d.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How the text format should look, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStyle {
    pub timestamps: bool,
    pub ansi: bool,
}

/// Decide the text style: journald adds timestamps itself; colours only on a terminal.
pub fn text_style(journal_stream: bool, stderr_is_terminal: bool) -> TextStyle {
    TextStyle {
        timestamps: !journal_stream,
        ansi: stderr_is_terminal && !journal_stream,
    }
}

/// Install the global subscriber. A second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = env_filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => {
            let style = text_style(
                std::env::var_os("JOURNAL_STREAM").is_some(),
                std::io::stderr().is_terminal(),
            );
            let b = builder
                .fmt_fields(EscapedFields)
                .with_ansi(style.ansi)
                .with_target(false);
            if style.timestamps {
                b.try_init()
            } else {
                b.without_time().try_init()
            }
        }
    };
    // Already initialised (e.g. by a test harness): keep the existing subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_gets_no_timestamps_or_colours() {
        assert_eq!(
            text_style(true, true),
            TextStyle {
                timestamps: false,
                ansi: false
            }
        );
        assert_eq!(
            text_style(false, false),
            TextStyle {
                timestamps: true,
                ansi: false
            }
        );
        assert!(text_style(false, true).ansi);
    }

    #[test]
    fn text_fields_escape_control_characters() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::ErrorKind::Other)?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .fmt_fields(EscapedFields)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(sub, || {
            let body = "no\nERROR forged line \x1b[2J\u{9b}";
            tracing::warn!(error = %body, name = body, "got {body}");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\x1b') && !out.contains('\u{9b}'), "{out}");
        assert!(
            out.contains("got no\\nERROR forged line \\x1b[2J\\u{9b}"),
            "{out}"
        );
        assert!(out.contains(" error=no\\nERROR"), "{out}");
    }
}
