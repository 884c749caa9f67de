//! The state every resource handler shares ([`App`]) and the decoding of a JSON request body:
//! a leaf that [`super`], its resource routers and the Live API routes use without importing
//! [`super`] (which nests those routers) back. [`super`] re-exports both.

use super::error::Error;
use super::store::Store;
use serde_json::Value;
use std::sync::Arc;

/// Shared state of the resource handlers.
pub struct AppState {
    pub store: Store,
    /// `[server] licensed_full_users`: full users allowed per core server (None: unlimited).
    pub licensed_full_users: Option<u32>,
}

pub type App = Arc<AppState>;

/// Decode a request body into JSON, as every handler's [`super::JsonBody`] does: 412 when absent or
/// malformed. serde_json's recursion limit (128 levels) turns deep nesting into a 412, not a
/// stack overflow. Public so the fuzz target exercises this exact function.
pub fn decode_json_body(bytes: &[u8]) -> Result<Value, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::precondition("A JSON request body is required."));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::precondition(format!("Malformed JSON: {e}.")))
}
