//! Renderers: they format the [`crate::report::Report`] (and, for text, the live
//! transcript); they never touch sockets or decide anything.
//!
//! [`Reporter`] decides where each part goes, from the flags, before anything runs: the chosen
//! `--format` on stdout, or with `--output FILE` that format in the file and the text report on
//! the terminal; `--quiet` keeps only the verdict line of the text report, `--verbose` adds
//! timings and capabilities; colour and the wait ticker only on a terminal.

pub mod json;
pub mod junit;
pub mod log;
pub mod sender;
pub mod style;
pub mod text;

use crate::config::{Color, Format, OutputConfig};
use crate::error::Error;
use crate::events::{Events, Silent, Tee};
use crate::report::Report;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use style::Paint;
use text::{Screen, TextOptions};

/// What is known about stdout: whether to colour it, and whether it is a terminal (for the
/// ticker that shows long waits).
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal {
    /// Colour the text report.
    pub color: bool,
    /// stdout is a terminal.
    pub is_terminal: bool,
}

impl Terminal {
    /// The facts about this process's stdout, with `--color`.
    pub fn stdout(when: Color) -> Terminal {
        use std::io::IsTerminal;
        Terminal {
            color: style::stdout_color(when),
            is_terminal: std::io::stdout().is_terminal(),
        }
    }
}

/// A writer shared between the live printer and the final report (the `--output` text file).
#[derive(Clone)]
pub struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedWriter {
    /// Shares `w`.
    pub fn new(w: Box<dyn Write + Send>) -> SharedWriter {
        SharedWriter(Arc::new(Mutex::new(w)))
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut w) => w.write(buf),
            Err(_) => Err(std::io::Error::other("output writer poisoned")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut w) => w.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// The `--output` file and the format it gets.
struct OutputFile {
    path: PathBuf,
    format: Format,
    writer: SharedWriter,
    /// The text report's live transcript, when the file gets text.
    screen: Option<Arc<Screen>>,
}

impl OutputFile {
    /// Writes the report into the file with `render`; a failure is reported on stderr and
    /// returns `false`.
    fn write(&self, render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> bool {
        let mut w = self.writer.clone();
        let result = render(&mut w).and_then(|_| w.flush());
        if let Err(e) = &result {
            eprintln!(
                "smtpcheck: error: cannot write --output {}: {e}",
                self.path.display()
            );
        }
        result.is_ok()
    }
}

/// `true` when the report reached stdout, or stdout is a closed pipe (the reader went away on
/// purpose: `| head`); any other failure (a full disk) is reported on stderr.
fn stdout_written(result: std::io::Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("smtpcheck: error: cannot write the report to standard output: {e}");
            false
        }
    }
}

/// Where every part of the report goes, for one run.
pub struct Reporter {
    /// The format on stdout.
    stdout: Format,
    quiet: bool,
    text: TextOptions,
    file: Option<OutputFile>,
    /// The live transcript on stdout (text, not quiet).
    screen: Option<Arc<Screen>>,
    /// When the check started (JUnit's timestamp).
    started: SystemTime,
}

impl Reporter {
    /// Plans the output. Creating the `--output` file is the only I/O: when it fails, the reporter
    /// comes back without the file, with the error to report.
    pub fn new(args: &OutputConfig, terminal: Terminal) -> (Reporter, Option<Error>) {
        let stdout = if args.file.is_some() {
            Format::Text
        } else {
            args.format
        };
        let text = TextOptions {
            paint: Paint::new(terminal.color),
            verbose: args.verbose,
        };
        let mut error = None;
        let file = match &args.file {
            Some(path) => match std::fs::File::create(path) {
                Ok(f) => {
                    let writer = SharedWriter::new(Box::new(std::io::BufWriter::new(f)));
                    let screen = (args.format == Format::Text)
                        .then(|| Screen::new(Box::new(writer.clone()), Paint::plain(), false));
                    Some(OutputFile {
                        path: path.clone(),
                        format: args.format,
                        writer,
                        screen,
                    })
                }
                Err(source) => {
                    error = Some(Error::OutputFile {
                        path: path.clone(),
                        source,
                    });
                    None
                }
            },
            None => None,
        };
        let live_stdout = stdout == Format::Text && !args.quiet;
        let screen = live_stdout.then(|| Screen::stdout(text.paint, terminal.is_terminal));
        let reporter = Reporter {
            stdout,
            quiet: args.quiet,
            text,
            file,
            screen,
            started: SystemTime::now(),
        };
        (reporter, error)
    }

    /// The receiver of one route's events: the live transcript on the terminal and in a text
    /// `--output` file, and the `--log` file. `prefix` marks each line when several routes run at
    /// once.
    pub fn events(
        &self,
        prefix: Option<&str>,
        log: Option<&log::LogFile>,
        route: Option<&str>,
    ) -> Box<dyn Events> {
        let mut all: Vec<Box<dyn Events>> = Vec::new();
        if let Some(screen) = &self.screen {
            all.push(Box::new(text::Live::on(screen.clone(), prefix, self.text)));
        }
        if let Some(screen) = self.file.as_ref().and_then(|f| f.screen.as_ref()) {
            let opts = TextOptions {
                paint: Paint::plain(),
                verbose: self.text.verbose,
            };
            all.push(Box::new(text::Live::on(screen.clone(), prefix, opts)));
        }
        if let Some(log) = log {
            all.push(Box::new(log.observer(route)));
        }
        match all.len() {
            0 => Box::new(Silent),
            1 => all.pop().unwrap_or_else(|| Box::new(Silent)),
            _ => Box::new(Tee(all)),
        }
    }

