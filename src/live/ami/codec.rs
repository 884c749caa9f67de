//! The AMI wire format, both directions, with no I/O.
//!
//! Reading: [`Decoder`] takes bytes as they arrive and yields [`Message`]s (`Key: Value` lines,
//! a blank line ends a message; the first line of a connection is the banner). It is bounded:
//! a line longer than [`MAX_LINE`], a message larger than [`MAX_MESSAGE`] or with more than
//! [`MAX_HEADERS`] headers is an error, after which the caller closes the connection. It never
//! panics, whatever the bytes (fuzzed: `fuzz/fuzz_targets/ami_reader.rs`).
//!
//! Writing: [`ActionBuilder`] writes header names that are `&'static str` constants and values
//! that are [`AmiValue`]s (checked per field, so free of CR/LF) or constants. Nothing else can
//! reach the wire, so no value can end a header early and inject a second action.

use crate::live::value::AmiValue;
use crate::secret::Secret;
use base64::Engine;
use std::fmt;

/// Longest line accepted from Asterisk (bytes, without the line end). Asterisk's own longest
/// lines are channel variables and application data, far below this.
pub const MAX_LINE: usize = 16 * 1024;
/// Largest message accepted (bytes).
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Most headers in one message.
pub const MAX_HEADERS: usize = 1024;

/// Why the reader gave up: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("AMI sent a line longer than {MAX_LINE} bytes; closing the connection")]
    LineTooLong,
    #[error("AMI sent a message larger than {MAX_MESSAGE} bytes; closing the connection")]
    MessageTooLarge,
    #[error("AMI sent a message with more than {MAX_HEADERS} headers; closing the connection")]
    TooManyHeaders,
    #[error("the peer is not an Asterisk manager (banner {0:?})")]
    NotAmi(String),
}

/// One message from Asterisk: a response (`Response:`) or an event (`Event:`), headers in
/// order. Values are as Asterisk sent them (lossy UTF-8), trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// A message with these headers, in order (tests, and callers that build one by hand).
    pub fn from_pairs(h: &[(&str, &str)]) -> Message {
        Message {
            headers: h
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
    /// The first value of `name` (case-insensitive, as AMI header names are).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The value of `name`, or "".
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
    /// The event name, if this is an event.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }
    /// The response (`Success`, `Error`, `Goodbye`, `Follows`), if this is a response.
    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }
    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }
    /// A number header, 0 when absent or not a number.
    pub fn num(&self, name: &str) -> u64 {
        self.str(name).trim().parse().unwrap_or(0)
    }
    /// `1`, `true`, `yes` (AMI uses all three) → true.
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.str(name).to_ascii_lowercase().as_str(),
            "1" | "true" | "yes"
        )
    }
}

