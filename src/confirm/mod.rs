//! `send --confirm`: after the server accepted the message, log into the recipient's mailbox over
//! IMAP and find it. A stage of its own after delivery: it produces an [`Arrival`], stored in the
//! report; it never prints.
//!
//! `imap.rs` is the only code here touching a socket (async-imap over tokio, TLS from `tls.rs`);
//! `headers.rs` reads what the receiving side wrote into the message's header.

pub mod headers;
mod imap;

use crate::exit::Exit;
use crate::secret::Secret;
use crate::tls::TlsOptions;
use crate::transcript::TlsInfo;
use headers::{AuthResults, Hop, Spam};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// `--confirm imap://USER@HOST[:PORT]` (or `imaps://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imaps://`: TLS from the first byte (port 993); `imap://` uses STARTTLS when offered.
    pub implicit_tls: bool,
    /// The login name (percent-decoded).
    pub user: String,
    /// The host name or address.
    pub host: String,
    /// The port: 143 for `imap://`, 993 for `imaps://` unless given.
    pub port: u16,
}

impl ImapUrl {
    /// Parses `imap://USER@HOST[:PORT]` or `imaps://…`. A password in the URL is refused: it
    /// would be on the command line.
    pub fn parse(value: &str) -> Result<ImapUrl, String> {
        let (implicit_tls, rest) = if let Some(r) = strip_prefix_ci(value, "imaps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(value, "imap://") {
            (false, r)
        } else {
            return Err("expected imap://USER@HOST[:PORT] or imaps://USER@HOST[:PORT]".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a mailbox path or query is not supported: give USER@HOST[:PORT] only (folders: --confirm-folders)".into());
        }
        let Some((user, hostport)) = rest.rsplit_once('@') else {
            return Err("no user: expected imap://USER@HOST[:PORT]".into());
        };
        if user.contains(':') {
            return Err("a password in the URL would be on the command line: give it in SMTPCHECK_IMAP_PASSWORD, --confirm-password-file, or at the prompt".into());
        }
        let user = percent_decode(user)?;
        if user.is_empty() || user.contains(['\r', '\n', '\0']) {
            return Err("the user is empty or contains CR, LF or NUL".into());
        }
        let default_port = if implicit_tls { 993 } else { 143 };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (h, tail) = inner
                .split_once(']')
                .ok_or("unclosed [ in the host".to_string())?;
            let port = match tail.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if tail.is_empty() => default_port,
                None => return Err("unexpected text after ]".into()),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p)?),
                None => (hostport.to_string(), default_port),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_ok {
            return Err(format!("{host:?} is not a host name or address"));
        }
        Ok(ImapUrl {
            implicit_tls,
            user,
            host,
            port,
        })
    }
}

impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.implicit_tls { "imaps" } else { "imap" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self.user.replace('%', "%25").replace('@', "%40");
        write!(f, "{scheme}://{user}@{host}:{}", self.port)
    }
}

fn strip_prefix_ci<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{p:?} is not a port number (1-65535)"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a % in the user is not followed by two hex digits".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user is not UTF-8 once decoded".to_string())
}

/// Everything `--confirm` needs, settled before any connection.
#[derive(Debug, Clone)]
pub struct ConfirmOptions {
    /// The mailbox.
    pub url: ImapUrl,
    /// The IMAP password (`SMTPCHECK_IMAP_PASSWORD`, `--confirm-password-file` or the prompt);
    /// with an OAuth token only when given without a prompt.
    pub password: Option<Secret>,
    /// The OAuth 2.0 access token of `send` (AUTHENTICATE XOAUTH2 when the server offers it).
    pub token: Option<Secret>,
    /// `--confirm-timeout`: how long to wait for the message to show up.
    pub timeout: Duration,
    /// `--confirm-folders`: the folders to look in, in order; `None`: INBOX, then the `\Junk`
    /// folder, then every other folder.
    pub folders: Option<Vec<String>>,
    /// `--confirm-delete`: remove the message once found.
    pub delete: bool,
    /// TLS: `--tls`, `--ca`, `--tls-pin`, `--insecure` as for SMTP (`imaps://` is implicit TLS).
    pub tls: TlsOptions,
    /// `--allow-plain-auth`: log in over a connection that is not encrypted.
    pub allow_plain_login: bool,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
    /// `--timeout`: the bound on each IMAP command.
    pub io_timeout: Duration,
}

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The Message-ID (without angle brackets).
    MessageId(String),
    /// The message has no Message-ID: its Subject (if any) and its Date header value.
    SubjectDate {
        /// The Subject header, decoded.
        subject: Option<String>,
        /// The Date header value as written.
        date: String,
    },
}

