//! Reading FreePBX: one consistent [`snapshot::Snapshot`] of the database and files, and the
//! [`mapping`] of that snapshot to the desired iSymphony state.
//!
//! [`read`] opens one connection, takes one read-only REPEATABLE READ transaction for every
//! table ([`db`]), then parses voicemail.conf ([`files`]). With `[freepbx] snapshot` set it
//! reads an exported snapshot file instead. [`connect_opts`] resolves the database from
//! `[freepbx] database_url` or the FreePBX config files; the daemon reuses it for its change
//! poll and leader lock. The database is never written to.
//!
//! Also: [`tables`] (which tables must exist, and what their absence means), [`phpconf`]
//! (freepbx.conf read as PHP reads it), [`voicemail`] (voicemail.conf and its includes),
//! `source_rules` (rules that depend on how much of FreePBX could be read).

pub mod db;
pub mod files;
pub mod mapping;
pub mod phpconf;
pub mod snapshot;
mod source_rules;
pub mod tables;
pub mod voicemail;

use crate::config::Config;
use crate::secret::Secret;
use mysql_async::{IsolationLevel, Opts, OptsBuilder, TxOpts};
use snapshot::{Snapshot, SNAPSHOT_FORMAT};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Unix sockets tried for `localhost` when freepbx.conf names no socket (Debian, RHEL).
pub const DEFAULT_SOCKETS: &[&str] = &["/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock"];
/// How long a connection attempt may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why FreePBX could not be read. Every message names what was tried, never a password.
#[derive(Debug, thiserror::Error)]
pub enum FreepbxError {
    #[error("FreePBX configuration not found: tried {} (set [freepbx] config_file or database_url)", list_paths(.tried))]
    ConfigMissing { tried: Vec<PathBuf> },
    #[error("cannot read FreePBX configuration {path}: {detail}")]
    ConfigUnreadable { path: PathBuf, detail: String },
    #[error("cannot parse FreePBX configuration {path}: {detail}")]
    ConfigUnparsable { path: PathBuf, detail: String },
    #[error("invalid [freepbx] database_url: {detail}")]
    BadUrl { detail: String },
    #[error("cannot reach the FreePBX database server {target}: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("the FreePBX database server refused the login {target} (wrong user or password?): {detail}")]
    AccessDenied { target: String, detail: String },
    #[error("the FreePBX database does not exist: {target}: {detail}")]
    NoDatabase { target: String, detail: String },
    #[error("reading the FreePBX database {target} failed: {detail}")]
    Query { target: String, detail: String },
    #[error("cannot read snapshot file {path}: {source}")]
    Snapshot {
        path: PathBuf,
        source: snapshot::SnapshotError,
    },
    #[error("cannot write snapshot file {path}: {detail}")]
    Write { path: PathBuf, detail: String },
}

fn list_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The resolved database coordinates (what error messages and the snapshot's `source` show).
#[derive(Debug, Clone)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub socket: Option<String>,
    pub user: String,
    pub password: Secret,
    pub database: String,
    opts: Opts,
}

impl DbTarget {
    /// `user@host:port/db`, or `user@localhost(socket /path)/db`; never the password.
    pub fn describe(&self) -> String {
        match &self.socket {
            Some(sock) => format!("{}@localhost(socket {sock})/{}", self.user, self.database),
            None => format!(
                "{}@{}:{}/{}",
                self.user, self.host, self.port, self.database
            ),
        }
    }
}

