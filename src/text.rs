//! Showing text that came from elsewhere: control characters escaped, long values clipped,
//! credentials removed from URLs.
//!
//! A server's error body, a database's error message or an object's name can hold a newline
//! (a forged log line), an ANSI escape or a C1 control (terminal commands) or a bidi override
//! (text shown in another order than it is). [`escape_control`] makes every such character
//! visible as an escape, so a line printed from it stays one line that shows what it holds.
//! [`clip`] quotes at most a given number of characters, so a megabyte-long value never ends
//! up in an error message. [`split_userinfo`] and [`redact_url`] keep `user:password@` out of
//! every URL the agent shows.

use std::borrow::Cow;
use std::fmt::Write;

/// How many characters of a foreign value an error message quotes at most.
pub const QUOTE_MAX: usize = 200;

/// Characters that change what a terminal or a log viewer shows rather than being shown.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{200e}' | '\u{200f}' // left-to-right / right-to-left marks
                | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{feff}' // zero-width no-break space (BOM)
        )
}

/// `s` with every control character (C0, DEL, C1) and every line separator or bidi control
/// written as an escape: `\n`, `\r`, `\t`, `\x1b`, `\u{9b}`, `\u{202e}`. Other text, including
/// backslashes, is unchanged; text without such characters is returned as is.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `s`, control characters escaped; a cut is marked with `…` and
/// the number of characters left out.
pub fn clip(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return escape_control(s).into_owned();
    }
    let head: String = s.chars().take(max).collect();
    format!(
        "{}… ({} more characters)",
        escape_control(&head),
        total - max
    )
}

/// Credentials found in a URL's userinfo (percent-decoded).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlCredentials {
    pub username: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlCredentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `url` without its userinfo, and the credentials it held. A URL that does not parse is
/// returned with everything between `//` and the last `@` of its authority removed, so that
/// even a malformed URL is never shown with a password.
pub fn split_userinfo(url: &str) -> (String, Option<UrlCredentials>) {
    if let Ok(mut u) = reqwest::Url::parse(url) {
        if u.username().is_empty() && u.password().is_none() {
            return (url.to_string(), None);
        }
        let creds = UrlCredentials {
            username: decode(u.username()),
            password: u.password().map(decode),
        };
        // Both fail only for URLs that cannot have credentials, which then have none.
        let _ = u.set_username("");
        let _ = u.set_password(None);
        return (u.to_string(), Some(creds));
    }
    let Some(start) = url.find("//").map(|i| i + 2) else {
        return (url.to_string(), None);
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => (
            format!("{}{}", &url[..start], &rest[at + 1..]),
            Some(UrlCredentials {
                username: String::new(),
                password: None,
            }),
        ),
        None => (url.to_string(), None),
    }
}

/// `url` as it may be shown: without userinfo, control characters escaped.
pub fn redact_url(url: &str) -> String {
    escape_control(&split_userinfo(url).0).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert!(matches!(escape_control("Alice Smith"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("a\nINFO forged\r\x1b[31mred\x07\x7f"),
            "a\\nINFO forged\\r\\x1b[31mred\\x07\\x7f"
        );
        assert_eq!(escape_control("csi\u{9b}2J"), "csi\\u{9b}2J");
        assert_eq!(
            escape_control("abc\u{202e}fed\u{2028}x"),
            "abc\\u{202e}fed\\u{2028}x"
        );
        assert_eq!(escape_control("tab\there"), "tab\\there");
        // Letters of every script stay as they are.
        assert_eq!(escape_control("Zoë Ørsted 王"), "Zoë Ørsted 王");
    }

    #[test]
    fn clip_quotes_at_most_max_characters() {
        let long = "é".repeat(1_000_000);
        let c = clip(&long, QUOTE_MAX);
        assert!(c.starts_with(&"é".repeat(200)));
        assert!(c.ends_with("… (999800 more characters)"), "{c}");
        assert!(c.chars().count() < 240);
        assert_eq!(clip("short\n", 200), "short\\n");
    }

    #[test]
    fn userinfo_is_split_off_and_decoded() {
        let (u, c) = split_userinfo("https://api%40x:p%3Ass@pbx.example:55050/a/?q=1");
        assert_eq!(u, "https://pbx.example:55050/a/?q=1");
        let c = c.unwrap();
        assert_eq!(c.username, "api@x");
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert!(!format!("{c:?}").contains("p:ss"));
        let (u, c) = split_userinfo("http://pbx:58080/x/");
        assert_eq!((u.as_str(), c), ("http://pbx:58080/x/", None));
        // Not a URL the parser accepts: the userinfo is still cut out.
        let (u, c) = split_userinfo("http://user:s3cret@[bad/x");
        assert_eq!(u, "http://[bad/x");
        assert!(c.is_some());
        assert_eq!(redact_url("http://u:s3cret@h\n/x"), "http://h/x");
    }
}
