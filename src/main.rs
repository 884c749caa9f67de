//! `isymphony-sync`: parse the command line, set up logging, run the chosen mode.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "isymphony-sync",
    version,
    about = "Keeps an iSymphony operator panel in step with FreePBX"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "PATH", default_value = isymphony_sync::config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
