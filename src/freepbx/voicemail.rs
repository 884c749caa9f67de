//! Reading Asterisk's `voicemail.conf` (and its `#include`s) safely.
//!
//! FreePBX rewrites the file in place on Apply Config (truncate, then write) and tools replace
//! it by rename, so a read may meet a missing, empty or half-written file. The rule: a file
//! that cannot be trusted makes the mailboxes *unknown* ([`VoicemailConf::unknown`]), never
//! empty; the mapping then leaves e-mail addresses exactly as the server has them.
//! [`read_stable`] re-reads a file that changed since the last pass until two reads a debounce
//! apart agree.
//!
//! Limits (each exceeded one is an error that deletes nothing): `#include` depth
//! [`MAX_INCLUDE_DEPTH`], bytes read in all [`MAX_TOTAL_BYTES`], mailboxes [`MAX_MAILBOXES`].
//! Include paths are canonicalised before loop detection, so a symlink alias is the same file.
//! Only regular files are opened (a FIFO or device would block or never end).

use super::files::decode_text;
use super::snapshot::Mailbox;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// Deepest `#include` nesting read.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most bytes read from voicemail.conf and all its includes together.
pub const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024;
/// Most mailboxes accepted.
pub const MAX_MAILBOXES: usize = 100_000;
/// Most re-reads [`read_stable`] makes before giving up on a file that keeps changing.
pub const MAX_STABLE_READS: usize = 20;

/// Sections of voicemail.conf that are not voicemail contexts.
const SPECIAL_SECTIONS: &[&str] = &["general", "zonemessages", "pbxaliases", "device"];

/// What one read of voicemail.conf found.
#[derive(Debug, Clone, Default)]
pub struct VoicemailConf {
    /// Mailboxes in file order (meaningless when `unknown` is set).
    pub mailboxes: Vec<Mailbox>,
    /// Worth knowing, changes nothing (a cut include loop).
    pub warnings: Vec<String>,
    /// Why the mailboxes are not known, naming the file; e-mails are then left alone.
    pub unknown: Option<String>,
    /// `unknown` is an error (a limit exceeded, a file that is not text), not a warning.
    pub error: bool,
    /// A required `#include` that cannot be read, naming it: the mailboxes read are known,
    /// but those the missing file may define are not, so e-mail deletions wait.
    pub missing_include: Option<String>,
    /// SHA-1 over every file's path and bytes (and every failure): equal digests = same read.
    pub digest: [u8; 20],
    /// The latest modification time of the files read, taken after reading each (None when
    /// a file could not be read or its time is unknown).
    pub newest_change: Option<SystemTime>,
}

struct Reader {
    conf: VoicemailConf,
    /// Canonical paths of the files being read (loop detection).
    stack: Vec<PathBuf>,
    total: u64,
    context: String,
    hash: Sha1,
    /// Set by a limit: stop reading at once.
    stop: bool,
    /// Some file's modification time could not be read.
    mtime_unknown: bool,
}

impl Reader {
    fn unknown(&mut self, msg: String, error: bool) {
        self.hash.update(msg.as_bytes());
        if self.conf.unknown.is_none() {
            self.conf.unknown = Some(msg);
        }
        self.conf.error |= error;
    }
    fn limit(&mut self, msg: String) {
        self.unknown(msg, true);
        self.stop = true;
    }
}

