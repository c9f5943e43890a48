//! Renderers: they format the [`crate::report::Report`] (and, for text, the live
//! transcript); they never touch sockets or decide anything.

pub mod json;
pub mod log;
pub mod text;

use crate::cli::Format;
use crate::report::Report;
use crate::session::{Observer, Silent};
use std::io::Write;

/// The live observer for a format: text prints each step as it happens (each line prefixed with
/// `[prefix] ` when several routes run at once), JSON stays silent.
pub fn live(format: Format, prefix: Option<&str>) -> Box<dyn Observer> {
    match format {
        Format::Text => Box::new(text::Live::stdout(prefix)),
        Format::Json => Box::new(Silent),
    }
}

/// The observer for one route: the live printer (text only) and, with `--log`, the log file.
pub fn observer(
    format: Format,
    prefix: Option<&str>,
    log: Option<&log::LogFile>,
    route: Option<&str>,
) -> Box<dyn Observer> {
    let live = live(format, prefix);
    match log {
        Some(log) => Box::new(log::Tee(vec![live, Box::new(log.observer(route))])),
        None => live,
    }
}

/// Writes the final report in `format` to `out`. Write errors (a closed pipe) are ignored: the
/// exit code still tells the result.
pub fn finish(format: Format, report: &Report, out: &mut dyn Write) {
    let _ = match format {
        Format::Text => text::summary(report, out),
        Format::Json => json::write(report, out),
    };
    let _ = out.flush();
}