/// Incremental, bounded reader of the AMI byte stream.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The line being read (never over [`MAX_LINE`] bytes).
    line: Vec<u8>,
    /// The message being read.
    current: Message,
    current_bytes: usize,
    /// The banner (`Asterisk Call Manager/x.y.z`), once read.
    banner: Option<String>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// The banner line, once it arrived.
    pub fn banner(&self) -> Option<&str> {
        self.banner.as_deref()
    }

    /// Feed `data`; every complete message is passed to `out`, in order. After an error the
    /// decoder must not be used again (the connection is closed).
    pub fn feed(&mut self, data: &[u8], mut out: impl FnMut(Message)) -> Result<(), CodecError> {
        let mut rest = data;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.push_line_bytes(&rest[..i])?;
                    rest = &rest[i + 1..];
                    if let Some(m) = self.end_line()? {
                        out(m);
                    }
                }
                None => {
                    self.push_line_bytes(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        if self.line.len() + bytes.len() > MAX_LINE + 1 {
            return Err(CodecError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// A line ended: add it to the message, or end the message on a blank line.
    fn end_line(&mut self) -> Result<Option<Message>, CodecError> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_LINE {
            return Err(CodecError::LineTooLong);
        }
        let text = String::from_utf8_lossy(&line);
        if self.banner.is_none() {
            if !text.starts_with("Asterisk Call Manager") {
                let shown: String = text.chars().take(80).collect();
                return Err(CodecError::NotAmi(shown));
            }
            self.banner = Some(text.trim().to_string());
            return Ok(None);
        }
        if text.trim().is_empty() {
            if self.current.headers.is_empty() {
                return Ok(None);
            }
            self.current_bytes = 0;
            return Ok(Some(std::mem::take(&mut self.current)));
        }
        self.current_bytes += line.len() + 2;
        if self.current_bytes > MAX_MESSAGE {
            return Err(CodecError::MessageTooLarge);
        }
        if self.current.headers.len() >= MAX_HEADERS {
            return Err(CodecError::TooManyHeaders);
        }
        let (key, value) = match text.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            // Command output without a header name (old `Response: Follows` bodies).
            None => ("Output".to_string(), text.trim().to_string()),
        };
        self.current.headers.push((key, value));
        Ok(None)
    }
}

/// A part of a composed header value: constants, checked values, and checked values encoded
/// in base64 (for Asterisk's `e` option of `PRESENCE_STATE`).
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    Lit(&'static str),
    Val(&'a AmiValue),
    Base64(&'a AmiValue),
}

/// A constant that is not a safe header value (a programming error, refused at run time too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to send the AMI header {0}: its value has a control character")]
pub struct UnsafeValue(pub &'static str);

/// One action on the wire: `Action: <name>`, headers, `ActionID`, blank line. `Debug` never
/// shows the bytes (a Login carries the secret).
pub struct ActionBuilder {
    name: &'static str,
    bytes: Vec<u8>,
    error: Option<UnsafeValue>,
}

impl fmt::Debug for ActionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionBuilder({})", self.name)
    }
}

fn safe(s: &str) -> bool {
    !s.chars().any(|c| c.is_control())
}

impl ActionBuilder {
    pub fn new(action: &'static str) -> ActionBuilder {
        let mut b = ActionBuilder {
            name: action,
            bytes: Vec::with_capacity(256),
            error: None,
        };
        b.raw("Action", action);
        b
    }

    /// The action's name (`Originate`, `QueueAdd`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn raw(&mut self, name: &'static str, value: &str) {
        if !safe(name) || !safe(value) || name.contains(':') {
            self.error.get_or_insert(UnsafeValue(name));
            return;
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b": ");
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// A header whose value was checked by its grammar.
    pub fn value(mut self, name: &'static str, value: &AmiValue) -> Self {
        self.raw(name, value.as_str());
        self
    }

    /// A header with a constant value (`Async: true`, `Priority: 1`).
    pub fn constant(mut self, name: &'static str, value: &'static str) -> Self {
        self.raw(name, value);
        self
    }

    /// A header composed of constants and checked values, e.g.
    /// `Variable: DEVICE_STATE(Custom:DND1001)`.
    pub fn compose(mut self, name: &'static str, pieces: &[Piece<'_>]) -> Self {
        let mut v = String::new();
        for p in pieces {
            match p {
                Piece::Lit(s) => v.push_str(s),
                Piece::Val(a) => v.push_str(a.as_str()),
                Piece::Base64(a) => {
                    v.push_str(&base64::engine::general_purpose::STANDARD.encode(a.as_str()))
                }
            }
        }
        self.raw(name, &v);
        self
    }

    /// A configured credential (the AMI user or secret): refused when it has a control
    /// character; never shown in an error.
    pub fn credential(mut self, name: &'static str, value: &Secret) -> Self {
        self.raw(name, value.expose());
        self
    }

    /// The bytes to write, ending with `ActionID` and the blank line; an error when any value
    /// was unsafe (nothing is sent then).
    pub fn finish(mut self, action_id: u64) -> Result<Vec<u8>, UnsafeValue> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let id = action_id.to_string();
        self.raw("ActionID", &id);
        self.bytes.extend_from_slice(b"\r\n");
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::value::Grammar;

    fn decode_all(data: &[u8]) -> Result<Vec<Message>, CodecError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(data, |m| out.push(m))?;
        Ok(out)
    }

    #[test]
    fn banner_then_messages_in_pieces() {
        let wire = b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n";
        for cut in 0..wire.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.feed(&wire[..cut], |m| out.push(m)).unwrap();
            d.feed(&wire[cut..], |m| out.push(m)).unwrap();
            assert_eq!(out.len(), 2, "cut at {cut}");
            assert_eq!(out[0].response(), Some("Success"));
            assert_eq!(out[0].action_id(), Some("1"));
            assert_eq!(out[1].event(), Some("FullyBooted"));
            assert_eq!(d.banner(), Some("Asterisk Call Manager/11.0.0"));
        }
    }

    #[test]
    fn limits_close_the_connection() {
        let mut long = b"Asterisk Call Manager/11.0.0\r\nEvent: X\r\nData: ".to_vec();
        long.extend(std::iter::repeat(b'a').take(MAX_LINE + 10));
        assert_eq!(decode_all(&long), Err(CodecError::LineTooLong));
        let mut big = b"Asterisk Call Manager/11.0.0\r\n".to_vec();
        for i in 0..MAX_HEADERS + 1 {
            big.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        assert_eq!(decode_all(&big), Err(CodecError::TooManyHeaders));
        assert!(matches!(
            decode_all(b"HTTP/1.1 200 OK\r\n"),
            Err(CodecError::NotAmi(_))
        ));
    }

    #[test]
    fn odd_input_is_tolerated() {
        let m =
            decode_all(b"Asterisk Call Manager/1\nEvent: A\nnocolon\n\xff\xfe: x\n\n\n\n").unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].get("Output"), Some("nocolon"));
    }

    #[test]
    fn writer_takes_checked_values_only() {
        let q = AmiValue::parse("queue", "400", Grammar::Name).unwrap();
        let note = AmiValue::parse("note", "Zurück, 13:30", Grammar::Text);
        assert!(note.is_err(), "a comma is refused by the Text grammar");
        let note = AmiValue::parse("note", "Zurück um 13:30", Grammar::Text).unwrap();
        let bytes = ActionBuilder::new("Setvar")
            .compose(
                "Variable",
                &[
                    Piece::Lit("PRESENCE_STATE(CustomPresence:"),
                    Piece::Val(&q),
                    Piece::Lit(")"),
                ],
            )
            .compose(
                "Value",
                &[Piece::Lit("away,,"), Piece::Base64(&note), Piece::Lit(",e")],
            )
            .finish(7)
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with("Action: Setvar\r\nVariable: PRESENCE_STATE(CustomPresence:400)\r\n")
        );
        assert!(text.ends_with("ActionID: 7\r\n\r\n"));
        assert_eq!(text.matches("\r\n\r\n").count(), 1);
        let bad = ActionBuilder::new("Login").credential("Secret", &Secret::new("a\r\nAction: X"));
        assert_eq!(bad.finish(1), Err(UnsafeValue("Secret")));
    }

    /// A cheap stand-in for the cargo-fuzz target (which needs cargo-fuzz): random AMI-ish
    /// bytes in random splits never panic and stay within the limits.
    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let alphabet = b"Event: Response:ActionID\r\n\r\n:xyz\xff\x00 EventList Complete";
        for _ in 0..600 {
            let len = rng.gen_range(0..4096);
            let mut data = b"Asterisk Call Manager/11.0.0\r\n".to_vec();
            data.extend((0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]));
            let mut d = Decoder::new();
            let mut pos = 0;
            while pos < data.len() {
                let n = rng.gen_range(1..=64).min(data.len() - pos);
                let r = d.feed(&data[pos..pos + n], |m| {
                    assert!(m.headers.len() <= MAX_HEADERS)
                });
                if r.is_err() {
                    break;
                }
                pos += n;
            }
        }
    }
}
