//! The SMTP conversation with one server address: the only code that touches sockets.
//!
//! Every wait is bounded: the connect by `connect_timeout`, each reply and each write by `timeout`
//! (a total per reply, not per read, so a server dripping one byte at a time cannot stretch it).
//! Progress is reported as [`Event`]s; nothing here prints.

use crate::events::{Event, Events};
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::plan::Target;
use crate::secret::Secret;
use crate::smtp::auth::{self, Mechanism};
use crate::smtp::codec::{escape_line, parse_reply, DataEncoder, Parsed};
use crate::tls::{self, TlsOptions};
use crate::transcript::Policy;
use crate::transcript::{
    Attempt, BreakKind, Capabilities, Failure, FailureClass, RecipientResult, Reply, Stage, Step,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{
    ClientId, MailBodyParameter, MailParameter, RcptParameter,
};
use lettre::Address;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Size of each chunk of message data encoded and written at a time.
const DATA_CHUNK: usize = 64 * 1024;
/// The most recipients offered in one transaction (RFC 5321 4.5.3.1.8 requires servers to take
/// at least 100); more recipients are sent in further transactions on the same connection.
pub const MAX_RCPTS_PER_TRANSACTION: usize = 100;

/// A byte stream the session can run over (plain TCP, or TLS over it).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The name to announce in EHLO/HELO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helo {
    /// Given with `--helo`.
    Given(ClientId),
    /// This machine's fully qualified name when one is known, else the address literal of the
    /// connection's local address (RFC 5321 4.1.4).
    Auto(Option<String>),
}

/// Settings for one conversation.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// What to announce in EHLO/HELO.
    pub helo: Helo,
    /// Bound on the TCP connect.
    pub connect_timeout: Duration,
    /// Bound on each reply and each write.
    pub timeout: Duration,
    /// Stop after this stage succeeded (RSET after MAIL or RCPT, then QUIT) without sending the
    /// message: `Connect`, `Greeting`, `Ehlo`, `Mail` or `Rcpt`. `None` runs the whole transaction.
    pub quit_after: Option<Stage>,
    /// TLS: the mode (`--tls`), trust roots (`--ca`), `--tls-name` and `--insecure`.
    pub tls: TlsOptions,
    /// AUTH, when `--auth-user` was given (the password already found).
    pub auth: Option<auth::AuthOptions>,
    /// Delivery status notification parameters (RFC 3461).
    pub dsn: Dsn,
}

/// DSN parameters (RFC 3461), sent only when the server advertises DSN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `NOTIFY=` on each RCPT: `NEVER` or some of `SUCCESS`, `FAILURE`, `DELAY`.
    pub notify: Option<Vec<String>>,
    /// `RET=` on MAIL: `FULL` or `HDRS`.
    pub ret: Option<String>,
    /// `ENVID=` on MAIL.
    pub envid: Option<String>,
}

