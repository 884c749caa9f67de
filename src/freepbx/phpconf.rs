//! `/etc/freepbx.conf` read as PHP reads it, without executing it.
//!
//! A small PHP lexer: text outside `<?php … ?>` is ignored; `//`, `#` and `/* … */` comments
//! are skipped (a commented-out `$amp_conf['AMPDBPASS']` line never wins over the live one);
//! single-quoted strings decode `\'` and `\\`, double-quoted ones `\n \t \r \v \e \f \\ \$ \"`,
//! octal, `\x` hex and `\u{…}` escapes. Then every top-level statement
//! `$amp_conf['KEY'] = <literal> [. <literal>]… ;` is evaluated in order (the last assignment
//! wins, as in PHP). A double-quoted string that interpolates a variable cannot be evaluated
//! without running PHP: such a value is reported, never guessed.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    /// A string literal; `interpolated` when it holds a variable PHP would substitute.
    Str {
        value: String,
        interpolated: bool,
    },
    /// A bare word or number (`3306`, `true`, `require_once`).
    Word(String),
    Punct(char),
    /// Any other operator (`==`, `=>`, `.=`, …): never part of an assignment we evaluate.
    Op,
}

/// The `$amp_conf` assignments found: key → value, plus keys whose value could not be
/// evaluated (key → why, with the line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhpConf {
    pub values: BTreeMap<String, String>,
    pub unevaluable: BTreeMap<String, String>,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    out: Vec<(Tok, usize)>,
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }
    fn starts(&self, pat: &str) -> bool {
        self.s[self.i..].starts_with(pat.as_bytes())
    }
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }
    /// Skip inline HTML up to and including the next opening tag.
    fn skip_html(&mut self) {
        while self.i < self.s.len() {
            if self.starts("<?") {
                self.i += 2;
                if self.s[self.i..].len() >= 3
                    && self.s[self.i..self.i + 3].eq_ignore_ascii_case(b"php")
                {
                    self.i += 3;
                } else if self.peek(0) == Some(b'=') {
                    self.i += 1;
                }
                return;
            }
            self.bump();
        }
    }
    /// A `//` or `#` comment ends at the line end or at `?>` (which it leaves in place).
    fn skip_line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == b'\n' || self.starts("?>") {
                return;
            }
            self.bump();
        }
    }
    fn skip_block_comment(&mut self) {
        self.i += 2;
        while self.i < self.s.len() && !self.starts("*/") {
            self.bump();
        }
        self.i = (self.i + 2).min(self.s.len());
    }
    fn single_quoted(&mut self) -> Tok {
        let mut v = Vec::new();
        while let Some(c) = self.bump() {
            match c {
                b'\'' => break,
                b'\\' if matches!(self.peek(0), Some(b'\'' | b'\\')) => v.extend(self.bump()),
                _ => v.push(c),
            }
        }
        Tok::Str {
            value: String::from_utf8_lossy(&v).into_owned(),
            interpolated: false,
        }
    }
    fn double_quoted(&mut self) -> Tok {
        let mut v: Vec<u8> = Vec::new();
        let mut interpolated = false;
        while let Some(c) = self.bump() {
            match c {
                b'"' => break,
                b'\\' => self.escape(&mut v),
                b'$' if self.peek(0).is_some_and(|n| {
                    n == b'_' || n == b'{' || n.is_ascii_alphabetic() || n >= 0x80
                }) =>
                {
                    interpolated = true;
                    v.push(c);
                }
                b'{' if self.peek(0) == Some(b'$') => {
                    interpolated = true;
                    v.push(c);
                }
                _ => v.push(c),
            }
        }
        Tok::Str {
            value: String::from_utf8_lossy(&v).into_owned(),
            interpolated,
        }
    }
    /// One escape of a double-quoted string (the backslash is consumed).
    fn escape(&mut self, v: &mut Vec<u8>) {
        let Some(c) = self.peek(0) else {
            v.push(b'\\');
            return;
        };
        let simple = match c {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'v' => Some(0x0b),
            b'e' => Some(0x1b),
            b'f' => Some(0x0c),
            b'\\' | b'$' | b'"' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            self.bump();
            v.push(b);
            return;
        }
        let digits = |s: &Self, from: usize, max: usize, radix: u32| {
            let mut n = 0;
            while n < max
                && s.peek(from + n)
                    .is_some_and(|d| (d as char).is_digit(radix))
            {
                n += 1;
            }
            n
        };
        let text = |s: &Self, from: usize, n: usize| {
            String::from_utf8_lossy(&s.s[s.i + from..s.i + from + n]).into_owned()
        };
        if c.is_ascii_digit() && c < b'8' {
            let n = digits(self, 0, 3, 8);
            let val = u32::from_str_radix(&text(self, 0, n), 8).unwrap_or(0);
            self.i += n;
            v.push((val & 0xff) as u8);
        } else if c == b'x' && digits(self, 1, 2, 16) > 0 {
            let n = digits(self, 1, 2, 16);
            let val = u8::from_str_radix(&text(self, 1, n), 16).unwrap_or(0);
            self.i += 1 + n;
            v.push(val);
        } else if c == b'u' && self.peek(1) == Some(b'{') {
            let n = digits(self, 2, 6, 16);
            let ch = u32::from_str_radix(&text(self, 2, n), 16)
                .ok()
                .and_then(char::from_u32);
            match (ch, self.peek(2 + n)) {
                (Some(ch), Some(b'}')) if n > 0 => {
                    self.i += 3 + n;
                    let mut buf = [0u8; 4];
                    v.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => v.push(b'\\'),
            }
        } else {
            // Unknown escape: PHP keeps the backslash.
            v.push(b'\\');
        }
    }
    fn run(mut self) -> Vec<(Tok, usize)> {
        self.skip_html();
        while let Some(c) = self.peek(0) {
            let line = self.line;
            if self.starts("?>") {
                self.i += 2;
                self.out.push((Tok::Punct(';'), line));
                self.skip_html();
                continue;
            }
            if c == b'#' || self.starts("//") {
                self.skip_line_comment();
                continue;
            }
            if self.starts("/*") {
                self.skip_block_comment();
                continue;
            }
            self.bump();
            let tok = match c {
                b'\'' => self.single_quoted(),
                b'"' => self.double_quoted(),
                b'$' => Tok::Var(self.word()),
                b'=' | b'.' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'&'
                | b'|' | b'^' | b'?' | b':'
                    if matches!(self.peek(0), Some(b'=' | b'>')) =>
                {
                    self.bump();
                    Tok::Op
                }
                b'[' | b']' | b'=' | b';' | b'.' | b'(' | b')' | b',' | b'{' | b'}' => {
                    Tok::Punct(c as char)
                }
                c if c.is_ascii_whitespace() => continue,
                c if c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80 => {
                    self.i -= 1;
                    Tok::Word(self.word())
                }
                _ => Tok::Op,
            };
            self.out.push((tok, line));
        }
        self.out
    }
    fn word(&mut self) -> String {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80)
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
}

