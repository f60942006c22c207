//! What the user sees on stderr while a tracer pod starts: a spinner on a terminal, plain
//! timestamped-free lines otherwise (CI logs, `2> file`), never anything on stdout.
use std::{io::IsTerminal as _, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    spinner: Option<ProgressBar>,
    last: String,
    /// Shows no state (a helper's progress when the caller reports for many).
    silent: bool,
    /// Where a silent progress sends its lines (warnings, the privileges used): to the
    /// caller that reports for many, or nowhere.
    lines: Option<Box<dyn Fn(String) + Send>>,
}

impl Progress {
    pub fn new() -> Progress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            spinner,
            last: String::new(),
            silent: false,
            lines: None,
        }
    }

    /// A progress that shows nothing.
    pub fn silent() -> Progress {
        Progress {
            spinner: None,
            last: String::new(),
            silent: true,
            lines: None,
        }
    }

    /// A progress that shows no state and hands its lines to `to`.
    pub fn lines_to(to: impl Fn(String) + Send + 'static) -> Progress {
        Progress {
            spinner: None,
            last: String::new(),
            silent: true,
            lines: Some(Box::new(to)),
        }
    }

    /// Shows a new state; repeating the current one is a no-op, so callers can report on
    /// every watch event.
    pub fn set(&mut self, message: impl Into<String>) {
        let message = message.into();
        if self.silent || message == self.last {
            return;
        }
        match &self.spinner {
            Some(bar) => bar.set_message(message.clone()),
            None => eprintln!("{message}"),
        }
        self.last = message;
    }

    /// Leaves a final line and stops the spinner.
    pub fn finish(&mut self, message: impl Into<String>) {
        let message = message.into();
        match self.spinner.take() {
            Some(bar) => bar.finish_with_message(message),
            None if !self.silent => eprintln!("{message}"),
            None => {}
        }
    }

    /// Prints a line without disturbing the spinner.
    pub fn println(&self, line: &str) {
        match (&self.spinner, &self.lines) {
            (Some(bar), _) => bar.println(line),
            (None, Some(to)) => to(line.to_owned()),
            (None, None) if !self.silent => eprintln!("{line}"),
            (None, None) => {}
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}
