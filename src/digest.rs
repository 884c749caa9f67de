//! The one SHA-1 rule: lower-case hex of the digest. iSymphony stores passwords in this form,
//! and the agent's fingerprints and pushed-password records use it too.

use sha1::{Digest, Sha1};

/// Lower-case SHA-1 hex of `data`.
pub fn sha1_hex(data: &(impl AsRef<[u8]> + ?Sized)) -> String {
    hex::encode(Sha1::digest(data.as_ref()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        assert_eq!(
            super::sha1_hex("abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
