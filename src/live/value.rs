//! Values that may be sent to AMI. AMI is a line protocol (`Header: value\r\n`, a blank line
//! ends an action), so a CR or LF inside a value would end the header and start a second
//! action. Every value an action carries is an [`AmiValue`], which can only be made by
//! [`AmiValue::parse`] against a strict grammar per field; the AMI writer takes nothing else.
//! A refused value is a [`Invalid`] naming the client's field, answered 422.

use std::fmt;

/// The grammar a value must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// A dialplan extension or dialled number: `0-9 A-Z a-z * # + . _ -`, 1–80 characters
    /// (`+15555550123`, `1001`, `*97`, `vmu1001`).
    Exten,
    /// A dialplan context: `A-Z a-z 0-9 _ -`, 1–79 characters (Asterisk's limit).
    Context,
    /// A dial string or queue interface: `A-Z a-z 0-9 / @ . _ : + * # ; -`, 1–200 characters
    /// (`PJSIP/1001`, `Local/1001@from-queue/n`, `hint:1001@ext-local`).
    Device,
    /// A channel name as Asterisk reported it: printable ASCII without space, 1–200.
    Channel,
    /// A queue or conference name: `A-Z a-z 0-9 _ . -`, 1–80 characters.
    Name,
    /// Free text (a member name, a pause reason, a caller-id name): any Unicode but control
    /// characters and `"`, `<`, `>`, `,`, `;`, `|`, 0–80 characters.
    Text,
}

impl Grammar {
    fn max_chars(self) -> usize {
        match self {
            Grammar::Exten | Grammar::Name | Grammar::Text => 80,
            Grammar::Context => 79,
            Grammar::Device | Grammar::Channel => 200,
        }
    }
    fn allows(self, c: char) -> bool {
        match self {
            Grammar::Exten => c.is_ascii_alphanumeric() || "*#+._-".contains(c),
            Grammar::Context => c.is_ascii_alphanumeric() || "_-".contains(c),
            Grammar::Device => c.is_ascii_alphanumeric() || "/@._:+*#;-".contains(c),
            Grammar::Channel => c.is_ascii_graphic(),
            Grammar::Name => c.is_ascii_alphanumeric() || "_.-".contains(c),
            Grammar::Text => !c.is_control() && !"\"<>,;|".contains(c),
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Grammar::Exten => "a number or extension (0-9, A-Z, *, #, +, ., _, -; at most 80)",
            Grammar::Context => "a dialplan context (A-Z, 0-9, _, -; at most 79)",
            Grammar::Device => "a device or interface (A-Z, 0-9, / @ . _ : + * # ; -; at most 200)",
            Grammar::Channel => "a channel name (printable ASCII, no spaces; at most 200)",
            Grammar::Name => "a name (A-Z, 0-9, _, ., -; at most 80)",
            Grammar::Text => {
                "text without control characters or \" < > , ; | (at most 80 characters)"
            }
        }
    }
}

/// A value checked against its [`Grammar`]: safe to write into an AMI header.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AmiValue(String);

/// A client value refused: 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl AmiValue {
    /// Check `value` (the client's field `field`) against `grammar`. Empty is refused except
    /// for [`Grammar::Text`].
    pub fn parse(field: &str, value: &str, grammar: Grammar) -> Result<AmiValue, Invalid> {
        let chars = value.chars().count();
        if chars == 0 && grammar != Grammar::Text {
            return Err(Invalid::new(field, "must not be blank"));
        }
        if chars > grammar.max_chars() || !value.chars().all(|c| grammar.allows(c)) {
            return Err(Invalid::new(
                field,
                format!("must be {}", grammar.describe()),
            ));
        }
        Ok(AmiValue(value.to_string()))
    }
    /// A number (penalties, timeouts): digits only, so always safe.
    pub fn number(n: u64) -> AmiValue {
        AmiValue(n.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AmiValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AmiValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_are_refused_in_every_grammar() {
        for g in [
            Grammar::Exten,
            Grammar::Context,
            Grammar::Device,
            Grammar::Channel,
            Grammar::Name,
            Grammar::Text,
        ] {
            for bad in [
                "1\r\nAction: Command",
                "1\n",
                "1\r",
                "a\0b",
                "a\x1bb",
                "a\u{85}b",
            ] {
                let e = AmiValue::parse("destination", bad, g).unwrap_err();
                assert_eq!(e.field, "destination");
            }
            let long = "1".repeat(65536);
            assert!(AmiValue::parse("f", &long, g).is_err());
        }
    }

    #[test]
    fn ordinary_values_pass() {
        assert!(AmiValue::parse("d", "+15555550123", Grammar::Exten).is_ok());
        assert!(AmiValue::parse("d", "*97", Grammar::Exten).is_ok());
        assert!(AmiValue::parse("c", "from-internal", Grammar::Context).is_ok());
        assert!(AmiValue::parse("i", "Local/1001@from-queue/n", Grammar::Device).is_ok());
        assert!(AmiValue::parse("i", "hint:1001@ext-local", Grammar::Device).is_ok());
        assert!(AmiValue::parse("r", "Mittagspause – zurück um 13:30", Grammar::Text).is_ok());
        assert!(AmiValue::parse("r", "", Grammar::Text).is_ok());
        assert!(AmiValue::parse("d", "", Grammar::Exten).is_err());
        assert!(AmiValue::parse("d", "1001 ", Grammar::Exten).is_err());
    }
}
