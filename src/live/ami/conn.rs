//! One AMI connection: TCP, the banner, `Login`, then bounded reads of [`Message`]s and
//! writes of [`ActionBuilder`]s. No reconnection here: the owner (the Asterisk backend's
//! supervisor) decides when to try again.

use super::codec::{ActionBuilder, CodecError, Decoder, Message, UnsafeValue};
use crate::secret::Secret;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Where and as whom to log in. `Debug` shows `***` for the password.
#[derive(Clone, PartialEq)]
pub struct AmiSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
}

impl fmt::Debug for AmiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl AmiSettings {
    /// `user@host:port`, for messages (never the password).
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.username, self.host, self.port)
    }
}

/// Why a connection failed or ended. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmiError {
    #[error("cannot reach AMI at {target}: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("AMI login as {target} refused: {message} (check [live] ami_username/ami_password, or FreePBX's AMPMGRUSER/AMPMGRPASS and manager.conf)")]
    LoginRefused { target: String, message: String },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the AMI connection was closed by Asterisk")]
    Closed,
    #[error("AMI connection lost: {0}")]
    Io(String),
    #[error("Asterisk did not answer {0} in time; closing the connection")]
    Timeout(&'static str),
    #[error(transparent)]
    Unsafe(#[from] UnsafeValue),
    #[error("{0}")]
    Protocol(String),
}

/// How long connect + banner + login may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in AMI connection.
pub struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    decoder: Decoder,
    inbox: VecDeque<Message>,
    buf: Box<[u8]>,
    next_id: u64,
    banner: String,
}

impl Conn {
    /// Connect, read the banner and log in with `events` (an AMI event mask such as
    /// `call,agent,system`), all within [`LOGIN_TIMEOUT`].
    pub async fn open(s: &AmiSettings, events: &'static str) -> Result<Conn, AmiError> {
        match tokio::time::timeout(LOGIN_TIMEOUT, Self::open_inner(s, events)).await {
            Ok(r) => r,
            Err(_) => Err(AmiError::Unreachable {
                target: s.describe(),
                detail: format!("no login answer within {} s", LOGIN_TIMEOUT.as_secs()),
            }),
        }
    }

    async fn open_inner(s: &AmiSettings, events: &'static str) -> Result<Conn, AmiError> {
        let stream = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| AmiError::Unreachable {
                target: s.describe(),
                detail: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let mut conn = Conn {
            reader,
            writer,
            decoder: Decoder::new(),
            inbox: VecDeque::new(),
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
            next_id: 1,
            banner: String::new(),
        };
        let login = ActionBuilder::new("Login")
            .credential("Username", &Secret::new(s.username.clone()))
            .credential("Secret", &s.password)
            .constant("Events", events);
        let id = conn.send(login).await?;
        loop {
            let m = conn.read().await?;
            if m.action_id() != Some(id.to_string().as_str()) {
                continue;
            }
            if m.response() == Some("Success") {
                conn.banner = conn.decoder.banner().unwrap_or_default().to_string();
                return Ok(conn);
            }
            return Err(AmiError::LoginRefused {
                target: s.describe(),
                message: m.get("Message").unwrap_or("no reason given").to_string(),
            });
        }
    }

    /// The banner, e.g. `Asterisk Call Manager/11.0.0`.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// The next message. Cancel-safe (no message is lost if the future is dropped).
    pub async fn read(&mut self) -> Result<Message, AmiError> {
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            let n = self
                .reader
                .read(&mut self.buf)
                .await
                .map_err(|e| AmiError::Io(e.to_string()))?;
            if n == 0 {
                return Err(AmiError::Closed);
            }
            let inbox = &mut self.inbox;
            self.decoder.feed(&self.buf[..n], |m| inbox.push_back(m))?;
        }
    }

    /// A message already read and decoded, without waiting.
    pub fn buffered(&mut self) -> Option<Message> {
        self.inbox.pop_front()
    }

    /// Write `action` with a fresh `ActionID`, returned.
    pub async fn send(&mut self, action: ActionBuilder) -> Result<u64, AmiError> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = action.finish(id)?;
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| AmiError::Io(e.to_string()))?;
        Ok(id)
    }
}
