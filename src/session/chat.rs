//! The record of the conversation: one command, one reply, one recorded [`Step`].
//!
//! Every step is announced with [`Event::StepStarted`] and recorded with [`Event::StepFinished`],
//! whether it got a reply or broke. A command line is checked before it is written: it must not
//! carry CR, LF or NUL (no command injection), and nothing may be waiting from the server (nothing
//! is pipelined, so bytes that arrive before a command would be taken for its reply). Secrets
//! echoed in a reply are scrubbed before it is recorded.

use super::conn::Conn;
use crate::events::{Event, Events};
use crate::secret::Secret;
use crate::smtp::codec::escape_line;
use crate::transcript::{BreakKind, Failure, Reply, Stage, Step};
use std::time::{Duration, Instant};

/// A step that got no usable reply: it is recorded already; this is the failure to report.
pub(super) struct Broke(pub(super) Failure);

/// The steps recorded so far, and where their events go.
pub(super) struct Chat<'a> {
    events: &'a dyn Events,
    timeout: Duration,
    steps: Vec<Step>,
}

impl<'a> Chat<'a> {
    /// A conversation with no steps yet; each reply and write is bounded by `timeout`.
    pub(super) fn new(events: &'a dyn Events, timeout: Duration) -> Chat<'a> {
        Chat {
            events,
            timeout,
            steps: Vec::new(),
        }
    }

    /// The bound on each reply and each write.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The recorded steps, in order.
    pub(super) fn into_steps(self) -> Vec<Step> {
        self.steps
    }

    /// Announces a step and returns when it started.
    pub(super) fn start(&self, stage: Stage, sent: Option<&str>, octets: Option<u64>) -> Instant {
        let started = Instant::now();
        self.events.on(&Event::StepStarted {
            stage,
            sent,
            octets,
        });
        started
    }

    fn record(&mut self, step: Step) {
        self.events.on(&Event::StepFinished(&step));
        self.steps.push(step);
    }

    /// Records a step that succeeded without a reply (the connect, a TLS handshake).
    pub(super) fn passed(&mut self, stage: Stage, started: Instant) {
        self.record(Step {
            stage,
            sent: None,
            octets: None,
            reply: None,
            elapsed_ms: crate::time::elapsed_ms(started),
            ok: true,
            error: None,
            error_kind: None,
        });
    }

    /// Records a step that got its reply; `ok` says whether the reply is the one wanted.
    pub(super) fn replied(
        &mut self,
        stage: Stage,
        sent: Option<String>,
        octets: Option<u64>,
        started: Instant,
        reply: Reply,
        ok: bool,
    ) {
        self.record(Step {
            stage,
            sent,
            octets,
            ok,
            reply: Some(reply),
            elapsed_ms: crate::time::elapsed_ms(started),
            error: None,
            error_kind: None,
        });
    }

    /// Records a step that got no usable reply and returns the failure it implies.
    pub(super) fn broke(
        &mut self,
        stage: Stage,
        sent: Option<String>,
        started: Instant,
        kind: BreakKind,
        why: String,
    ) -> Broke {
        self.record(Step {
            stage,
            sent,
            octets: None,
            reply: None,
            elapsed_ms: crate::time::elapsed_ms(started),
            ok: false,
            error: Some(why.clone()),
            error_kind: Some(kind),
        });
        Broke(Failure::broken(stage, kind, format!("{stage}: {why}")))
    }

    /// A step that sends nothing and reads one reply (the greeting).
    pub(super) async fn receive(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        ok: fn(u16) -> bool,
    ) -> Result<Reply, Broke> {
        let started = self.start(stage, None, None);
        match conn.read_reply(self.timeout).await {
            Ok(reply) => {
                self.replied(stage, None, None, started, reply.clone(), ok(reply.code));
                Ok(reply)
            }
            Err((kind, why)) => Err(self.broke(stage, None, started, kind, why)),
        }
    }

    /// Sends one command line (with its CRLF) and reads its reply; `ok` says which codes count as
    /// success.
    pub(super) async fn command(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        line: String,
        ok: fn(u16) -> bool,
    ) -> Result<Reply, Broke> {
        let shown = line.trim_end_matches("\r\n").to_string();
        self.exchange(conn, stage, line.as_bytes(), shown, ok, &[])
            .await
    }

    /// Sends a line that carries a secret (without CRLF): the transcript gets `shown` instead, and
    /// the reply is scrubbed of the password and of the encoded line, should the server echo them.
    pub(super) async fn command_secret(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        line: &Secret,
        shown: String,
        ok: fn(u16) -> bool,
        password: &Secret,
    ) -> Result<Reply, Broke> {
        let wire = Secret::new(format!("{}\r\n", line.expose()));
        let encoded = line.expose().rsplit(' ').next().unwrap_or("");
        let scrub = [password.expose(), encoded];
        self.exchange(conn, stage, wire.expose().as_bytes(), shown, ok, &scrub)
            .await
    }

    /// Writes `wire` (one line with its CRLF), shown as `shown`, and reads the reply; any of
    /// `scrub` found in the reply is replaced with `<redacted>`.
    pub(super) async fn exchange(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        wire: &[u8],
        shown: String,
        ok: fn(u16) -> bool,
        scrub: &[&str],
    ) -> Result<Reply, Broke> {
        let started = self.start(stage, Some(&shown), None);
        if let Some(why) = refusal(wire, &shown, conn.pending()) {
            return Err(self.broke(stage, Some(shown), started, BreakKind::Protocol, why));
        }
        let res = match conn.write(wire, self.timeout).await {
            Ok(()) => conn.read_reply(self.timeout).await,
            Err(trouble) => Err(trouble),
        };
        match res {
            Ok(mut reply) => {
                scrub_reply(&mut reply, scrub);
                let good = ok(reply.code);
                self.replied(stage, Some(shown), None, started, reply.clone(), good);
                Ok(reply)
            }
            Err((kind, why)) => Err(self.broke(stage, Some(shown), started, kind, why)),
        }
    }
}

/// Why a command must not be sent, if it must not: it carries CR, LF or NUL, or the server has
/// already sent something (`pending`) that no command asked for.
fn refusal(wire: &[u8], shown: &str, pending: &[u8]) -> Option<String> {
    let body = wire.strip_suffix(b"\r\n").unwrap_or(wire);
    if shown.contains(['\r', '\n', '\0']) || body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        // Addresses and names are validated long before this; refuse rather than inject.
        return Some("refusing to send a command line containing CR, LF or NUL".into());
    }
    if !pending.is_empty() {
        // Nothing is pipelined, so the server had no reason to say anything: a reply that
        // arrives before its command (a 354 before DATA) would be taken for the real one.
        let extra = escape_line(&pending[..pending.len().min(64)]);
        return Some(format!(
            "the server sent data before it was asked ({extra:?}): a protocol violation"
        ));
    }
    None
}

