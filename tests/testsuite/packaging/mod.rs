//! What the Debian package installs: the packaged config, `config.example.toml`, the systemd
//! unit.


mod packaged_config;
mod systemd_unit;
mod config_example;
