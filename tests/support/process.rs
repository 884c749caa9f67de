//! The one way the tests start the binary. [`bin`] builds the command (environment of a
//! terminal, not of systemd); [`spawn`] starts a long-running child behind a [`Spawned`] guard
//! that kills and reaps it when dropped, so a failed assertion leaves no server or daemon
//! behind. One-shot runs use `bin().….output()`, which waits for the child itself.

use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_isymphony-sync");

/// The binary, with the systemd variables of the test runner's environment removed (a test
/// that wants them sets them again).
pub fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM");
    cmd
}

/// The binary on `--config config` followed by `args` (each caller adds its own environment).
pub fn with_config(config: &Path, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.arg("--config").arg(config).args(args);
    cmd
}

/// What a finished run left: its exit code (None when a signal ended it) and its output,
/// decoded lossily (a test reads it as text).
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn of(out: std::process::Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The exit code, -1 when a signal ended the run.
    pub fn code_or_signal(&self) -> i32 {
        self.code.unwrap_or(-1)
    }

    /// stdout followed by stderr, for tests that look for a line in either.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `cmd` to its end and collect what it left.
pub fn run(cmd: &mut Command) -> Ran {
    Ran::of(cmd.output().expect("start the isymphony-sync binary"))
}

/// [`run`] on a blocking thread, so that a test's runtime keeps serving the endpoint the
/// binary talks to.
pub async fn run_off_runtime(mut cmd: Command) -> Ran {
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .expect("the blocking run did not panic")
}

/// A running child that is killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Spawned(Option<Child>);

/// Start `cmd` behind a kill-on-drop guard.
pub fn spawn(cmd: &mut Command) -> Spawned {
    Spawned(Some(cmd.spawn().expect("start the isymphony-sync binary")))
}

impl Spawned {
    /// Send `sig` to the child.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with the pid of our own (not yet reaped) child.
        unsafe {
            libc::kill(self.id() as i32, sig);
        }
    }

    /// Wait for the exit and collect the piped output (the guard is used up).
    pub fn wait_with_output(mut self) -> std::process::Output {
        let child = self.0.take().expect("the child is still held");
        child.wait_with_output().expect("wait for our child")
    }

    /// Wait up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait().expect("try_wait on our child") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("the child is still held")
    }
}

impl DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is still held")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Write `config.toml` into `dir` for [`spawn_server`]: the endpoint alone, on a loopback
/// port 0, with its data in `data`. Its path.
pub fn write_serve_config(dir: &Path, data: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
        data.display()
    );
    std::fs::write(&path, text).expect("write the server's config");
    path
}

/// Start the binary in `--serve-only` mode and wait for the line that says where it listens.
pub fn spawn_server(config: &Path) -> (Spawned, String) {
    let mut child = spawn(
        bin()
            .args(["--serve-only", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://127.0.0.1:") {
                let url: String = line[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
                    .collect();
                let _ = tx.send(url);
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not report its address");
    (child, base)
}

/// Lift this process's soft open-file limit (to the hard limit, at most 8192), for tests that
/// hold 1,000+ sockets themselves. Process-wide: all tests share the one test binary, so the
/// tests and children started after it keep the raised soft limit (a test that needs a small
/// limit sets its child's own, as agent::limits does).
pub fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}