/// Resolve where the FreePBX database is: `[freepbx] database_url`, else `config_file`
/// (freepbx.conf, parsed as text), else `amportal_conf`.
pub fn resolve_target(cfg: &Config) -> Result<DbTarget, FreepbxError> {
    let fp = &cfg.freepbx;
    if let Some(url) = &fp.database_url {
        let opts = Opts::from_url(url.expose()).map_err(|e| FreepbxError::BadUrl {
            // UrlError messages never contain the password, only parameter names/values.
            detail: e.to_string(),
        })?;
        let mut b = OptsBuilder::from_opts(opts.clone());
        if !url.expose().contains("prefer_socket") {
            // Keep the transport the operator named (mysql_async would switch to the socket).
            b = b.prefer_socket(false);
        }
        return Ok(DbTarget {
            host: opts.ip_or_hostname().to_string(),
            port: opts.tcp_port(),
            socket: opts.socket().map(str::to_string),
            user: opts.user().unwrap_or("").to_string(),
            password: Secret::new(opts.pass().unwrap_or("")),
            database: opts.db_name().unwrap_or("").to_string(),
            opts: finish(b),
        });
    }
    let (conf, path) = read_db_conf(&fp.config_file, &fp.amportal_conf)?;
    let user = conf.user.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
        FreepbxError::ConfigUnparsable {
            path: path.clone(),
            detail: "no AMPDBUSER is set".into(),
        }
    })?;
    let password = conf.password.clone().unwrap_or_default();
    let database = conf
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "asterisk".into());
    if let Some(engine) = conf.engine.as_deref() {
        let e = engine.to_ascii_lowercase();
        if !e.is_empty() && e != "mysql" && e != "mariadb" {
            return Err(FreepbxError::ConfigUnparsable {
                path,
                detail: format!("AMPDBENGINE {engine:?} is not supported (only mysql/mariadb)"),
            });
        }
    }
    let host = conf
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    // Framework rule: AMPDBPORT only counts when it is an integer above 1024.
    let port = conf
        .port
        .as_deref()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 1024)
        .unwrap_or(3306);
    let socket = conf.socket.clone().or_else(|| {
        (host == "localhost")
            .then(|| {
                DEFAULT_SOCKETS
                    .iter()
                    .find(|s| Path::new(s).exists())
                    .map(|s| s.to_string())
            })
            .flatten()
    });
    let mut b = OptsBuilder::default()
        .user(Some(user.clone()))
        .pass(Some(password.expose().to_string()))
        .db_name(Some(database.clone()))
        .prefer_socket(false);
    b = match &socket {
        Some(sock) => b.socket(Some(sock.clone())),
        // Without a socket `localhost` means TCP to the loopback address.
        None => b
            .ip_or_hostname(if host == "localhost" {
                "127.0.0.1".to_string()
            } else {
                host.clone()
            })
            .tcp_port(port),
    };
    Ok(DbTarget {
        host,
        port,
        socket,
        user,
        password,
        database,
        opts: finish(b),
    })
}

fn finish(b: OptsBuilder) -> Opts {
    // utf8mb4 so the server converts latin1 (FreePBX 2.8) and utf8mb3 columns for us.
    Opts::from(b.init(vec!["SET NAMES utf8mb4"]))
}