/// Read voicemail.conf and its `#include`s once. Never fails: problems come back in the result.
pub fn read_voicemail_conf(path: &Path) -> VoicemailConf {
    let mut r = Reader {
        conf: VoicemailConf::default(),
        stack: Vec::new(),
        total: 0,
        context: String::new(),
        hash: Sha1::new(),
        stop: false,
        mtime_unknown: false,
    };
    match read_bytes(path, &mut r) {
        Err(e) => r.unknown(
            format!("cannot read voicemail file {}: {e}", path.display()),
            false,
        ),
        Ok((_, bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => r.unknown(
            format!(
                "voicemail file {} is empty (FreePBX may be rewriting it)",
                path.display()
            ),
            false,
        ),
        Ok((canon, bytes)) => parse_file(path, canon, &bytes, 0, &mut r),
    }
    if r.conf.unknown.is_some() {
        r.conf.mailboxes.clear();
    }
    if r.conf.unknown.is_some() || r.mtime_unknown {
        r.conf.newest_change = None;
    }
    r.conf.digest = r.hash.finalize().into();
    r.conf
}

/// Why a voicemail file could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
}

/// Open a regular file and read it within the byte budget: (canonical path, bytes).
fn read_bytes(path: &Path, r: &mut Reader) -> Result<(PathBuf, Vec<u8>), ReadError> {
    let canon = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&canon)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    let file = std::fs::File::open(&canon)?;
    let left = MAX_TOTAL_BYTES.saturating_sub(r.total);
    let mut bytes = Vec::new();
    // One byte more than the budget tells "exactly at the limit" from "over it".
    let mut file = file.take(left + 1);
    file.read_to_end(&mut bytes)?;
    // After the read: a write during it shows as a recent time (see `read_stable`).
    match file.get_ref().metadata().and_then(|m| m.modified()) {
        Ok(t) => r.conf.newest_change = r.conf.newest_change.max(Some(t)),
        Err(_) => r.mtime_unknown = true,
    }
    r.total += bytes.len() as u64;
    r.hash.update(canon.as_os_str().as_encoded_bytes());
    r.hash.update((bytes.len() as u64).to_le_bytes());
    r.hash.update(&bytes);
    Ok((canon, bytes))
}

/// Why `bytes` are not text, if they are not: a NUL or another control character, or (in a
/// file that is not UTF-8) a byte Windows-1252 does not define.
fn not_text(bytes: &[u8]) -> Option<String> {
    let ctl = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    if let Some(pos) = bytes.iter().position(ctl) {
        return Some(format!("control byte 0x{:02x} at offset {pos}", bytes[pos]));
    }
    if std::str::from_utf8(bytes).is_err() {
        let undefined = |b: &u8| matches!(b, 0x81 | 0x8d | 0x8f | 0x90 | 0x9d);
        if let Some(pos) = bytes.iter().position(undefined) {
            return Some(format!(
                "not UTF-8, and byte 0x{:02x} at offset {pos} is not Windows-1252 either",
                bytes[pos]
            ));
        }
    }
    None
}

fn parse_file(path: &Path, canon: PathBuf, bytes: &[u8], depth: usize, r: &mut Reader) {
    if r.total > MAX_TOTAL_BYTES {
        return r.limit(format!(
            "voicemail.conf and its #includes are larger than {} MiB (reading {}); the agent \
             reads at most that much",
            MAX_TOTAL_BYTES >> 20,
            path.display()
        ));
    }
    if let Some(why) = not_text(bytes) {
        return r.limit(format!("{} is not a text file ({why})", path.display()));
    }
    r.stack.push(canon);
    let text = decode_text(bytes);
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for (n, raw) in text.split('\n').enumerate() {
        if r.stop {
            break;
        }
        let line = raw.trim_end_matches('\r').trim();
        if let Some((optional, name)) = include_directive(line) {
            include(path, n + 1, &dir.join(name), name, optional, depth, r);
            continue;
        }
        parse_line(line, r);
        if r.conf.mailboxes.len() > MAX_MAILBOXES {
            r.limit(format!(
                "voicemail.conf defines more than {MAX_MAILBOXES} mailboxes (at {} line {})",
                path.display(),
                n + 1
            ));
        }
    }
    r.stack.pop();
}

/// `#include "x"` / `#tryinclude <x>` → (optional, file name).
fn include_directive(line: &str) -> Option<(bool, &str)> {
    let (optional, rest) = if let Some(rest) = line.strip_prefix("#tryinclude") {
        (true, rest)
    } else {
        (false, line.strip_prefix("#include")?)
    };
    let name = rest
        .trim()
        .trim_matches(|c| c == '"' || c == '<' || c == '>')
        .trim();
    (!name.is_empty()).then_some((optional, name))
}

