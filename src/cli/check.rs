//! `--check-config`: run the checks (`isymphony_sync::check`), one line each on stdout; exit
//! 0 only when none failed.

use isymphony_sync::check::{self, Verdict};
use std::path::Path;
use std::process::ExitCode;

pub async fn run(path: &Path) -> ExitCode {
    let checks = check::run(path).await;
    for c in &checks {
        println!("{}", c.line());
    }
    if checks.iter().any(|c| c.status == Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
