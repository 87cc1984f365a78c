//! Errors from loading a config file, and the diagnostics `validate()` collects.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One problem found by `validate()`: where it is and what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Path of the offending value in the file, e.g. `broker.nodes` or
    /// `workload[1] ("sleep").task.seconds` (indices are 0-based).
    pub location: String,
    /// What is wrong and what would be accepted, e.g. `must be between 1 and 9, got 12`.
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic from anything printable, to keep the checks short.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why a topology or workload file could not be loaded; the CLI maps it to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, permissions, not UTF-8). The OS error
    /// is the [`source`](std::error::Error::source), not part of this message: printed as
    /// a chain (`{:#}`) it would otherwise read twice.
    #[error("cannot read {kind} file {}", path.display())]
    Read {
        /// Which kind of file: `"topology"` or `"workload"`.
        kind: &'static str,
        /// The path as given on the command line.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// No file and no built-in of that name (see [`crate::config::builtin::resolve`]).
    #[error("{}", NotFoundText { kind, path, searched: *searched, builtins, nearest: *nearest })]
    NotFound {
        /// Which kind of file: `"topology"` or `"workload"`.
        kind: &'static str,
        /// The value as given on the command line.
        path: PathBuf,
        /// The directory also searched here (`topologies` or `workloads`), if it was.
        searched: Option<&'static str>,
        /// The names of the built-ins of this kind.
        builtins: Vec<&'static str>,
        /// The built-in nearest to the name given, if one is close.
        nearest: Option<&'static str>,
    },
    /// The file is not valid TOML or does not match the schema (unknown field, wrong type,
    /// bad duration, bad enum value, missing field).
    #[error("{kind} file {}: {message}", path.display())]
    Parse {
        /// Which kind of file: `"topology"` or `"workload"`.
        kind: &'static str,
        /// The path as given on the command line.
        path: PathBuf,
        /// toml's own error text: line and column, a snippet, and what was expected.
        message: String,
    },
    /// The file parsed but `validate()` found problems; all of them are listed.
    #[error("{kind} file {}: {}", path.display(), DiagnosticList(diagnostics))]
    Invalid {
        /// Which kind of file: `"topology"` or `"workload"`.
        kind: &'static str,
        /// The path as given on the command line.
        path: PathBuf,
        /// Every problem found, in file order; never empty.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Prints one diagnostic inline, or a count and then one per line.
struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for d in many {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
        }
    }
}

/// The text of [`ConfigError::NotFound`].
struct NotFoundText<'a> {
    kind: &'a str,
    path: &'a PathBuf,
    searched: Option<&'static str>,
    builtins: &'a [&'static str],
    nearest: Option<&'static str>,
}

impl fmt::Display for NotFoundText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} not found: no such file",
            self.kind,
            self.path.display()
        )?;
        if let Some(dir) = self.searched {
            write!(f, " here or in {dir}/")?;
        }
        write!(f, ", and no built-in {} of that name", self.kind)?;
        if let Some(n) = self.nearest {
            write!(f, "; did you mean {n}?")?;
        }
        let plural = if self.kind == "topology" {
            "topologies"
        } else {
            "workloads"
        };
        write!(
            f,
            " (built-in {plural}: {}; `hab list` describes them)",
            self.builtins.join(", ")
        )
    }
}
