//! Writing results: data to stdout (text or JSON), messages to stderr.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::fsutil::LocalError;

/// Where a command's results and messages go.
#[derive(Debug, Clone)]
pub struct Output {
    /// Text or JSON.
    pub format: OutputFormat,
    /// Suppress warnings and notes.
    pub quiet: bool,
    /// Draw progress bars (stderr is a terminal, and neither --no-progress nor --quiet).
    pub progress: bool,
}

impl Output {
    /// From the global flags.
    pub fn new(global: &GlobalArgs) -> Self {
        let terminal = io::stderr().is_terminal();
        Output {
            format: global.output,
            quiet: global.quiet,
            progress: shows_progress(terminal, global.no_progress, global.quiet),
        }
    }

    /// A progress bar over `total` bytes on stderr; hidden unless progress is shown.
    pub fn bytes_bar(&self, message: &str, total: u64) -> ProgressBar {
        self.bar(
            message,
            Some(total),
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({elapsed})",
        )
    }

    /// A progress bar over `total` items on stderr; hidden unless progress is shown.
    pub fn count_bar(&self, message: &str, total: u64) -> ProgressBar {
        self.bar(message, Some(total), "{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
    }

    /// A spinner with a message and the elapsed time, for work of unknown length.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        self.bar(message, None, "{spinner} {msg} ({elapsed})")
    }

    fn bar(&self, message: &str, total: Option<u64>, template: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    }

    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Writes `value` as pretty JSON to stdout. Buffered: stdout alone would make a write
    /// call per line of output.
    pub fn print_json<T: Serialize>(&self, value: &T) -> Result<(), LocalError> {
        let mut stdout = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(stdout))
            .and_then(|()| stdout.flush());
        stdout_result(written)
    }

    /// Writes text to stdout.
    pub fn print(&self, text: &str) -> Result<(), LocalError> {
        self.print_bytes(text.as_bytes())
    }

    /// Writes bytes to stdout.
    pub fn print_bytes(&self, bytes: &[u8]) -> Result<(), LocalError> {
        let mut stdout = io::stdout().lock();
        stdout_result(stdout.write_all(bytes).and_then(|()| stdout.flush()))
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

/// A failed write to stdout; a closed pipe (`| head`) is not an error.
fn stdout_result(result: io::Result<()>) -> Result<(), LocalError> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(LocalError::Stdout(e)),
        Ok(()) => Ok(()),
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

/// Progress bars only for a person watching a terminal: never in pipes, logs or CI output.
fn shows_progress(stderr_is_terminal: bool, no_progress: bool, quiet: bool) -> bool {
    stderr_is_terminal && !no_progress && !quiet
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_is_drawn_only_on_a_terminal_and_when_wanted() {
        use super::shows_progress;
        assert!(shows_progress(true, false, false));
        assert!(!shows_progress(false, false, false), "not in a pipe");
        assert!(!shows_progress(true, true, false), "--no-progress");
        assert!(!shows_progress(true, false, true), "--quiet");
    }
}
