//! Files and directories the agent creates are private, whatever the umask (issue 11 point 9):
//! files 0600, directories 0700. The store, the agent state and exported snapshots hold
//! password hashes and PBX data. A data directory that others can read is only warned about:
//! the administrator may have reasons, and changing it silently could break their setup.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and any missing parents as 0700 (set explicitly: the umask could take bits
/// away, e.g. 0777 would leave 0000). An existing directory is left as it is; callers warn
/// about one others can read with [`warn_if_open`], once per start.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(d) {
            Ok(()) => std::fs::set_permissions(d, std::fs::Permissions::from_mode(DIR_MODE))?,
            // Another process made it meanwhile: fine.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Warn when users other than the owner and group may read or enter `dir`.
pub fn warn_if_open(dir: &Path, what: &str) {
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = %format!("{mode:04o}"),
                "{what} {} can be read by other users; it holds password hashes: run \
                 `chmod 700 {}`",
                dir.display(),
                dir.display()
            );
        }
    }
}

/// Make an existing file 0600 (a no-op for a missing one). Used on the files SQLite creates
/// next to a database (its -wal and -shm follow the database's mode when they are created,
/// but an older file keeps whatever it had).
pub fn tighten(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o777 != FILE_MODE => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A database file and the files SQLite keeps beside it, all 0600. Creates the database file
/// (empty) when missing, so SQLite opens a file that is already private.
pub fn prepare_db(db: &Path) -> io::Result<()> {
    drop(open(db, OpenOptions::new().create(true).append(true))?);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        tighten(Path::new(&p))?;
    }
    Ok(())
}

/// Open with `opts` (mode 0600 when it creates the file) and make the file 0600.
pub fn open(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    let f = opts.mode(FILE_MODE).open(path)?;
    if f.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The umask cases run the real binary under umask 000 (tests/testsuite/server/store_integrity.rs): a
    // umask change here would race the other tests of this binary.
    #[test]
    fn new_dirs_are_0700_and_db_files_0600_even_when_they_existed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        create_dir(&deep).unwrap();
        for d in [dir.path().join("a"), deep.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, DIR_MODE, "{}", d.display());
        }
        let db = deep.join("x.sqlite");
        let wal = deep.join("x.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_db(&db).unwrap();
        for f in [&db, &wal] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, FILE_MODE, "{}", f.display());
        }
    }
}
