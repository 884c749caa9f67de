//! The binary as a service: triggers, signals, reloads, failover, its own files and port,
//! hostile clients, what it reads from servers and files, and metrics that tell the truth.

mod binlog;
mod daemon;
mod files;
mod io;
mod isymphony;
mod lifecycle;
mod limits;
mod lock_holder;
mod metrics_dashboard;
mod one_writer;
mod target_trust;
mod trust;
mod truthful;
mod voicemail_safety;
