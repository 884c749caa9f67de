//! The real binary's command line: modes, `--check-config`, the progress bar, and taking over
//! from the FreePBX cxpanel module.

mod check_config;
mod cxpanel_migration;
mod modes;
mod progress;
