//! `isymphony-sync`: parse the command line and run its mode (see [`cli`]).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
