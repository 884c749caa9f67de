//! The embedded, spec-conformant iSymphony Configuration API endpoint.

pub mod agent;
