//! A small scripted SMTP server for loopback: the receiving end of the quickstart example and of the
//! integration tests (one copy of server code for both).
//!
//! It binds only to loopback addresses, answers each command from a [`Script`], records what it
//! received (commands and the exact DATA bytes) and stops when dropped. Every loop in it is bounded:
//! reads time out, hostile behaviours stop after a fixed amount of output, connections end when the
//! client goes away.
//!
//! With [`Script::tls`] it speaks STARTTLS or implicit TLS (rustls, blocking), and with
//! [`Script::auth`] it accepts AUTH PLAIN, LOGIN and CRAM-MD5 for one user.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the sink waits for a client's next line before it hangs up.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a hostile behaviour writes before giving up (the client should have hung up long before).
const MAX_HOSTILE_OUTPUT: usize = 200 * 1024 * 1024;
/// The longest client line the sink accepts.
const MAX_LINE: usize = 64 * 1024;

/// What the sink does in answer to a command (or instead of the greeting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these reply lines, each followed by CRLF (`"250 2.1.0 Ok"`, or several lines for a
    /// multi-line reply).
    Reply(Vec<String>),
    /// Send these exact bytes.
    Raw(Vec<u8>),
    /// Close the connection without a word.
    Close,
    /// Reset the connection (TCP RST).
    Reset,
    /// Never answer; keep the connection open until the client goes away (at most `READ_TIMEOUT`).
    Silent,
    /// Send this line (plus CRLF) over and over until the client hangs up.
    Endless(String),
    /// Send these bytes one at a time, waiting this long between them.
    Drip(Vec<u8>, Duration),
    /// Stop reading: accept the connection but never read or write again (for write-timeout tests).
    Stall,
}

impl Action {
    /// A single-line reply.
    pub fn reply(line: &str) -> Action {
        Action::Reply(vec![line.to_string()])
    }

    /// A multi-line reply from lines given without their `ddd-` prefixes: `lines(250, ["a", "b"])`
    /// sends `250-a` and `250 b`.
    pub fn lines(code: u16, texts: &[&str]) -> Action {
        let n = texts.len();
        Action::Reply(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{code}{}{t}", if i + 1 == n { ' ' } else { '-' }))
                .collect(),
        )
    }
}

/// How the sink answers. `Script::default()` behaves like an ordinary accepting server.
#[derive(Debug, Clone)]
pub struct Script {
    /// Instead of the greeting.
    pub greeting: Action,
    /// Greetings for the first connections, in order (the first connection gets `greetings[0]`);
    /// later connections get `greeting`. For servers that come up after a while (retry tests).
    pub greetings: Vec<Action>,
    /// Answer to EHLO. In it and in the greetings, `{client}` stands for the client's IP address
    /// (`250-sink.test Hello [{client}]`, as many servers echo it).
    pub ehlo: Action,
    /// Answer to HELO.
    pub helo: Action,
    /// Answer to MAIL FROM.
    pub mail: Action,
    /// Answer to RCPT TO, by default.
    pub rcpt: Action,
    /// Answers to RCPT TO for addresses containing the given text (checked in order, before `rcpt`).
    pub rcpt_for: Vec<(String, Action)>,
    /// A recipient limit: after this many accepted RCPTs in one transaction (counted from MAIL or
    /// RSET), every further RCPT gets this answer (`452 4.5.3 Too many recipients`).
    pub rcpt_limit: Option<(usize, Action)>,
    /// Answer to DATA.
    pub data: Action,
    /// Answer after the message's terminating `.`.
    pub end_of_data: Action,
    /// Answer to QUIT (the sink closes after it).
    pub quit: Action,
    /// Answer to RSET and NOOP.
    pub rset: Action,
    /// Answer to anything else.
    pub unknown: Action,
    /// TLS (STARTTLS or implicit); `None`: no TLS, STARTTLS is an unknown command.
    pub tls: Option<SinkTls>,
    /// AUTH; `None`: AUTH is an unknown command.
    pub auth: Option<SinkAuth>,
    /// A pause before the greeting and before every answer to a command (the answers inside an
    /// AUTH exchange and the TLS handshake excepted), modelling a distant server. Zero by default.
    pub reply_delay: Duration,
}

