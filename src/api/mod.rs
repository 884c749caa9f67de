//! The iSymphony Configuration API: its wire JSON ([`types`], shared by the client and the
//! embedded server), its paths ([`paths`]), one description per
//! managed collection ([`resource`]), the HTTP client ([`client`]) and its `ca_file` TLS
//! rules ([`tls`]).

mod body;
pub mod client;
pub mod paths;
pub mod resource;
pub mod tls;
pub mod types;