fn include(
    from: &Path,
    line: usize,
    target: &Path,
    name: &str,
    optional: bool,
    depth: usize,
    r: &mut Reader,
) {
    let at = format!("{} line {line}: #include {name:?}", from.display());
    if depth + 1 > MAX_INCLUDE_DEPTH {
        return r.limit(format!(
            "{at}: #include nesting is deeper than {MAX_INCLUDE_DEPTH} files"
        ));
    }
    if let Ok(canon) = std::fs::canonicalize(target) {
        if r.stack.contains(&canon) {
            // Everything in the looping file is already being read: cutting loses nothing.
            r.conf.warnings.push(format!(
                "{at} includes {} again (an include loop); skipped",
                canon.display()
            ));
            return;
        }
    }
    match read_bytes(target, r) {
        Ok((canon, bytes)) => parse_file(target, canon, &bytes, depth + 1, r),
        // Asterisk skips a missing #tryinclude silently.
        Err(_) if optional => {}
        Err(e) => {
            let msg = format!(
                "{at}: cannot read {}: {e}; the mailboxes it defines are unknown, so no \
                 voicemail e-mail address is removed while it is missing (use #tryinclude for \
                 a file that may be absent)",
                target.display()
            );
            r.hash.update(msg.as_bytes());
            r.conf.missing_include.get_or_insert(msg);
        }
    }
}

fn parse_line(line: &str, r: &mut Reader) {
    let line = strip_comment(line);
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return;
    }
    if let Some(rest) = line.strip_prefix('[') {
        r.context = rest.split(']').next().unwrap_or("").trim().to_string();
        return;
    }
    let ctx = &r.context;
    if ctx.is_empty() || SPECIAL_SECTIONS.contains(&ctx.to_ascii_lowercase().as_str()) {
        return;
    }
    let Some((key, value)) = line.split_once("=>").or_else(|| line.split_once('=')) else {
        return;
    };
    let mailbox = key.trim();
    if mailbox.is_empty() {
        return;
    }
    let fields: Vec<&str> = value.split(',').collect();
    let field = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("");
    r.conf.mailboxes.push(Mailbox {
        context: ctx.clone(),
        mailbox: mailbox.to_string(),
        name: field(1).to_string(),
        emails: split_emails(field(2)),
    });
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

/// Digest of the last accepted read of each file (by the path given).
fn last_reads() -> &'static Mutex<HashMap<PathBuf, [u8; 20]>> {
    static LAST: OnceLock<Mutex<HashMap<PathBuf, [u8; 20]>>> = OnceLock::new();
    LAST.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Read voicemail.conf so that a file caught mid-write is not taken for the real one: when
/// the read differs from the last accepted one (the file changed: a change event, or the
/// first read of this process) and some file read was modified less than `debounce` ago,
/// read again `debounce` later until two reads agree. (Files untouched for `debounce` after
/// they were read cannot have been mid-write: this spares a one-shot run the wait.) A file
/// that never settles within [`MAX_STABLE_READS`] re-reads is unknown this pass.
pub async fn read_stable(path: &Path, debounce: Duration) -> VoicemailConf {
    let mut cur = read_voicemail_conf(path);
    let accept = |c: &VoicemailConf| {
        if let Ok(mut m) = last_reads().lock() {
            m.insert(path.to_path_buf(), c.digest);
        }
    };
    let known = |d: &[u8; 20]| {
        last_reads()
            .lock()
            .map(|m| m.get(path) == Some(d))
            .unwrap_or(false)
    };
    if known(&cur.digest) {
        return cur;
    }
    let settled = |c: &VoicemailConf| {
        c.newest_change
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age >= debounce)
    };
    if settled(&cur) {
        accept(&cur);
        return cur;
    }
    for _ in 0..MAX_STABLE_READS {
        tokio::time::sleep(debounce).await;
        let next = read_voicemail_conf(path);
        if next.digest == cur.digest {
            accept(&next);
            return next;
        }
        cur = next;
    }
    let waited = debounce * MAX_STABLE_READS as u32;
    cur.mailboxes.clear();
    cur.unknown = Some(format!(
        "voicemail file {} kept changing for {:.1} s (two reads {} ms apart never agreed)",
        path.display(),
        waited.as_secs_f64(),
        debounce.as_millis()
    ));
    cur
}

#[cfg(test)]
#[path = "voicemail_tests.rs"]
mod tests;
