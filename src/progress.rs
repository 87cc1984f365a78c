//! Progress and messages of a long command, through a [`Reporter`]: the library says what
//! happened, the caller decides what is shown (criterion's fan-out of reports).
//!
//! `hab run`, `hab compare` and `hab calibrate` print through [`Stderr`] (the text hab has
//! always printed); tests collect lines with [`Captured`]; [`Fanout`] sends each line to
//! several reporters. No library code calls `eprintln!` for progress.

use std::sync::{Arc, Mutex};

/// Where a command's progress lines go.
pub trait Reporter: Send + Sync + std::fmt::Debug {
    /// One line for the person following the command, e.g. `hab: stack ready in 812 ms`.
    fn line(&self, text: &str);
}

/// A shared reporter, as commands hand it to the engines they start.
pub type SharedReporter = Arc<dyn Reporter>;

/// Prints each line to standard error (what `hab` does).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stderr;

impl Reporter for Stderr {
    fn line(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// Drops every line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn line(&self, _text: &str) {}
}

/// Keeps every line, in order (for tests and for embedding hab).
#[derive(Debug, Default)]
pub struct Captured {
    lines: Mutex<Vec<String>>,
}

impl Captured {
    /// The lines reported so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Reporter for Captured {
    fn line(&self, text: &str) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.to_string());
    }
}

/// Sends each line to every reporter it holds, in order.
#[derive(Debug, Default, Clone)]
pub struct Fanout(pub Vec<SharedReporter>);

impl Reporter for Fanout {
    fn line(&self, text: &str) {
        for r in &self.0 {
            r.line(text);
        }
    }
}

/// The reporter of the `hab` binary: standard error.
pub fn stderr() -> SharedReporter {
    Arc::new(Stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_reaches_every_reporter_in_order() {
        let a = Arc::new(Captured::default());
        let b = Arc::new(Captured::default());
        let f = Fanout(vec![a.clone(), Arc::new(Silent), b.clone()]);
        f.line("one");
        f.line("two");
        assert_eq!(a.lines(), ["one", "two"]);
        assert_eq!(b.lines(), ["one", "two"]);
    }
}
