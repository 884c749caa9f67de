//! Logging setup: `tracing-subscriber` filtered by `RUST_LOG` (default `info`), to stderr.
//!
//! Plain text by default. Under systemd (`$JOURNAL_STREAM` set) lines carry no timestamp of
//! our own, because journald stamps them, and no colours. `--log-format json` writes one JSON
//! object per line (with timestamps) for log shippers.

use tracing_subscriber::EnvFilter;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
            let b = builder.with_ansi(style.ansi).with_target(false);
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
}
