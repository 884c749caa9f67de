//! The store's file, `store.log`: an append-only log of its writes.
//!
//! Why a log and not SQLite (which the store used until issue 20's fifth round): the whole
//! store lives in memory, so the file only has to replay it. SQLite did that with B-tree pages
//! (an index leaf and a table page per write, 4 KB WAL frames); its commit was more than half
//! of the endpoint's CPU in a first sync at 1,000 extensions. Appending the bytes of a group of
//! writes with one `write` is the whole commit now.
//!
//! Layout: the 8-byte header [`HEADER`], then records. A record is the payload's length (u32
//! little-endian), the CRC-32 of the payload (u32 LE), then the payload: a tag byte and its
//! fields, each string a u32 LE length and its bytes:
//! - `1` put: sequence number (u64 LE), scope, id, natural key (a byte 0 or 1, then the key
//!   when 1), body (JSON);
//! - `2` delete: scope, id;
//! - `3` delete every scope starting with a prefix: prefix;
//! - `4` commit: ends a group. Records after the last commit belong to a write that was never
//!   acknowledged (the process died while writing it) and are not replayed.
//!
//! A record that fails its CRC (or is cut short) at the end of the file is such an unfinished
//! write. One followed by an intact record is damage: replaying up to it would silently lose
//! acknowledged writes, so the start is refused (see [`super::open`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first bytes of every store log (the format's version is its last two).
pub const HEADER: &[u8; 8] = b"ISYLOG01";

/// Appended bytes after which the log is flushed to disk (`fdatasync`): a bound on what an OS
/// crash or power loss can take, as SQLite's WAL checkpoints bounded it before. A killed
/// process loses nothing either way: every acknowledged write is in the OS's page cache.
const SYNC_EVERY: u64 = 4 << 20;

const PUT: u8 = 1;
const DEL: u8 = 2;
const DEL_PREFIX: u8 = 3;
const COMMIT: u8 = 4;

/// One record, borrowing from the file's bytes (or from the store's memory when encoding).
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    Put {
        seq: u64,
        scope: &'a str,
        id: &'a str,
        key: Option<&'a str>,
        body: &'a [u8],
    },
    Del {
        scope: &'a str,
        id: &'a str,
    },
    DelPrefix(&'a str),
    Commit,
}

/// Append `rec`, framed, to `out`.
pub fn encode(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    match rec {
        Record::Put {
            seq,
            scope,
            id,
            key,
            body,
        } => {
            out.push(PUT);
            out.extend_from_slice(&seq.to_le_bytes());
            field(out, scope.as_bytes());
            field(out, id.as_bytes());
            match key {
                Some(k) => {
                    out.push(1);
                    field(out, k.as_bytes());
                }
                None => out.push(0),
            }
            field(out, body);
        }
        Record::Del { scope, id } => {
            out.push(DEL);
            field(out, scope.as_bytes());
            field(out, id.as_bytes());
        }
        Record::DelPrefix(p) => {
            out.push(DEL_PREFIX);
            field(out, p.as_bytes());
        }
        Record::Commit => out.push(COMMIT),
    }
    let payload = &out[start + 8..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// The bytes [`encode`] writes for `rec`.
pub fn encoded_len(rec: &Record) -> usize {
    let fields = match rec {
        Record::Put {
            scope,
            id,
            key,
            body,
            ..
        } => 8 + 12 + scope.len() + id.len() + 1 + key.map_or(0, |k| 4 + k.len()) + body.len(),
        Record::Del { scope, id } => 8 + scope.len() + id.len(),
        Record::DelPrefix(p) => 4 + p.len(),
        Record::Commit => 0,
    };
    8 + 1 + fields
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// How a scan of the file ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Tail {
    /// Every byte belongs to a committed group.
    Clean,
    /// The last `bytes` are an unfinished write (cut short, failing its CRC, or not committed).
    Unfinished { bytes: usize },
    /// The record at byte `at` is damaged and `intact` records follow it.
    Damaged { at: usize, intact: usize },
}

/// The committed records of a log, in order, and how it ended.
#[derive(Debug)]
pub struct Scan<'a> {
    pub records: Vec<Record<'a>>,
    /// Where the last committed group ends: the length the file is good up to.
    pub end: usize,
    pub tail: Tail,
}

/// Why a file is not a store log at all.
#[derive(Debug, thiserror::Error)]
#[error("it does not start with the store log's header ({} bytes)", .0)]
pub struct NotALog(pub usize);

/// Read a whole log. Never fails on damage: it reports it in [`Scan::tail`].
pub fn scan(buf: &[u8]) -> Result<Scan<'_>, NotALog> {
    if buf.len() < HEADER.len() || &buf[..HEADER.len()] != HEADER {
        return Err(NotALog(buf.len()));
    }
    let mut records = Vec::new();
    let mut group = Vec::new();
    let mut pos = HEADER.len();
    let mut end = pos;
    while pos < buf.len() {
        let Some((rec, next)) = record_at(buf, pos) else {
            let intact = count_intact_after(buf, pos);
            let tail = if intact > 0 {
                Tail::Damaged { at: pos, intact }
            } else {
                Tail::Unfinished {
                    bytes: buf.len() - end,
                }
            };
            return Ok(Scan { records, end, tail });
        };
        pos = next;
        if rec == Record::Commit {
            records.append(&mut group);
            end = pos;
        } else {
            group.push(rec);
        }
    }
    let tail = match end == buf.len() {
        true => Tail::Clean,
        false => Tail::Unfinished {
            bytes: buf.len() - end,
        },
    };
    Ok(Scan { records, end, tail })
}

