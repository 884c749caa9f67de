//! `--generate-assets DIR` (packaging): the man page, gzipped as Debian wants it, and the
//! bash/zsh completions, all from the clap model.

use super::Cli;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

pub fn generate(dir: &Path) -> std::io::Result<()> {
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
