//! Writing results: data to stdout (text or JSON), messages to stderr.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat};

/// Where a command's results and messages go.
#[derive(Debug, Clone)]
pub struct Output {
    /// Text or JSON.
    pub format: OutputFormat,
    /// Suppress warnings and notes.
    pub quiet: bool,
}

impl Output {
    /// From the global flags.
    pub fn new(global: &GlobalArgs) -> Self {
        Output { format: global.output, quiet: global.quiet }
    }

    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Writes `value` as pretty JSON to stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)
    }

    /// Writes text to stdout.
    pub fn print(&self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// A warning on stderr (unless quiet).
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }

    /// A progress or status note on stderr (unless quiet).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }
}

/// Formats rows as left-aligned columns separated by two spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
