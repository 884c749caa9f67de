//! Reading the agent's own config file for a reload, so that a half-written file is never
//! applied.
//!
//! Editors and tools that rewrite a file in place truncate it first and write it in pieces;
//! the file watch sees the first piece. So a reload reads the file until two reads
//! [`SETTLE`] apart agree (at most [`MAX_READS`] reads), and then refuses what a writer in the
//! middle of its work leaves behind: an empty file (0 bytes or only blanks), which would
//! otherwise mean "all built-in defaults", and a file whose last line has no line break, the
//! sign of a write cut short (every editor ends a file with one). Either is rejected like an
//! invalid file: the running configuration stays, and the status says why.

use crate::config::{Config, ConfigError, ParseError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The pause between two reads that must agree.
pub(crate) const SETTLE: Duration = Duration::from_millis(300);
/// Reads before a file that keeps changing is given up on (about 3 s).
pub(crate) const MAX_READS: usize = 10;

/// What a reload request leads to.
#[derive(Debug)]
pub(crate) enum ReloadDecision {
    /// The file holds the running configuration's text: nothing to do.
    Unchanged,
    /// The file cannot replace the running configuration; the reason is for the status, the
    /// text (when it could be read) for recognising the same file next time.
    Rejected {
        error: ConfigError,
        text: Option<String>,
    },
    /// A complete, valid configuration and the text it came from.
    Apply { text: String, config: Box<Config> },
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        source: ParseError::Rule(message.into()),
    }
}

fn read_once(path: &Path) -> Result<String, ConfigError> {
    Config::read_text(path)
}

/// The file's text once two reads `settle` apart agree. A file that is missing or unreadable
/// on one read and back on the next is simply still changing.
pub(crate) async fn read_settled(
    path: &Path,
    settle: Duration,
    max_reads: usize,
) -> Result<String, ConfigError> {
    let mut prev = read_once(path);
    for _ in 1..max_reads.max(2) {
        tokio::time::sleep(settle).await;
        let next = read_once(path);
        match (&prev, &next) {
            (Ok(a), Ok(b)) if a == b => return next,
            // The same error twice (missing, no permission): that is the state of the file.
            (Err(a), Err(b)) if a.to_string() == b.to_string() => return next,
            _ => prev = next,
        }
    }
    Err(invalid(
        path,
        format!(
            "the file kept changing for {:.1} s (still being written?); the running \
             configuration stays; reload again (systemctl reload isymphony-sync) once it is \
             complete",
            settle.as_secs_f64() * max_reads as f64
        ),
    ))
}

/// Refuse text a half-finished write leaves behind (see the module docs).
pub(crate) fn check_complete(path: &Path, text: &str) -> Result<(), ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(
            path,
            "the file is empty (still being written?); a reload never falls back to the \
             built-in defaults: write the complete configuration, then reload",
        ));
    }
    if !text.ends_with('\n') {
        return Err(invalid(
            path,
            "the last line has no line break, so the file looks cut short (half-written); \
             save it completely (editors end every file with a line break), then reload",
        ));
    }
    Ok(())
}

/// What the daemon remembers between reloads.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    /// The text of the running configuration.
    pub(crate) loaded: String,
    /// While a rejection stands: the rejected text (`None` when the file could not be read).
    pub(crate) rejected: Option<Option<String>>,
}

impl History {
    /// The history of a configuration just loaded from `text`.
    pub(crate) fn new(text: String) -> History {
        History {
            loaded: text,
            rejected: None,
        }
    }
}

/// Read, check and parse the config file for a reload. A file event for the running text is
/// nothing to do, and the same rejected text is not reported twice; SIGHUP (`forced`) always
/// re-reads and re-decides. A file put back as it was applies (again), which clears the
/// standing rejection.
pub(crate) async fn examine(path: &Path, history: &History, forced: bool) -> ReloadDecision {
    examine_with(path, history, forced, SETTLE, MAX_READS).await
}

