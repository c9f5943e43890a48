//! The SMTP conversation with one server address, split by job:
//!
//! - `conn`: the socket: connect, read buffer, bounded reads and writes, the TLS upgrade;
//! - `chat`: one command, one reply, one recorded step;
//! - `hello`, `starttls`, `login`, `transaction`: the protocol, asking [`crate::smtp::rules`]
//!   what to do at each turn;
//! - `data`: the message transfer;
//! - this file: the driver, from the connect to QUIT, and what the attempt came to.
//!
//! Every wait is bounded: the connect by `connect_timeout`, each reply and each write by `timeout`
//! (a total per reply, not per read, so a server dripping one byte at a time cannot stretch it).
//! Progress is reported as [`Event`]s; nothing here prints.

mod chat;
mod conn;
mod data;
mod hello;
mod login;
mod options;
mod starttls;
#[cfg(test)]
mod tests;
mod transaction;

#[cfg(test)]
use conn::Io;
pub use options::{Dsn, Helo, SessionOptions};

use crate::events::{Event, Events};
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::plan::Target;
use crate::smtp::rules::{self, Ending};
use crate::transcript::{Attempt, Failure, Policy, RecipientResult, Stage};
use chat::{Broke, Chat};
use conn::Conn;
use lettre::transport::smtp::commands::Quit;
use std::net::SocketAddr;

/// The most recipients offered in one transaction (RFC 5321 4.5.3.1.8 requires servers to take
/// at least 100); more recipients are sent in further transactions on the same connection.
pub const MAX_RCPTS_PER_TRANSACTION: usize = 100;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The transcript.
    pub attempt: Attempt,
    /// One entry per recipient that was offered to the server (all of them once MAIL was accepted).
    pub recipients: Vec<RecipientResult>,
    /// The text of the reply that accepted the message (usually names the queue id).
    pub queued_as: Option<String>,
    /// The queue id found in that reply, for the common MTAs' formats.
    pub queue_id: Option<String>,
    /// Why it did not deliver to every recipient; `None` when it did.
    pub failure: Option<Failure>,
    /// The exit code this attempt alone implies.
    pub exit: Exit,
    /// `true` once the server accepted MAIL FROM: from then on another host must not be tried.
    pub mail_accepted: bool,
    /// Warnings about the message or the server noticed on the way (8-bit content without 8BITMIME…).
    pub warnings: Vec<String>,
    /// The TLS handshake failed (the session could not go on over that connection).
    pub handshake_failed: bool,
}

/// Runs the whole conversation with one address (TCP connect first) and returns what happened.
pub async fn attempt(
    target: &Target,
    opts: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    events: &dyn Events,
) -> AttemptResult {
    events.on(&Event::AttemptStarted(target));
    let mut s = Session::new(target, opts, events);
    let outcome = match s.connect(target).await {
        Ok(conn) => s.run(conn, message, envelope).await,
        Err(stop) => Err(stop),
    };
    s.finish(outcome)
}

/// Runs the whole conversation over a stream already open to `target` (no connect step is
/// recorded); `local` is the stream's local address, for the EHLO address literal. The unit tests
/// run whole sessions over in-memory streams with it.
#[cfg(test)]
pub async fn attempt_on(
    io: impl Io + 'static,
    local: Option<SocketAddr>,
    target: &Target,
    opts: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    events: &dyn Events,
) -> AttemptResult {
    events.on(&Event::AttemptStarted(target));
    let mut s = Session::new(target, opts, events);
    s.local = local;
    s.attempt.local_ip = local.map(|a| a.ip());
    let outcome = s.run(Conn::new(Box::new(io)), message, envelope).await;
    s.finish(outcome)
}

/// Why the conversation stopped early.
enum Stop {
    /// The server answered, but not with what was needed.
    Refused(Failure, Exit),
    /// No usable reply: the session broke.
    Broken(Failure),
    /// The session broke in a way that decides the exit code itself (a failed TLS handshake, bytes
    /// injected across STARTTLS): no QUIT is sent.
    Fatal(Failure, Exit),
}

impl From<Broke> for Stop {
    fn from(b: Broke) -> Stop {
        Stop::Broken(b.0)
    }
}

/// One conversation in progress.
struct Session<'a> {
    opts: &'a SessionOptions,
    events: &'a dyn Events,
    chat: Chat<'a>,
    /// The transcript so far (its steps are in `chat` until the end).
    attempt: Attempt,
    recipients: Vec<RecipientResult>,
    queued_as: Option<String>,
    queue_id: Option<String>,
    mail_accepted: bool,
    warnings: Vec<String>,
    local: Option<SocketAddr>,
    /// Recipients the server would not take in the current transaction (its recipient limit),
    /// for a further one.
    limited: Vec<lettre::Address>,
    /// The first RCPT of a transaction met the recipient limit: no further transaction.
    limit_stuck: bool,
    /// The session stopped on purpose after `quit_after`.
    quit_early: bool,
    /// A TLS handshake completed: everything from here on is encrypted.
    encrypted: bool,
    /// A TLS handshake failed.
    handshake_failed: bool,
}

