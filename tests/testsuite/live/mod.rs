//! The Live API: the simulated backend over HTTP, the Asterisk backend against a real
//! Asterisk, and both together end to end; `--explain` and readiness through them.

mod api;
mod asterisk;
mod e2e;
mod explain;
