//! Change detection from MariaDB's binary log, where it is on and the agent's login may read it
//! (REPLICATION SLAVE for the stream, BINLOG MONITOR / REPLICATION CLIENT for its position).
//!
//! The follower registers as a replica under a server id of its own (random per process, so
//! that a leader and a standby on one database do not replace each other's stream), starts at
//! the log's current end (`SHOW MASTER STATUS`) and reads events:
//! - ROW and MIXED formats: a table-map event names the database and table of the row events
//!   after it; a transaction that wrote a watched table of our database is a trigger at its
//!   commit (the XID event, or the `COMMIT` query of a non-transactional engine).
//! - STATEMENT format, and DDL or TRUNCATE in any format: a query event that names a watched
//!   table (as a word, in any case, in any schema) is a trigger.
//!
//! Events only say *when*: the pass stays level-triggered and reads everything.
//!
//! The poll ([`super::changes`]) keeps running beside it: every `poll_interval` while there is no
//! stream, every [`SAFETY_POLL`] while there is one, so that a missed event cannot go unnoticed
//! for long (MariaDB sends a transaction once it is in the log, a moment before the engine's
//! commit makes it visible; a pass that read in that moment is corrected by the safety poll).
//! When the stream breaks (server restart, connection killed, purged log, no event or heartbeat
//! for [`SILENCE`]), the follower logs one warning, counts the break, hands back to the poll
//! (which then checksums every watched table at once), asks for a pass, and reconnects with
//! back-off.

use super::changes::WATCHED_TABLES;
use crate::agent::run::scheduler::{TriggerSender, TriggerSource};
use crate::agent::state::AgentState;
use crate::config::Config;
use futures::StreamExt;
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the poll still runs while the stream is healthy.
pub(crate) const SAFETY_POLL: Duration = Duration::from_secs(5);
/// The heartbeat the server is asked to send on an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A stream silent for this long (no event, no heartbeat) is taken as broken.
pub(crate) const SILENCE: Duration = Duration::from_secs(4);
/// Upper bound on connecting, reading the position and the stream's first event.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where change detection comes from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The fingerprint poll, every `poll_interval`.
    Poll,
    /// The binary log stream (and the poll every [`SAFETY_POLL`]).
    Binlog,
}

/// Why the binary log cannot be followed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("the binary log is off (log_bin = OFF)")]
    Off,
    #[error("the login may not {what} ({message}); GRANT {grant} ON *.* to it")]
    NoGrant {
        what: &'static str,
        grant: &'static str,
        message: String,
    },
    #[error("binary log: {0}")]
    Database(#[from] mysql_async::Error),
    #[error("the binary log stream did not start within {0:?}")]
    Timeout(Duration),
}

/// An access-denied error is a missing grant; anything else is the database's error.
fn denied(e: mysql_async::Error, what: &'static str, grant: &'static str) -> Unavailable {
    match &e {
        // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR.
        mysql_async::Error::Server(s) if matches!(s.code, 1227 | 1044 | 1045) => {
            Unavailable::NoGrant {
                what,
                grant,
                message: s.message.clone(),
            }
        }
        _ => Unavailable::Database(e),
    }
}

/// A stream that has delivered its first event, and the log's format.
pub(crate) struct Opened {
    pub(crate) stream: BinlogStream,
    /// `@@binlog_format`: ROW, MIXED or STATEMENT.
    pub(crate) format: String,
}

/// Open a stream at the log's current end. `probe` asks for a non-blocking one, which the
/// server ends at the end of the log (for `--check-config`).
pub(crate) async fn open(opts: &Opts, server_id: u32, probe: bool) -> Result<Opened, Unavailable> {
    tokio::time::timeout(OPEN_TIMEOUT, open_inner(opts, server_id, probe))
        .await
        .map_err(|_| Unavailable::Timeout(OPEN_TIMEOUT))?
}

async fn open_inner(opts: &Opts, server_id: u32, probe: bool) -> Result<Opened, Unavailable> {
    let mut conn = Conn::new(opts.clone()).await?;
    let vars: Option<(Option<i64>, Option<String>)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format")
        .await?;
    let (on, format) = vars.unwrap_or((None, None));
    if on != Some(1) {
        let _ = conn.disconnect().await;
        return Err(Unavailable::Off);
    }
    let (file, pos) = position(&mut conn).await?;
    // MariaDB reads the heartbeat period (nanoseconds) from this variable at the dump request.
    conn.query_drop(format!(
        "SET @master_heartbeat_period = {}",
        HEARTBEAT.as_nanos()
    ))
    .await?;
    let mut req = BinlogStreamRequest::new(server_id)
        .with_filename(file.as_bytes())
        .with_pos(pos);
    if probe {
        req = req.with_non_blocking();
    }
    let mut stream = conn
        .get_binlog_stream(req)
        .await
        .map_err(|e| denied(e, "register as a replica", "REPLICATION SLAVE"))?;
    // The server answers the dump request with the log's rotate and format events, or with
    // an error (no REPLICATION SLAVE, a purged log): wait for the first.
    match stream.next().await {
        Some(Ok(_)) => Ok(Opened {
            stream,
            format: format.unwrap_or_default(),
        }),
        Some(Err(e)) => Err(denied(e, "read the binary log", "REPLICATION SLAVE")),
        None => Err(Unavailable::Database(mysql_async::Error::Other(
            "the server ended the binary log stream at once".into(),
        ))),
    }
}

