use super::*;

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn variants_and_includes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(
        dir.path(),
        "sub/extra.conf",
        b"[other]\r\n300 = 1,Jos\xe9 M\xfcller,jose@x.org\r\n",
    );
    let main = write(
        dir.path(),
        "voicemail.conf",
        "[general]\nserveremail=vm@x.org\n; comment\n\n[default]\r\n\
         100 => 1234,Alice,a@x.org|b@x.org,,attach=yes|saycid=no\r\n\
         101=1,Bob ; trailing comment\n102 = 1,Carol,c@x.org,p@x.org\n\
         #include \"sub/extra.conf\"\n#tryinclude optional.conf\n",
    );
    let vm = read_voicemail_conf(&main);
    assert_eq!(vm.unknown, None);
    assert!(vm.warnings.is_empty(), "{:?}", vm.warnings);
    let boxes = vm.mailboxes;
    assert_eq!(boxes.len(), 4, "{boxes:?}");
    assert_eq!(boxes[0].emails, vec!["a@x.org", "b@x.org"]);
    assert!(boxes[1].emails.is_empty());
    assert_eq!(boxes[2].emails, vec!["c@x.org"]);
    assert_eq!(boxes[3].context, "other");
    assert_eq!(boxes[3].name, "José Müller", "latin1 read as Windows-1252");
}

#[test]
fn a_missing_include_names_the_file_and_keeps_the_mailboxes_read() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "voicemail.conf",
        "[default]\n100 => 1,A,a@x\n#include missing.conf\n",
    );
    let vm = read_voicemail_conf(&main);
    assert_eq!(vm.unknown, None, "the file itself was read");
    let why = vm.missing_include.expect("the include is named");
    assert!(
        why.contains("line 3") && why.contains("missing.conf"),
        "{why}"
    );
    assert!(why.contains("mailboxes it defines are unknown"), "{why}");
    assert!(!vm.error, "a warning, not an error");
    assert_eq!(vm.mailboxes.len(), 1, "the mailboxes read are known");
}

#[test]
fn missing_unreadable_and_empty_files_are_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let vm = read_voicemail_conf(&dir.path().join("nope.conf"));
    assert!(vm.unknown.unwrap().contains("nope.conf"));
    for empty in ["", " \n\n"] {
        let p = write(dir.path(), "empty.conf", empty);
        let vm = read_voicemail_conf(&p);
        assert!(vm.unknown.unwrap().contains("is empty"));
        assert!(!vm.error);
    }
    // A directory, and a FIFO (which would block a plain open), are not regular files.
    let vm = read_voicemail_conf(dir.path());
    assert!(vm.unknown.unwrap().contains("not a regular file"));
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let main = write(
        dir.path(),
        "vm.conf",
        "[default]\n1 => 1,A,a@x\n#include fifo\n",
    );
    // An include that cannot be read holds deletions only (issue 18 point 1).
    let vm = read_voicemail_conf(&main);
    assert!(vm.missing_include.unwrap().contains("not a regular file"));
    assert_eq!(vm.mailboxes.len(), 1);
}

#[test]
fn include_loops_through_symlinks_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "voicemail.conf",
        "[default]\n1=1,A,a@x\n#include alias.conf\n#include ./voicemail.conf\n",
    );
    std::os::unix::fs::symlink(&main, dir.path().join("alias.conf")).unwrap();
    let vm = read_voicemail_conf(&main);
    assert_eq!(vm.unknown, None);
    assert_eq!(vm.mailboxes.len(), 1, "read once");
    assert_eq!(vm.warnings.len(), 2, "{:?}", vm.warnings);
    assert!(vm.warnings.iter().all(|w| w.contains("include loop")));
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    // A chain of 17 includes below the top file: one more than allowed.
    for i in 0..=MAX_INCLUDE_DEPTH + 1 {
        write(
            dir.path(),
            &format!("f{i}.conf"),
            format!("[default]\n{i} => 1,N,n{i}@x\n#include f{}.conf\n", i + 1),
        );
    }
    let vm = read_voicemail_conf(&dir.path().join("f0.conf"));
    let why = vm.unknown.expect("too deep");
    assert!(vm.error && why.contains("deeper than 16"), "{why}");
    assert!(vm.mailboxes.is_empty());
    // Exactly 16 levels are fine.
    write(dir.path(), "f16.conf", "[default]\n16 => 1,N,n@x\n");
    let vm = read_voicemail_conf(&dir.path().join("f0.conf"));
    assert_eq!(vm.unknown, None);
    assert_eq!(vm.mailboxes.len(), MAX_INCLUDE_DEPTH + 1);
}

