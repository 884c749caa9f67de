//! The SQL side of [`super::read`]: every query runs inside one read-only REPEATABLE READ
//! transaction, with explicit column lists built from what `information_schema.columns` says
//! exists. A missing table reads as empty; a missing column takes its default (warned about
//! once per process); extra columns are never selected.
//!
//! Every value is fetched through the text protocol as bytes and decoded here: the connection
//! charset is utf8mb4, so the server converts latin1 columns (FreePBX 2.8) for us; BLOB columns
//! (which it does not convert) fall back to Windows-1252 when they are not UTF-8.

use super::files::decode_owned;
use super::snapshot::*;
use crate::secret::Secret;
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// The queries themselves ([`read::read_tables`]); they use this file's reader, never the
/// other way round.
pub(super) mod read;

pub(crate) const KVSTORE_TABLE: &str = "kvstore_FreePBX_modules_Cxpanel";

/// Every table the sync reads (docs/README-freepbx.md lists them), one list: the reader reads
/// no other ([`TableReader::select`] checks it in debug builds, so every test that reads
/// FreePBX proves it), and the daemon's change watch checksums exactly these.
pub const TABLES_READ: &[&str] = &[
    "users",
    "devices",
    "sip",
    "iax",
    "dahdi",
    "queues_config",
    "queues_details",
    "meetme",
    "parkplus",
    "parkinglot",
    "userman_users",
    "userman_users_settings",
    "userman_groups",
    "userman_groups_settings",
    "ampusers",
    "admin",
    "freepbx_settings",
    "modules",
    "cxpanel_users",
    "cxpanel_queues",
    "cxpanel_conference_rooms",
    "cxpanel_phone_number",
    "cxpanel_managed_items",
    "cxpanel_server",
    "cxpanel_voicemail_agent",
    "cxpanel_recording_agent",
    "kvstore_FreePBX_modules_Cxpanel",
];

/// freepbx_settings keys the mapping uses (§1.3).
const SETTINGS_KEYS: &[&str] = &[
    "ASTSPOOLDIR",
    "ASTETCDIR",
    "AMPWEBROOT",
    "DASHBOARD_FREEPBX_BRAND",
    "USEDEVSTATE",
    "USEQUEUESTATE",
    "AMPEXTENSIONS",
    "CDRDBNAME",
    "CDRDBUSER",
    "CDRDBPASS",
];

/// One row as strings, one entry per *expected* column (None: NULL or column missing).
type Cells = Vec<Option<String>>;

/// Reads tables through one transaction, knowing which tables and columns exist.
pub(crate) struct TableReader<'t, 'c> {
    tx: &'t mut mysql_async::Transaction<'c>,
    /// table name (exact) → column names (exact, in table order).
    columns: HashMap<String, Vec<String>>,
    pub warnings: Vec<String>,
    /// Tables whose SELECT failed with a server error: table → message.
    pub unreadable: BTreeMap<String, String>,
}

/// Server errors that end the transaction or the connection: the whole read fails. Any other
/// server error on a table's SELECT (no privilege, a broken view, a crashed table) makes only
/// that table unreadable.
fn fatal_server_error(code: u16) -> bool {
    matches!(
        code,
        1053 | 1205 | 1213 | 1317 | 1927 | 1969 | 2006 | 2013 | 3024
    )
}