impl Dsn {
    /// `true` when any DSN parameter was asked for.
    pub fn requested(&self) -> bool {
        self.notify.is_some() || self.ret.is_some() || self.envid.is_some()
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The transcript.
    pub attempt: Attempt,
    /// One entry per recipient that was offered to the server (all of them once MAIL was accepted).
    pub recipients: Vec<RecipientResult>,
    /// The text of the reply that accepted the message (usually names the queue id).
    pub queued_as: Option<String>,
    /// Why it did not deliver to every recipient; `None` when it did.
    pub failure: Option<Failure>,
    /// The exit code this attempt alone implies.
    pub exit: Exit,
    /// `true` once the server accepted MAIL FROM: from then on another host must not be tried.
    pub mail_accepted: bool,
    /// Warnings about the message or the server noticed on the way (8-bit content without 8BITMIME…).
    pub warnings: Vec<String>,
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

/// A connection with its read buffer.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads one complete reply, bounded in time (a total deadline) and in size.
    async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, (BreakKind, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tmp = [0u8; 8192];
        loop {
            match parse_reply(&self.buf) {
                Ok(Parsed::Complete(reply, used)) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => return Err((BreakKind::Malformed, format!("malformed reply: {e}"))),
            }
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut tmp)).await {
                Err(_) => {
                    let partial = if self.buf.is_empty() {
                        ""
                    } else {
                        " (only part of a reply arrived)"
                    };
                    return Err((
                        BreakKind::Timeout,
                        format!(
                            "no complete reply within {}{partial}",
                            crate::time::human(timeout)
                        ),
                    ));
                }
                Ok(Err(e)) => return Err(io_break(&e)),
                Ok(Ok(0)) => {
                    let mid = if self.buf.is_empty() {
                        ""
                    } else {
                        " in the middle of a reply"
                    };
                    return Err((
                        BreakKind::Closed,
                        format!("the server closed the connection{mid}"),
                    ));
                }
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// Writes bytes, bounded in time.
    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), (BreakKind, String)> {
        let io = &mut self.io;
        match tokio::time::timeout(timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        {
            Err(_) => Err((
                BreakKind::Timeout,
                format!(
                    "the server did not take the data within {} (it stopped reading)",
                    crate::time::human(timeout)
                ),
            )),
            Ok(Err(e)) => Err(io_break(&e)),
            Ok(Ok(())) => Ok(()),
        }
    }
}

fn io_break(e: &std::io::Error) -> (BreakKind, String) {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => (
            BreakKind::Closed,
            format!("the connection was closed by the server ({e})"),
        ),
        _ => (BreakKind::Io, format!("network error: {e}")),
    }
}

/// Runs the whole conversation with one address and returns what happened.
pub async fn attempt(
    target: &Target,
    opts: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    observer: &dyn Events,
) -> AttemptResult {
    observer.on(&Event::AttemptStarted(target));
    let mut s = Session {
        opts,
        observer,
        attempt: Attempt::new(&target.host, target.address, target.port),
        recipients: Vec::new(),
        queued_as: None,
        mail_accepted: false,
        warnings: Vec::new(),
        local: None,
        first_failure: None,
        quit_early: false,
        encrypted: false,
    };
    let outcome = s.run(target, message, envelope).await;
    let (failure, exit) = match outcome {
        Ok(()) if s.quit_early && opts.quit_after != Some(Stage::Rcpt) => (None, Exit::Delivered),
        Ok(()) => {
            let refused = s.recipients.iter().find(|r| !r.accepted);
            match refused {
                None => (None, Exit::Delivered),
                Some(r) => {
                    let f = match &r.reply {
                        Some(reply) => Failure::refused(
                            Stage::Rcpt,
                            reply,
                            &format!("recipient {} refused", r.address),
                        ),
                        None => Failure::broken(
                            Stage::Rcpt,
                            BreakKind::Protocol,
                            format!("recipient {} not accepted", r.address),
                        ),
                    };
                    (Some(f), Exit::Partial)
                }
            }
        }
        Err(Stop::Refused(f, exit)) | Err(Stop::Fatal(f, exit)) => (Some(f), exit),
        Err(Stop::Broken(f)) => {
            let exit = if f.stage == Stage::Connect {
                Exit::Connect
            } else {
                Exit::Broken
            };
            (Some(f), exit)
        }
    };
    AttemptResult {
        attempt: s.attempt,
        recipients: s.recipients,
        queued_as: s.queued_as,
        failure,
        exit,
        mail_accepted: s.mail_accepted,
        warnings: s.warnings,
    }
}

struct Session<'a> {
    opts: &'a SessionOptions,
    observer: &'a dyn Events,
    attempt: Attempt,
    recipients: Vec<RecipientResult>,
    queued_as: Option<String>,
    mail_accepted: bool,
    warnings: Vec<String>,
    local: Option<SocketAddr>,
    /// The first refusal met in a session that still delivered to someone (for the partial verdict).
    first_failure: Option<Failure>,
    /// The session stopped on purpose after `quit_after`.
    quit_early: bool,
    /// A TLS handshake completed: everything from here on is encrypted.
    encrypted: bool,
}

