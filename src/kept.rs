//! A connection kept open from one daemon pass to the next.
//!
//! A pass of the daemon (`PassOptions::keep_open`) takes what the previous one left, if it
//! was opened for the same thing (the key: connection options, a file's identity), and puts it
//! back when it ends well. A pass that fails or is cancelled drops what it holds, so the next
//! one opens afresh; one-shot modes keep nothing. Each owner keeps its own slot: the FreePBX
//! connection (`freepbx`), the iSymphony client with its keep-alive pool (`reconcile`) and the
//! state store's SQLite connection with its page cache (`reconcile::state`).
//!
//! Why: at 1,000 extensions, opening them was a fifth of a pass that follows one change
//! (connect and authenticate to MariaDB, reopen SQLite and read its pages cold, reconnect
//! to iSymphony).

use std::sync::Mutex;

/// One kept value and the key it was opened for.
pub struct Slot<K, V>(Mutex<Option<(K, V)>>);

impl<K: PartialEq, V> Slot<K, V> {
    pub const fn new() -> Self {
        Slot(Mutex::new(None))
    }

    /// The kept value, when it was kept for `key` (a value kept for another key is dropped).
    pub fn take(&self, key: &K) -> Option<V> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        match kept {
            Some((k, v)) if k == *key => Some(v),
            _ => None,
        }
    }

    /// Drop what is kept (shutdown).
    pub fn clear(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Keep `value` for the next pass (replacing what was kept).
    pub fn put(&self, key: K, value: V) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, value));
    }
}

impl<K: PartialEq, V> Default for Slot<K, V> {
    fn default() -> Self {
        Slot::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Slot;

    #[test]
    fn a_value_comes_back_only_for_its_key_and_only_once() {
        let s: Slot<&str, u32> = Slot::new();
        assert_eq!(s.take(&"a"), None);
        s.put("a", 1);
        assert_eq!(s.take(&"b"), None, "another key");
        assert_eq!(s.take(&"a"), None, "dropped by the miss");
        s.put("a", 2);
        assert_eq!(s.take(&"a"), Some(2));
        assert_eq!(s.take(&"a"), None);
    }
}