fn warned() -> &'static Mutex<HashSet<String>> {
    static W: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    W.get_or_init(|| Mutex::new(HashSet::new()))
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn cell(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(decode_owned(b)),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

impl<'t, 'c> TableReader<'t, 'c> {
    /// Learn the schema with one query (the first of the transaction).
    pub async fn new(
        tx: &'t mut mysql_async::Transaction<'c>,
    ) -> Result<TableReader<'t, 'c>, mysql_async::Error> {
        let rows: Vec<Row> = tx
            .query(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
            )
            .await?;
        let mut columns: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            let mut vals = row.unwrap().into_iter().map(cell);
            if let (Some(Some(t)), Some(Some(c))) = (vals.next(), vals.next()) {
                columns.entry(t).or_default().push(c);
            }
        }
        Ok(TableReader {
            tx,
            columns,
            warnings: Vec::new(),
            unreadable: BTreeMap::new(),
        })
    }

    pub fn tables(&self) -> impl Iterator<Item = &String> {
        self.columns.keys()
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.columns.contains_key(table)
    }

    fn column(&self, table: &str, col: &str) -> Option<&str> {
        self.columns
            .get(table)?
            .iter()
            .find(|c| c.eq_ignore_ascii_case(col))
            .map(String::as_str)
    }

    fn warn_missing(&mut self, table: &str, col: &str) {
        let msg = format!("FreePBX table {table} has no column {col}; using its default");
        let first = warned()
            .lock()
            .map(|mut w| w.insert(msg.clone()))
            .unwrap_or(true);
        if first {
            tracing::warn!("{msg}");
        }
        self.warnings.push(msg);
    }

    /// `SELECT <present expected columns> FROM table [WHERE filter]`; None when the table
    /// does not exist. `filter` is applied only when `filter_col` exists.
    pub async fn select(
        &mut self,
        table: &str,
        expected: &[&str],
        filter: Option<(&str, &str)>,
    ) -> Result<Option<Vec<Cells>>, mysql_async::Error> {
        debug_assert!(
            TABLES_READ.contains(&table),
            "FreePBX table {table} is read but missing from TABLES_READ (the change watch would miss it)"
        );
        if !self.has_table(table) {
            return Ok(None);
        }
        // Position of each expected column in the result, or None when missing.
        let mut select_list = Vec::new();
        let mut positions = Vec::new();
        for col in expected {
            match self.column(table, col).map(str::to_string) {
                Some(actual) => {
                    positions.push(Some(select_list.len()));
                    select_list.push(quote_ident(&actual));
                }
                None => {
                    positions.push(None);
                    self.warn_missing(table, col);
                }
            }
        }
        if select_list.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut sql = format!(
            "SELECT {} FROM {}",
            select_list.join(", "),
            quote_ident(table)
        );
        if let Some((col, cond)) = filter {
            if let Some(actual) = self.column(table, col) {
                sql.push_str(&format!(" WHERE {} {}", quote_ident(actual), cond));
            }
        }
        let started = std::time::Instant::now();
        // Convert while streaming: no intermediate Vec<Row>.
        let result = match self.tx.query_iter(sql).await {
            Ok(rows) => {
                rows.map_and_drop(|row| {
                    let mut vals: Vec<Option<String>> =
                        row.unwrap().into_iter().map(cell).collect();
                    positions
                        .iter()
                        .map(|p| p.and_then(|i| vals.get_mut(i).and_then(Option::take)))
                        .collect::<Cells>()
                })
                .await
            }
            Err(e) => Err(e),
        };
        let out = match result {
            Ok(out) => out,
            Err(mysql_async::Error::Server(se)) if !fatal_server_error(se.code) => {
                tracing::warn!(table, error = %se, "FreePBX table could not be read");
                self.unreadable
                    .insert(table.to_string(), format!("{} ({})", se.message, se.code));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        tracing::debug!(
            table,
            rows = out.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "read FreePBX table"
        );
        Ok(Some(out))
    }

    /// Like [`select`](Self::select) but every column of the table (for the single-row
    /// legacy cxpanel settings tables, whose columns are the keys).
    pub async fn select_all_as_maps(
        &mut self,
        table: &str,
    ) -> Result<Option<Vec<BTreeMap<String, String>>>, mysql_async::Error> {
        let Some(cols) = self.columns.get(table).cloned() else {
            return Ok(None);
        };
        let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let rows = self.select(table, &refs, None).await?.unwrap_or_default();
        Ok(Some(
            rows.into_iter()
                .map(|r| {
                    cols.iter()
                        .zip(r)
                        .filter_map(|(c, v)| v.map(|v| (c.to_ascii_lowercase(), v)))
                        .collect()
                })
                .collect(),
        ))
    }
}

fn s(c: &mut Cells, i: usize) -> String {
    c.get_mut(i).and_then(Option::take).unwrap_or_default()
}

fn flag(c: &mut Cells, i: usize) -> bool {
    parse_flag(&s(c, i))
}

fn int(c: &mut Cells, i: usize) -> i64 {
    s(c, i).trim().parse().unwrap_or(0)
}

/// `'1'`, `1`, `true`, `yes`, `on` → true (PHP/FreePBX flags are stored every which way).
pub(crate) fn parse_flag(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn in_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("IN ({})", quoted.join(","))
}

/// The cxpanel settings from the kvstore (16.0.4+) or, when that has none, the legacy
/// single-row tables (≤ 16.0.2, 17.0.1).
pub(crate) async fn read_cx_settings(
    r: &mut TableReader<'_, '_>,
) -> Result<Option<CxSettings>, mysql_async::Error> {
    let groups = [
        "settings_server",
        "settings_voicemail_agent",
        "settings_recording_agent",
    ];
    let filter = in_list(&groups);
    if let Some(kv) = r
        .select(KVSTORE_TABLE, &["id", "key", "val"], Some(("id", &filter)))
        .await?
    {
        let mut by_group: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for mut c in kv {
            let id = s(&mut c, 0);
            let key = s(&mut c, 1).to_ascii_lowercase();
            by_group.entry(id).or_default().insert(key, s(&mut c, 2));
        }
        if !by_group.is_empty() {
            return Ok(Some(CxSettings {
                layout: CxSettingsLayout::Kvstore,
                server: by_group.get(groups[0]).map(server_settings),
                voicemail_agent: by_group.get(groups[1]).map(agent_settings),
                recording_agent: by_group.get(groups[2]).map(agent_settings),
            }));
        }
    }
    let first = |v: Option<Vec<BTreeMap<String, String>>>| v.and_then(|v| v.into_iter().next());
    let server = first(r.select_all_as_maps("cxpanel_server").await?);
    let vm = first(r.select_all_as_maps("cxpanel_voicemail_agent").await?);
    let rec = first(r.select_all_as_maps("cxpanel_recording_agent").await?);
    if server.is_none() && vm.is_none() && rec.is_none() {
        return Ok(None);
    }
    Ok(Some(CxSettings {
        layout: CxSettingsLayout::Tables,
        server: server.as_ref().map(server_settings),
        voicemail_agent: vm.as_ref().map(agent_settings),
        recording_agent: rec.as_ref().map(agent_settings),
    }))
}

/// Build the server settings from key → value; missing keys take the install defaults.
pub(crate) fn server_settings(m: &BTreeMap<String, String>) -> CxServerSettings {
    let d = CxServerSettings::default();
    let text = |k: &str, dflt: &str| m.get(k).cloned().unwrap_or_else(|| dflt.to_string());
    let port = |k: &str, dflt: u16| m.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(dflt);
    let b = |k: &str, dflt: bool| m.get(k).map(|v| parse_flag(v)).unwrap_or(dflt);
    CxServerSettings {
        name: text("name", &d.name),
        asterisk_host: text("asterisk_host", &d.asterisk_host),
        client_host: text("client_host", &d.client_host),
        client_port: port("client_port", d.client_port),
        client_use_ssl: b("client_use_ssl", d.client_use_ssl),
        api_host: text("api_host", &d.api_host),
        api_port: port("api_port", d.api_port),
        api_username: text("api_username", &d.api_username),
        api_password: m
            .get("api_password")
            .map(|v| Secret::new(v.clone()))
            .unwrap_or(d.api_password),
        api_use_ssl: b("api_use_ssl", d.api_use_ssl),
        sync_with_userman: b("sync_with_userman", d.sync_with_userman),
        clean_unknown_items: b("clean_unknown_items", d.clean_unknown_items),
    }
}

fn agent_settings(m: &BTreeMap<String, String>) -> CxAgentSettings {
    let text = |k: &str| m.get(k).cloned().unwrap_or_default();
    CxAgentSettings {
        identifier: text("identifier"),
        directory: text("directory"),
        resource_host: text("resource_host"),
        resource_extension: text("resource_extension"),
        file_name_mask: text("file_name_mask"),
    }
}
