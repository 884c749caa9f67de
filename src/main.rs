//! `isymphony-sync`: parse the command line, set up logging, run the chosen mode.

use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "isymphony-sync", version, about = "Keeps an iSymphony operator panel in step with FreePBX")]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "PATH", default_value = isymphony_sync::config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Write the man page and shell completions into DIR (used by packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_assets: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.generate_assets {
        return match generate_assets(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("isymphony-sync: cannot write assets to {}: {e}", dir.display());
                ExitCode::from(1)
            }
        };
    }
    ExitCode::SUCCESS
}

/// The man page (gzipped, as Debian wants it) and bash/zsh completions, from the clap model.
fn generate_assets(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    let file = std::fs::File::create(dir.join("isymphony-sync.1.gz"))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(&man)?;
    gz.finish()?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "isymphony-sync.bash"),
        (clap_complete::Shell::Zsh, "_isymphony-sync"),
    ] {
        let mut out = std::fs::File::create(dir.join(name))?;
        clap_complete::generate(shell, &mut cmd.clone(), "isymphony-sync", &mut out);
    }
    Ok(())
}
