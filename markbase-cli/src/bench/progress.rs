//! Live progress on stderr while a run goes: target, phase, MB/s and frames. Hidden when
//! stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress line of a bench, reused by each target and phase in turn.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress line on stderr (drawn only when stderr is a terminal).
    pub fn stderr() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} frames, {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self { bar }
    }

    /// A new phase (`write` or `read`) of the target `label`, of up to `frames` frames.
    pub fn start(&self, label: &str, phase: &str, frames: u64) {
        self.bar.reset();
        self.bar.set_length(frames);
        self.bar.set_prefix(format!("{label} {phase}"));
        self.bar.set_message(format!("{label} {phase}"));
    }

    /// `frames` frames of `bytes` in all are done, after `seconds` of I/O.
    pub fn done(&self, frames: u64, bytes: u64, seconds: f64) {
        let rate = if seconds > 0.0 {
            bytes as f64 / seconds / 1e6
        } else {
            0.0
        };
        self.bar
            .set_message(format!("{}: {rate:.0} MB/s", self.bar.prefix()));
        self.bar.set_position(frames);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