/// TLS for the sink.
#[derive(Debug, Clone)]
pub struct SinkTls {
    /// The server side: certificate chain and key.
    pub config: Arc<rustls::ServerConfig>,
    /// TLS from the first byte (port 465 style) instead of STARTTLS.
    pub implicit: bool,
    /// Advertise STARTTLS in the EHLO reply (before TLS only).
    pub offer_starttls: bool,
    /// Answer to STARTTLS: a reply whose last line starts with 220 starts the handshake; anything
    /// else is just performed (e.g. `454 4.7.0 TLS not available`).
    pub starttls: Action,
    /// Hostile: bytes sent right after the 220 to STARTTLS, in the same write, before the handshake
    /// (the CVE-2011-0411 shape).
    pub pipeline_after_starttls: Option<Vec<u8>>,
}

impl SinkTls {
    /// STARTTLS, offered and answered with 220, with a PEM certificate chain (leaf first) and a PEM
    /// private key.
    pub fn from_pem(cert_chain: &str, key: &str) -> Result<SinkTls, String> {
        let certs = CertificateDer::pem_slice_iter(cert_chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate PEM: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| format!("private key PEM: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
        Ok(SinkTls {
            config: Arc::new(config),
            implicit: false,
            offer_starttls: true,
            starttls: Action::reply("220 2.0.0 Ready to start TLS"),
            pipeline_after_starttls: None,
        })
    }

    /// Like [`SinkTls::from_pem`], and asks the client for a certificate issued by `client_ca`
    /// (PEM); a client without one is still let in (AUTH EXTERNAL then fails).
    pub fn with_client_auth(
        cert_chain: &str,
        key_pem: &str,
        client_ca: &str,
    ) -> Result<SinkTls, String> {
        let certs = CertificateDer::pem_slice_iter(cert_chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate PEM: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("private key PEM: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(client_ca.as_bytes()) {
            roots
                .add(ca.map_err(|e| format!("client CA PEM: {e}"))?)
                .map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| e.to_string())?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
        Ok(SinkTls {
            config: Arc::new(config),
            ..SinkTls::from_pem(cert_chain, key_pem)?
        })
    }

    /// The same certificate, as implicit TLS (no STARTTLS).
    pub fn implicit(mut self) -> SinkTls {
        self.implicit = true;
        self.offer_starttls = false;
        self
    }
}

/// AUTH for the sink: one user, the mechanisms to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkAuth {
    /// The user name accepted.
    pub user: String,
    /// The password accepted.
    pub password: String,
    /// The mechanisms advertised and accepted (`PLAIN`, `LOGIN`, `CRAM-MD5`).
    pub mechanisms: Vec<String>,
    /// Advertise AUTH before TLS too (by default only over TLS, as most servers do).
    pub offer_in_clear: bool,
    /// The bearer token accepted by XOAUTH2 and OAUTHBEARER for `user`.
    pub token: Option<String>,
    /// The JSON sent base64-encoded in the `334` that refuses a token (RFC 7628 3.2.2).
    pub oauth_error: String,
    /// SCRAM-SHA-256: how the server ends a successful exchange.
    pub scram_final: ScramFinal,
}

/// How the sink ends a SCRAM-SHA-256 exchange whose proof was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScramFinal {
    /// `334 base64(v=SIGNATURE)`, then 235 after the client's empty response (RFC 4954).
    #[default]
    Signature,
    /// A wrong signature (a server that does not know the password).
    WrongSignature,
    /// 235 straight away, with no signature at all.
    NoSignature,
}

impl SinkAuth {
    /// Accepts `user` with `password` by PLAIN, LOGIN or CRAM-MD5, offered over TLS only.
    pub fn new(user: &str, password: &str) -> SinkAuth {
        SinkAuth {
            user: user.to_string(),
            password: password.to_string(),
            mechanisms: vec!["PLAIN".into(), "LOGIN".into(), "CRAM-MD5".into()],
            offer_in_clear: false,
            token: None,
            oauth_error:
                r#"{"status":"invalid_token","schemes":"Bearer","scope":"https://mail.sink.test/"}"#
                    .into(),
            scram_final: ScramFinal::Signature,
        }
    }