/// How the message was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// Its Message-ID header.
    MessageId,
    /// Its Subject and Date headers (the message has no Message-ID).
    SubjectAndDate,
}

/// How the wait for new mail was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Watch {
    /// IMAP IDLE (RFC 2177) on the first folder, every folder searched again on each wake-up.
    Idle,
    /// Searching again after a pause that grows (the server offers no IDLE).
    Poll,
}

/// What `--confirm` found out (JSON `arrival`).
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    /// The mailbox watched, `imap://user@host:port` (never a password).
    pub mailbox: String,
    /// `true` when the message was found.
    pub found: bool,
    /// The folder it was found in.
    pub folder: Option<String>,
    /// That folder's special use (RFC 6154), e.g. `\Junk` (delivered to spam) or `\Inbox`.
    pub special_use: Option<String>,
    /// Milliseconds from the end of the SMTP session (right after the final 250) until the
    /// message was seen in the mailbox.
    pub after_ms: Option<f64>,
    /// How it was recognised: `message-id`, or `subject-and-date` when it has no Message-ID.
    pub matched_by: MatchedBy,
    /// `idle` or `poll`; null when no wait was needed or the login failed.
    pub watch: Option<Watch>,
    /// The folders searched, in order.
    pub folders: Vec<String>,
    /// The receiver's `Authentication-Results` fields, top (most recent) first.
    pub authentication_results: Vec<AuthResults>,
    /// The `Received` chain in the order travelled, with the delay of each hop.
    pub hops: Vec<Hop>,
    /// The spam filters' verdict headers.
    pub spam: Spam,
    /// `true` when `--confirm-delete` removed the message.
    pub deleted: bool,
    /// The IMAP connection's TLS facts (null in clear).
    pub tls: Option<TlsInfo>,
    /// Why the mailbox could not be checked (connection, TLS, login); null otherwise.
    pub error: Option<String>,
    /// Things worth knowing (the Subject+Date fallback, a message not deleted…).
    pub notes: Vec<String>,
    /// Ctrl-C stopped the check (its `error` says so; the exit code is 130).
    #[serde(skip)]
    pub interrupted: bool,
}

impl Arrival {
    /// The exit code this arrival calls for, when the message was accepted for every recipient:
    /// 16 found in the junk folder, 17 not found within the timeout, 18 the mailbox could not be
    /// checked; `None` when it is in another folder.
    pub fn exit(&self) -> Option<Exit> {
        if self.interrupted {
            Some(Exit::Interrupted)
        } else if self.error.is_some() {
            Some(Exit::ConfirmFailed)
        } else if !self.found {
            Some(Exit::NotArrived)
        } else if self.is_junk() {
            Some(Exit::Junk)
        } else {
            None
        }
    }

    /// `true` when found in a folder whose special use is `\Junk`.
    pub fn is_junk(&self) -> bool {
        self.found
            && self
                .special_use
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case("\\Junk"))
    }
}

/// What to look for in a message: its Message-ID, else its Subject and Date (from the header
/// block of the message as sent).
pub fn wanted(message_id: Option<&str>, subject: Option<&str>, raw: &[u8]) -> Option<Wanted> {
    if let Some(id) = message_id.filter(|id| !id.is_empty()) {
        return Some(Wanted::MessageId(id.to_string()));
    }
    let fields = headers::fields(raw);
    let date = headers::values(&fields, "Date").next()?.to_string();
    Some(Wanted::SubjectDate {
        subject: subject.map(str::to_string),
        date,
    })
}

/// The arrival of a check that Ctrl-C (SIGINT) stopped before it ended.
pub fn interrupted(opts: &ConfirmOptions, wanted: &Wanted) -> Arrival {
    Arrival {
        error: Some("interrupted (Ctrl-C) before the message was found".to_string()),
        interrupted: true,
        ..nothing_yet(opts, wanted)
    }
}

/// An arrival with nothing found yet.
fn nothing_yet(opts: &ConfirmOptions, wanted: &Wanted) -> Arrival {
    Arrival {
        mailbox: opts.url.to_string(),
        found: false,
        folder: None,
        special_use: None,
        after_ms: None,
        matched_by: match wanted {
            Wanted::MessageId(_) => MatchedBy::MessageId,
            Wanted::SubjectDate { .. } => MatchedBy::SubjectAndDate,
        },
        watch: None,
        folders: Vec::new(),
        authentication_results: Vec::new(),
        hops: Vec::new(),
        spam: Spam::default(),
        deleted: false,
        tls: None,
        error: None,
        notes: Vec::new(),
        interrupted: false,
    }
}