async fn examine_with(
    path: &Path,
    history: &History,
    forced: bool,
    settle: Duration,
    max_reads: usize,
) -> ReloadDecision {
    let text = match read_settled(path, settle, max_reads).await {
        Ok(t) => t,
        Err(error) => return ReloadDecision::Rejected { error, text: None },
    };
    if !forced {
        let same_as_running = text == history.loaded && history.rejected.is_none();
        let same_as_rejected = matches!(&history.rejected, Some(Some(t)) if *t == text);
        if same_as_running || same_as_rejected {
            return ReloadDecision::Unchanged;
        }
    }
    if let Err(error) = check_complete(path, &text) {
        return ReloadDecision::Rejected {
            error,
            text: Some(text),
        };
    }
    match Config::parse(&text) {
        Ok(config) if config.server.start_refusal().is_some() => ReloadDecision::Rejected {
            error: invalid(path, config.server.start_refusal().unwrap_or_default()),
            text: Some(text),
        },
        Ok(mut config) => {
            config.source = Some(PathBuf::from(path));
            ReloadDecision::Apply {
                text,
                config: Box::new(config),
            }
        }
        Err(source) => ReloadDecision::Rejected {
            error: ConfigError::Invalid {
                path: path.to_path_buf(),
                source,
            },
            text: Some(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (The service refuses the factory password outside the demo: a password of its own.)
    const GOOD: &str = "[server]\npassword = \"Reload-Test-Pw\"\n[sync]\nconcurrency = 4\n";
    const FAST: Duration = Duration::from_millis(20);

    fn running(text: &str) -> History {
        History {
            loaded: text.to_string(),
            rejected: None,
        }
    }

    async fn run(path: &Path, loaded: &str) -> ReloadDecision {
        examine_with(path, &running(loaded), false, FAST, 10).await
    }

    #[tokio::test]
    async fn empty_and_cut_short_files_are_rejected_and_unchanged_ones_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        for bad in ["", "  \n\n", "[sync]\nconcurrency = 4"] {
            std::fs::write(&p, bad).unwrap();
            match run(&p, GOOD).await {
                ReloadDecision::Rejected { error, text } => {
                    assert!(error.to_string().contains("then reload"), "{error}");
                    assert_eq!(text.as_deref(), Some(bad));
                    // The same file again: already reported, unless SIGHUP asks.
                    let h = History {
                        loaded: GOOD.into(),
                        rejected: Some(text),
                    };
                    assert!(matches!(
                        examine_with(&p, &h, false, FAST, 10).await,
                        ReloadDecision::Unchanged
                    ));
                    assert!(matches!(
                        examine_with(&p, &h, true, FAST, 10).await,
                        ReloadDecision::Rejected { .. }
                    ));
                }
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
        std::fs::write(&p, GOOD).unwrap();
        assert!(matches!(run(&p, GOOD).await, ReloadDecision::Unchanged));
        assert!(matches!(
            examine_with(&p, &running(GOOD), true, FAST, 10).await,
            ReloadDecision::Apply { .. }
        ));
        // Put back as it was after a rejection: applied, which clears the rejection.
        let h = History {
            loaded: GOOD.into(),
            rejected: Some(None),
        };
        assert!(matches!(
            examine_with(&p, &h, false, FAST, 10).await,
            ReloadDecision::Apply { .. }
        ));
        // The factory password outside the demo: refused, as at start (issue 18 point 7).
        std::fs::write(&p, "[sync]\nconcurrency = 3\n").unwrap();
        match run(&p, GOOD).await {
            ReloadDecision::Rejected { error, .. } => {
                assert!(error.to_string().contains("factory default"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(
            &p,
            "[server]\npassword = \"P-2\"\n[sync]\nconcurrency = 3\n",
        )
        .unwrap();
        match run(&p, GOOD).await {
            ReloadDecision::Apply { config, text } => {
                assert_eq!(config.sync.concurrency, 3);
                assert_eq!(config.source.as_deref(), Some(p.as_path()));
                assert!(text.ends_with('\n'));
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&p, "[sync]\nconcurrency = 0\n").unwrap();
        assert!(matches!(
            run(&p, GOOD).await,
            ReloadDecision::Rejected { .. }
        ));
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(
            run(&p, GOOD).await,
            ReloadDecision::Rejected {
                error: ConfigError::Missing { .. },
                text: None
            }
        ));
    }

    #[tokio::test]
    async fn a_file_still_being_written_is_read_until_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "").unwrap();
        let writer = {
            let p = p.clone();
            tokio::spawn(async move {
                // The rest arrives in pieces, each within the settle time of the last.
                let full =
                    "[sync]\nconcurrency = 2\ndebounce = \"1s\"\n[server]\npassword = \"P-1\"\n";
                for end in [7, 20, full.len()] {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    std::fs::write(&p, &full[..end]).unwrap();
                }
            })
        };
        let out = examine_with(&p, &running(GOOD), false, Duration::from_millis(60), 20).await;
        writer.await.unwrap();
        match out {
            ReloadDecision::Apply { config, .. } => assert_eq!(config.sync.concurrency, 2),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_that_never_settles_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, GOOD).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    // Renamed into place, so no read ever sees a truncated file.
                    let tmp = p.with_extension("tmp");
                    let _ = std::fs::write(&tmp, format!("# {n}\n{GOOD}"));
                    let _ = std::fs::rename(&tmp, &p);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        // Reads 200 ms apart: on a loaded machine the writer thread may not run for 20 ms.
        let out = read_settled(&p, Duration::from_millis(200), 5).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.join().unwrap();
        let e = out.unwrap_err().to_string();
        assert!(e.contains("kept changing"), "{e}");
    }
}
