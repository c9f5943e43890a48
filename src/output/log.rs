//! The protocol log (`--log FILE`): a timestamped record of the whole run, appended to a file, for
//! attaching to a support ticket.
//!
//! One event per line, in a stable format:
//!
//! ```text
//! 2026-11-22T07:00:00.123Z [example.com] SEND MAIL FROM:<a@example.org> SIZE=1342
//! ```
//!
//! timestamp (UTC, milliseconds), the route in brackets (`[-]` for the smart host or the whole run),
//! an event word, and the text. Events: `START`, `DNS`, `CONNECT`, `SEND`, `RECV`, `ERROR`, `TLS`,
//! `NOTE`, `STEP` (stage, code and elapsed ms of each finished step), `VERDICT`. AUTH lines arrive
//! here already redacted by the session, like everywhere else.

use crate::events::{Event, Events};
use crate::plan::Target;
use crate::transcript::{Stage, Step};
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The open log file, shared by every route's observer.
#[derive(Debug, Clone)]
pub struct LogFile {
    file: Arc<Mutex<File>>,
    /// The first write that failed, in words.
    failed: Arc<Mutex<Option<String>>>,
}

impl LogFile {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &std::path::Path) -> std::io::Result<LogFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogFile {
            file: Arc::new(Mutex::new(file)),
            failed: Arc::new(Mutex::new(None)),
        })
    }

    /// Writes one event line.
    pub fn event(&self, route: Option<&str>, event: &str, text: &str) {
        let line = format_line(SystemTime::now(), route, event, text);
        if let Ok(mut f) = self.file.lock() {
            if let Err(e) = f.write_all(line.as_bytes()) {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }

    /// Why a line could not be written, when one could not (the first failure).
    pub fn error(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }

    /// An observer that logs the events of one route.
    pub fn observer(&self, route: Option<&str>) -> LogObserver {
        LogObserver {
            log: self.clone(),
            route: route.map(str::to_string),
        }
    }
}

/// Formats one log line; text with line breaks is split into one line per part.
pub fn format_line(at: SystemTime, route: Option<&str>, event: &str, text: &str) -> String {
    let ts = crate::time::rfc3339_millis(at);
    let route = route.unwrap_or("-");
    let mut out = String::new();
    for part in text.split('\n') {
        out.push_str(&format!(
            "{ts} [{route}] {event} {}\n",
            part.trim_end_matches('\r')
        ));
    }
    out
}

/// Logs one route's events.
#[derive(Debug, Clone)]
pub struct LogObserver {
    log: LogFile,
    route: Option<String>,
}

impl LogObserver {
    fn event(&self, event: &str, text: &str) {
        self.log.event(self.route.as_deref(), event, text);
    }
}

impl LogObserver {
    fn attempt_started(&self, target: &Target) {
        self.event(
            "CONNECT",
            &format!("{} [{}]:{}", target.host, target.address, target.port),
        );
    }

    fn step_started(&self, stage: Stage, sent: Option<&str>, octets: Option<u64>) {
        match (stage, sent) {
            (Stage::Message, _) => {
                self.event(
                    "SEND",
                    &format!("[message data: {} bytes]", octets.unwrap_or(0)),
                );
                self.event("SEND", ".");
            }
            (_, Some(line)) => self.event("SEND", line),
            _ => {}
        }
    }

    fn step_finished(&self, step: &Step) {
        if let Some(reply) = &step.reply {
            for line in &reply.lines {
                self.event("RECV", line);
            }
        }
        if let Some(err) = &step.error {
            self.event("ERROR", err);
        }
        let code = step
            .reply
            .as_ref()
            .map_or("-".to_string(), |r| r.code.to_string());
        self.event(
            "STEP",
            &format!(
                "{} {code} {:.3}ms {}",
                step.stage,
                step.elapsed_ms,
                if step.ok { "ok" } else { "failed" }
            ),
        );
    }

    fn route_planned(&self, plan: &crate::plan::RoutePlan) {
        for mx in &plan.mx {
            let addrs: Vec<String> = mx.addresses.iter().map(|a| a.to_string()).collect();
            let note = mx
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            self.event(
                "DNS",
                &format!(
                    "{} MX {} {} -> {}{note}",
                    plan.domain,
                    mx.preference,
                    mx.host,
                    addrs.join(",")
                ),
            );
        }
        if let Some(note) = &plan.note {
            self.event("DNS", &format!("{} {note}", plan.domain));
        }
        if let Some(f) = &plan.failure {
            self.event(
                "DNS",
                &format!("{} {} ({})", plan.domain, f.reason, f.class.as_str()),
            );
        }
    }

    fn moving_on(&self, why: &str) {
        self.event("NOTE", &format!("trying the next address: {why}"));
    }
}

impl Events for LogObserver {
    fn on(&self, event: &Event<'_>) {
        match *event {
            Event::AttemptStarted(target) => self.attempt_started(target),
            Event::StepStarted {
                stage,
                sent,
                octets,
            } => self.step_started(stage, sent, octets),
            Event::StepFinished(step) => self.step_finished(step),
            Event::RoutePlanned(plan) => self.route_planned(plan),
            Event::MovingOn(why) => self.moving_on(why),
            // The handshake's facts and the notes are in the report; the log records the
            // conversation and, at the end, every warning.
            Event::TlsEstablished(_) | Event::Note(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let l = format_line(SystemTime::UNIX_EPOCH, Some("x.test"), "SEND", "EHLO a\nb");
        assert_eq!(
            l,
            "1970-01-01T00:00:00.000Z [x.test] SEND EHLO a\n1970-01-01T00:00:00.000Z [x.test] SEND b\n"
        );
        assert!(format_line(SystemTime::UNIX_EPOCH, None, "NOTE", "x").contains(" [-] NOTE x"));
    }
}
