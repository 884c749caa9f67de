//! Parsers for the FreePBX files the sync reads: `/etc/freepbx.conf` (a PHP file, parsed as
//! text and never executed), the legacy `/etc/amportal.conf`, and Asterisk's `voicemail.conf`
//! (reference §1 and §4).
//!
//! All parsers are tolerant: an unknown line is skipped, non-UTF-8 bytes are read as
//! Windows-1252 (a superset of latin1, what old FreePBX systems wrote).

use super::snapshot::Mailbox;
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Parse the `$amp_conf['KEY'] = 'value';` assignments of freepbx.conf. Returns None when
/// the file holds no such assignment at all (not a freepbx.conf).
pub fn parse_freepbx_conf(text: &str) -> Option<DbConf> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") || t.starts_with('#') || t.starts_with("/*") || t.starts_with('*') {
            continue;
        }
        let mut rest = t;
        while let Some(pos) = rest.find("$amp_conf[") {
            rest = &rest[pos + "$amp_conf[".len()..];
            let Some((key, after_key)) = quoted(rest.trim_start()) else {
                continue;
            };
            let Some(after) = after_key.trim_start().strip_prefix(']') else {
                continue;
            };
            let Some(after) = after.trim_start().strip_prefix('=') else {
                continue;
            };
            let after = after.trim_start();
            if let Some((value, tail)) = quoted(after) {
                map.insert(key, value);
                rest = tail;
            } else {
                // Unquoted scalar (`= 3306;`).
                let end = after.find(';').unwrap_or(after.len());
                map.insert(key, after[..end].trim().to_string());
                rest = &after[end..];
            }
        }
    }
    if map.is_empty() {
        None
    } else {
        Some(DbConf::from_map(&map))
    }
}

/// A PHP single- or double-quoted string at the start of `s`: (value, rest after the quote).
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    let (_, q) = chars.next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            // PHP single quotes only unescape \' and \\; keep other backslashes.
            if c != q && c != '\\' {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Some((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    None
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

/// Sections of voicemail.conf that are not voicemail contexts.
const SPECIAL_SECTIONS: &[&str] = &["general", "zonemessages", "pbxaliases", "device"];
const MAX_INCLUDE_DEPTH: usize = 8;

/// Read voicemail.conf and its `#include`s. Never fails: problems come back as warnings and
/// the mailboxes read so far are kept.
pub fn read_voicemail_conf(path: &Path) -> (Vec<Mailbox>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut stack = Vec::new();
    let mut context = String::new();
    read_vm_file(
        path,
        0,
        &mut stack,
        &mut context,
        &mut out,
        &mut warnings,
        true,
    );
    (out, warnings)
}

fn read_vm_file(
    path: &Path,
    depth: usize,
    stack: &mut Vec<PathBuf>,
    context: &mut String,
    out: &mut Vec<Mailbox>,
    warnings: &mut Vec<String>,
    top: bool,
) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let what = if top {
                "voicemail file"
            } else {
                "included file"
            };
            warnings.push(format!(
                "cannot read {what} {}: {e}; voicemail e-mail addresses are not synced",
                path.display()
            ));
            return;
        }
    };
    stack.push(path.to_path_buf());
    let text = decode_text(&bytes);
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for raw in text.split('\n') {
        let line = raw.trim_end_matches('\r').trim();
        if let Some(rest) = line
            .strip_prefix("#include")
            .or_else(|| line.strip_prefix("#tryinclude"))
        {
            let name = rest
                .trim()
                .trim_matches(|c| c == '"' || c == '<' || c == '>')
                .trim();
            if name.is_empty() {
                continue;
            }
            let inc = if Path::new(name).is_absolute() {
                PathBuf::from(name)
            } else {
                dir.join(name)
            };
            if depth + 1 > MAX_INCLUDE_DEPTH || stack.contains(&inc) {
                warnings.push(format!(
                    "{}: #include {} skipped (include loop or too deep)",
                    path.display(),
                    inc.display()
                ));
                continue;
            }
            let optional = line.starts_with("#tryinclude");
            let before = warnings.len();
            read_vm_file(&inc, depth + 1, stack, context, out, warnings, false);
            if optional {
                warnings.truncate(before);
            }
            continue;
        }
        let line = strip_comment(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            *context = rest.split(']').next().unwrap_or("").trim().to_string();
            continue;
        }
        if context.is_empty() || SPECIAL_SECTIONS.contains(&context.to_ascii_lowercase().as_str()) {
            continue;
        }
        let (key, value) = if let Some((k, v)) = line.split_once("=>") {
            (k, v)
        } else if let Some((k, v)) = line.split_once('=') {
            (k, v)
        } else {
            continue;
        };
        let mailbox = key.trim();
        if mailbox.is_empty() {
            continue;
        }
        let fields: Vec<&str> = value.split(',').collect();
        let field = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("");
        out.push(Mailbox {
            context: context.clone(),
            mailbox: mailbox.to_string(),
            name: field(1).to_string(),
            emails: split_emails(field(2)),
        });
    }
    stack.pop();
}

/// Split an address list (`a@x|b@y`, or commas from other tools), trimmed, empties dropped.
pub fn split_emails(field: &str) -> Vec<String> {
    field
        .split(['|', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Remove a `;` comment (Asterisk escapes a literal semicolon as `\;`).
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&';') => {
                out.push(';');
                chars.next();
            }
            ';' => break,
            _ => out.push(c),
        }
    }
    out
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
        let c = parse_freepbx_conf(text).unwrap();
        assert_eq!(c.user.as_deref(), Some("freepbxuser"));
        assert_eq!(c.password.unwrap().expose(), "it's \"x\"");
        assert_eq!(c.host.as_deref(), Some("localhost"));
        assert_eq!(c.name.as_deref(), Some("asterisk"));
        assert_eq!(c.port.as_deref(), Some("3307"));
        assert_eq!(c.socket, None);
        assert!(parse_freepbx_conf("<?php echo 1; ?>").is_none());
    }

    #[test]
    fn amportal_conf_text() {
        let text = "# header\nAMPDBUSER=asteriskuser\nAMPDBPASS=amp109\nAMPDBNAME=asterisk\nAMPWEBROOT=/var/www/my\\ html\n";
        let c = parse_amportal_conf(text).unwrap();
        assert_eq!(c.user.as_deref(), Some("asteriskuser"));
        assert_eq!(c.password.unwrap().expose(), "amp109");
        assert!(parse_amportal_conf("FOO=bar\n").is_none());
    }

    #[test]
    fn voicemail_conf_variants() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("voicemail.conf");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("sub/extra.conf"),
            b"[other]\r\n300 = 1,Jos\xe9 M\xfcller,jose@x.org\r\n",
        )
        .unwrap();
        std::fs::write(
            &main,
            "[general]\nserveremail=vm@x.org\n; comment\n\n[default]\r\n\
             100 => 1234,Alice,a@x.org|b@x.org,,attach=yes|saycid=no\r\n\
             101=1,Bob ; trailing comment\n102 = 1,Carol,c@x.org,p@x.org\n\
             #include \"sub/extra.conf\"\n#include missing.conf\n",
        )
        .unwrap();
        let (boxes, warnings) = read_voicemail_conf(&main);
        assert_eq!(boxes.len(), 4, "{boxes:?}");
        assert_eq!(boxes[0].mailbox, "100");
        assert_eq!(boxes[0].context, "default");
        assert_eq!(boxes[0].emails, vec!["a@x.org", "b@x.org"]);
        assert_eq!(boxes[1].name, "Bob");
        assert!(boxes[1].emails.is_empty());
        assert_eq!(boxes[2].emails, vec!["c@x.org"]);
        assert_eq!(boxes[3].context, "other");
        assert_eq!(boxes[3].name, "José Müller");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("missing.conf"));
    }

    #[test]
    fn voicemail_conf_missing_is_a_warning() {
        let (boxes, warnings) = read_voicemail_conf(Path::new("/nonexistent/voicemail.conf"));
        assert!(boxes.is_empty());
        assert!(warnings[0].contains("/nonexistent/voicemail.conf"));
    }

    #[test]
    fn include_loop_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("voicemail.conf");
        std::fs::write(&main, "[default]\n1=1,A,a@x\n#include voicemail.conf\n").unwrap();
        let (boxes, warnings) = read_voicemail_conf(&main);
        assert_eq!(boxes.len(), 1);
        assert!(warnings[0].contains("loop"));
    }
}