    /// The first line of the text report (terminal and text file).
    pub fn header(
        &self,
        message: &crate::message::Message,
        envelope: &crate::message::Envelope,
        via: &str,
        probe: Option<crate::transcript::Stage>,
        out: &mut dyn Write,
    ) {
        if self.screen.is_some() {
            let _ = text::header(message, envelope, via, probe, out);
        }
        if let Some(f) = self.text_file() {
            let _ = text::header(message, envelope, via, probe, &mut f.clone());
        }
    }

    /// A note between rounds (text report only).
    pub fn note(&self, note: &str, out: &mut dyn Write) {
        let line = format!("\n*  {note}\n\n");
        if self.screen.is_some() {
            let _ = write!(out, "{}", self.text.paint.note(&line));
            let _ = out.flush();
        }
        if let Some(f) = self.text_file() {
            let _ = f.clone().write_all(line.as_bytes());
        }
    }

    fn text_file(&self) -> Option<&SharedWriter> {
        self.file
            .as_ref()
            .filter(|f| f.format == Format::Text)
            .map(|f| &f.writer)
    }

    /// Writes the final report of `smtpcheck send` everywhere it goes; `false` when it could not
    /// be written (reported on stderr). A closed pipe on stdout is not a failure: the exit code
    /// still tells the result.
    pub fn finish(&self, report: &Report, out: &mut dyn Write) -> bool {
        if let Some(screen) = &self.screen {
            screen.finish();
        }
        let written = self.render(self.stdout, report, self.text, self.quiet, out);
        let mut ok = stdout_written(written.and_then(|()| out.flush()));
        if let Some(f) = &self.file {
            if let Some(screen) = &f.screen {
                screen.finish();
            }
            let opts = TextOptions {
                paint: Paint::plain(),
                verbose: self.text.verbose,
            };
            ok &= f.write(|w| self.render(f.format, report, opts, false, w));
        }
        ok
    }

    fn render(
        &self,
        format: Format,
        report: &Report,
        opts: TextOptions,
        quiet: bool,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        match format {
            Format::Text if quiet => writeln!(out, "{}", text::verdict_line(report, opts.paint)),
            Format::Text => text::summary_with(report, opts, out),
            Format::Json => json::write(report, out),
            Format::Junit => junit::write(report, self.started, &crate::host::this_host(), out),
        }
    }

    /// `true` when stdout gets the text report (its verdict line quotes an input error).
    pub fn text_on_stdout(&self) -> bool {
        self.stdout == Format::Text
    }

    /// Reports a check that could not run: the verdict line (text), or the whole report (JSON,
    /// JUnit), on stdout and in the `--output` file. The error itself goes to stderr.
    pub fn input_error(&self, report: &Report, out: &mut dyn Write) {
        if let Some(screen) = &self.screen {
            screen.finish();
        }
        // The verdict is the last line of stdout in every case.
        let _ = match self.stdout {
            Format::Text => writeln!(out, "{}", text::verdict_line(report, self.text.paint)),
            f => self.render(f, report, self.text, false, out),
        };
        let _ = out.flush();
        if let Some(f) = &self.file {
            let _ = f.write(|w| match f.format {
                Format::Text => writeln!(w, "{}", text::verdict(report)),
                format => self.render(format, report, TextOptions::default(), false, w),
            });
        }
    }

    /// Writes the report of `smtpcheck mx` everywhere it goes; `false` as for [`Reporter::finish`].
    pub fn finish_mx(&self, report: &crate::mx::MxReport, out: &mut dyn Write) -> bool {
        let written = self.render_mx(self.stdout, report, self.text, self.quiet, out);
        let mut ok = stdout_written(written.and_then(|()| out.flush()));
        if let Some(f) = &self.file {
            let opts = TextOptions {
                paint: Paint::plain(),
                verbose: self.text.verbose,
            };
            ok &= f.write(|w| self.render_mx(f.format, report, opts, false, w));
        }
        ok
    }

    fn render_mx(
        &self,
        format: Format,
        report: &crate::mx::MxReport,
        opts: TextOptions,
        quiet: bool,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        match format {
            Format::Text if quiet => {
                let line = text::mx_verdict(report);
                let line = if report.exit == crate::exit::Exit::Delivered {
                    opts.paint.good(&line)
                } else {
                    opts.paint.bad(&line)
                };
                writeln!(out, "{line}")
            }
            Format::Text => text::mx_report_with(report, opts, out),
            Format::Json => json::write(report, out),
            Format::Junit => junit::write_mx(report, self.started, &crate::host::this_host(), out),
        }
    }
}