/// Why an assignment's value cannot be evaluated without running PHP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NotLiteral {
    #[error("the double-quoted value {0:?} holds a PHP variable, which the agent cannot evaluate; write it in single quotes")]
    Interpolated(String),
    #[error("the value is not a plain literal")]
    Expression,
}

/// The value of a literal expression `lit (. lit)*` at `toks`, or why it has none.
fn literal_value(toks: &[(Tok, usize)]) -> Result<String, NotLiteral> {
    let mut out = String::new();
    let mut want_term = true;
    for (t, _) in toks {
        match (t, want_term) {
            (
                Tok::Str {
                    value,
                    interpolated,
                },
                true,
            ) => {
                if *interpolated {
                    return Err(NotLiteral::Interpolated(value.clone()));
                }
                out.push_str(value);
            }
            (Tok::Word(w), true) => match w.to_ascii_lowercase().as_str() {
                "true" => out.push('1'),
                "false" | "null" => {}
                _ => out.push_str(w),
            },
            (Tok::Punct('.'), false) => {}
            _ => return Err(NotLiteral::Expression),
        }
        want_term = !want_term;
    }
    if want_term {
        return Err(NotLiteral::Expression);
    }
    Ok(out)
}

/// Every `$amp_conf['KEY'] = literal;` of a PHP file, evaluated in order.
pub fn parse_php_conf(text: &str) -> PhpConf {
    let toks = Lexer {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        out: Vec::new(),
    }
    .run();
    let mut conf = PhpConf::default();
    let mut i = 0;
    while i < toks.len() {
        // Only assignments that start a statement count (not `if (…) $amp_conf[…] = …`).
        let stmt_start = i == 0 || matches!(toks[i - 1].0, Tok::Punct(';' | '{' | '}'));
        let is_assign = stmt_start
            && matches!(&toks[i].0, Tok::Var(v) if v == "amp_conf")
            && matches!(toks.get(i + 1), Some((Tok::Punct('['), _)))
            && matches!(toks.get(i + 3), Some((Tok::Punct(']'), _)))
            && matches!(toks.get(i + 4), Some((Tok::Punct('='), _)));
        let key = match toks.get(i + 2) {
            Some((
                Tok::Str {
                    value,
                    interpolated: false,
                },
                _,
            )) if is_assign => value.clone(),
            _ => {
                i += 1;
                continue;
            }
        };
        let line = toks[i].1;
        let end = toks[i + 5..]
            .iter()
            .position(|(t, _)| *t == Tok::Punct(';'))
            .map_or(toks.len(), |p| i + 5 + p);
        match literal_value(&toks[i + 5..end]) {
            Ok(v) => {
                conf.unevaluable.remove(&key);
                conf.values.insert(key, v);
            }
            Err(why) => {
                conf.values.remove(&key);
                conf.unevaluable.insert(key, format!("line {line}: {why}"));
            }
        }
        i = end;
    }
    conf
}

#[cfg(test)]
#[path = "phpconf_tests.rs"]
mod tests;
