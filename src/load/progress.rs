//! The progress bar of `load`, `replay` and `record`, on stderr.
//!
//! A thin wrapper over indicatif so the commands share one look and one rule: the bar
//! is drawn only when asked for and stderr is a terminal, so piped or redirected output
//! (and every test) gets no escape codes, while the final summary goes to stdout either
//! way. A hidden bar still counts, so callers never branch on whether it shows.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` items (a counter when the total is unknown) named `unit`
    /// ("records", "changes"); drawn only if `show` and stderr is a terminal.
    pub fn new(show: bool, total: Option<u64>, unit: &str) -> Progress {
        if !show || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let template = match total {
            // The bar takes what the terminal width leaves, so the line never wraps.
            Some(_) => format!(
                "{{spinner}} [{{elapsed_precise}}] [{{wide_bar}}] {{pos}}/{{len}} {unit} ({{per_sec}}) {{msg}}"
            ),
            None => format!("{{spinner}} [{{elapsed_precise}}] {{pos}} {unit} ({{per_sec}}) {{msg}}"),
        };
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Counts, draws nothing.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// A short note after the counts (throttles, retries).
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Removes the bar, so the summary that follows starts on a clean line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_still_counts() {
        let progress = Progress::new(false, Some(10), "records");
        progress.inc(3);
        progress.inc(4);
        progress.set_message("2 throttled".into());
        assert_eq!(progress.position(), 7);
        progress.finish();
    }
}
