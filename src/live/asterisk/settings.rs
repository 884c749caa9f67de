//! The AMI login: FreePBX keeps it in `freepbx_settings` (`AMPMGRUSER`, `AMPMGRPASS`,
//! `ASTMANAGERHOST`, `ASTMANAGERPORT`); `[live] ami_host`, `ami_port`, `ami_username`,
//! `ami_password` override each. With the user and password both set in `[live]` (as
//! `--serve-only` needs: it has no FreePBX database), the database is not read.

use crate::config::Config;
use crate::freepbx::FreepbxError;
use crate::live::ami::AmiSettings;
use crate::secret::Secret;
use mysql_async::prelude::Queryable;
use std::collections::HashMap;

const KEYS: &str = "'AMPMGRUSER','AMPMGRPASS','ASTMANAGERHOST','ASTMANAGERPORT'";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("AMI login unknown: [live] ami_username/ami_password are not set and FreePBX's settings could not be read: {0}")]
    Freepbx(#[from] FreepbxError),
    #[error("AMI login unknown: set [live] ami_username and ami_password (FreePBX's freepbx_settings has no {0})")]
    Missing(&'static str),
    #[error("FreePBX's ASTMANAGERPORT is not a port number: {0:?} (set [live] ami_port)")]
    BadPort(String),
}

/// The AMI login for `cfg`.
pub async fn settings_from(cfg: &Config) -> Result<AmiSettings, SettingsError> {
    let live = &cfg.live;
    let fp = if live.ami_username.is_some() && live.ami_password.is_some() {
        HashMap::new()
    } else {
        read_freepbx(cfg).await?
    };
    let get = |k: &str| {
        fp.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let username = match live.ami_username.clone().or_else(|| get("AMPMGRUSER")) {
        Some(u) => u,
        None => return Err(SettingsError::Missing("AMPMGRUSER")),
    };
    let password = match live.ami_password.clone() {
        Some(p) => p,
        None => match fp.get("AMPMGRPASS") {
            Some(p) => Secret::new(p.clone()),
            None => return Err(SettingsError::Missing("AMPMGRPASS")),
        },
    };
    let port = match (live.ami_port, get("ASTMANAGERPORT")) {
        (Some(p), _) => p,
        (None, Some(p)) => p.parse().map_err(|_| SettingsError::BadPort(p))?,
        (None, None) => 5038,
    };
    let host = live
        .ami_host
        .clone()
        .or_else(|| get("ASTMANAGERHOST"))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    Ok(AmiSettings {
        host,
        port,
        username,
        password,
    })
}

/// The four keys from `freepbx_settings` (absent keys are absent).
async fn read_freepbx(cfg: &Config) -> Result<HashMap<String, String>, FreepbxError> {
    let target = crate::freepbx::resolve_target(cfg)?;
    let mut conn = crate::freepbx::connect(&target).await?;
    let sql = format!("SELECT keyword, value FROM freepbx_settings WHERE keyword IN ({KEYS})");
    let rows: Result<Vec<(String, Option<String>)>, _> = conn.query(sql).await;
    let _ = conn.disconnect().await;
    let rows = rows.map_err(|e| crate::freepbx::db_error(&target, e))?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect())
}
