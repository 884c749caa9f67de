//! The iSymphony Configuration API: its wire JSON ([`types`], shared by the client and the
//! embedded server), its paths ([`paths`]) and the HTTP client ([`client`]).

pub mod client;
pub mod paths;
pub mod types;