/// Replaces every occurrence of the (non-empty) `secrets` in the reply's lines with `<redacted>`.
fn scrub_reply(reply: &mut Reply, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        for line in &mut reply.lines {
            if line.contains(secret) {
                *line = line.replace(secret, "<redacted>");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_line_breaks_or_nul_are_refused() {
        let why = "refusing to send a command line containing CR, LF or NUL";
        assert_eq!(
            refusal(b"MAIL FROM:<a@b>\r\n", "MAIL FROM:<a@b>", b""),
            None
        );
        for wire in [&b"EHLO a\rb\r\n"[..], b"EHLO a\nb\r\n", b"EHLO a\0\r\n"] {
            let shown = String::from_utf8_lossy(wire.strip_suffix(b"\r\n").unwrap_or(wire));
            assert_eq!(refusal(wire, &shown, b"").as_deref(), Some(why));
        }
        assert_eq!(
            refusal(b"AUTH x\r\n", "AUTH <x>\n", b"").as_deref(),
            Some(why)
        );
    }

    #[test]
    fn bytes_waiting_before_a_command_are_refused() {
        let got = refusal(b"DATA\r\n", "DATA", b"354 go\r\n");
        assert_eq!(
            got.as_deref(),
            Some(
                r#"the server sent data before it was asked ("354 go\\x0d\\x0a"): a protocol violation"#
            )
        );
        let long = [b'x'; 100];
        let got = refusal(b"DATA\r\n", "DATA", &long).unwrap_or_default();
        assert!(got.contains(&"x".repeat(64)) && !got.contains(&"x".repeat(65)));
    }

    #[test]
    fn secrets_are_scrubbed_but_not_short_ones() {
        let mut reply = Reply {
            code: 535,
            enhanced: None,
            lines: vec!["535 bad hunter2 for AGJvYgBodW50ZXIy".into()],
        };
        scrub_reply(&mut reply, &["hunter2", "AGJvYgBodW50ZXIy", "ab", ""]);
        assert_eq!(reply.lines, ["535 bad <redacted> for <redacted>"]);
    }
}
