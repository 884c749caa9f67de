//! Passes from a real MariaDB into the embedded endpoint: plans, request counts, partial
//! passes, licences, passwords, TLS, the write gate and the CLI's exit codes.

mod cli;
mod counts;
mod demo;
mod e2e;
mod gate;
mod licence;
mod partial;
mod passwords;
mod tls;