fn read_db_conf(
    config_file: &Path,
    amportal: &Path,
) -> Result<(files::DbConf, PathBuf), FreepbxError> {
    let read = |p: &Path| -> Result<Option<String>, FreepbxError> {
        match std::fs::read(p) {
            Ok(b) => Ok(Some(files::decode_text(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FreepbxError::ConfigUnreadable {
                path: p.to_path_buf(),
                detail: e.to_string(),
            }),
        }
    };
    if let Some(text) = read(config_file)? {
        let php = files::parse_freepbx_conf(&text).map_err(|e| FreepbxError::ConfigUnparsable {
            path: config_file.to_path_buf(),
            detail: e.to_string(),
        })?;
        // A file with only KEY=value lines is an amportal.conf given as config_file.
        let conf = php.or_else(|| files::parse_amportal_conf(&text));
        return conf.map(|c| (c, config_file.to_path_buf())).ok_or_else(|| {
            FreepbxError::ConfigUnparsable {
                path: config_file.to_path_buf(),
                detail: "no $amp_conf['AMPDBUSER'] = '…'; assignment found".into(),
            }
        });
    }
    if let Some(text) = read(amportal)? {
        return files::parse_amportal_conf(&text)
            .map(|c| (c, amportal.to_path_buf()))
            .ok_or_else(|| FreepbxError::ConfigUnparsable {
                path: amportal.to_path_buf(),
                detail: "no AMPDBUSER=… line found".into(),
            });
    }
    Err(FreepbxError::ConfigMissing {
        tried: vec![config_file.to_path_buf(), amportal.to_path_buf()],
    })
}

/// Connection options for the FreePBX database (utf8mb4 connection charset).
pub fn connect_opts(cfg: &Config) -> Result<Opts, FreepbxError> {
    resolve_target(cfg).map(|t| t.opts)
}

/// What [`read`] would read, for messages: `user@host:port/db` (no password), the snapshot
/// file, or the configuration file that could not be resolved.
pub fn describe_target(cfg: &Config) -> String {
    if let Some(p) = &cfg.freepbx.snapshot {
        return format!("snapshot {}", p.display());
    }
    match resolve_target(cfg) {
        Ok(t) => t.describe(),
        Err(_) => cfg.freepbx.config_file.display().to_string(),
    }
}

/// Classify a driver error met while connecting or reading (the daemon's change poll uses
/// it too, so that the status shows the same messages as a pass).
pub fn db_error(target: &DbTarget, e: mysql_async::Error) -> FreepbxError {
    let t = target.describe();
    match e {
        mysql_async::Error::Server(se) => match se.code {
            1045 | 1044 | 1698 => FreepbxError::AccessDenied {
                target: t,
                detail: se.message,
            },
            1049 => FreepbxError::NoDatabase {
                target: t,
                detail: se.message,
            },
            _ => FreepbxError::Query {
                target: t,
                detail: se.to_string(),
            },
        },
        mysql_async::Error::Io(io) => FreepbxError::Unreachable {
            target: t,
            detail: io.to_string(),
        },
        mysql_async::Error::Driver(d) => FreepbxError::Unreachable {
            target: t,
            detail: d.to_string(),
        },
        other => FreepbxError::Query {
            target: t,
            detail: other.to_string(),
        },
    }
}

/// Open a connection to the resolved target (bounded by [`CONNECT_TIMEOUT`]).
pub async fn connect(target: &DbTarget) -> Result<mysql_async::Conn, FreepbxError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(target.opts.clone())).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(db_error(target, e)),
        Err(_) => Err(FreepbxError::Unreachable {
            target: target.describe(),
            detail: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// Read FreePBX into one consistent Snapshot: the database in one read-only REPEATABLE READ
/// transaction, then voicemail.conf. With `[freepbx] snapshot` set, read that file instead.
pub async fn read(cfg: &Config) -> Result<Snapshot, FreepbxError> {
    read_keeping(cfg, false).await
}

/// The database connection a daemon pass left open, for the options it was opened with.
static KEPT: crate::kept::Slot<Opts, mysql_async::Conn> = crate::kept::Slot::new();

/// Drop the kept connection (the server sees it close).
pub fn release_kept() {
    KEPT.clear();
}

/// The kept connection when it still answers, else a new one.
async fn connect_or_kept(target: &DbTarget) -> Result<mysql_async::Conn, FreepbxError> {
    use mysql_async::prelude::Queryable;
    if let Some(mut conn) = KEPT.take(&target.opts) {
        // The server may have closed it meanwhile (wait_timeout, restart): one round trip
        // tells, and a failed ping just costs the connect it would have cost anyway.
        let alive = tokio::time::timeout(CONNECT_TIMEOUT, conn.ping()).await;
        if matches!(alive, Ok(Ok(()))) {
            return Ok(conn);
        }
    }
    connect(target).await
}

/// [`read`]; with `keep`, the database connection stays open for the next call (the daemon's
/// passes, see [`crate::kept`]) and the last one kept is used when it still answers.
pub async fn read_keeping(cfg: &Config, keep: bool) -> Result<Snapshot, FreepbxError> {
    if let Some(path) = &cfg.freepbx.snapshot {
        let mut snap = Snapshot::load(path).map_err(|source| FreepbxError::Snapshot {
            path: path.clone(),
            source,
        })?;
        if snap.source.is_empty() {
            snap.source = format!("snapshot {}", path.display());
        }
        return Ok(snap);
    }
    let target = resolve_target(cfg)?;
    let mut conn = if keep {
        connect_or_kept(&target).await?
    } else {
        connect(&target).await?
    };
    let mut snap = Snapshot {
        format: SNAPSHOT_FORMAT,
        source: target.describe(),
        hostname: files::hostname(),
        ..Snapshot::default()
    };
    let result = read_db(&mut conn, &mut snap).await;
    if keep && result.is_ok() {
        KEPT.put(target.opts.clone(), conn);
    } else {
        // Best effort: the data is already read; a failed goodbye changes nothing.
        let _ = conn.disconnect().await;
    }
    result.map_err(|e| db_error(&target, e))?;
    cdr_login_from_conf(cfg, &mut snap);

    let vm_path = voicemail_path(cfg, &snap);
    let vm = voicemail::read_stable(&vm_path, cfg.sync.debounce).await;
    for w in &vm.warnings {
        tracing::warn!("{w}");
    }
    if let Some(why) = &vm.unknown {
        tracing::warn!("{why}; voicemail e-mail addresses are left as they are this pass");
    }
    if let Some(why) = &vm.missing_include {
        tracing::warn!("{why}");
    }
    snap.voicemail = vm.mailboxes;
    snap.voicemail_missing_include = vm.missing_include;
    snap.voicemail_unknown = vm.unknown;
    snap.voicemail_error = vm.error;
    snap.warnings.extend(vm.warnings);
    Ok(snap)
}

/// The CDR login cxpanel sends: what freepbx_settings' CDRDBUSER/CDRDBPASS
/// left unset is AMPDBUSER/AMPDBPASS of freepbx.conf, read from the file even when
/// `[freepbx] database_url` gives the agent a login of its own (never that login). An
/// unreadable file leaves them unknown.
fn cdr_login_from_conf(cfg: &Config, snap: &mut Snapshot) {
    if snap.cdr_username.is_some() && snap.cdr_password.is_some() {
        return;
    }
    let fp = &cfg.freepbx;
    match read_db_conf(&fp.config_file, &fp.amportal_conf) {
        Ok((conf, _)) => {
            if snap.cdr_username.is_none() {
                snap.cdr_username = conf.user.filter(|u| !u.is_empty());
            }
            if snap.cdr_password.is_none() {
                snap.cdr_password = conf.password;
            }
        }
        Err(e) => tracing::debug!(error = %e, "no CDR login from the FreePBX configuration file"),
    }
}

async fn read_db(
    conn: &mut mysql_async::Conn,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    let mut opts = TxOpts::new();
    opts.with_isolation_level(IsolationLevel::RepeatableRead)
        .with_readonly(true)
        .with_consistent_snapshot(true);
    let mut tx = conn.start_transaction(opts).await?;
    let warnings = {
        let mut reader = db::TableReader::new(&mut tx).await?;
        db::read::read_tables(&mut reader, snap).await?;
        snap.unreadable_tables = std::mem::take(&mut reader.unreadable);
        std::mem::take(&mut reader.warnings)
    };
    snap.warnings.extend(warnings);
    // Read-only: nothing to commit; ending the transaction releases the snapshot.
    tx.rollback().await?;
    Ok(())
}

/// The cxpanel module's core-server name (kvstore, else the legacy table), read as a pass
/// reads it; `None` when the module left no settings.
pub async fn read_cx_core_server(opts: Opts) -> Result<Option<String>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    let mut tx_opts = TxOpts::new();
    tx_opts.with_readonly(true);
    let name = async {
        let mut tx = conn.start_transaction(tx_opts).await?;
        let settings = {
            let mut reader = db::TableReader::new(&mut tx).await?;
            db::read_cx_settings(&mut reader).await?
        };
        tx.rollback().await?;
        Ok::<_, mysql_async::Error>(settings.and_then(|s| s.server).map(|s| s.name))
    }
    .await;
    let _ = conn.disconnect().await;
    name
}

/// `[freepbx] voicemail_conf`; when left at its default, follow FreePBX's ASTETCDIR.
fn voicemail_path(cfg: &Config, snap: &Snapshot) -> PathBuf {
    let configured = &cfg.freepbx.voicemail_conf;
    let default = crate::config::FreepbxConfig::default().voicemail_conf;
    match snap.settings.get("ASTETCDIR") {
        Some(dir) if *configured == default && !dir.trim().is_empty() => {
            Path::new(dir.trim()).join("voicemail.conf")
        }
        _ => configured.clone(),
    }
}

/// `--export-snapshot`: read FreePBX and write the Snapshot as JSON (secrets as `***` unless
/// `include_secrets`; the file is mode 0600 either way). Returns the snapshot.
pub async fn export_snapshot(
    cfg: &Config,
    out: &Path,
    include_secrets: bool,
) -> Result<Snapshot, FreepbxError> {
    let snap = read(cfg).await?;
    let json = snap
        .to_json(include_secrets)
        .map_err(|e| FreepbxError::Write {
            path: out.to_path_buf(),
            detail: e.to_string(),
        })?;
    write_file(out, json.as_bytes()).map_err(|e| FreepbxError::Write {
        path: out.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(snap)
}

/// Written 0600 with or without secrets (issue 11 point 9): names, numbers and e-mail
/// addresses are private too, and an existing file is made 0600 as well.
fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = crate::private_files::open(
        path,
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
    )?;
    f.write_all(data)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with_conf(text: &str) -> (Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("freepbx.conf");
        std::fs::write(&path, text).unwrap();
        let mut cfg = Config::default();
        cfg.freepbx.config_file = path;
        cfg.freepbx.amportal_conf = dir.path().join("amportal.conf");
        (cfg, dir)
    }

    #[test]
    fn freepbx_conf_rules() {
        // AMPDBSOCK wins over host and port.
        let (cfg, _d) = cfg_with_conf(
            "<?php\n$amp_conf['AMPDBUSER']='u';\n$amp_conf['AMPDBPASS']='p4ss';\n\
             $amp_conf['AMPDBHOST']='db.example';\n$amp_conf['AMPDBSOCK']='/tmp/my.sock';\n",
        );
        let t = resolve_target(&cfg).unwrap();
        assert_eq!(t.socket.as_deref(), Some("/tmp/my.sock"));
        assert_eq!(t.database, "asterisk", "default database");
        assert!(!t.describe().contains("p4ss"));
        let opts = connect_opts(&cfg).unwrap();
        assert_eq!(opts.socket(), Some("/tmp/my.sock"));
        assert_eq!(opts.pass(), Some("p4ss"));

        // A port of 1024 or less is ignored (framework rule); a remote host is used as is.
        let (cfg, _d) = cfg_with_conf(
            "<?php\n$amp_conf['AMPDBUSER']='u';\n$amp_conf['AMPDBHOST']='db.example';\n\
             $amp_conf['AMPDBPORT']='1000';\n$amp_conf['AMPDBNAME']='pbx';\n",
        );
        let t = resolve_target(&cfg).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.socket.as_deref()),
            ("db.example", 3306, None)
        );
        assert_eq!(t.describe(), "u@db.example:3306/pbx");
        assert_eq!(describe_target(&cfg), "u@db.example:3306/pbx");

        // localhost: a local socket when one exists, else TCP to 127.0.0.1.
        let (cfg, _d) = cfg_with_conf("<?php\n$amp_conf['AMPDBUSER']='u';\n");
        let t = resolve_target(&cfg).unwrap();
        let sock = DEFAULT_SOCKETS.iter().find(|s| Path::new(s).exists());
        assert_eq!(t.socket.as_deref(), sock.copied());
        if sock.is_none() {
            assert_eq!(t.opts.ip_or_hostname(), "127.0.0.1");
        }

        // Unsupported engine.
        let (cfg, _d) = cfg_with_conf(
            "<?php\n$amp_conf['AMPDBUSER']='u';\n$amp_conf['AMPDBENGINE']='sqlite3';\n",
        );
        assert!(matches!(
            resolve_target(&cfg),
            Err(FreepbxError::ConfigUnparsable { .. })
        ));
    }

    #[test]
    fn database_url_wins_and_is_not_echoed() {
        let mut cfg = Config::default();
        cfg.freepbx.database_url = Some(Secret::new("mysql://fp:sekr3t@10.1.2.3:3307/asterisk"));
        let t = resolve_target(&cfg).unwrap();
        assert_eq!(t.describe(), "fp@10.1.2.3:3307/asterisk");
        assert_eq!(t.password.expose(), "sekr3t");
        cfg.freepbx.database_url = Some(Secret::new("postgres://fp:sekr3t@x/y"));
        let e = resolve_target(&cfg).unwrap_err().to_string();
        assert!(!e.contains("sekr3t"), "{e}");
    }
}
