//! A small scripted SMTP server for loopback: the receiving end of the quickstart example and of the
//! integration tests (one copy of server code for both).
//!
//! It binds only to loopback addresses, answers each command from a [`Script`], records what it
//! received (commands and the exact DATA bytes) and stops when dropped. Every loop in it is bounded:
//! reads time out, hostile behaviours stop after a fixed amount of output, connections end when the
//! client goes away.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Answer to EHLO.
    pub ehlo: Action,
    /// Answer to HELO.
    pub helo: Action,
    /// Answer to MAIL FROM.
    pub mail: Action,
    /// Answer to RCPT TO, by default.
    pub rcpt: Action,
    /// Answers to RCPT TO for addresses containing the given text (checked in order, before `rcpt`).
    pub rcpt_for: Vec<(String, Action)>,
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
}

impl Default for Script {
    fn default() -> Self {
        Script {
            greeting: Action::reply("220 sink.test ESMTP smtpcheck test sink"),
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
            data: Action::reply("354 End data with <CR><LF>.<CR><LF>"),
            end_of_data: Action::reply("250 2.0.0 Ok: queued as 4QX7Sink01"),
            quit: Action::reply("221 2.0.0 Bye"),
            rset: Action::reply("250 2.0.0 Ok"),
            unknown: Action::reply("502 5.5.2 Error: command not recognized"),
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
    let _ = conversation(conn, &shared.script, &mut log);
    if let Ok(mut s) = shared.sessions.lock() {
        s.push(log);
    }
}

/// The result of performing an action: go on, or the connection is over.
enum Flow {
    Continue,
    End,
}

fn perform(conn: &mut TcpStream, action: &Action) -> std::io::Result<Flow> {
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
            let _ = conn.shutdown(Shutdown::Both);
            Ok(Flow::End)
        }
        Action::Reset => {
            // SO_LINGER 0 makes close() send an RST.
            let _ = socket2::SockRef::from(&*conn).set_linger(Some(Duration::ZERO));
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
fn read_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<u8>>> {
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

fn conversation(conn: TcpStream, script: &Script, log: &mut SessionLog) -> std::io::Result<()> {
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    conn.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    if let Flow::End = perform(&mut writer, &script.greeting)? {
        return Ok(());
    }
    while let Some(raw) = read_line(&mut reader)? {
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        log.commands.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let verb = upper.split([' ', ':']).next().unwrap_or("");
        let action = match verb {
            "EHLO" => &script.ehlo,
            "HELO" => &script.helo,
            "MAIL" => &script.mail,
            "RCPT" => script
                .rcpt_for
                .iter()
                .find(|(needle, _)| line.contains(needle.as_str()))
                .map(|(_, a)| a)
                .unwrap_or(&script.rcpt),
            "DATA" => &script.data,
            "QUIT" => {
                perform(&mut writer, &script.quit)?;
                return Ok(());
            }
            "RSET" | "NOOP" => &script.rset,
            _ => &script.unknown,
        };
        if let Flow::End = perform(&mut writer, action)? {
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
            if let Flow::End = perform(&mut writer, &script.end_of_data)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuff_reverses_stuffing() {
        assert_eq!(unstuff(b"..a\r\n...b\r\nc..\r\n"), b".a\r\n..b\r\nc..\r\n");
        let msg = b".x\n..y\nz";
        let wire = crate::codec::encode_data(msg);
        assert_eq!(unstuff(&wire[..wire.len() - 3]), b".x\r\n..y\r\nz\r\n");
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