/// The log's current file and position. MariaDB and MySQL up to 8.0 say `SHOW MASTER STATUS`,
/// MySQL 8.4 only `SHOW BINARY LOG STATUS`.
async fn position(conn: &mut Conn) -> Result<(String, u64), Unavailable> {
    let mut last = None;
    for sql in ["SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"] {
        match conn.query_first::<mysql_async::Row, _>(sql).await {
            Ok(Some(row)) => {
                let file = row.get_opt::<String, _>(0).and_then(Result::ok);
                let pos = row.get_opt::<u64, _>(1).and_then(Result::ok);
                return match (file, pos) {
                    (Some(f), Some(p)) => Ok((f, p)),
                    _ => Err(Unavailable::Database(mysql_async::Error::Other(
                        format!("{sql} answered no file and position").into(),
                    ))),
                };
            }
            // No row: the server logs nothing.
            Ok(None) => return Err(Unavailable::Off),
            // A syntax error (1064): the other spelling.
            Err(mysql_async::Error::Server(s)) if s.code == 1064 => {
                last = Some(mysql_async::Error::Server(s));
            }
            Err(e) => {
                return Err(denied(
                    e,
                    "read the binary log position",
                    "BINLOG MONITOR (or REPLICATION CLIENT)",
                ))
            }
        }
    }
    Err(match last {
        Some(e) => Unavailable::Database(e),
        None => Unavailable::Off,
    })
}

/// Whether the binary log can be followed with these options, and in which format: one
/// non-blocking stream opened and closed (for `--check-config`).
pub(crate) async fn probe(opts: &Opts) -> Result<String, Unavailable> {
    let opened = open(opts, replica_id(), true).await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), opened.stream.close()).await;
    Ok(opened.format)
}

/// A server id for this process's stream: random, never 0, in the upper half of the range
/// (ids administrators give their servers are small).
pub(crate) fn replica_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() as u32) | 0x8000_0000
}

/// Decides which events are changes to what the sync reads.
#[derive(Debug)]
pub(crate) struct Classifier {
    db: String,
    tables: Vec<String>,
    /// A watched table was written in the current transaction.
    pending: bool,
}

impl Classifier {
    /// Watch `tables` of database `db` (compared in any case).
    pub(crate) fn new(db: &str, tables: &[&str]) -> Classifier {
        Classifier {
            db: db.to_ascii_lowercase(),
            tables: tables.iter().map(|t| t.to_ascii_lowercase()).collect(),
            pending: false,
        }
    }

    /// Whether `event` is a trigger.
    pub(crate) fn event(&mut self, event: &Event) -> bool {
        match event.read_data() {
            Ok(Some(EventData::TableMapEvent(t))) => {
                self.table_map(&t.database_name(), &t.table_name());
                false
            }
            Ok(Some(EventData::QueryEvent(q))) => self.query(&q.query()),
            Ok(Some(EventData::XidEvent(_))) => self.commit(),
            Ok(_) => false,
            // An event this reader cannot parse may be a change: a pass costs less than a miss.
            Err(e) => {
                tracing::debug!(error = %e, "unreadable binary log event; taken as a change");
                true
            }
        }
    }

    /// A row event on `db`.`table` follows.
    pub(crate) fn table_map(&mut self, db: &str, table: &str) {
        if db.eq_ignore_ascii_case(&self.db)
            && self.tables.iter().any(|t| t.eq_ignore_ascii_case(table))
        {
            self.pending = true;
        }
    }

    /// The end of a transaction: a trigger if it wrote a watched table.
    pub(crate) fn commit(&mut self) -> bool {
        std::mem::take(&mut self.pending)
    }

    /// A statement: the end of a transaction, or a statement naming a watched table. The
    /// latter is a trigger now and again at its commit, should it be inside a transaction.
    pub(crate) fn query(&mut self, sql: &str) -> bool {
        let word = sql.trim().trim_end_matches(';').trim();
        if word.eq_ignore_ascii_case("BEGIN") {
            return false;
        }
        if word.eq_ignore_ascii_case("COMMIT") || word.eq_ignore_ascii_case("ROLLBACK") {
            // A rollback keeps what non-transactional tables wrote.
            return self.commit();
        }
        let hit = mentions_any(sql, &self.tables);
        self.pending |= hit;
        hit
    }
}

