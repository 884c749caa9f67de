//! Reading a SQLite WAL file the way SQLite's recovery does (https://sqlite.org/fileformat.html
//! §4), to count what recovery would silently drop.
//!
//! Recovery replays frames while each carries the header's salts and a valid running
//! checksum, up to the last commit frame; it stops at the first frame that does not. Frames
//! of an older WAL generation (other salts) are leftovers and harmless. So: a frame with the
//! current salts that fails its checksum and is *followed* by more frames with the current
//! salts means writes after it (committed ones, possibly) would be lost; a bad frame at the
//! very end is a write cut short by a killed process.
//!
//! Not every such frame is damage. A transaction that failed half-way (a full disk) leaves the
//! frames it did write; the next commit overwrites them from the same place, and when it is
//! shorter, the rest stay behind it, chained to frames that are gone. Recovery drops them, and
//! rightly: they were never committed. So frames after the break lose committed writes only
//! when one of them is a commit frame that is intact in itself (its checksum holds from the
//! frame before it, as it did when it was written), or when the bad frame is itself a commit
//! frame with frames after it. A flipped byte inside committed frames always shows one of
//! the two: the transaction it hits ends in its commit frame.

use std::path::{Path, PathBuf};

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// What the WAL holds (for the message and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frames {
    /// Frames of the current generation (the header's salts).
    pub current: u64,
    /// Of those, frames recovery replays (valid chain up to the last commit frame).
    pub replayed: u64,
    /// Frames of the current generation after the first bad one.
    pub after_damage: u64,
    /// Of those, commit frames intact in themselves (their checksum holds from the frame
    /// before them), plus the bad frame itself when it is a commit frame: committed writes
    /// recovery would drop. Zero: only stale frames of failed transactions follow.
    pub commits_after_damage: u64,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `s`.
fn checksum(big_endian: bool, data: &[u8], mut s: (u32, u32)) -> (u32, u32) {
    for w in data.chunks_exact(8) {
        let word = |i: usize| {
            let b = [w[i], w[i + 1], w[i + 2], w[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s.0 = s.0.wrapping_add(word(0)).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(4)).wrapping_add(s.0);
    }
    s
}

/// Parse a WAL image. None: no usable header (SQLite then ignores the whole file).
pub fn frames(wal: &[u8]) -> Option<Frames> {
    if wal.len() < HEADER {
        return None;
    }
    let magic = be32(wal, 0);
    if magic & !1 != 0x377f_0682 {
        return None;
    }
    let big = magic & 1 == 1;
    let page = be32(wal, 8) as usize;
    if !(512..=65536).contains(&page) || !page.is_power_of_two() {
        return None;
    }
    if checksum(big, &wal[..24], (0, 0)) != (be32(wal, 24), be32(wal, 28)) {
        return None;
    }
    let salts = (be32(wal, 16), be32(wal, 20));
    let mut sum = (be32(wal, 24), be32(wal, 28));
    let mut out = Frames::default();
    let (mut chain_ok, mut valid) = (true, 0u64);
    let mut bad_commit = false;
    for frame in wal[HEADER..].chunks_exact(FRAME_HEADER + page) {
        if (be32(frame, 8), be32(frame, 12)) != salts {
            continue;
        }
        out.current += 1;
        let stored = (be32(frame, 16), be32(frame, 20));
        let s = checksum(big, &frame[..8], sum);
        let s = checksum(big, &frame[FRAME_HEADER..], s);
        let commit = be32(frame, 4) != 0;
        // Past the break, `sum` follows the stored checksums: each frame is checked against
        // the frame before it, as it was when it was written.
        sum = stored;
        if !chain_ok {
            out.after_damage += 1;
            if commit && s == stored {
                out.commits_after_damage += 1;
            }
            continue;
        }
        if s != stored {
            chain_ok = false;
            bad_commit = commit;
            continue;
        }
        valid += 1;
        if commit {
            out.replayed = valid;
        }
    }
    if bad_commit && out.after_damage > 0 {
        out.commits_after_damage += 1;
    }
    Some(out)
}

/// Why recovery of a WAL would lose committed writes (or it cannot be read).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot read its WAL {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "its WAL {} has a damaged frame followed by {after_damage} more frames of the same \
         generation ({current} in all); SQLite would replay {replayed} frames (up to the last \
         good commit) and silently drop the rest, committed writes among them",
        path.display()
    )]
    DamagedFrame {
        path: PathBuf,
        after_damage: u64,
        current: u64,
        replayed: u64,
    },
    #[error("its WAL {} ({len} bytes) has no valid header; SQLite would ignore all of it", path.display())]
    NoHeader { path: PathBuf, len: usize },
}

