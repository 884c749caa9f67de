//! What the Debian package installs: the packaged config, `config.example.toml`, the systemd
//! unit.

mod config_example;
mod packaged_config;
mod systemd_unit;