impl Session<'_> {
    fn record(&mut self, step: Step) {
        self.observer.on(&Event::StepFinished(&step));
        self.attempt.steps.push(step);
    }

    /// Records a step that got no usable reply and turns it into a `Stop`.
    fn broke(
        &mut self,
        stage: Stage,
        sent: Option<String>,
        started: Instant,
        kind: BreakKind,
        why: String,
    ) -> Stop {
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
        Stop::Broken(Failure::broken(stage, kind, format!("{stage}: {why}")))
    }

    /// Sends one command line and reads its reply; `ok` says which codes count as success.
    async fn command(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        line: String,
        ok: fn(u16) -> bool,
    ) -> Result<Reply, Stop> {
        let shown = line.trim_end_matches("\r\n").to_string();
        self.exchange(conn, stage, line.as_bytes(), shown, ok, &[])
            .await
    }

    /// Sends a line that carries a secret (without CRLF): the transcript gets `shown` instead, and
    /// the reply is scrubbed of the password and of the encoded line, should the server echo them.
    async fn command_secret(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        line: &Secret,
        shown: String,
        ok: fn(u16) -> bool,
        password: &Secret,
    ) -> Result<Reply, Stop> {
        let wire = Secret::new(format!("{}\r\n", line.expose()));
        let encoded = line.expose().rsplit(' ').next().unwrap_or("");
        let scrub = [password.expose(), encoded];
        self.exchange(conn, stage, wire.expose().as_bytes(), shown, ok, &scrub)
            .await
    }

    /// Writes `wire` (one line with its CRLF), shown as `shown`, and reads the reply; any of
    /// `scrub` found in the reply is replaced with `<redacted>`.
    async fn exchange(
        &mut self,
        conn: &mut Conn,
        stage: Stage,
        wire: &[u8],
        shown: String,
        ok: fn(u16) -> bool,
        scrub: &[&str],
    ) -> Result<Reply, Stop> {
        let started = Instant::now();
        self.observer.on(&Event::StepStarted {
            stage,
            sent: Some(&shown),
            octets: None,
        });
        let body = wire.strip_suffix(b"\r\n").unwrap_or(wire);
        if shown.contains(['\r', '\n', '\0']) || body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            // Addresses and names are validated long before this; refuse rather than inject.
            return Err(self.broke(
                stage,
                Some(shown),
                started,
                BreakKind::Protocol,
                "refusing to send a command line containing CR, LF or NUL".into(),
            ));
        }
        if !conn.buf.is_empty() {
            // Nothing is pipelined, so the server had no reason to say anything: a reply that
            // arrives before its command (a 354 before DATA) would be taken for the real one.
            let extra = crate::smtp::codec::escape_line(&conn.buf[..conn.buf.len().min(64)]);
            return Err(self.broke(
                stage,
                Some(shown),
                started,
                BreakKind::Protocol,
                format!(
                    "the server sent data before it was asked ({extra:?}): a protocol violation"
                ),
            ));
        }
        if let Err((kind, why)) = conn.write(wire, self.opts.timeout).await {
            return Err(self.broke(stage, Some(shown), started, kind, why));
        }
        match conn.read_reply(self.opts.timeout).await {
            Ok(mut reply) => {
                scrub_reply(&mut reply, scrub);
                self.record(Step {
                    stage,
                    sent: Some(shown),
                    octets: None,
                    ok: ok(reply.code),
                    reply: Some(reply.clone()),
                    elapsed_ms: crate::time::elapsed_ms(started),
                    error: None,
                    error_kind: None,
                });
                Ok(reply)
            }
            Err((kind, why)) => Err(self.broke(stage, Some(shown), started, kind, why)),
        }
    }

    async fn run(
        &mut self,
        target: &Target,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        let mut conn = self.connect(target).await?;
        if self.opts.tls.policy == Policy::Implicit {
            self.handshake(&mut conn).await?;
        }
        if self.stop_here(Stage::Connect) {
            return Ok(());
        }
        let result = self.converse(&mut conn, message, envelope).await;
        match &result {
            // The server answered: end politely. A failed QUIT never changes the verdict.
            Ok(()) | Err(Stop::Refused(..)) => {
                let _ = self
                    .command(&mut conn, Stage::Quit, Quit.to_string(), is_2xx)
                    .await;
            }
            Err(Stop::Broken(_)) | Err(Stop::Fatal(..)) => {}
        }
        result
    }

    async fn connect(&mut self, target: &Target) -> Result<Conn, Stop> {
        let started = Instant::now();
        self.observer.on(&Event::StepStarted {
            stage: Stage::Connect,
            sent: None,
            octets: None,
        });
        let addr = SocketAddr::new(target.address, target.port);
        let res = tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(addr)).await;
        let (kind, why) = match res {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                self.record(Step {
                    stage: Stage::Connect,
                    sent: None,
                    octets: None,
                    reply: None,
                    elapsed_ms: crate::time::elapsed_ms(started),
                    ok: true,
                    error: None,
                    error_kind: None,
                });
                self.local = local;
                return Ok(Conn {
                    io: Box::new(stream),
                    buf: Vec::new(),
                });
            }
            Err(_) => (
                BreakKind::ConnectTimeout,
                format!(
                    "no answer from {addr} within {}",
                    crate::time::human(self.opts.connect_timeout)
                ),
            ),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
                BreakKind::ConnectionRefused,
                format!("connection to {addr} refused"),
            ),
            Ok(Err(e)) => (
                BreakKind::ConnectFailed,
                format!("cannot connect to {addr}: {e}"),
            ),
        };
        Err(self.broke(Stage::Connect, None, started, kind, why))
    }

    /// `true` (and remembered) when the session is to stop after `stage`.
    fn stop_here(&mut self, stage: Stage) -> bool {
        let stop = self.opts.quit_after == Some(stage);
        self.quit_early |= stop;
        stop
    }

    /// The name for EHLO/HELO.
    fn client_id(&self) -> ClientId {
        match &self.opts.helo {
            Helo::Given(id) => id.clone(),
            Helo::Auto(Some(fqdn)) => ClientId::Domain(fqdn.clone()),
            Helo::Auto(None) => match self.local.map(|a| a.ip()) {
                Some(IpAddr::V4(v4)) => ClientId::Ipv4(v4),
                Some(IpAddr::V6(v6)) => ClientId::Ipv6(v6),
                None => ClientId::Ipv4(std::net::Ipv4Addr::LOCALHOST),
            },
        }
    }

    async fn converse(
        &mut self,
        conn: &mut Conn,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        // Greeting.
        let started = Instant::now();
        self.observer.on(&Event::StepStarted {
            stage: Stage::Greeting,
            sent: None,
            octets: None,
        });
        let greeting = match conn.read_reply(self.opts.timeout).await {
            Ok(r) => r,
            Err((kind, why)) => return Err(self.broke(Stage::Greeting, None, started, kind, why)),
        };
        let ok = greeting.code == 220;
        self.record(Step {
            stage: Stage::Greeting,
            sent: None,
            octets: None,
            reply: Some(greeting.clone()),
            elapsed_ms: crate::time::elapsed_ms(started),
            ok,
            error: None,
            error_kind: None,
        });
        if !ok {
            let f = Failure::refused(
                Stage::Greeting,
                &greeting,
                "the server refused the session in its greeting",
            );
            return Err(Stop::Refused(f, Exit::Greeting));
        }
        if self.opts.tls.policy == Policy::Implicit {
            // Decided after the greeting so that a refusal can still end with QUIT over TLS.
            self.tls_verdict()?;
        }
        self.attempt.greeting_name = greeting
            .lines
            .first()
            .and_then(|l| l.get(4..))
            .and_then(|t| t.split_whitespace().next())
            .filter(|n| crate::address::check_domain(n).is_ok())
            .map(str::to_string);
        if self.stop_here(Stage::Greeting) {
            return Ok(());
        }

        // EHLO, falling back to HELO only when EHLO is not recognised or not implemented.
        let id = self.client_id();
        let ehlo = self
            .command(conn, Stage::Ehlo, Ehlo::new(id.clone()).to_string(), is_2xx)
            .await?;
        let caps = if ehlo.is_positive() {
            let caps = crate::smtp::codec::parse_capabilities(&ehlo);
            self.attempt.capabilities = Some(caps.clone());
            caps
        } else if matches!(ehlo.code, 500 | 502 | 504 | 550) {
            let helo = self
                .command(conn, Stage::Helo, format!("HELO {id}\r\n"), is_2xx)
                .await?;
            if !helo.is_positive() {
                let f =
                    Failure::refused(Stage::Helo, &helo, "the server refused both EHLO and HELO");
                return Err(Stop::Refused(f, Exit::Hello));
            }
            Capabilities::default()
        } else {
            let f = Failure::refused(Stage::Ehlo, &ehlo, "the server refused EHLO");
            return Err(Stop::Refused(f, Exit::Hello));
        };
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

    /// Records a warning and shows it in the transcript.
    fn warn(&mut self, text: String) {
        self.observer.on(&Event::Note(&text));
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    /// STARTTLS as `--tls` asks: when offered (opportunistic) or always (required). The command is
    /// written alone; bytes the server sends after its 220 and before the handshake are a protocol
    /// violation. After the handshake EHLO is sent again and only its capabilities are used.
    async fn starttls(
        &mut self,
        conn: &mut Conn,
        caps: Capabilities,
        id: &ClientId,
    ) -> Result<Capabilities, Stop> {
        let policy = self.opts.tls.policy;
        if !matches!(policy, Policy::Opportunistic | Policy::Required) {
            return Ok(caps);
        }
        let host = self.attempt.host.clone();
        if !caps.starttls {
            if policy == Policy::Required {
                let f = Failure {
                    stage: Stage::Starttls,
                    class: FailureClass::Permanent,
                    reason: format!(
                        "TLS is required (--tls required) but {host} does not offer STARTTLS in its EHLO reply"
                    ),
                    code: None,
                    enhanced: None,
                    kind: None,
                };
                return Err(Stop::Refused(f, Exit::Tls));
            }
            self.warn(format!(
                "{host} does not offer STARTTLS: the session continued unencrypted (--tls opportunistic)"
            ));
            return Ok(caps);
        }
        let reply = self
            .command(conn, Stage::Starttls, "STARTTLS\r\n".to_string(), |c| {
                c == 220
            })
            .await?;
        if reply.code != 220 {
            if policy == Policy::Required {
                let f = Failure::refused(
                    Stage::Starttls,
                    &reply,
                    "TLS is required (--tls required) but the server refused STARTTLS",
                );
                return Err(Stop::Refused(f, Exit::Tls));
            }
            self.warn(format!(
                "{host} refused STARTTLS ({}): the session continued unencrypted (--tls opportunistic)",
                reply.lines.join(" / ")
            ));
            return Ok(caps);
        }
        if !conn.buf.is_empty() {
            // CVE-2011-0411 class: anything buffered now was sent in clear and would be taken as
            // coming from inside the TLS session. Never use it.
            let junk = std::mem::take(&mut conn.buf);
            let why = format!(
                "protocol violation: the server sent {} byte(s) after its 220 reply to STARTTLS, before the TLS handshake ({}); discarded and the session abandoned (CVE-2011-0411 class: data injected across STARTTLS)",
                junk.len(),
                escape_line(&junk[..junk.len().min(80)])
            );
            let started = Instant::now();
            self.observer.on(&Event::StepStarted {
                stage: Stage::Starttls,
                sent: None,
                octets: None,
            });
            let stop = self.broke(Stage::Starttls, None, started, BreakKind::Protocol, why);
            return Err(fatal_tls(stop));
        }
        self.handshake(conn).await?;
        self.tls_verdict()?;
        let ehlo = self
            .command(conn, Stage::Ehlo, Ehlo::new(id.clone()).to_string(), is_2xx)
            .await?;
        if !ehlo.is_positive() {
            let f = Failure::refused(Stage::Ehlo, &ehlo, "the server refused EHLO after STARTTLS");
            return Err(Stop::Refused(f, Exit::Hello));
        }
        let caps = crate::smtp::codec::parse_capabilities(&ehlo);
        self.attempt.capabilities = Some(caps.clone());
        Ok(caps)
    }

    /// The TLS handshake over the current connection (after STARTTLS, or at once for implicit
    /// TLS). The certificate verdict is recorded, not enforced: see [`Session::tls_verdict`].
    async fn handshake(&mut self, conn: &mut Conn) -> Result<(), Stop> {
        let started = Instant::now();
        self.observer.on(&Event::StepStarted {
            stage: Stage::Starttls,
            sent: None,
            octets: None,
        });
        let name = self.opts.tls.verify_name(&self.attempt.host);
        let setup = tls::client_config(&self.opts.tls)
            .and_then(|(config, verifier)| Ok((config, verifier, tls::server_name(&name)?)));
        let (config, verifier, server_name) = match setup {
            Ok(x) => x,
            Err(why) => {
                let stop = self.broke(Stage::Starttls, None, started, BreakKind::Protocol, why);
                return Err(fatal_tls(stop));
            }
        };
        let io = std::mem::replace(&mut conn.io, Box::new(tokio::io::empty()));
        let connector = tokio_rustls::TlsConnector::from(config);
        let res = tokio::time::timeout(self.opts.timeout, connector.connect(server_name, io)).await;
        let stream = match res {
            Ok(Ok(stream)) => stream,
            Err(_) => {
                let why = format!(
                    "TLS handshake: no answer within {}",
                    crate::time::human(self.opts.timeout)
                );
                let stop = self.broke(Stage::Starttls, None, started, BreakKind::Timeout, why);
                return Err(fatal_tls(stop));
            }
            Ok(Err(e)) => {
                let (kind, why) = tls_break(&e);
                let why = format!("TLS handshake failed: {why}");
                let stop = self.broke(Stage::Starttls, None, started, kind, why);
                return Err(fatal_tls(stop));
            }
        };
        let info = tls::describe(
            stream.get_ref().1,
            verifier.seen(),
            self.opts.tls.policy,
            &name,
            crate::time::now_unix(),
        );
        conn.io = Box::new(stream);
        self.encrypted = true;
        self.record(Step {
            stage: Stage::Starttls,
            sent: None,
            octets: None,
            reply: None,
            elapsed_ms: crate::time::elapsed_ms(started),
            ok: true,
            error: None,
            error_kind: None,
        });
        self.observer.on(&Event::TlsEstablished(&info));
        self.attempt.tls = Some(info);
        Ok(())
    }

    /// Applies the certificate verdict: with `--tls required` or `implicit` (without `--insecure`)
    /// a certificate that did not verify ends the session; otherwise it is a warning.
    fn tls_verdict(&mut self) -> Result<(), Stop> {
        let Some(info) = &self.attempt.tls else {
            return Ok(());
        };
        if info.verified {
            return Ok(());
        }
        let reason = info
            .reason
            .clone()
            .unwrap_or_else(|| "certificate not verified".into());
        let host = self.attempt.host.clone();
        let policy = self.opts.tls.policy;
        if policy.strict() && !self.opts.tls.insecure {
            let f = Failure {
                stage: Stage::Starttls,
                class: FailureClass::Permanent,
                reason: format!(
                    "TLS certificate of {host} not accepted (--tls {}): {reason}",
                    policy.as_str()
                ),
                code: None,
                enhanced: None,
                kind: None,
            };
            return Err(Stop::Refused(f, Exit::Tls));
        }
        let why = if policy.strict() {
            "because of --insecure"
        } else {
            "as --tls opportunistic allows"
        };
        self.warn(format!(
            "TLS certificate of {host} not verified: {reason}; the session continued encrypted but the server is not authenticated ({why})"
        ));
        Ok(())
    }

    /// AUTH with `--auth-user`: refused before any credential is sent when the connection is not
    /// encrypted (or its certificate did not verify) unless `--allow-plain-auth`, or when the server
    /// offers no AUTH. Credentials appear in the transcript only redacted.
    async fn authenticate(&mut self, conn: &mut Conn, caps: &Capabilities) -> Result<(), Stop> {
        let opts = self.opts;
        let Some(auth) = &opts.auth else {
            return Ok(());
        };
        let user = auth.user.as_str();
        let refuse = |reason: String| {
            Stop::Refused(
                Failure {
                    stage: Stage::Auth,
                    class: FailureClass::Permanent,
                    reason,
                    code: None,
                    enhanced: None,
                    kind: None,
                },
                Exit::Auth,
            )
        };
        if !auth.allow_unencrypted {
            if !self.encrypted {
                return Err(refuse(format!(
                    "refusing to send the password of {user} over an unencrypted connection (nothing was sent); use TLS (--tls required or --tls implicit) or allow it with --allow-plain-auth"
                )));
            }
            let unverified = self.attempt.tls.as_ref().filter(|t| !t.verified);
            if let (Some(t), false) = (unverified, opts.tls.insecure) {
                return Err(refuse(format!(
                    "refusing to send the password of {user}: the TLS certificate was not verified ({}), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or send it anyway with --insecure or --allow-plain-auth",
                    t.reason.as_deref().unwrap_or("not verified")
                )));
            }
        }
        if caps.auth.is_empty() {
            let after = if self.encrypted { " after TLS" } else { "" };
            return Err(refuse(format!(
                "cannot log in as {user}: the server does not offer AUTH in its EHLO reply{after}"
            )));
        }
        let (mech, advertised) = auth::choose(&caps.auth, auth.mechanism)
            .map_err(|why| refuse(format!("cannot log in as {user}: {why}")))?;
        if !advertised {
            self.warn(format!(
                "AUTH {} was forced with --auth-mech although the server offers only AUTH {}",
                mech.as_str(),
                caps.auth.join(" ")
            ));
        }
        let password = &auth.password;
        let is_334 = |c: u16| c == 334;
        let last = match mech {
            Mechanism::Plain => {
                let line = auth::plain_command(user, password);
                self.command_secret(
                    conn,
                    Stage::Auth,
                    &line,
                    mech.shown_command(user),
                    is_2xx,
                    password,
                )
                .await?
            }
            Mechanism::Login => {
                let r = self
                    .command(conn, Stage::Auth, "AUTH LOGIN\r\n".into(), is_334)
                    .await?;
                if r.code != 334 {
                    r
                } else {
                    let line = format!("{}\r\n", auth::login_user(user));
                    let shown = format!("<user name {user}, base64>");
                    let r = self
                        .exchange(conn, Stage::Auth, line.as_bytes(), shown, is_334, &[])
                        .await?;
                    if r.code != 334 {
                        r
                    } else {
                        let line = auth::login_password(password);
                        let shown = auth::redacted("password", user);
                        self.command_secret(conn, Stage::Auth, &line, shown, is_2xx, password)
                            .await?
                    }
                }
            }
            Mechanism::CramMd5 => {
                let r = self
                    .command(conn, Stage::Auth, "AUTH CRAM-MD5\r\n".into(), is_334)
                    .await?;
                if r.code != 334 {
                    r
                } else {
                    let challenge = r.lines.first().and_then(|l| l.get(4..)).unwrap_or("");
                    match auth::cram_md5_response(user, password, challenge) {
                        Ok(line) => {
                            let shown = auth::redacted("CRAM-MD5 response", user);
                            self.command_secret(conn, Stage::Auth, &line, shown, is_2xx, password)
                                .await?
                        }
                        Err(why) => {
                            // RFC 4954: "*" cancels the exchange.
                            self.command(conn, Stage::Auth, "*\r\n".into(), |_| true)
                                .await?;
                            return Err(refuse(format!("cannot log in as {user}: {why}")));
                        }
                    }
                }
            }
        };
        if last.is_positive() {
            return Ok(());
        }
        let f = Failure::refused(
            Stage::Auth,
            &last,
            &format!("authentication as {user} ({}) failed", mech.as_str()),
        );
        Err(Stop::Refused(f, Exit::Auth))
    }

    /// One transaction per [`MAX_RCPTS_PER_TRANSACTION`] recipients. A transaction whose recipients
    /// were all refused is reset and the next one tried; any other refusal ends the session.
    async fn transactions(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        let chunks: Vec<&[Address]> = envelope
            .recipients
            .chunks(MAX_RCPTS_PER_TRANSACTION)
            .collect();
        let mut first: Option<(Failure, Exit)> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let base = self.recipients.len();
            match self.transaction(conn, caps, message, envelope, chunk).await {
                Ok(()) if self.quit_early => return Ok(()),
                Ok(()) => {}
                Err(stop @ (Stop::Broken(_) | Stop::Fatal(..))) => {
                    // The session broke before this transaction's message was accepted (at RCPT,
                    // DATA or waiting for the final reply): none of its recipients got the mail.
                    self.recipients[base..]
                        .iter_mut()
                        .for_each(|r| r.accepted = false);
                    return Err(stop);
                }
                Err(Stop::Refused(f, exit)) => {
                    self.first_failure.get_or_insert_with(|| f.clone());
                    first.get_or_insert((f.clone(), exit));
                    let delivered = self.recipients.iter().any(|r| r.accepted);
                    let only_rcpts_refused = f.stage == Stage::Rcpt && f.code != Some(421);
                    if only_rcpts_refused && i + 1 < chunks.len() {
                        let rset = self
                            .command(conn, Stage::Rset, Rset.to_string(), is_2xx)
                            .await?;
                        if rset.is_positive() {
                            continue;
                        }
                    }
                    if delivered {
                        return Ok(());
                    }
                    return Err(Stop::Refused(f, exit));
                }
            }
        }
        // --quit-after rcpt: every chunk's recipients were tried (and reset); stop here.
        self.stop_here(Stage::Rcpt);
        match first {
            Some((f, exit)) if !self.recipients.iter().any(|r| r.accepted) => {
                Err(Stop::Refused(f, exit))
            }
            _ => Ok(()),
        }
    }

    /// MAIL, RCPT for each of `recipients`, DATA and the message.
    async fn transaction(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
        recipients: &[Address],
    ) -> Result<(), Stop> {
        let base = self.recipients.len();
        let size = message.normalized_len();
        let mut params = Vec::new();
        if let Some(limit) = caps.size {
            if limit > 0 && size > limit {
                let f = Failure {
                    stage: Stage::Mail,
                    class: FailureClass::Permanent,
                    reason: format!("the message is {size} octets but the server accepts at most {limit} (EHLO SIZE {limit}); not sent"),
                    code: None,
                    enhanced: None,
                    kind: Some(BreakKind::TooLarge),
                };
                return Err(Stop::Refused(f, Exit::Message));
            }
            params.push(MailParameter::Size(size as usize));
        }
        if message.eight_bit {
            if caps.eight_bit_mime {
                params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
            } else {
                self.warnings.push(
                    "the message has 8-bit content but the server does not advertise 8BITMIME: it may be refused or altered".into(),
                );
            }
        }
        if envelope.needs_smtputf8() {
            if caps.smtputf8 {
                params.push(MailParameter::SmtpUtfEight);
            } else {
                let f = Failure {
                    stage: Stage::Mail,
                    class: FailureClass::Permanent,
                    reason: "an envelope address is not ASCII and the server does not advertise SMTPUTF8; not sent".into(),
                    code: None,
                    enhanced: None,
                    kind: Some(BreakKind::Unsupported),
                };
                return Err(Stop::Refused(f, Exit::Mail));
            }
        }

        let dsn = &self.opts.dsn;
        let use_dsn = caps.dsn && dsn.requested();
        if dsn.requested() && !caps.dsn {
            self.warn(
                "the server does not advertise DSN: --notify, --ret and --envid were not sent"
                    .into(),
            );
        }
        if use_dsn {
            if let Some(ret) = &dsn.ret {
                params.push(MailParameter::Other {
                    keyword: "RET".into(),
                    value: Some(ret.clone()),
                });
            }
            if let Some(envid) = &dsn.envid {
                params.push(MailParameter::Other {
                    keyword: "ENVID".into(),
                    value: Some(envid.clone()),
                });
            }
        }
        let rcpt_params: Vec<RcptParameter> = match (&dsn.notify, use_dsn) {
            (Some(notify), true) => vec![RcptParameter::Other {
                keyword: "NOTIFY".into(),
                value: Some(notify.join(",")),
            }],
            _ => Vec::new(),
        };
        let mail = self
            .command(
                conn,
                Stage::Mail,
                Mail::new(envelope.from.clone(), params).to_string(),
                is_2xx,
            )
            .await?;
        if !mail.is_positive() {
            let f = Failure::refused(
                Stage::Mail,
                &mail,
                "the server refused the sender (MAIL FROM)",
            );
            return Err(Stop::Refused(f, Exit::Mail));
        }
        self.mail_accepted = true;
        if self.stop_here(Stage::Mail) {
            self.command(conn, Stage::Rset, Rset.to_string(), is_2xx)
                .await?;
            return Ok(());
        }

        for rcpt in recipients {
            let reply = self
                .command(
                    conn,
                    Stage::Rcpt,
                    Rcpt::new(rcpt.clone(), rcpt_params.clone()).to_string(),
                    is_2xx,
                )
                .await?;
            let accepted = reply.is_positive();
            let closing = reply.code == 421;
            if !accepted && self.first_failure.is_none() {
                self.first_failure = Some(Failure::refused(
                    Stage::Rcpt,
                    &reply,
                    &format!("recipient {rcpt} refused"),
                ));
            }
            self.recipients.push(RecipientResult {
                address: rcpt.to_string(),
                accepted,
                reply: Some(reply.clone()),
            });
            if closing {
                self.recipients[base..]
                    .iter_mut()
                    .for_each(|r| r.accepted = false);
                let f = Failure::refused(Stage::Rcpt, &reply, "the server is closing the session");
                return Err(Stop::Refused(f, Exit::Rcpt));
            }
        }
        if !self.recipients[base..].iter().any(|r| r.accepted) {
            let first = self.recipients[base..].iter().find_map(|r| r.reply.clone());
            let f = match first {
                Some(reply) => Failure::refused(Stage::Rcpt, &reply, "no recipient was accepted"),
                None => Failure::broken(
                    Stage::Rcpt,
                    BreakKind::Protocol,
                    "no recipient was accepted".into(),
                ),
            };
            return Err(Stop::Refused(f, Exit::Rcpt));
        }
        if self.opts.quit_after == Some(Stage::Rcpt) {
            // Probe only: reset this transaction; `transactions` stops after the last one.
            self.command(conn, Stage::Rset, Rset.to_string(), is_2xx)
                .await?;
            return Ok(());
        }

        let data = self
            .command(conn, Stage::Data, Data.to_string(), |c| c == 354)
            .await?;
        if data.code != 354 {
            self.recipients[base..]
                .iter_mut()
                .for_each(|r| r.accepted = false);
            let f = Failure::refused(Stage::Data, &data, "the server refused DATA");
            return Err(Stop::Refused(f, Exit::Data));
        }

        let reply = self.send_message(conn, message).await?;
        if reply.is_positive() {
            self.queued_as.get_or_insert_with(|| reply.text());
            Ok(())
        } else {
            self.recipients.iter_mut().for_each(|r| r.accepted = false);
            let f = Failure::refused(
                Stage::Message,
                &reply,
                "the server refused the message after the data",
            );
            Err(Stop::Refused(f, Exit::Message))
        }
    }

    /// Writes the message (CRLF-normalised, dot-stuffed, terminated) and reads the final reply.
    async fn send_message(&mut self, conn: &mut Conn, message: &Message) -> Result<Reply, Stop> {
        let started = Instant::now();
        let sent = Some(".".to_string());
        self.observer.on(&Event::StepStarted {
            stage: Stage::Message,
            sent: Some("."),
            octets: Some(message.size()),
        });
        let mut enc = DataEncoder::new();
        let mut out = Vec::with_capacity(DATA_CHUNK + DATA_CHUNK / 8);
        let mut octets = 0u64;
        // From memory, or read from the file chunk by chunk for a large message: a file that
        // cannot be read or changed size breaks the session before the terminator, so the server
        // never takes a cut message.
        let mut content = match message.content(DATA_CHUNK) {
            Ok(c) => c,
            Err(why) => return Err(self.broke(Stage::Message, sent, started, BreakKind::Io, why)),
        };
        loop {
            let chunk = match content.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(why) => {
                    return Err(self.broke(Stage::Message, sent, started, BreakKind::Io, why))
                }
            };
            out.clear();
            enc.encode(chunk, &mut out);
            octets += out.len() as u64;
            if let Err((kind, why)) = conn.write(&out, self.opts.timeout).await {
                return Err(self.broke(Stage::Message, sent, started, kind, why));
            }
        }
        out.clear();
        enc.finish(&mut out);
        octets += out.len() as u64 - 3;
        if let Err((kind, why)) = conn.write(&out, self.opts.timeout).await {
            return Err(self.broke(Stage::Message, sent, started, kind, why));
        }
        match conn.read_reply(self.opts.timeout).await {
            Ok(reply) => {
                self.record(Step {
                    stage: Stage::Message,
                    sent,
                    octets: Some(octets),
                    ok: reply.is_positive(),
                    reply: Some(reply.clone()),
                    elapsed_ms: crate::time::elapsed_ms(started),
                    error: None,
                    error_kind: None,
                });
                Ok(reply)
            }
            Err((kind, why)) => Err(self.broke(Stage::Message, sent, started, kind, why)),
        }
    }
}

/// A broken step during TLS set-up: the exit code is the TLS one and no QUIT is sent.
fn fatal_tls(stop: Stop) -> Stop {
    match stop {
        Stop::Broken(f) => Stop::Fatal(f, Exit::Tls),
        other => other,
    }
}

/// Why a TLS handshake failed, in words.
fn tls_break(e: &std::io::Error) -> (BreakKind, String) {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::InvalidData => (BreakKind::Protocol, e.to_string()),
        K::UnexpectedEof => (
            BreakKind::Closed,
            "the server closed the connection during the handshake".to_string(),
        ),
        _ => io_break(e),
    }
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

fn is_2xx(code: u16) -> bool {
    (200..300).contains(&code)
}
