//! A small AMI (Asterisk Manager Interface) client, written here rather than taken from a
//! crate (docs/README-live.md says why): [`codec`] (the wire format, bounded, no I/O),
//! [`conn`] (one TCP connection and its login), [`client`] (requests correlated by
//! `ActionID`, list actions, deadlines).

pub mod client;
pub mod codec;
pub mod conn;

pub use client::{Pending, Reply, Request, Requester};
pub use codec::{ActionBuilder, CodecError, Decoder, Message, Piece};
pub use conn::{AmiError, AmiSettings, Conn};