    /// Accepts `user` with the bearer `token` by XOAUTH2 or OAUTHBEARER (no password), offered
    /// over TLS only.
    pub fn with_token(user: &str, token: &str) -> SinkAuth {
        SinkAuth {
            password: String::new(),
            mechanisms: vec!["XOAUTH2".into(), "OAUTHBEARER".into()],
            token: Some(token.to_string()),
            ..SinkAuth::new(user, "")
        }
    }
}

/// One AUTH exchange the sink saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLog {
    /// The mechanism named by the client.
    pub mechanism: String,
    /// The user name the client gave (empty when it could not be decoded).
    pub user: String,
    /// Whether the credentials were accepted.
    pub accepted: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            greeting: Action::reply("220 sink.test ESMTP smtpcheck test sink"),
            greetings: Vec::new(),
            ehlo: Action::lines(
                250,
                &[
                    "sink.test greets you",
                    "PIPELINING",
                    "SIZE 10240000",
                    "8BITMIME",
                    "ENHANCEDSTATUSCODES",
                    "SMTPUTF8",
                ],
            ),
            helo: Action::reply("250 sink.test"),
            mail: Action::reply("250 2.1.0 Ok"),
            rcpt: Action::reply("250 2.1.5 Ok"),
            rcpt_for: Vec::new(),
            rcpt_limit: None,
            data: Action::reply("354 End data with <CR><LF>.<CR><LF>"),
            end_of_data: Action::reply("250 2.0.0 Ok: queued as 4QX7Sink01"),
            quit: Action::reply("221 2.0.0 Bye"),
            rset: Action::reply("250 2.0.0 Ok"),
            unknown: Action::reply("502 5.5.2 Error: command not recognized"),
            tls: None,
            auth: None,
            reply_delay: Duration::ZERO,
        }
    }
}

impl Script {
    /// Sets the answer for RCPT TO of addresses containing `needle`.
    pub fn rcpt_for(mut self, needle: &str, action: Action) -> Self {
        self.rcpt_for.push((needle.to_string(), action));
        self
    }
}

/// What one connection received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionLog {
    /// Every command line received, without CRLF (message data excluded).
    pub commands: Vec<String>,
    /// Each message's data exactly as received on the wire (dot-stuffed), up to but excluding the
    /// terminating `.` CRLF line.
    pub messages: Vec<Vec<u8>>,
    /// TLS was started (STARTTLS answered with 220, or implicit TLS).
    pub tls: bool,
    /// Each AUTH exchange (its continuation lines are not in `commands`).
    pub auth: Vec<AuthLog>,
    /// Every client response of the AUTH exchanges, in order, base64-decoded when it was base64
    /// (the initial response of the AUTH line included; an empty response is empty).
    pub auth_responses: Vec<Vec<u8>>,
    /// The client certificate (DER, leaf) presented by the time of an AUTH EXTERNAL.
    pub client_certificate: Option<Vec<u8>>,
}

impl SessionLog {
    /// The commands' verbs (first word, upper-cased): `["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]`.
    pub fn verbs(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| {
                c.split([' ', ':'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .collect()
    }
}

/// Undoes dot-stuffing of wire data (`..x` at a line start becomes `.x`).
pub fn unstuff(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    let mut at_start = true;
    let mut i = 0;
    while i < wire.len() {
        let b = wire[i];
        if at_start && b == b'.' && wire.get(i + 1) == Some(&b'.') {
            i += 1;
        }
        out.push(wire[i]);
        at_start = wire[i] == b'\n' && i > 0 && wire[i - 1] == b'\r';
        i += 1;
    }
    out
}

struct Shared {
    script: Script,
    sessions: Mutex<Vec<SessionLog>>,
    stop: AtomicBool,
    connections: AtomicUsize,
}

/// A running sink. Dropping it stops accepting connections.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts a sink on `127.0.0.1` on an ephemeral port.
    pub fn start(script: Script) -> std::io::Result<Sink> {
        Sink::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), script)
    }

