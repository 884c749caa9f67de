//! Parsers for the FreePBX files the sync reads: `/etc/freepbx.conf` (a PHP file, parsed as
//! text and never executed), the legacy `/etc/amportal.conf`, and Asterisk's `voicemail.conf`
//! (what each is read for: docs/README-freepbx.md, "What the agent reads").
//!
//! All parsers are tolerant: an unknown line is skipped, non-UTF-8 bytes are read as
//! Windows-1252 (a superset of latin1, what old FreePBX systems wrote). voicemail.conf's reader
//! is [`super::voicemail`], which uses [`decode_text`] from here.

use crate::secret::Secret;
use std::collections::BTreeMap;

/// The database keys of freepbx.conf / amportal.conf, as written (no defaults applied).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbConf {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub socket: Option<String>,
    pub name: Option<String>,
    pub engine: Option<String>,
}

impl DbConf {
    fn from_map(map: &BTreeMap<String, String>) -> DbConf {
        let get = |k: &str| map.get(k).map(|v| v.trim().to_string());
        DbConf {
            user: get("AMPDBUSER"),
            password: map.get("AMPDBPASS").map(|v| Secret::new(v.clone())),
            host: get("AMPDBHOST"),
            port: get("AMPDBPORT"),
            socket: get("AMPDBSOCK").filter(|s| !s.is_empty()),
            name: get("AMPDBNAME"),
            engine: get("AMPDBENGINE"),
        }
    }
}

/// Decode file bytes: UTF-8 when valid, else Windows-1252 (latin1).
pub fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// [`decode_text`] for owned bytes: no copy in the (usual) UTF-8 case.
pub fn decode_owned(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        encoding_rs::WINDOWS_1252
            .decode(e.as_bytes())
            .0
            .into_owned()
    })
}

/// A database key of freepbx.conf whose value needs PHP to evaluate (`why` names the line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("$amp_conf['{key}'], {why}")]
pub struct Unevaluable {
    pub key: String,
    pub why: String,
}

/// The database keys of freepbx.conf, read as PHP would ([`super::phpconf`]). Ok(None) when
/// the file assigns no `$amp_conf` key at all (not a freepbx.conf); Err when a database key's
/// value cannot be evaluated without running PHP (the message names the key and line).
pub fn parse_freepbx_conf(text: &str) -> Result<Option<DbConf>, Unevaluable> {
    let conf = super::phpconf::parse_php_conf(text);
    if let Some((key, why)) = conf
        .unevaluable
        .iter()
        .find(|(k, _)| k.starts_with("AMPDB"))
    {
        return Err(Unevaluable {
            key: key.clone(),
            why: why.clone(),
        });
    }
    if conf.values.is_empty() {
        return Ok(None);
    }
    Ok(Some(DbConf::from_map(&conf.values)))
}

/// Parse amportal.conf (`KEY=value` lines, `#` comments, `\ ` escaped spaces). Returns None
/// when no line sets AMPDBUSER, AMPDBNAME or AMPDBHOST.
pub fn parse_amportal_conf(text: &str) -> Option<DbConf> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        let mut v = v.trim().replace("\\ ", " ");
        if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v = v[1..v.len() - 1].to_string();
        }
        map.insert(k.trim().to_string(), v);
    }
    if ["AMPDBUSER", "AMPDBNAME", "AMPDBHOST"]
        .iter()
        .any(|k| map.contains_key(*k))
    {
        Some(DbConf::from_map(&map))
    } else {
        None
    }
}

/// This machine's host name (cxpanel's default `resource_host`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freepbx_conf_text() {
        let text = r#"<?php
$amp_conf['AMPDBUSER'] = 'freepbxuser';
$amp_conf["AMPDBPASS"]="it's \"x\"";
 $amp_conf[ 'AMPDBHOST' ] =  'localhost' ;
// $amp_conf['AMPDBNAME'] = 'wrong';
$amp_conf['AMPDBNAME'] = 'asterisk'; $amp_conf['AMPDBPORT'] = 3307;
require_once('/var/www/html/admin/bootstrap.php');
"#;
        let c = parse_freepbx_conf(text).unwrap().unwrap();
        assert_eq!(c.user.as_deref(), Some("freepbxuser"));
        assert_eq!(c.password.unwrap().expose(), "it's \"x\"");
        assert_eq!(c.host.as_deref(), Some("localhost"));
        assert_eq!(c.name.as_deref(), Some("asterisk"));
        assert_eq!(c.port.as_deref(), Some("3307"));
        assert_eq!(c.socket, None);
        assert!(parse_freepbx_conf("<?php echo 1; ?>").unwrap().is_none());
    }

    #[test]
    fn amportal_conf_text() {
        let text = "# header\nAMPDBUSER=asteriskuser\nAMPDBPASS=amp109\nAMPDBNAME=asterisk\nAMPWEBROOT=/var/www/my\\ html\n";
        let c = parse_amportal_conf(text).unwrap();
        assert_eq!(c.user.as_deref(), Some("asteriskuser"));
        assert_eq!(c.password.unwrap().expose(), "amp109");
        assert!(parse_amportal_conf("FOO=bar\n").is_none());
    }
}
