//! The record of the conversation: one command, one reply, one recorded [`Step`].
//!
//! Every step is announced with [`Event::StepStarted`] and recorded with [`Event::StepFinished`],
//! whether it got a reply or broke. A command line is checked before it is written: it must not
//! carry CR, LF or NUL (no command injection), and nothing may be waiting from the server (nothing
//! is pipelined, so bytes that arrive before a command would be taken for its reply). Once a
//! secret has been sent (the password, its base64, the encoded AUTH line), it is scrubbed from
//! every later reply and error of the session before it is recorded: a server that echoes it in
//! its MAIL or DATA reply cannot get it into any output.

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
    /// Every secret sent so far: scrubbed from every reply and error from then on.
    secrets: Vec<Secret>,
}

impl<'a> Chat<'a> {
    /// A conversation with no steps yet; each reply and write is bounded by `timeout`.
    pub(super) fn new(events: &'a dyn Events, timeout: Duration) -> Chat<'a> {
        Chat {
            events,
            timeout,
            steps: Vec::new(),
            secrets: Vec::new(),
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

    /// Remembers a secret that is about to be sent: from now on it is scrubbed from every reply
    /// and error. Secrets shorter than 3 characters are not (they would redact ordinary text).
    fn keep_secret(&mut self, secret: Secret) {
        if secret.expose().len() >= 3 && !self.secrets.contains(&secret) {
            self.secrets.push(secret);
        }
    }

    /// Remembers the AUTH credentials about to be sent: the password, its base64 and the base64
    /// PLAIN forms (with and without the authorisation identity), whatever the mechanism; the
    /// OAuth token, its base64 and its XOAUTH2 form.
    pub(super) fn keep_credentials(
        &mut self,
        user: &str,
        password: Option<&Secret>,
        token: Option<&Secret>,
    ) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Some(password) = password {
            let pw = password.expose();
            self.keep_secret(password.clone());
            self.keep_secret(crate::smtp::auth::login_password(password));
            for plain in [format!("\0{user}\0{pw}"), format!("{user}\0{user}\0{pw}")] {
                let plain = zeroize::Zeroizing::new(plain);
                self.keep_secret(Secret::new(b64.encode(plain.as_bytes())));
            }
        }
        if let Some(token) = token {
            self.keep_secret(token.clone());
            self.keep_secret(crate::smtp::auth::login_password(token));
            self.keep_secret(crate::smtp::auth::xoauth2_response(user, token));
        }
    }

    /// Remembers one more secret (a derived one: the SCRAM proof) to scrub from then on.
    pub(super) fn keep(&mut self, secret: &Secret) {
        self.keep_secret(secret.clone());
    }

    /// `text` with every secret sent so far replaced with `<redacted>`.
    pub(super) fn scrubbed(&self, text: String) -> String {
        let mut text = text;
        for secret in &self.secrets {
            if text.contains(secret.expose()) {
                text = text.replace(secret.expose(), "<redacted>");
            }
        }
        text
    }

    /// Records a step that got its reply (scrubbed of every secret sent so far, which is what it
    /// returns); `ok` says whether the reply is the one wanted.
    pub(super) fn replied(
        &mut self,
        stage: Stage,
        sent: Option<String>,
        octets: Option<u64>,
        started: Instant,
        mut reply: Reply,
        ok: bool,
    ) -> Reply {
        reply.lines = std::mem::take(&mut reply.lines)
            .into_iter()
            .map(|line| self.scrubbed(line))
            .collect();
        self.record(Step {
            stage,
            sent,
            octets,
            ok,
            reply: Some(reply.clone()),
            elapsed_ms: crate::time::elapsed_ms(started),
            error: None,
            error_kind: None,
        });
        reply
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
        let why = self.scrubbed(why);
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
                let good = ok(reply.code);
                Ok(self.replied(stage, None, None, started, reply, good))
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
        self.exchange(conn, stage, line.as_bytes(), shown, ok).await
    }

    /// Sends a line that carries a secret (without CRLF): the transcript gets `shown` instead, and
    /// this reply and every later one are scrubbed of the password, its base64 and the encoded
    /// line, should the server echo them.
    pub(super) async fn command_secret(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        line: &Secret,
        shown: String,
        ok: fn(u16) -> bool,
        also: Option<&Secret>,
    ) -> Result<Reply, Broke> {
        let wire = Secret::new(format!("{}\r\n", line.expose()));
        let encoded = line.expose().rsplit(' ').next().unwrap_or("");
        self.keep_secret(Secret::new(encoded.to_string()));
        if let Some(also) = also {
            self.keep_secret(also.clone());
        }
        self.exchange(conn, stage, wire.expose().as_bytes(), shown, ok)
            .await
    }

    /// Writes `wire` (one line with its CRLF), shown as `shown`, and reads the reply.
    pub(super) async fn exchange(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        wire: &[u8],
        shown: String,
        ok: fn(u16) -> bool,
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
            Ok(reply) => {
                let good = ok(reply.code);
                Ok(self.replied(stage, Some(shown), None, started, reply, good))
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
        return Some(unsolicited(pending));
    }
    None
}

/// Why bytes the server sent before it was asked (`pending`, non-empty) break the session.
pub(super) fn unsolicited(pending: &[u8]) -> String {
    let extra = escape_line(&pending[..pending.len().min(64)]);
    format!("the server sent data before it was asked ({extra:?}): a protocol violation")
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
    fn secrets_are_scrubbed_from_every_later_reply_and_error_but_not_short_ones() {
        let events = crate::events::Silent;
        let mut chat = Chat::new(&events, Duration::from_secs(1));
        for s in ["hunter2", "AGJvYgBodW50ZXIy", "ab", ""] {
            chat.keep_secret(Secret::new(s.into()));
        }
        let reply = |line: &str| Reply {
            code: 250,
            enhanced: None,
            lines: vec![line.into()],
        };
        let got = chat.replied(
            Stage::Mail,
            None,
            None,
            Instant::now(),
            reply("250 ok hunter2 for AGJvYgBodW50ZXIy, ab"),
            true,
        );
        assert_eq!(got.lines, ["250 ok <redacted> for <redacted>, ab"]);
        let Broke(f) = chat.broke(
            Stage::Data,
            None,
            Instant::now(),
            BreakKind::Protocol,
            unsolicited(b"250 hunter2\r\n"),
        );
        assert!(!f.reason.contains("hunter2"), "{}", f.reason);
        let steps = chat.into_steps();
        assert_eq!(
            steps[0].reply.as_ref().map(|r| r.lines.clone()),
            Some(vec!["250 ok <redacted> for <redacted>, ab".to_string()])
        );
        assert!(!steps[1].error.as_deref().unwrap_or("").contains("hunter2"));
    }
}
