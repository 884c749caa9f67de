//! The Live API (`communication_manager/rest/live/`): iSymphony's second interface, the live
//! state of extensions, queues, agents, users, statuses, call segments and conference rooms,
//! and actions on them (originate, DND, queue login, pause, transfer, status).
//!
//! The configuration store says which live objects exist (and what the licence shows); a
//! backend says what state they are in. Live state is derived, never stored (an invariant,
//! listed at the end of docs/architecture.md).
//!
//! Module map:
//! - [`facts`]: what a backend knows, keyed by Asterisk's names (channels, members, rooms, DND).
//! - [`backend`]: the handle the routes hold: shared facts, change counter, actions.
//! - [`action`]: the actions with checked values, and their errors.
//! - [`value`]: the per-field grammar every value sent to AMI must pass.
//! - [`ami`]: the AMI client (codec, connection, requests).
//! - [`asterisk`]: the backend for the PBX's real Asterisk (AMI).
//! - [`simulated`]: the backend for demos and integrators.

pub mod action;
pub mod ami;
pub mod asterisk;
pub mod backend;
pub mod facts;
pub mod simulated;
pub mod value;

pub use crate::config::{LiveActions, LiveBackend, LiveConfig};
