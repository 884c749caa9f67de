//! The embedded Configuration API endpoint over real HTTP: every resource, hostile and strict
//! input, limits, faults, TLS, and its SQLite store's durability and integrity.

mod api;
mod api_families;
mod api_http;
mod auth_lockout;
mod conn_limits;
mod durability;
mod faults;
mod hostile;
mod persistence;
mod resource_description;
mod store_full_disk;
mod store_integrity;
mod strict;
mod tls;
