//! When a stored password is pushed to an existing iSymphony login (issue 10, point 1).
//!
//! cxpanel pushes a user's password only when FreePBX marks it dirty (`cxpanel_users.
//! password_dirty`, or User Manager's `cxpanel`/`password_dirty` setting) and it differs from
//! the server's; afterwards it clears the flag. The agent never writes FreePBX, so it cannot
//! clear the flag: it remembers (as a hash of the hash) what it pushed and pushes a dirty value
//! once. A password the user changed in the iSymphony client therefore survives every pass,
//! and a clean flag keeps it even when the agent's state is lost. Administrators have no flag
//! in FreePBX (cxpanel compares on every run), so theirs count as always dirty.
//!
//! iSymphony checks a login against the SHA-1 hex it stores; anything else (a User Manager
//! bcrypt/phpass hash) cannot be checked, so it is never pushed over a 40-hex value already
//! on the server: the plan warns instead, naming the login, never the value.

use super::facts::hash_of_hash;
use super::ownership::Ownership;
use crate::model::Kind;
use crate::model::PasswordSpec;
use crate::secret::Secret;

/// What to do about a stored password.
pub(crate) enum Pw {
    Keep,
    /// The server already holds it: record without pushing.
    Record(String),
    /// Push this value; record the hash of the hash once confirmed.
    Push(Secret, String),
    /// Would be pushed, but iSymphony could not check it and the server's value is a digest.
    Unverifiable,
}

/// 40 hexadecimal digits: the only form iSymphony can check a login against.
pub(crate) fn is_sha1_hex(s: &str) -> bool {
    let s = s.trim();
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Equal as iSymphony means it: SHA-1 hex regardless of letter case, anything else exactly.
pub(crate) fn same_password(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if is_sha1_hex(a) && is_sha1_hex(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Push only when FreePBX marks the password dirty, the server holds another value, and the
/// agent has not pushed (or verified) this same value before.
pub(crate) fn password_rule(
    own: &Ownership,
    kind: Kind,
    key: &str,
    spec: &PasswordSpec,
    server: &Secret,
) -> Pw {
    let Some(h) = spec.hash.as_ref().filter(|h| !h.is_empty()) else {
        return Pw::Keep;
    };
    if !spec.dirty {
        return Pw::Keep;
    }
    let hh = hash_of_hash(h.expose());
    if own.pushed_password(kind, key) == Some(hh.as_str()) {
        return Pw::Keep;
    }
    if same_password(server.expose(), h.expose()) {
        return Pw::Record(hh);
    }
    if !is_sha1_hex(h.expose()) && is_sha1_hex(server.expose()) {
        return Pw::Unverifiable;
    }
    Pw::Push(h.clone(), hh)
}

/// The password sent on create: FreePBX's value (as cxpanel sends it), or an unusable value
/// when it has none (never a SHA-1 hex, so no login can match it; derived, so `diff` stays pure).
pub(crate) fn create_password(
    own: &Ownership,
    kind: Kind,
    key: &str,
    spec: &PasswordSpec,
) -> Secret {
    match spec.hash.as_ref().filter(|h| !h.is_empty()) {
        Some(h) => h.clone(),
        None => Secret::new(format!(
            "!unusable-{}",
            own.id(kind, &format!("no-password\0{key}"))
        )),
    }
}

/// One plan warning for the logins whose password [`Pw::Unverifiable`] kept (names only).
pub(crate) fn unverifiable_warning(kind: Kind, names: &[String]) -> Option<String> {
    const SHOWN: usize = 20;
    if names.is_empty() {
        return None;
    }
    let mut list = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    Some(format!(
        "{} {list}: FreePBX marks the password changed, but stores it in a form iSymphony \
         cannot check (not a SHA-1 digest, e.g. a User Manager bcrypt hash); it was not pushed \
         over the SHA-1 password the iSymphony server holds, so the current iSymphony login \
         keeps working. To change it, set it in the iSymphony client or save it again in \
         FreePBX with cxpanel's User Manager hook active",
        if names.len() == 1 {
            kind.label().to_string()
        } else {
            format!("{}s", kind.label())
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::facts::Known;

    const A: &str = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
    const B: &str = "7c4a8d09ca3762af61e59520943dc26494f8941b";

    fn spec(h: &str, dirty: bool) -> PasswordSpec {
        PasswordSpec {
            hash: Some(Secret::new(h)),
            dirty,
        }
    }

    fn rule(own: &Ownership, s: &PasswordSpec, server: &str) -> &'static str {
        match password_rule(own, Kind::User, "u", s, &Secret::new(server)) {
            Pw::Keep => "keep",
            Pw::Record(_) => "record",
            Pw::Push(..) => "push",
            Pw::Unverifiable => "unverifiable",
        }
    }

    #[test]
    fn dirty_flag_difference_and_memory_all_decide() {
        let fresh = Ownership::new("default", false, Known::default(), &[]);
        assert_eq!(rule(&fresh, &spec(A, false), B), "keep", "clean flag");
        assert_eq!(rule(&fresh, &spec(A, true), B), "push");
        assert_eq!(rule(&fresh, &spec(A, true), &A.to_uppercase()), "record");
        let mut known = Known::default();
        known
            .passwords
            .insert((Kind::User, "u".into()), hash_of_hash(A));
        let pushed = Ownership::new("default", false, known, &[]);
        assert_eq!(rule(&pushed, &spec(A, true), B), "keep", "already pushed");
        assert_eq!(rule(&pushed, &spec(B, true), A), "push", "a new value");
    }

    #[test]
    fn a_value_isymphony_cannot_check_never_replaces_a_digest() {
        let fresh = Ownership::new("default", false, Known::default(), &[]);
        let bcrypt = "$2a$08$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        assert_eq!(rule(&fresh, &spec(bcrypt, true), A), "unverifiable");
        // Over a value that is no digest either (e.g. the unusable create value): pushed.
        assert_eq!(rule(&fresh, &spec(bcrypt, true), "!unusable-x"), "push");
        // Non-hex values compare exactly.
        assert_eq!(rule(&fresh, &spec(bcrypt, true), bcrypt), "record");
        assert!(!same_password("$2a$08$AB", "$2a$08$ab"));
        let w = unverifiable_warning(Kind::User, &["1001".into()]).unwrap();
        assert!(w.starts_with("user 1001:") && !w.contains(bcrypt), "{w}");
    }
}