    /// Starts a sink on a loopback address (any other address is refused).
    pub fn bind(addr: SocketAddr, script: Script) -> std::io::Result<Sink> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the sink listens on loopback addresses only",
            ));
        }
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            sessions: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Ok(Sink {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What each finished or running connection received so far, in order of connection.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.shared
            .sessions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Waits (up to `timeout`) until `n` connections have ended, then returns their logs.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<SessionLog> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let done = self.shared.sessions.lock().map(|s| s.len()).unwrap_or(0);
            if done >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.sessions()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Serves one connection and records its log when it ends.
fn serve(conn: TcpStream, shared: &Shared) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let mut log = SessionLog::default();
    let n = shared.connections.fetch_add(1, Ordering::SeqCst);
    let greeting = shared
        .script
        .greetings
        .get(n)
        .unwrap_or(&shared.script.greeting);
    let _ = conversation(conn, &shared.script, greeting, &mut log);
    if let Ok(mut s) = shared.sessions.lock() {
        s.push(log);
    }
}

/// The result of performing an action: go on, or the connection is over.
enum Flow {
    Continue,
    End,
}

/// The connection: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Starts TLS as the server (the handshake runs on the next read or write).
    fn into_tls(self, config: &Arc<rustls::ServerConfig>) -> std::io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let conn =
                    rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
                Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
            }
            tls => Ok(tls),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Performs `action` after the script's reply delay.
fn answer(conn: &mut Stream, script: &Script, action: &Action) -> std::io::Result<Flow> {
    if !script.reply_delay.is_zero() {
        std::thread::sleep(script.reply_delay);
    }
    perform(conn, action)
}

fn perform(conn: &mut Stream, action: &Action) -> std::io::Result<Flow> {
    match action {
        Action::Reply(lines) => {
            let mut out = Vec::new();
            for l in lines {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            conn.write_all(&out)?;
            Ok(Flow::Continue)
        }
        Action::Raw(bytes) => {
            conn.write_all(bytes)?;
            Ok(Flow::Continue)
        }
        Action::Close => {
            let _ = conn.tcp().shutdown(Shutdown::Both);
            Ok(Flow::End)
        }
        Action::Reset => {
            // SO_LINGER 0 makes close() send an RST.
            let _ = socket2::SockRef::from(conn.tcp()).set_linger(Some(Duration::ZERO));
            Ok(Flow::End)
        }
        Action::Silent => {
            let mut buf = [0u8; 4096];
            // Read and discard until the client hangs up or the read timeout ends it.
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            Ok(Flow::End)
        }
        Action::Endless(line) => {
            let chunk = format!("{line}\r\n").repeat(256);
            let mut sent = 0;
            while sent < MAX_HOSTILE_OUTPUT {
                if conn.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            Ok(Flow::End)
        }
        Action::Drip(bytes, gap) => {
            for b in bytes {
                if conn.write_all(std::slice::from_ref(b)).is_err() {
                    return Ok(Flow::End);
                }
                std::thread::sleep(*gap);
            }
            Ok(Flow::Continue)
        }
        Action::Stall => {
            std::thread::sleep(READ_TIMEOUT);
            Ok(Flow::End)
        }
    }
}

/// Reads one line (up to LF), bounded; `None` at end of stream.
fn read_line(reader: &mut BufReader<Stream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line))
}

