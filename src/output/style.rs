//! Terminal colour: whether to use it (`--color`, `NO_COLOR`, a terminal or not) and the few
//! styles the text report uses. Colour is decided once; a disabled [`Paint`] returns text unchanged,
//! so nothing written to a pipe or a file ever carries escape codes.

use crate::config::Color;
use anstyle::{AnsiColor, Style};

/// Decides whether stdout gets colour: `always` and `never` as said; `auto` follows the usual
/// conventions through anstream (`NO_COLOR` set and non-empty: no colour; `CLICOLOR_FORCE`: colour;
/// otherwise only on a terminal that supports it).
pub fn stdout_color(when: Color) -> bool {
    match when {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi
        ),
    }
}

/// The styles of the text report, or none at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paint {
    enabled: bool,
}

const SENT: Style = AnsiColor::Cyan.on_default();
const RECEIVED_OK: Style = Style::new();
const RECEIVED_TEMP: Style = AnsiColor::Yellow.on_default();
const RECEIVED_PERM: Style = AnsiColor::Red.on_default();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const NOTE: Style = Style::new().dimmed();
const GOOD: Style = AnsiColor::Green.on_default().bold();
const BAD: Style = AnsiColor::Red.on_default().bold();
const PARTIAL: Style = AnsiColor::Yellow.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default();
const HEADING: Style = Style::new().bold();

impl Paint {
    /// Colour when `enabled`, plain text otherwise.
    pub fn new(enabled: bool) -> Paint {
        Paint { enabled }
    }

    /// No colour.
    pub fn plain() -> Paint {
        Paint { enabled: false }
    }

    fn apply(self, style: Style, text: &str) -> String {
        if self.enabled && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// A line smtpcheck sent (`-> …`).
    pub fn sent(self, text: &str) -> String {
        self.apply(SENT, text)
    }

    /// A line the server sent (`<- …`), coloured by its reply code: 4xx yellow, 5xx red.
    pub fn received(self, text: &str, code: u16) -> String {
        let style = match code {
            400..=499 => RECEIVED_TEMP,
            500..=599 => RECEIVED_PERM,
            _ => RECEIVED_OK,
        };
        self.apply(style, text)
    }

    /// What went wrong when no reply came (`** …`).
    pub fn error(self, text: &str) -> String {
        self.apply(ERROR, text)
    }

    /// A note (`*  …`) or other secondary text.
    pub fn note(self, text: &str) -> String {
        self.apply(NOTE, text)
    }

    /// A warning.
    pub fn warn(self, text: &str) -> String {
        self.apply(WARN, text)
    }

    /// A heading in the summary.
    pub fn heading(self, text: &str) -> String {
        self.apply(HEADING, text)
    }

    /// Success (the verdict of a delivery or a probe).
    pub fn good(self, text: &str) -> String {
        self.apply(GOOD, text)
    }

    /// Failure.
    pub fn bad(self, text: &str) -> String {
        self.apply(BAD, text)
    }

    /// Partial success.
    pub fn partial(self, text: &str) -> String {
        self.apply(PARTIAL, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paint_changes_nothing() {
        let p = Paint::plain();
        assert_eq!(p.sent("-> EHLO x"), "-> EHLO x");
        assert_eq!(p.received("<- 550 no", 550), "<- 550 no");
        assert_eq!(p.bad("Verdict: failed"), "Verdict: failed");
    }

    #[test]
    fn colour_wraps_and_resets() {
        let p = Paint::new(true);
        let s = p.error("** timeout");
        assert!(s.starts_with("\x1b["), "{s:?}");
        assert!(s.ends_with("\x1b[0m"), "{s:?}");
        assert!(s.contains("** timeout"));
        assert_ne!(p.sent("x"), p.received("x", 250));
        assert_eq!(p.received("x", 250), "x");
        assert!(!stdout_color(Color::Never));
        assert!(stdout_color(Color::Always));
    }
}
