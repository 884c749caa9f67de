//! The progress bar of a long pass on a terminal (`indicatif`, on stderr): one bar per long
//! stage (reading every sub-resource with `--full`, applying), with counts, rate and ETA.
//! Short stages (under [`MIN_TOTAL`] steps) draw nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isymphony_sync::reconcile::{Progress, Stage};
use std::sync::Mutex;

/// Stages shorter than this finish before a bar would tell anything.
pub const MIN_TOTAL: usize = 20;

/// Shows the pass's [`Progress`]; draws only when stderr is a terminal.
pub struct Bar {
    current: Mutex<Option<(Stage, ProgressBar)>>,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            current: Mutex::new(None),
        }
    }

    /// Leave the last bar drawn at its final count.
    pub fn finish(&self) {
        if let Some((_, bar)) = self.lock().take() {
            end(&bar);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Stage, ProgressBar)>> {
        // A panic while drawing leaves nothing half-done that matters: go on with the value.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Draw the bar's final count and end its line (indicatif leaves the cursor on it), so that
/// the next bar or the plan starts on a line of its own.
fn end(bar: &ProgressBar) {
    bar.finish();
    if !bar.is_hidden() {
        eprintln!();
    }
}

fn bar_for(stage: Stage, total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
            .expect("the template is valid")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(stage.label());
    bar
}

impl Progress for Bar {
    fn step(&self, stage: Stage, done: usize, total: usize) {
        if total < MIN_TOTAL {
            return;
        }
        let mut current = self.lock();
        if current.as_ref().map(|(s, _)| *s) != Some(stage) {
            if let Some((_, old)) = current.take() {
                end(&old);
            }
            *current = Some((stage, bar_for(stage, total)));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(done as u64);
        }
    }
}