#[test]
fn total_bytes_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let line = "; padding padding padding padding padding padding padding padding padding\n";
    let half = line.repeat((MAX_TOTAL_BYTES as usize / 2) / line.len() + 1);
    write(dir.path(), "a.conf", &half);
    write(dir.path(), "b.conf", &half);
    let main = write(
        dir.path(),
        "voicemail.conf",
        "[default]\n1 => 1,A,a@x\n#include a.conf\n#include b.conf\n",
    );
    let vm = read_voicemail_conf(&main);
    let why = vm.unknown.expect("too big");
    assert!(
        vm.error && why.contains("16 MiB") && why.contains("b.conf"),
        "{why}"
    );
}

#[test]
fn mailboxes_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[default]\n");
    for i in 0..=MAX_MAILBOXES {
        text.push_str(&format!("{i}=1\n"));
    }
    let vm = read_voicemail_conf(&write(dir.path(), "voicemail.conf", &text));
    let why = vm.unknown.expect("too many");
    assert!(vm.error && why.contains("100000 mailboxes"), "{why}");
    // Exactly the limit is accepted.
    let cut = text.rfind(&format!("{MAX_MAILBOXES}=1")).unwrap();
    let vm = read_voicemail_conf(&write(dir.path(), "voicemail.conf", &text[..cut]));
    assert_eq!(vm.unknown, None);
    assert_eq!(vm.mailboxes.len(), MAX_MAILBOXES);
}

#[test]
fn binary_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "greeting.wav", b"RIFF\x00\x00WAVEfmt ");
    let main = write(
        dir.path(),
        "voicemail.conf",
        "[default]\n1 => 1,A,a@x\n#include greeting.wav\n",
    );
    let vm = read_voicemail_conf(&main);
    let why = vm.unknown.expect("not text");
    assert!(
        vm.error && why.contains("greeting.wav is not a text file"),
        "{why}"
    );
    let vm = read_voicemail_conf(&write(
        dir.path(),
        "x.conf",
        b"[default]\n1 => 1,\x81,a@x\n",
    ));
    assert!(vm.unknown.unwrap().contains("not Windows-1252"));
}

#[tokio::test]
async fn a_file_caught_mid_write_is_read_again_until_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "voicemail.conf", "[default]\n1 => 1,A,");
    let p = path.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(&p, "[default]\n1 => 1,A,a@x\n").unwrap();
    });
    let vm = read_stable(&path, Duration::from_millis(100)).await;
    writer.join().unwrap();
    assert_eq!(vm.unknown, None);
    assert_eq!(vm.mailboxes[0].emails, ["a@x"], "the complete file");
    // Unchanged since the accepted read: no second read is needed.
    let t = std::time::Instant::now();
    let again = read_stable(&path, Duration::from_secs(5)).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(again.mailboxes, vm.mailboxes);
}

#[tokio::test]
async fn a_file_that_never_settles_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "voicemail.conf", "[default]\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, s) = (path.clone(), stop.clone());
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            // Replaced by rename: never empty, always different.
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, format!("[default]\n{i} => 1,A,a@x\n")).unwrap();
            std::fs::rename(&tmp, &p).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    // Reads 200 ms apart (4 s in all): on a loaded machine the writer thread may not run for
    // 20 ms, and two reads would then agree.
    let vm = read_stable(&path, Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let why = vm.unknown.expect("never settled");
    assert!(why.contains("kept changing"), "{why}");
    assert!(vm.mailboxes.is_empty());
}

/// A file nobody touched for longer than the debounce cannot be mid-write: the first read of
/// a process (a one-shot run) takes it without waiting; a file written just now still waits.
#[tokio::test(start_paused = true)]
async fn an_untouched_file_is_taken_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let debounce = Duration::from_secs(5);
    let old = write(dir.path(), "old.conf", "[default]\n1001 => 1,A,a@x\n");
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let t = tokio::time::Instant::now();
    let vm = read_stable(&old, debounce).await;
    assert_eq!(t.elapsed(), Duration::ZERO, "no wait for a settled file");
    assert_eq!(vm.mailboxes.len(), 1);

    let new = write(dir.path(), "new.conf", "[default]\n1002 => 1,B,b@x\n");
    let t = tokio::time::Instant::now();
    let vm = read_stable(&new, debounce).await;
    assert_eq!(
        t.elapsed(),
        debounce,
        "a file written just now is read twice"
    );
    assert_eq!(vm.mailboxes.len(), 1);
}
