//! How a pass ended, and what each front end makes of it.

/// How a pass ended: the one answer of the reconciler, which the front ends map (exit codes
/// here, the daemon's status, metrics and log lines by [`PassOutcome::as_str`], its scheduler
/// by whether it converged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum PassOutcome {
    /// Both sides agree: nothing to do.
    InSync,
    /// The plan has changes (pending for a dry run, applied otherwise) and nothing failed.
    Changes,
    /// The pass ran to the end, but something failed, was withheld by the safety valve or
    /// could not be read; everything else was applied.
    Partial,
    /// The pass could not run, or was stopped before the end ([`ReconcileError`]).
    Failed,
}

impl PassOutcome {
    /// Every outcome (derived).
    pub fn all() -> impl Iterator<Item = PassOutcome> {
        <PassOutcome as strum::IntoEnumIterator>::iter()
    }

    /// The number scripts see, in the `exit_code` field of the JSON report and as the exit
    /// status of the one-shot modes: `--sync-now` 0 applied or nothing needed, 1 error (a
    /// partial pass included); `--dry-run` 0 in sync, 2 changes pending, 1 error.
    pub fn code(self, dry_run: bool) -> u8 {
        match self {
            PassOutcome::Partial | PassOutcome::Failed => 1,
            PassOutcome::Changes if dry_run => 2,
            PassOutcome::InSync | PassOutcome::Changes => 0,
        }
    }

    /// Everything was read, planned and applied (or, dry, would be).
    pub fn converged(self) -> bool {
        matches!(self, PassOutcome::InSync | PassOutcome::Changes)
    }

    /// The daemon's name of it (status `result`, metric label, log field): `success`,
    /// `partial` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::InSync | PassOutcome::Changes => "success",
            PassOutcome::Partial => "partial",
            PassOutcome::Failed => "failed",
        }
    }
}

impl serde::Serialize for PassOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