/// The record framed at `pos` and where the next one starts; None when it is cut short, fails
/// its CRC or does not decode.
fn record_at(buf: &[u8], pos: usize) -> Option<(Record<'_>, usize)> {
    let head = buf.get(pos..pos + 8)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    let payload = buf.get(pos + 8..(pos + 8).checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Some((decode(payload)?, pos + 8 + len))
}

/// Intact records anywhere after the bad one at `pos`: an unfinished write has none. A byte
/// by byte search, since the bad record's length cannot be trusted; it stops at the first
/// intact record's end and counts on from there.
fn count_intact_after(buf: &[u8], pos: usize) -> usize {
    let mut at = pos + 1;
    while at + 8 <= buf.len() {
        if let Some((_, mut next)) = record_at(buf, at) {
            let mut n = 1;
            while let Some((_, after)) = record_at(buf, next) {
                n += 1;
                next = after;
            }
            return n;
        }
        at += 1;
    }
    0
}

fn decode(p: &[u8]) -> Option<Record<'_>> {
    let (&tag, mut rest) = p.split_first()?;
    let rec = match tag {
        PUT => {
            let seq = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
            let scope = text(&mut rest)?;
            let id = text(&mut rest)?;
            let key = match take(&mut rest, 1)?[0] {
                0 => None,
                1 => Some(text(&mut rest)?),
                _ => return None,
            };
            let body = bytes(&mut rest)?;
            Record::Put {
                seq,
                scope,
                id,
                key,
                body,
            }
        }
        DEL => Record::Del {
            scope: text(&mut rest)?,
            id: text(&mut rest)?,
        },
        DEL_PREFIX => Record::DelPrefix(text(&mut rest)?),
        COMMIT => Record::Commit,
        _ => return None,
    };
    rest.is_empty().then_some(rec)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

fn bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u32::from_le_bytes(take(rest, 4)?.try_into().ok()?) as usize;
    take(rest, n)
}

fn text<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(bytes(rest)?).ok()
}

/// The open log, appended to by the group commit's leader (one at a time).
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    /// Bytes that belong to committed groups: a failed append is cut back to this.
    len: u64,
    unsynced: u64,
    /// A failed append could not be cut off yet.
    uncut: bool,
    /// The length after the last rewrite: the log is rewritten when it has grown well past it.
    rewritten: u64,
}

impl LogFile {
    /// Continue the log at `path`, whose first `len` bytes are good (a scan's end).
    pub fn continue_at(path: &Path, len: u64) -> std::io::Result<LogFile> {
        let file =
            crate::private_files::open(path, std::fs::OpenOptions::new().read(true).append(true))?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
        }
        Ok(LogFile {
            file,
            path: path.to_path_buf(),
            len,
            unsynced: 0,
            uncut: false,
            rewritten: len,
        })
    }

    /// Write a fresh log holding exactly `records` (one committed group) beside `path`, flush
    /// it and put it in place of `path` atomically (rename, then the directory flushed).
    pub fn rewrite<'r>(
        path: &Path,
        records: impl Iterator<Item = Record<'r>>,
    ) -> std::io::Result<LogFile> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let mut buf = HEADER.to_vec();
        for r in records {
            encode(&r, &mut buf);
        }
        encode(&Record::Commit, &mut buf);
        {
            let mut f = crate::private_files::open(
                &tmp,
                std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true),
            )?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let mut log = LogFile::continue_at(path, buf.len() as u64)?;
        log.rewritten = log.len;
        Ok(log)
    }

    /// Append one group's bytes. On any failure (a full disk) the file is cut back to where
    /// the group started, so that nothing of an unacknowledged write is replayed later; while
    /// it cannot be cut back, nothing more is appended (the bytes after it would be damage).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.uncut {
            self.file.set_len(self.len)?;
            self.uncut = false;
        }
        let mut written = self.file.write_all(bytes);
        if written.is_ok() && self.unsynced + bytes.len() as u64 >= SYNC_EVERY {
            written = self.file.sync_data();
        }
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(
                    file = %self.path.display(), error = %cut,
                    "cannot cut a failed write off the store log; writes are refused until it \
                     can be (a restart drops it too)"
                );
                self.uncut = true;
            }
            return Err(e);
        }
        self.len += bytes.len() as u64;
        self.unsynced = match self.unsynced + bytes.len() as u64 >= SYNC_EVERY {
            true => 0,
            false => self.unsynced + bytes.len() as u64,
        };
        Ok(())
    }

    /// Whether the log has grown enough past its last rewrite to be rewritten.
    pub fn wants_rewrite(&self) -> bool {
        self.len > 2 * self.rewritten + (8 << 20)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush to disk (at shutdown).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