/// Logs in, finds the message (waiting at most `--confirm-timeout`), reads its header, deletes
/// it when asked. `accepted` is when the SMTP session ended. Every wait is bounded.
pub async fn confirm(opts: &ConfirmOptions, wanted: &Wanted, accepted: Instant) -> Arrival {
    let mut arrival = nothing_yet(opts, wanted);
    if let Wanted::SubjectDate { .. } = wanted {
        arrival.notes.push(
            "the message has no Message-ID: looked for it by its Subject and Date headers instead"
                .to_string(),
        );
    }
    // The whole stage is bounded too: the wait, plus a few command timeouts for the log-in,
    // the fetch, the deletion and the log-out.
    let bound = opts.timeout + opts.connect_timeout + opts.io_timeout * 6;
    match tokio::time::timeout(bound, imap::run(opts, wanted, accepted, &mut arrival)).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => arrival.error = Some(why),
        Err(_) => {
            arrival.error = Some(format!(
            "the IMAP check did not finish within {} (--confirm-timeout plus the command timeouts)",
            crate::time::human(bound)
        ))
        }
    }
    arrival
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ImapUrl::parse("imap://me@imap.corp.example").unwrap();
        assert_eq!((u.implicit_tls, u.port), (false, 143));
        assert_eq!(u.to_string(), "imap://me@imap.corp.example:143");
        let u = ImapUrl::parse("IMAPS://me%40corp.example@127.0.0.1:2993/").unwrap();
        assert_eq!(
            (u.implicit_tls, u.user.as_str(), u.host.as_str(), u.port),
            (true, "me@corp.example", "127.0.0.1", 2993)
        );
        let u = ImapUrl::parse("imaps://u@[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 993));
        assert_eq!(u.to_string(), "imaps://u@[::1]:993");
        let u = ImapUrl::parse("imap://a%40b@h:1").unwrap();
        assert_eq!(u.to_string(), "imap://a%40b@h:1");
        for bad in [
            "http://u@h",
            "imap://h",
            "imap://u:secret@h",
            "imap://u@h:0",
            "imap://u@h:99999",
            "imap://u@h/INBOX",
            "imap://@h",
            "imap://u@bad host",
            "imap://u%4@h",
        ] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
        let e = ImapUrl::parse("imap://u:pw@h").unwrap_err();
        assert!(!e.contains("pw"), "{e}");
    }

    fn arrival(found: bool, special_use: Option<&str>, error: Option<&str>) -> Arrival {
        Arrival {
            mailbox: "imap://u@h:143".into(),
            found,
            folder: found.then(|| "INBOX".to_string()),
            special_use: special_use.map(str::to_string),
            after_ms: None,
            matched_by: MatchedBy::MessageId,
            watch: None,
            folders: Vec::new(),
            authentication_results: Vec::new(),
            hops: Vec::new(),
            spam: Spam::default(),
            deleted: false,
            tls: None,
            error: error.map(str::to_string),
            notes: Vec::new(),
            interrupted: false,
        }
    }

    #[test]
    fn exit_codes_of_an_arrival() {
        // (found, special use, error) → exit code when SMTP accepted the message.
        let table = [
            (true, None, None, None),
            (true, Some("\\Inbox"), None, None),
            (true, Some("\\Junk"), None, Some(16)),
            (true, Some("\\junk"), None, Some(16)),
            (true, Some("\\Trash"), None, None),
            (false, None, None, Some(17)),
            (false, None, Some("login refused"), Some(18)),
        ];
        for (found, use_, error, code) in table {
            let a = arrival(found, use_, error);
            assert_eq!(a.exit().map(Exit::code), code, "{found} {use_:?} {error:?}");
        }
        // Ctrl-C wins over what was (not) found.
        let mut a = arrival(
            false,
            None,
            Some("interrupted (Ctrl-C) before the message was found"),
        );
        a.interrupted = true;
        assert_eq!(a.exit(), Some(Exit::Interrupted));
    }

    #[test]
    fn what_is_looked_for() {
        assert_eq!(
            wanted(Some("a@b"), Some("s"), b"Date: x\r\n\r\n"),
            Some(Wanted::MessageId("a@b".into()))
        );
        assert_eq!(
            wanted(
                None,
                Some("s"),
                b"Date: Tue, 3 Jun 2025 10:00:00 +0000\r\n\r\n"
            ),
            Some(Wanted::SubjectDate {
                subject: Some("s".into()),
                date: "Tue, 3 Jun 2025 10:00:00 +0000".into()
            })
        );
        assert_eq!(wanted(None, Some("s"), b"Subject: s\r\n\r\n"), None);
    }
}
