//! A private, real Asterisk per test: its own short directory under /tmp,
//! a free AMI port (retried when taken), the project's config templates
//! (`scripts/asterisk/conf`, rendered by `scripts/asterisk/start-instance.sh`), killed and
//! removed on drop. The Asterisk build is found at `$ASTERISK_PREFIX`, `/opt/asterisk-test`
//! or the cache prefix `scripts/test.sh` builds into; with none, the test FAILS saying what
//! to set (never skips). Also a minimal AMI client for checking effects through Asterisk
//! itself (`DBGet`, `QueueStatus`, `CoreShowChannels`, `ConfbridgeList`, …), and a recording
//! proxy in front of AMI ([`Recorder`]).

use isymphony_sync::live::ami::{ActionBuilder, AmiSettings, Conn, Message};
use isymphony_sync::secret::Secret;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const USER: &str = "isym";
pub const SECRET: &str = "s3cret-ami";

/// The cache prefix `scripts/test.sh` builds into when no Asterisk is installed.
pub fn cache_prefix() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp/.cache"));
    base.join("isymphony-sync/asterisk-22")
}

/// Where the test Asterisk is installed; panics (fails the test) naming what to set.
pub fn prefix() -> PathBuf {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("ASTERISK_PREFIX") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(PathBuf::from("/opt/asterisk-test"));
    candidates.push(cache_prefix());
    for c in candidates {
        if c.join("sbin/asterisk").is_file() {
            return c;
        }
        tried.push(c.display().to_string());
    }
    panic!(
        "no test Asterisk found (tried {}): run scripts/test.sh, which builds one from \
         $ASTERISK_TARBALL or ../shared/vendor/asterisk-22.10.1.tar.xz, or set ASTERISK_PREFIX \
         to an install made by scripts/asterisk/build.sh",
        tried.join(", ")
    );
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One running Asterisk.
pub struct Asterisk {
    pub dir: PathBuf,
    pub port: u16,
    pub prefix: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Asterisk {
    /// Start a fresh instance (about 0.2 s).
    pub fn start() -> Asterisk {
        let prefix = prefix();
        // Short: DIR/run/asterisk.ctl must stay under 108 bytes.
        let tmp = tempfile::Builder::new()
            .prefix("ast-")
            .tempdir_in("/tmp")
            .expect("a directory under /tmp");
        let dir = tmp.path().to_path_buf();
        let mut a = Asterisk {
            dir,
            port: 0,
            prefix,
            _tmp: tmp,
        };
        a.launch(None);
        a
    }

    /// Run start-instance.sh; a taken port (exit 3) is retried with another one unless
    /// `port` is fixed.
    fn launch(&mut self, port: Option<u16>) {
        for attempt in 0..20 {
            let p = port.unwrap_or_else(free_port);
            let out = Command::new("bash")
                .arg(repo().join("scripts/asterisk/start-instance.sh"))
                .arg(&self.dir)
                .arg(p.to_string())
                .arg(USER)
                .arg(SECRET)
                .env("ASTERISK_PREFIX", &self.prefix)
                .output()
                .expect("run scripts/asterisk/start-instance.sh");
            match out.status.code() {
                Some(0) => {
                    self.port = p;
                    return;
                }
                Some(3) => {
                    eprintln!("AMI port {p} taken (attempt {attempt}); retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                _ => panic!(
                    "Asterisk did not start: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        panic!("no free AMI port after 20 attempts");
    }

    pub fn settings(&self) -> AmiSettings {
        self.settings_with(SECRET)
    }

    pub fn settings_with(&self, password: &str) -> AmiSettings {
        AmiSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            username: USER.into(),
            password: Secret::new(password),
        }
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("asterisk.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stop it (SIGTERM, SIGKILL after 5 s) and wait until it is gone.
    pub fn stop(&self) {
        let Some(pid) = self.pid() else { return };
        // SAFETY: kill(2) on the pid this instance wrote; signal 0 only probes.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while unsafe { libc::kill(pid, 0) } == 0 {
            if Instant::now() > deadline {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.dir.join("asterisk.pid"));
    }

    /// Stop and start again on the same port and directory (the AstDB survives, as on a
    /// real host; the queue members and channels do not).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.launch(Some(port));
    }

    /// Start again after [`Asterisk::stop`], on the same port and directory.
    pub fn start_again(&mut self) {
        let port = self.port;
        self.launch(Some(port));
    }

    /// The manager log lines Asterisk wrote (`full.log`).
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/full.log")).unwrap_or_default()
    }
}

impl Drop for Asterisk {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An independent AMI connection for checking what Asterisk itself says.
pub struct Probe {
    conn: Conn,
}

/// A reply: the response and any list events (up to the `…Complete` one, excluded).
pub struct Answer {
    pub response: Message,
    pub events: Vec<Message>,
}

impl Probe {
    pub async fn open(a: &Asterisk) -> Probe {
        let conn = Conn::open(&a.settings(), "off")
            .await
            .expect("probe login to the test Asterisk");
        Probe { conn }
    }

    pub async fn ask(&mut self, action: ActionBuilder) -> Answer {
        let id = self
            .conn
            .send(action)
            .await
            .expect("probe send")
            .to_string();
        let mut ans = Answer {
            response: Message::default(),
            events: Vec::new(),
        };
        let deadline = Duration::from_secs(10);
        tokio::time::timeout(deadline, async {
            let mut listing = false;
            loop {
                let m = self.conn.read().await.expect("probe read");
                if m.action_id() != Some(id.as_str()) {
                    continue;
                }
                if m.response().is_some() && !listing {
                    listing = m.str("EventList").eq_ignore_ascii_case("start");
                    ans.response = m;
                    if !listing {
                        return;
                    }
                } else if m.str("EventList").eq_ignore_ascii_case("Complete") {
                    return;
                } else {
                    ans.events.push(m);
                }
            }
        })
        .await
        .expect("the test Asterisk answers the probe");
        ans
    }
}

/// A TCP proxy in front of Asterisk's AMI port that records every byte its clients (the
/// backend) write; every connection is forwarded to `upstream`.
pub struct Recorder {
    pub port: u16,
    written: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Recorder {
    pub async fn start(upstream: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let written = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let rec = written.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    });
                    let mut buf = vec![0u8; 16384];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        rec.lock().expect("lock").extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { port, written }
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.written.lock().expect("lock").clone()
    }

    /// The actions written so far: the value of every line that starts an action
    /// (`Action:`, case-insensitive, as Asterisk reads it), in order, Pings left out (the
    /// backend's keepalive comes on its own clock).
    pub fn actions(&self) -> Vec<String> {
        let bytes = self.bytes();
        let text = String::from_utf8_lossy(&bytes);
        text.split(['\r', '\n'])
            .filter_map(|line| {
                let (k, val) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("action")
                    .then(|| val.trim().to_string())
            })
            .filter(|a| !a.eq_ignore_ascii_case("ping"))
            .collect()
    }
}
