//! How far a pass is, for a front end that wants to show it (`--sync-now` on a terminal).
//!
//! The pass only reports counts; drawing them (or not) is the front end's business, so the
//! library never writes to the terminal.

/// The long stages of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the sub-resources (contacts, e-mails, phones, managing users): every one of
    /// them with `--full`.
    Reading,
    /// Applying the plan's operations.
    Applying,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Reading => "reading",
            Stage::Applying => "applying",
        }
    }
}

/// Told after each read or operation of a stage: `done` of `total`.
pub trait Progress: Sync {
    fn step(&self, stage: Stage, done: usize, total: usize);
}