fn conversation(
    conn: TcpStream,
    script: &Script,
    greeting: &Action,
    log: &mut SessionLog,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    conn.set_write_timeout(Some(READ_TIMEOUT))?;
    let client = conn
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let greeting = &with_client(greeting, &client);
    let mut stream = Stream::Plain(conn);
    if let Some(tls) = script.tls.as_ref().filter(|t| t.implicit) {
        stream = stream.into_tls(&tls.config)?;
        log.tls = true;
    }
    let mut reader = BufReader::new(stream);
    let mut rcpts_in_transaction = 0usize;
    if let Flow::End = answer(reader.get_mut(), script, greeting)? {
        return Ok(());
    }
    while let Some(raw) = read_line(&mut reader)? {
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        log.commands.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let verb = upper.split([' ', ':']).next().unwrap_or("");
        let tls_active = reader.get_ref().is_tls();
        if verb == "STARTTLS" && !tls_active {
            if let Some(tls) = &script.tls {
                let starts = matches!(&tls.starttls, Action::Reply(l) if l.last().is_some_and(|l| l.starts_with("220")));
                if !starts {
                    if let Flow::End = answer(reader.get_mut(), script, &tls.starttls)? {
                        return Ok(());
                    }
                    continue;
                }
                let mut out = reply_bytes(&tls.starttls);
                out.extend_from_slice(tls.pipeline_after_starttls.as_deref().unwrap_or(b""));
                reader.get_mut().write_all(&out)?;
                // Whatever the client pipelined after STARTTLS is dropped, as a careful server does.
                let plain = reader.into_inner();
                reader = BufReader::new(plain.into_tls(&tls.config)?);
                log.tls = true;
                continue;
            }
        }
        if verb == "AUTH" {
            if let Some(auth) = &script.auth {
                auth_exchange(&mut reader, &line, auth, log)?;
                continue;
            }
        }
        let ehlo;
        let action = match verb {
            "EHLO" => {
                ehlo = with_client(&ehlo_reply(script, tls_active), &client);
                &ehlo
            }
            "HELO" => &script.helo,
            "MAIL" => {
                rcpts_in_transaction = 0;
                &script.mail
            }
            "RCPT" => match &script.rcpt_limit {
                Some((n, limit)) if rcpts_in_transaction >= *n => limit,
                _ => {
                    rcpts_in_transaction += 1;
                    script
                        .rcpt_for
                        .iter()
                        .find(|(needle, _)| line.contains(needle.as_str()))
                        .map(|(_, a)| a)
                        .unwrap_or(&script.rcpt)
                }
            },
            "DATA" => &script.data,
            "QUIT" => {
                answer(reader.get_mut(), script, &script.quit)?;
                return Ok(());
            }
            "RSET" => {
                rcpts_in_transaction = 0;
                &script.rset
            }
            "NOOP" => &script.rset,
            _ => &script.unknown,
        };
        if let Flow::End = answer(reader.get_mut(), script, action)? {
            return Ok(());
        }
        if verb == "DATA"
            && matches!(action, Action::Reply(l) if l.last().is_some_and(|l| l.starts_with("354")))
        {
            let mut data = Vec::new();
            loop {
                let Some(chunk) = read_line(&mut reader)? else {
                    log.messages.push(data);
                    return Ok(());
                };
                // Only CRLF . CRLF ends the data (a strict reading, as RFC 5321 4.1.1.4 says).
                if chunk == b".\r\n" && (data.is_empty() || data.ends_with(b"\r\n")) {
                    break;
                }
                data.extend_from_slice(&chunk);
            }
            log.messages.push(data);
            if let Flow::End = answer(reader.get_mut(), script, &script.end_of_data)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `action` with `{client}` in its reply lines replaced by the client's address.
fn with_client(action: &Action, client: &str) -> Action {
    match action {
        Action::Reply(lines) if lines.iter().any(|l| l.contains("{client}")) => Action::Reply(
            lines
                .iter()
                .map(|l| l.replace("{client}", client))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The bytes of a `Reply` or `Raw` action (nothing for the others).
fn reply_bytes(action: &Action) -> Vec<u8> {
    match action {
        Action::Reply(lines) => lines
            .iter()
            .flat_map(|l| l.bytes().chain(*b"\r\n"))
            .collect(),
        Action::Raw(bytes) => bytes.clone(),
        _ => Vec::new(),
    }
}

/// The EHLO answer with STARTTLS (before TLS) and AUTH (over TLS, or in clear when allowed) added
/// to a 250 reply.
fn ehlo_reply(script: &Script, tls_active: bool) -> Action {
    let mut extra = Vec::new();
    if script
        .tls
        .as_ref()
        .is_some_and(|t| t.offer_starttls && !tls_active)
    {
        extra.push("STARTTLS".to_string());
    }
    if let Some(a) = script
        .auth
        .as_ref()
        .filter(|a| tls_active || a.offer_in_clear)
    {
        extra.push(format!("AUTH {}", a.mechanisms.join(" ")));
    }
    match &script.ehlo {
        Action::Reply(lines) if !extra.is_empty() && lines.iter().all(|l| l.starts_with("250")) => {
            let mut texts: Vec<String> = lines
                .iter()
                .map(|l| l.get(4..).unwrap_or("").to_string())
                .collect();
            texts.extend(extra);
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            Action::lines(250, &texts)
        }
        other => other.clone(),
    }
}

/// One AUTH exchange (RFC 4954), logged in `log.auth`.
fn auth_exchange(
    reader: &mut BufReader<Stream>,
    line: &str,
    auth: &SinkAuth,
    log: &mut SessionLog,
) -> std::io::Result<()> {
    fn say(reader: &mut BufReader<Stream>, text: &str) -> std::io::Result<()> {
        reader.get_mut().write_all(format!("{text}\r\n").as_bytes())
    }
    fn next(reader: &mut BufReader<Stream>) -> std::io::Result<Option<String>> {
        Ok(read_line(reader)?.map(|raw| {
            String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_string()
        }))
    }
    let decode =
        |s: &str| String::from_utf8(B64.decode(s.trim()).unwrap_or_default()).unwrap_or_default();
    let mut words = line.split_whitespace().skip(1);
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    if let Some(r) = &initial {
        log.auth_responses.push(
            B64.decode(r.trim())
                .unwrap_or_else(|_| r.clone().into_bytes()),
        );
    }
    if !auth
        .mechanisms
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&mechanism))
    {
        return say(reader, "504 5.5.4 Unrecognized authentication type");
    }
    // Each step: the client's answer, or None when it cancelled ("*") or went away.
    let mut ask =
        |reader: &mut BufReader<Stream>, prompt: &str| -> std::io::Result<Option<String>> {
            say(reader, prompt)?;
            let line = next(reader)?;
            if let Some(l) = &line {
                log.auth_responses.push(
                    B64.decode(l.trim())
                        .unwrap_or_else(|_| l.clone().into_bytes()),
                );
            }
            Ok(line.filter(|l| l != "*"))
        };
    let answer = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(r) => Some(r),
                None => ask(reader, "334 ")?,
            };
            response.map(|r| {
                let raw = decode(&r);
                let parts: Vec<&str> = raw.split('\0').collect();
                match parts.as_slice() {
                    [_, user, pass] => (
                        user.to_string(),
                        *user == auth.user && *pass == auth.password,
                    ),
                    _ => (String::new(), false),
                }
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(u) => Some(u),
                None => ask(reader, "334 VXNlcm5hbWU6")?,
            };
            match user {
                Some(u) => ask(reader, "334 UGFzc3dvcmQ6")?.map(|p| {
                    let (user, pass) = (decode(&u), decode(&p));
                    let ok = user == auth.user && pass == auth.password;
                    (user, ok)
                }),
                None => None,
            }
        }
        "EXTERNAL" => {
            let peer = match reader.get_ref() {
                Stream::Tls(t) => t
                    .conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref().to_vec()),
                _ => None,
            };
            log.client_certificate = peer.clone();
            // "=" is the empty initial response; anything else names an authorisation identity.
            let authzid = initial.as_deref().filter(|r| *r != "=").map(|r| {
                String::from_utf8(B64.decode(r.trim()).unwrap_or_default()).unwrap_or_default()
            });
            let accepted = peer.is_some() && authzid.as_deref().is_none_or(|a| a == auth.user);
            Some((authzid.unwrap_or_default(), accepted))
        }
        "SCRAM-SHA-256" => {
            let first = match initial {
                Some(r) => Some(r),
                None => ask(reader, "334 ")?,
            };
            let Some(first) = first else {
                return say(reader, "501 5.7.0 Authentication cancelled");
            };
            let first =
                String::from_utf8(B64.decode(first.trim()).unwrap_or_default()).unwrap_or_default();
            let Some(bare) = first.strip_prefix("n,,") else {
                return say(reader, "535 5.7.8 Bad SCRAM client-first message");
            };
            let user = bare
                .split(',')
                .find_map(|a| a.strip_prefix("n="))
                .unwrap_or("")
                .replace("=2C", ",")
                .replace("=3D", "=");
            let cnonce = bare
                .split(',')
                .find_map(|a| a.strip_prefix("r="))
                .unwrap_or("");
            let nonce = format!("{cnonce}{}sinknonce", log.commands.len());
            let salt = b"smtpcheck-sink-salt";
            let server_first = format!("r={nonce},s={},i=4096", B64.encode(salt));
            let Some(last) = ask(reader, &format!("334 {}", B64.encode(&server_first)))? else {
                return say(reader, "501 5.7.0 Authentication cancelled");
            };
            let last =
                String::from_utf8(B64.decode(last.trim()).unwrap_or_default()).unwrap_or_default();
            let (without_proof, proof) = last.rsplit_once(",p=").unwrap_or(("", ""));
            let auth_message = format!("{bare},{server_first},{without_proof}");
            let keys = scram_keys(&auth.password, salt, &auth_message);
            let accepted = user == auth.user
                && without_proof == format!("c=biws,r={nonce}")
                && B64.decode(proof).ok().as_deref() == Some(&keys.0[..]);
            log.auth.push(AuthLog {
                mechanism,
                user,
                accepted,
            });
            if !accepted {
                return say(reader, "535 5.7.8 Authentication credentials invalid");
            }
            let signature = match auth.scram_final {
                ScramFinal::NoSignature => {
                    return say(reader, "235 2.7.0 Authentication successful")
                }
                ScramFinal::WrongSignature => vec![0u8; 32],
                ScramFinal::Signature => keys.1,
            };
            let v = format!("v={}", B64.encode(signature));
            return match ask(reader, &format!("334 {}", B64.encode(v)))?.as_deref() {
                Some("") => say(reader, "235 2.7.0 Authentication successful"),
                _ => say(reader, "501 5.7.0 Authentication cancelled"),
            };
        }
        "XOAUTH2" | "OAUTHBEARER" => {
            let response = match initial {
                Some(r) => Some(r),
                None => ask(reader, "334 ")?,
            };
            let Some(response) = response else {
                return say(reader, "501 5.7.0 Authentication cancelled");
            };
            let raw = B64.decode(response.trim()).unwrap_or_default();
            let (user, token) = if mechanism == "XOAUTH2" {
                xoauth2_fields(&raw)
            } else {
                oauthbearer_fields(&raw)
            };
            let accepted = user.as_deref() == Some(auth.user.as_str())
                && token.is_some()
                && token == auth.token;
            if !accepted {
                // RFC 7628 3.2.2: the error as a challenge; the client must answer it with an
                // empty response (a ^A in the client's own form also counts, as some servers take).
                let challenge = format!("334 {}", B64.encode(&auth.oauth_error));
                let answer = ask(reader, &challenge)?;
                log.auth.push(AuthLog {
                    mechanism,
                    user: user.unwrap_or_default(),
                    accepted: false,
                });
                return match answer.as_deref() {
                    Some("") | Some("AQ==") => {
                        say(reader, "535 5.7.8 Authentication credentials invalid")
                    }
                    _ => say(
                        reader,
                        "501 5.5.2 Expected an empty response to the error challenge",
                    ),
                };
            }
            Some((user.unwrap_or_default(), true))
        }
        _ => {
            let challenge = format!("<{}.{}@sink.test>", std::process::id(), log.commands.len());
            ask(reader, &format!("334 {}", B64.encode(&challenge)))?.map(|r| {
                let raw = decode(&r);
                let (user, digest) = raw.rsplit_once(' ').unwrap_or(("", ""));
                (
                    user.to_string(),
                    user == auth.user && digest == cram_md5_hex(&auth.password, &challenge),
                )
            })
        }
    };
    let Some((user, accepted)) = answer else {
        return say(reader, "501 5.7.0 Authentication cancelled");
    };
    log.auth.push(AuthLog {
        mechanism,
        user,
        accepted,
    });
    if accepted {
        say(reader, "235 2.7.0 Authentication successful")
    } else {
        say(
            reader,
            "535 5.7.8 Error: authentication failed: authentication credentials invalid",
        )
    }
}

/// The SCRAM-SHA-256 client proof and server signature for `password` (RFC 5802 3).
fn scram_keys(password: &str, salt: &[u8], auth_message: &str) -> (Vec<u8>, Vec<u8>) {
    use ring::hmac;
    let mut salted = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(4096).unwrap_or(std::num::NonZeroU32::MIN),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored = ring::digest::digest(&ring::digest::SHA256, client_key.as_ref());
    let stored = hmac::Key::new(hmac::HMAC_SHA256, stored.as_ref());
    let client_signature = hmac::sign(&stored, auth_message.as_bytes());
    let proof = client_key
        .as_ref()
        .iter()
        .zip(client_signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac::sign(&key, b"Server Key");
    let server_key = hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref());
    (
        proof,
        hmac::sign(&server_key, auth_message.as_bytes())
            .as_ref()
            .to_vec(),
    )
}

/// The user and token of an XOAUTH2 response: exactly `user=U^Aauth=Bearer T^A^A`.
fn xoauth2_fields(raw: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(raw);
    let Some(body) = text.strip_suffix("\x01\x01") else {
        return (None, None);
    };
    let Some((user, auth)) = body.split_once('\x01') else {
        return (None, None);
    };
    (
        user.strip_prefix("user=").map(str::to_string),
        auth.strip_prefix("auth=Bearer ").map(str::to_string),
    )
}

/// The user (unescaped from the GS2 header's `a=`) and token of an OAUTHBEARER response
/// (RFC 7628 3.1): `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`.
fn oauthbearer_fields(raw: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(raw);
    let Some(body) = text.strip_suffix("\x01\x01") else {
        return (None, None);
    };
    let mut parts = body.split('\x01');
    let gs2 = parts.next().unwrap_or("");
    let user = gs2
        .strip_prefix("n,a=")
        .and_then(|r| r.strip_suffix(','))
        .map(|u| u.replace("=2C", ",").replace("=3D", "="));
    let token = parts
        .find_map(|kv| kv.strip_prefix("auth=Bearer "))
        .map(str::to_string);
    (user, token)
}

/// HMAC-MD5 of `challenge` keyed with `password`, in lower-case hex (RFC 2195).
fn cram_md5_hex(password: &str, challenge: &str) -> String {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<md5::Md5>::new_from_slice(password.as_bytes()) else {
        return String::new();
    };
    mac.update(challenge.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuff_reverses_stuffing() {
        assert_eq!(unstuff(b"..a\r\n...b\r\nc..\r\n"), b".a\r\n..b\r\nc..\r\n");
        // What smtpcheck's DATA encoder makes of ".x\n..y\nz", without the final ".\r\n" (the
        // round trip through the real encoder is a property test in the main crate).
        assert_eq!(unstuff(b"..x\r\n...y\r\nz\r\n"), b".x\r\n..y\r\nz\r\n");
    }

    #[test]
    fn refuses_non_loopback() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(Sink::bind(addr, Script::default()).is_err());
    }

    #[test]
    fn multi_line_builder() {
        assert_eq!(
            Action::lines(250, &["a", "b"]),
            Action::Reply(vec!["250-a".into(), "250 b".into()])
        );
    }
}
