//! The iSymphony Configuration API: its wire JSON ([`types`], shared by the client and the
//! embedded server), its paths ([`paths`]), one description per
//! managed collection ([`resource`]), the HTTP client ([`client`]) and its `ca_file` TLS
//! rules ([`tls`]); the request counting client and server share ([`counts`]); reading an
//! answer's body, bounded (`body`), and how a POST that met 409 proves its object exists
//! ([`confirm`]); the target's Live API lists, read-only ([`live`]).

mod body;
pub mod client;
pub mod confirm;
pub mod counts;
pub mod live;
pub mod paths;
pub mod resource;
pub mod segment;
pub mod tls;
pub mod types;

/// The header that marks this process's own requests to the embedded endpoint it started
/// (value: the endpoint's agent token); the client sends it, the server's login lockout
/// recognises it.
pub const AGENT_HEADER: &str = "x-isymphony-sync-agent";