/// Ok when recovery of the WAL at `path` (if any) would drop nothing but an unfinished tail.
pub fn check(path: &Path) -> Result<(), WalError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(WalError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let has_frames = data.len() >= HEADER + FRAME_HEADER + 512;
    match frames(&data) {
        Some(f) if f.commits_after_damage > 0 => Err(WalError::DamagedFrame {
            path: path.to_path_buf(),
            after_damage: f.after_damage,
            current: f.current,
            replayed: f.replayed,
        }),
        Some(f) => {
            if f.after_damage > 0 {
                tracing::info!(
                    "WAL {}: {} frames after the last commit belong to a transaction that \
                     failed or was rolled back (a full disk, for example); SQLite drops them \
                     and the store starts",
                    path.display(),
                    f.after_damage + 1
                );
            }
            Ok(())
        }
        // A WAL that is all zeros is one SQLite reset; anything else without a valid header
        // is damage that would make SQLite ignore every frame in it.
        None if has_frames && data.iter().any(|&b| b != 0) => Err(WalError::NoHeader {
            path: path.to_path_buf(),
            len: data.len(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real WAL: five commits by SQLite, copied while the connection is open (as a killed
    /// process leaves it).
    fn wal_image() -> (Vec<u8>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT);")
            .unwrap();
        for i in 0..5 {
            c.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>900}")])
                .unwrap();
        }
        let bytes = std::fs::read(dir.path().join("x.db-wal")).unwrap();
        let page = be32(&bytes, 8) as usize;
        (bytes, page)
    }

    #[test]
    fn an_intact_wal_is_replayed_whole() {
        let (wal, _) = wal_image();
        let f = frames(&wal).unwrap();
        assert!(f.current >= 6, "{f:?}");
        assert_eq!((f.replayed, f.after_damage), (f.current, 0));
        assert!(check_bytes(&wal).is_ok());
    }

    #[test]
    fn a_bad_last_frame_is_an_unfinished_write_but_a_bad_middle_frame_is_damage() {
        let (wal, page) = wal_image();
        let n = (wal.len() - HEADER) / (FRAME_HEADER + page);
        let mut tail = wal.clone();
        tail[HEADER + (n - 1) * (FRAME_HEADER + page) + FRAME_HEADER + 7] ^= 1;
        let f = frames(&tail).unwrap();
        assert_eq!(f.after_damage, 0, "{f:?}");
        assert!(f.replayed < f.current);
        let mut mid = wal.clone();
        mid[HEADER + 2 * (FRAME_HEADER + page) + FRAME_HEADER + 7] ^= 1;
        let f = frames(&mid).unwrap();
        assert_eq!(f.after_damage as usize, n - 3, "{f:?}");
        assert!(check_bytes(&mid)
            .unwrap_err()
            .to_string()
            .contains("damaged frame"));
        // A header that fails its checksum makes SQLite ignore the whole file.
        let mut head = wal;
        head[20] ^= 1;
        assert!(frames(&head).is_none());
        assert!(check_bytes(&head)
            .unwrap_err()
            .to_string()
            .contains("no valid header"));
    }

    /// Frames left by a transaction that never committed, chained to frames that are gone:
    /// the last transaction's commit flag cleared (checksum redone) and its first frame
    /// overwritten, as a shorter later commit overwrites a failed one. Not damage. The same
    /// WAL with a byte flipped inside a committed frame still is.
    #[test]
    fn stale_frames_of_a_failed_transaction_are_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let c = rusqlite::Connection::open(dir.path().join("x.db")).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT);")
            .unwrap();
        for i in 0..3 {
            let rows = (0..4).map(|j| format!("('{i}{j:0>3000}')"));
            let sql = format!(
                "INSERT INTO t VALUES {}",
                rows.collect::<Vec<_>>().join(",")
            );
            c.execute_batch(&sql).unwrap();
        }
        let mut wal = std::fs::read(dir.path().join("x.db-wal")).unwrap();
        let page = be32(&wal, 8) as usize;
        let size = FRAME_HEADER + page;
        let n = (wal.len() - HEADER) / size;
        let at = |i: usize| HEADER + i * size;
        let commits: Vec<usize> = (0..n).filter(|&i| be32(&wal, at(i) + 4) != 0).collect();
        let (last, prev) = (commits[commits.len() - 1], commits[commits.len() - 2]);
        assert!(
            last - prev >= 3,
            "the last transaction has several frames: {commits:?}"
        );
        let intact = wal.clone();
        // The last transaction, uncommitted: clear the commit flag, redo its checksum.
        wal[at(last) + 4..at(last) + 8].fill(0);
        let big = be32(&wal, 0) & 1 == 1;
        let before = (be32(&wal, at(last) - 8), be32(&wal, at(last) - 4));
        let s = checksum(big, &wal[at(last)..at(last) + 8], before);
        let s = checksum(big, &wal[at(last) + FRAME_HEADER..at(last + 1)], s);
        wal[at(last) + 16..at(last) + 20].copy_from_slice(&s.0.to_be_bytes());
        wal[at(last) + 20..at(last) + 24].copy_from_slice(&s.1.to_be_bytes());
        // Its first frame overwritten by something else.
        wal[at(prev + 1) + FRAME_HEADER + 9] ^= 0x20;
        let f = frames(&wal).unwrap();
        assert!(f.after_damage >= 2, "{f:?}");
        assert_eq!(f.commits_after_damage, 0, "{f:?}");
        assert!(check_bytes(&wal).is_ok());
        // A flipped byte inside the committed transaction before it: damage.
        let mut flipped = intact;
        flipped[at(prev - 1) + FRAME_HEADER + 9] ^= 0x20;
        let f = frames(&flipped).unwrap();
        assert!(f.commits_after_damage >= 1, "{f:?}");
        assert!(check_bytes(&flipped).is_err());
    }

    fn check_bytes(b: &[u8]) -> Result<(), WalError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w");
        std::fs::write(&p, b).unwrap();
        check(&p)
    }
}
