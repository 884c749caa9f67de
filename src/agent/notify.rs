//! systemd's notify protocol (`sd_notify`), spoken by hand over a unix datagram socket.
//!
//! systemd passes `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) to a
//! `Type=notify` service. We send `READY=1` once the configuration is loaded and the endpoint
//! listens, `STATUS=<one line>` after each pass, `WATCHDOG=1` at half of `$WATCHDOG_USEC`, and
//! `STOPPING=1` on shutdown. Outside systemd there is no socket and every call is a no-op.
//!
//! Why by hand and not the `sd-notify` crate (0.5.0, as read): it opens and connects
//! a new socket for every message with a blocking send, so a service manager that stops
//! reading would stall the runtime thread sending the watchdog ping; and it connects to
//! `$NOTIFY_SOCKET` as a path, so the abstract sockets (`@name`) that sd_notify(3) allows
//! fail. This file is one non-blocking socket, both address kinds, tested against
//! a real socket of each kind; the protocol is the few `KEY=VALUE` lines below.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub(crate) struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET`, if any.
    pub(crate) fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let value = value.to_str()?.to_string();
        match Notifier::connect(&value) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(socket = %value, error = %e, "cannot use NOTIFY_SOCKET");
                None
            }
        }
    }

    /// A notifier for the socket named like `$NOTIFY_SOCKET`: a filesystem path, or `@name`
    /// for a Linux abstract socket.
    pub(crate) fn connect(socket: &str) -> io::Result<Notifier> {
        let addr = if let Some(name) = socket.strip_prefix('@') {
            abstract_addr(name.as_bytes())?
        } else if socket.starts_with('/') {
            SocketAddr::from_pathname(socket)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET must be an absolute path or start with '@'",
            ));
        };
        let sock = UnixDatagram::unbound()?;
        // A slow or gone service manager must never block the agent.
        sock.set_nonblocking(true)?;
        Ok(Notifier { sock, addr })
    }

    /// Send raw assignments (`KEY=VALUE` lines).
    pub(crate) fn send(&self, message: &str) -> io::Result<()> {
        self.sock.send_to_addr(message.as_bytes(), &self.addr)?;
        Ok(())
    }

    /// `READY=1`, with a first status line.
    pub(crate) fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=…` (newlines would start a new assignment, so they become spaces).
    pub(crate) fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: "still alive".
    pub(crate) fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1`: shutdown has begun.
    pub(crate) fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when the watchdog is meant for
/// this process (`$WATCHDOG_PID` absent or equal to our pid).
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] on explicit values (testable without touching the environment).
pub(crate) fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != my_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn path_socket_gets_ready_status_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::connect(path.to_str().unwrap()).unwrap();
        n.ready("loaded\nlistening").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=loaded listening");
        n.status("pass ok: 3 created").unwrap();
        assert_eq!(recv(&server), "STATUS=pass ok: 3 created");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping("bye").unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=bye");
    }

    #[test]
    fn abstract_socket() {
        let name = format!("isymphony-sync-test-{}-{}", std::process::id(), line!());
        let addr = abstract_addr(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::connect(&format!("@{name}")).unwrap();
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn relative_socket_is_refused() {
        assert!(Notifier::connect("notify.sock").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_and_honours_pid() {
        assert_eq!(
            watchdog_interval_from(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, 7), None);
    }
}