impl<'a> Session<'a> {
    fn new(target: &Target, opts: &'a SessionOptions, events: &'a dyn Events) -> Session<'a> {
        Session {
            opts,
            events,
            chat: Chat::new(events, opts.timeout),
            attempt: Attempt::new(&target.host, target.address, target.port),
            recipients: Vec::new(),
            queued_as: None,
            queue_id: None,
            mail_accepted: false,
            warnings: Vec::new(),
            local: None,
            limited: Vec::new(),
            limit_stuck: false,
            quit_early: false,
            encrypted: false,
            handshake_failed: false,
        }
    }

    /// The TCP connect, recorded as the `connect` step.
    async fn connect(&mut self, target: &Target) -> Result<Conn, Stop> {
        let started = self.chat.start(Stage::Connect, None, None);
        let addr = SocketAddr::new(target.address, target.port);
        match Conn::connect(addr, self.opts.connect_timeout).await {
            Ok((conn, local)) => {
                self.chat.passed(Stage::Connect, started);
                self.local = local;
                self.attempt.local_ip = local.map(|a| a.ip());
                Ok(conn)
            }
            Err((kind, why)) => Err(self
                .chat
                .broke(Stage::Connect, None, started, kind, why)
                .into()),
        }
    }

    /// Everything after the connect: implicit TLS, the conversation, and QUIT when the server is
    /// still answering (a failed QUIT never changes the verdict).
    async fn run(
        &mut self,
        mut conn: Conn,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        if self.opts.tls.policy == Policy::Implicit {
            self.handshake(&mut conn, Stage::Tls).await?;
        }
        if self.stop_here(Stage::Connect) {
            conn.close(self.opts.timeout.min(CLOSE_BOUND)).await;
            return Ok(());
        }
        let result = self.converse(&mut conn, message, envelope).await;
        if let Ok(()) | Err(Stop::Refused(..)) = result {
            let quit = Quit.to_string();
            let _ = self
                .chat
                .command(&mut conn, Stage::Quit, quit, is_2xx)
                .await;
        }
        result
    }

    /// Greeting, EHLO (or HELO), STARTTLS, AUTH and the transactions, each stage a possible stop.
    async fn converse(
        &mut self,
        conn: &mut Conn,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        self.greet(conn).await?;
        if self.stop_here(Stage::Greeting) {
            return Ok(());
        }
        let id = self.client_id();
        let caps = self.hello(conn, &id).await?;
        if self.stop_here(Stage::Ehlo) {
            return Ok(());
        }
        let caps = self.starttls(conn, caps, &id).await?;
        if self.stop_here(Stage::Starttls) {
            return Ok(());
        }
        self.authenticate(conn, &caps).await?;
        if self.stop_here(Stage::Auth) {
            return Ok(());
        }
        self.transactions(conn, &caps, message, envelope).await
    }

    /// `true` (and remembered) when the session is to stop after `stage`.
    fn stop_here(&mut self, stage: Stage) -> bool {
        let stop = self.opts.quit_after == Some(stage);
        self.quit_early |= stop;
        stop
    }

    /// Records a warning and shows it in the transcript.
    fn warn(&mut self, text: String) {
        self.events.on(&Event::Note(&text));
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    /// What the attempt came to.
    fn finish(mut self, outcome: Result<(), Stop>) -> AttemptResult {
        let ending = match outcome {
            Ok(()) => Ending::Finished,
            Err(Stop::Refused(f, exit) | Stop::Fatal(f, exit)) => Ending::Refused(f, exit),
            Err(Stop::Broken(f)) => Ending::Broken(f),
        };
        let quit_after = self.opts.quit_after;
        let (failure, exit) = rules::outcome(ending, self.quit_early, quit_after, &self.recipients);
        self.attempt.steps = self.chat.into_steps();
        if let Some(f) = &failure {
            if f.stage != Stage::Rcpt || exit != Exit::Partial {
                rules::mark_stop(&mut self.attempt.steps, f);
            }
        }
        AttemptResult {
            attempt: self.attempt,
            recipients: self.recipients,
            queued_as: self.queued_as,
            queue_id: self.queue_id,
            failure,
            exit,
            mail_accepted: self.mail_accepted,
            warnings: self.warnings,
            handshake_failed: self.handshake_failed,
        }
    }
}

fn is_2xx(code: u16) -> bool {
    (200..300).contains(&code)
}

/// How long a session that stops without QUIT waits for the server to close after smtpcheck did.
const CLOSE_BOUND: std::time::Duration = std::time::Duration::from_secs(1);
