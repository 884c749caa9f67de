//! The errors of configuration text and the parsing of duration settings: a leaf that the
//! sections in [`super`] and its child files ([`super::faults`], [`super::live`]) all use
//! without importing [`super`] back.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Why configuration text is not a valid configuration; the message names the key and never
/// quotes a value (it may be a password).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not TOML, or a key, type or value the configuration does not have.
    #[error("{message}")]
    Toml {
        message: String,
        source: Box<toml::de::Error>,
    },
    /// A rule between settings (e.g. a TLS certificate without its key).
    #[error("{0}")]
    Rule(String),
}

impl From<String> for ParseError {
    fn from(message: String) -> ParseError {
        ParseError::Rule(message)
    }
}

impl From<&str> for ParseError {
    fn from(message: &str) -> ParseError {
        ParseError::Rule(message.to_string())
    }
}

/// A duration setting that is not one (`300ms`, `1s`, `10m`, `2h` or seconds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?} (examples: 300ms, 1s, 10m)")]
    Number(String),
    #[error("invalid duration unit in {0:?} (use ms, s, m or h)")]
    Unit(String),
    #[error("invalid duration {0:?}")]
    OutOfRange(String),
}

/// Parse `300ms`, `1s`, `1.5s`, `10m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| DurationError::Number(text.to_string()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(DurationError::Unit(text.to_string())),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(DurationError::OutOfRange(text.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationRepr {
    Num(f64),
    Text(String),
}

pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match DurationRepr::deserialize(d)? {
        DurationRepr::Num(n) => parse_duration(&n.to_string()),
        DurationRepr::Text(t) => parse_duration(&t),
    }
    .map_err(serde::de::Error::custom)
}

pub(super) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}