/// Whether `sql` names one of `tables` (lowercase) as a whole word.
fn mentions_any(sql: &str, tables: &[String]) -> bool {
    let lower = sql.to_ascii_lowercase();
    let ident =
        |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
    tables.iter().any(|t| {
        lower.match_indices(t.as_str()).any(|(i, _)| {
            let before = i.checked_sub(1).map(|j| lower.as_bytes()[j]);
            let after = lower.as_bytes().get(i + t.len()).copied();
            !ident(before) && !ident(after)
        })
    })
}

/// How a followed stream ended.
enum End {
    Stopped,
    Broken(String),
}

/// Read events until the stream breaks or `stop`; each change is a trigger.
async fn read_events(
    mut stream: BinlogStream,
    mut cls: Classifier,
    triggers: &TriggerSender,
    stop: &CancellationToken,
) -> End {
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.close()).await;
                return End::Stopped;
            }
            n = tokio::time::timeout(SILENCE, stream.next()) => n,
        };
        match next {
            Err(_) => return End::Broken(format!("no event or heartbeat for {SILENCE:?}")),
            Ok(None) => return End::Broken("the server ended the stream".to_string()),
            Ok(Some(Err(e))) => return End::Broken(e.to_string()),
            Ok(Some(Ok(ev))) => {
                if cls.event(&ev) {
                    tracing::debug!("FreePBX database changed (binary log)");
                    triggers.trigger(TriggerSource::BinaryLog, false);
                }
            }
        }
    }
}

/// Follow the binary log while it can be followed, telling the poll through `source`; retry
/// with back-off while it cannot. One log line per change of state: info when the stream
/// starts or the log is off, a warning when it breaks or the login may not read it.
pub(crate) async fn follow(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    triggers: TriggerSender,
    source: watch::Sender<Source>,
    stop: CancellationToken,
) {
    let server_id = replica_id();
    let mut retry = RETRY_MIN;
    // Whether the current spell without a stream has been logged.
    let mut told = false;
    while !stop.is_cancelled() {
        // Unreadable settings are the poll's to report.
        if let Ok(opts) = crate::freepbx::connect_opts(&cfg) {
            let db = opts.db_name().unwrap_or_default().to_string();
            match open(&opts, server_id, false).await {
                Ok(opened) => {
                    retry = RETRY_MIN;
                    tracing::info!(format = %opened.format, "following the binary log for changes; polling every {SAFETY_POLL:?} as a safety net");
                    source.send_replace(Source::Binlog);
                    state.set_change_source(true);
                    let cls = Classifier::new(&db, WATCHED_TABLES);
                    let end = read_events(opened.stream, cls, &triggers, &stop).await;
                    source.send_replace(Source::Poll);
                    state.set_change_source(false);
                    let End::Broken(why) = end else { break };
                    state.binlog_broke();
                    tracing::warn!(error = %why, "binary log stream broke; polling every {:?} until it is back", cfg.freepbx.poll_interval);
                    told = true;
                    // Whatever the stream did not deliver is found by a pass now.
                    triggers.trigger(TriggerSource::Database, false);
                }
                Err(e) if !told => {
                    told = true;
                    let every = cfg.freepbx.poll_interval;
                    match e {
                        Unavailable::Off => {
                            tracing::info!("{e}; change detection polls every {every:?}")
                        }
                        _ => {
                            tracing::warn!(error = %e, "binary log not followed; change detection polls every {every:?}")
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "binary log still not followed"),
            }
        }
        if sleep_or_stop(retry, &stop).await {
            break;
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
    source.send_replace(Source::Poll);
    state.set_change_source(false);
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

/// What ended the poll's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Stop,
    Timer,
    /// The source changed: poll now (and on a return to polling, check every table).
    Source(Source),
}

/// The poll's wait: `d`, or less when stopped or when the source changes. A source whose
/// follower has ended never wakes.
pub(crate) async fn wait(
    d: Duration,
    stop: &CancellationToken,
    source: &mut watch::Receiver<Source>,
) -> Wake {
    let changed = async {
        if source.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        *source.borrow()
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => Wake::Timer,
        _ = stop.cancelled() => Wake::Stop,
        s = changed => Wake::Source(s),
    }
}

/// The poll's interval for a source.
pub(crate) fn poll_every(source: Source, interval: Duration) -> Duration {
    match source {
        Source::Poll => interval,
        Source::Binlog => SAFETY_POLL.max(interval),
    }
}

#[cfg(test)]
#[path = "binlog_tests.rs"]
mod tests;
