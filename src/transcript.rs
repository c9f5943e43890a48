//! The record of a conversation: replies, steps and attempts, as plain `Serialize` data.
//!
//! Nothing here touches a socket or prints; the session fills these in and the renderers format them.

use serde::Serialize;

/// One reply from the server, kept line by line exactly as received (minus the line ending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The three-digit reply code (200–599).
    pub code: u16,
    /// The RFC 3463 enhanced status code (`class.subject.detail`) found at the start of the text, if any.
    pub enhanced: Option<String>,
    /// Every line of the reply as received, including the code and separator (`250-PIPELINING`).
    /// Control characters and bytes that are not UTF-8 are shown escaped as `\xNN`.
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply's text without codes: each line's text after the code, separator and enhanced code,
    /// joined with a space.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let rest = line.get(4..).unwrap_or("");
            let rest = match &self.enhanced {
                Some(e) => rest
                    .strip_prefix(e.as_str())
                    .map(str::trim_start)
                    .unwrap_or(rest),
                None => rest,
            };
            if !out.is_empty() && !rest.is_empty() {
                out.push(' ');
            }
            out.push_str(rest);
        }
        out
    }

    /// `true` for 2xx replies.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// `true` for 3xx replies (intermediate: 354 after DATA).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// The failure class this reply implies: 4xx transient, 5xx permanent.
    pub fn class(&self) -> FailureClass {
        if self.code >= 500 {
            FailureClass::Permanent
        } else {
            FailureClass::Transient
        }
    }
}

/// The stage of the session a step or a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The command line itself (a usage error: unknown flag, bad flag value).
    Usage,
    /// Reading and checking the message file and the envelope (before any connection).
    Input,
    /// The check was interrupted (Ctrl-C) before it finished: not a stage of the session.
    Interrupted,
    /// Looking up the route in DNS.
    Dns,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake of implicit TLS (`--tls implicit`), right after the connection.
    Tls,
    /// The server's 220 banner.
    Greeting,
    /// The EHLO command.
    Ehlo,
    /// The HELO command (after EHLO was refused as not implemented).
    Helo,
    /// The STARTTLS command and the TLS handshake.
    Starttls,
    /// The AUTH exchange.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO (one step per recipient).
    Rcpt,
    /// The DATA command (the 354 go-ahead).
    Data,
    /// The message content and the reply after the final `.`.
    Message,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

impl Stage {
    /// The stage's name as used in JSON and in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Usage => "usage",
            Stage::Input => "input",
            Stage::Interrupted => "interrupted",
            Stage::Dns => "dns",
            Stage::Connect => "connect",
            Stage::Tls => "tls",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::Helo => "helo",
            Stage::Starttls => "starttls",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Message => "message",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether retrying later could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// A 5xx reply or a definite refusal: retrying the same thing will fail again.
    Permanent,
    /// A 4xx reply, a timeout, a dropped connection: retrying later may succeed.
    Transient,
}

impl FailureClass {
    /// The class's name as used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Permanent => "permanent",
            FailureClass::Transient => "transient",
        }
    }
}

/// Why a step got no usable reply: the session broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakKind {
    /// The TCP connection was refused (nothing listening).
    ConnectionRefused,
    /// The connect attempt ran out of time.
    ConnectTimeout,
    /// Another network error while connecting (unreachable network, no route).
    ConnectFailed,
    /// No (complete) reply arrived within the timeout.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The connection was reset or another I/O error happened.
    Io,
    /// The server's reply was not valid SMTP (bad code, mixed codes, too long, too many lines).
    Malformed,
    /// The server broke the protocol in another way (e.g. replied before it was asked).
    Protocol,
    /// DNS: the domain does not exist (NXDOMAIN).
    NoDomain,
    /// DNS: the domain publishes a null MX (RFC 7505) and accepts no mail.
    NullMx,
    /// DNS: no MX host (or, without MX, the domain itself) has an address.
    NoAddress,
    /// DNS: the lookup failed (timeout, SERVFAIL, unreachable server).
    DnsError,
    /// The message is larger than the server's advertised SIZE.
    TooLarge,
    /// The message needs an extension the server does not offer (SMTPUTF8).
    Unsupported,
    /// `--auth-user` was given but the server offers no AUTH (nothing was sent).
    NoAuth,
    /// smtpcheck withheld the password: the connection is not encrypted or not verified.
    Withheld,
    /// DNS: an MX record names an IP address instead of a host name (RFC 5321 5.1 / RFC 7505).
    MxIsAddress,
}

impl BreakKind {
    /// The kind's name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::ConnectionRefused => "connection-refused",
            BreakKind::ConnectTimeout => "connect-timeout",
            BreakKind::ConnectFailed => "connect-failed",
            BreakKind::Timeout => "timeout",
            BreakKind::Closed => "closed",
            BreakKind::Io => "io",
            BreakKind::Malformed => "malformed",
            BreakKind::Protocol => "protocol",
            BreakKind::NoDomain => "no-domain",
            BreakKind::NullMx => "null-mx",
            BreakKind::NoAddress => "no-address",
            BreakKind::DnsError => "dns-error",
            BreakKind::TooLarge => "too-large",
            BreakKind::Unsupported => "unsupported",
            BreakKind::NoAuth => "no-auth",
            BreakKind::Withheld => "withheld",
            BreakKind::MxIsAddress => "mx-is-address",
        }
    }
}

/// One command and its reply (or the error that took the reply's place).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Which stage this step belongs to.
    pub stage: Stage,
    /// The command line as sent, without CRLF; `null` when nothing was sent (connect, greeting).
    /// For the `message` step it is `.`, the terminator, and `octets` says how much data went before it.
    pub sent: Option<String>,
    /// Octets of message data written in this step (only on the `message` step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub octets: Option<u64>,
    /// The server's reply, when one arrived.
    pub reply: Option<Reply>,
    /// Milliseconds from sending the command (or starting the step) to the end of its reply.
    pub elapsed_ms: f64,
    /// `true` when the step did what it should (a positive reply, a connection).
    pub ok: bool,
    /// What went wrong when no reply came (timeout, closed, malformed), in words.
    pub error: Option<String>,
    /// The classified reason when no reply came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<BreakKind>,
}

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RcptStatus {
    /// The server accepted the recipient and then the message.
    Delivered,
    /// The server refused it permanently (a 5xx to RCPT, or to the message after it was accepted).
    Refused,
    /// The server deferred it (a 4xx), or the session broke before the message was accepted:
    /// retrying later may deliver it.
    Deferred,
    /// Never offered to a server: the session stopped (or was stopped on purpose) before its RCPT.
    NotTried,
    /// `--quit-after rcpt`: the server accepted it at RCPT; no message was sent.
    RcptAccepted,
}

impl RcptStatus {
    /// The name used in JSON and in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            RcptStatus::Delivered => "delivered",
            RcptStatus::Refused => "refused",
            RcptStatus::Deferred => "deferred",
            RcptStatus::NotTried => "not-tried",
            RcptStatus::RcptAccepted => "rcpt-accepted",
        }
    }

    /// The status a reply to RCPT gives (until the message itself is answered).
    pub fn of_rcpt(reply: &Reply) -> RcptStatus {
        match reply.code {
            200..=299 => RcptStatus::RcptAccepted,
            400..=499 => RcptStatus::Deferred,
            _ => RcptStatus::Refused,
        }
    }
}

/// What the server said about one recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipientResult {
    /// The recipient address as sent.
    pub address: String,
    /// What became of it.
    pub status: RcptStatus,
    /// `true` when the server accepted the recipient and the message was then accepted
    /// (`status == "delivered"`).
    pub accepted: bool,
    /// The reply to this recipient's `RCPT TO` (null when it was never sent).
    pub reply: Option<Reply>,
    /// Why it was not tried, or why a recipient accepted at RCPT did not get the message; null
    /// otherwise.
    pub reason: Option<String>,
}

impl RecipientResult {
    /// A recipient answered at RCPT.
    pub fn answered(address: String, reply: Reply) -> RecipientResult {
        let status = RcptStatus::of_rcpt(&reply);
        RecipientResult {
            address,
            status,
            accepted: false,
            reply: Some(reply),
            reason: None,
        }
    }

    /// A recipient that was never offered, and why.
    pub fn not_tried(address: String, reason: Option<String>) -> RecipientResult {
        RecipientResult {
            address,
            status: RcptStatus::NotTried,
            accepted: false,
            reply: None,
            reason,
        }
    }

    /// Sets the status (and `accepted` with it).
    pub fn set(&mut self, status: RcptStatus, reason: Option<String>) {
        self.status = status;
        self.accepted = status == RcptStatus::Delivered;
        if reason.is_some() {
            self.reason = reason;
        }
    }

    /// `true` when the server accepted it at RCPT (whatever happened after).
    pub fn rcpt_ok(&self) -> bool {
        self.reply.as_ref().is_some_and(Reply::is_positive)
    }
}

/// The extensions the server advertised in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Every keyword line after the greeting line, as advertised (`SIZE 10240000`, `AUTH PLAIN LOGIN`).
    pub keywords: Vec<String>,
    /// The SIZE limit in octets (RFC 1870); `Some(0)` means "no fixed limit".
    pub size: Option<u64>,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// The AUTH mechanisms offered (RFC 4954), upper-cased.
    pub auth: Vec<String>,
}

/// One connection to one address, from connect to QUIT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The host name (or address) that was asked for.
    pub host: String,
    /// The IP address connected to.
    pub address: String,
    /// The TCP port.
    pub port: u16,
    /// What the server advertised in its EHLO reply (null when EHLO was not accepted). After
    /// STARTTLS, the capabilities of the EHLO sent over TLS (the only ones used), except that
    /// `starttls` stays true: the server did offer it.
    pub capabilities: Option<Capabilities>,
    /// After STARTTLS: what the first EHLO reply (in clear) advertised; null without an upgrade.
    pub capabilities_before_tls: Option<Capabilities>,
    /// The TLS facts when a TLS handshake completed (null when the session stayed in clear).
    pub tls: Option<TlsInfo>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The host name the server gives in its 220 greeting (its first word), if any.
    pub greeting_name: Option<String>,
    /// The PTR names of the address (direct mode); null when not looked up.
    pub ptr: Option<Vec<String>>,
    /// The local address of the connection (what `send --check-sender` falls back to when the
    /// server does not say which address it sees); not part of the JSON attempt.
    #[serde(skip)]
    pub local_ip: Option<std::net::IpAddr>,
}

impl Attempt {
    /// An attempt with no steps yet.
    pub fn new(host: &str, address: std::net::IpAddr, port: u16) -> Self {
        Attempt {
            host: host.to_string(),
            address: address.to_string(),
            port,
            capabilities: None,
            capabilities_before_tls: None,
            tls: None,
            steps: Vec::new(),
            greeting_name: None,
            ptr: None,
            local_ip: None,
        }
    }

    /// A note when the server's address has no PTR record, or its PTR names are neither the name
    /// it greets with nor the name it was reached as (as public SMTP checkers report); the name it
    /// was reached as is added when it differs too. A greeting name that only differs from the MX
    /// name is common (one server, several names) and is not noted.
    pub fn name_note(&self) -> Option<String> {
        let greeting = self
            .greeting_name
            .as_deref()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !greeting.contains('.') {
            return None;
        }
        let mut odd = Vec::new();
        let host = self.host.trim_end_matches('.').to_ascii_lowercase();
        let host_is_name = host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[');
        if host_is_name && host != greeting {
            odd.push(format!("it was reached as {host}"));
        }
        match &self.ptr {
            Some(names) if names.is_empty() => {
                odd.push(format!("{} has no PTR record", self.address))
            }
            Some(names) if !names.contains(&greeting) && !names.contains(&host) => odd.push(
                format!("the PTR of {} is {}", self.address, names.join(", ")),
            ),
            _ => return None,
        }
        (!odd.is_empty()).then(|| {
            format!(
                "note: the server at {} greets as {greeting} but {}",
                self.address,
                odd.join(" and ")
            )
        })
    }
}

/// Why a delivery attempt (or the whole check) did not fully succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The stage where it failed.
    pub stage: Stage,
    /// Whether retrying later could help.
    pub class: FailureClass,
    /// What happened, in words, quoting the server's reply when there was one.
    pub reason: String,
    /// The reply code, when the failure is a server reply.
    pub code: Option<u16>,
    /// The enhanced status code of that reply, if it had one.
    pub enhanced: Option<String>,
    /// When no reply came: how the session broke.
    pub kind: Option<BreakKind>,
}

impl Failure {
    /// A failure caused by a negative (or unexpected) server reply.
    pub fn refused(stage: Stage, reply: &Reply, what: &str) -> Failure {
        let quoted = reply.lines.join(" / ");
        Failure {
            stage,
            class: reply.class(),
            reason: format!("{what}: {quoted}"),
            code: Some(reply.code),
            enhanced: reply.enhanced.clone(),
            kind: None,
        }
    }

    /// A failure where no usable reply came: timeout, closed connection, malformed reply.
    pub fn broken(stage: Stage, kind: BreakKind, reason: String) -> Failure {
        Failure {
            stage,
            class: FailureClass::Transient,
            reason,
            code: None,
            enhanced: None,
            kind: Some(kind),
        }
    }

    /// The same failure with another reason.
    pub fn with_reason(mut self, reason: &str) -> Failure {
        self.reason = reason.to_string();
        self
    }

    /// A failure of the DNS stage.
    pub fn dns(class: FailureClass, kind: BreakKind, reason: impl Into<String>) -> Failure {
        Failure {
            stage: Stage::Dns,
            class,
            reason: reason.into(),
            code: None,
            enhanced: None,
            kind: Some(kind),
        }
    }
}

/// The certificate verdict: a stable vocabulary (JSON `tls.verdict`), each word with a sentence
/// in [`TlsInfo::reason`] and [`TlsInfo::advice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The chain leads to a trusted root, the dates are valid and the name matches.
    Verified,
    /// Trusted as a pin: the certificate is byte for byte one given with `--ca`, or its public key
    /// matches a `--tls-pin` (chain and name not checked).
    Pinned,
    /// The certificate is issued by itself and no trusted CA vouches for it.
    SelfSigned,
    /// The server presents a CA certificate (basicConstraints CA:TRUE) as its own.
    CaCertificateAsServer,
    /// The chain does not lead to a trusted root (private CA, missing intermediate).
    UnknownIssuer,
    /// The certificate is not valid for the name checked.
    NameMismatch,
    /// The certificate (or one in its chain) has expired.
    Expired,
    /// The certificate (or one in its chain) is not valid yet.
    NotYetValid,
    /// A signature in the chain does not verify.
    BadSignature,
    /// A signature or key algorithm that is not accepted (SHA-1, small RSA keys…).
    UnsupportedAlgorithm,
    /// The certificate was revoked.
    Revoked,
    /// `--tls-pin` was given and the server's key matches none of the pins.
    PinMismatch,
    /// The certificate cannot be used by a TLS server (malformed, wrong purpose, unknown critical
    /// extension).
    InvalidCertificate,
    /// `--insecure`: a certificate that does not verify is not enforced (the reason says what
    /// verification found).
    NotChecked,
}

impl Verdict {
    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Pinned => "pinned",
            Verdict::SelfSigned => "self-signed",
            Verdict::CaCertificateAsServer => "ca-certificate-as-server",
            Verdict::UnknownIssuer => "unknown-issuer",
            Verdict::NameMismatch => "name-mismatch",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not-yet-valid",
            Verdict::BadSignature => "bad-signature",
            Verdict::UnsupportedAlgorithm => "unsupported-algorithm",
            Verdict::Revoked => "revoked",
            Verdict::PinMismatch => "pin-mismatch",
            Verdict::InvalidCertificate => "invalid-certificate",
            Verdict::NotChecked => "not-checked",
        }
    }

    /// `true` when the server is authenticated: verified by a CA, or pinned.
    pub fn trusted(self) -> bool {
        matches!(self, Verdict::Verified | Verdict::Pinned)
    }
}

/// The TLS facts of one connection (JSON `attempts[].tls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// How TLS was asked for (`--tls`): `opportunistic`, `required` or `implicit`.
    pub mode: Policy,
    /// The protocol version: `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The cipher suite, as IANA names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// The name the certificate was verified against (`--tls-name`, else the host name).
    pub name: String,
    /// The server certificate's subject (`CN=mail.example.com`), null when it cannot be parsed.
    pub subject: Option<String>,
    /// The subject alternative names: DNS names and IP addresses.
    pub san: Vec<String>,
    /// The issuer (`CN=R11, O=Let's Encrypt, C=US`).
    pub issuer: Option<String>,
    /// Start of validity, RFC 3339 (UTC).
    pub not_before: Option<String>,
    /// End of validity, RFC 3339 (UTC).
    pub not_after: Option<String>,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: Option<i64>,
    /// How many certificates the server sent (leaf plus intermediates).
    pub chain_length: usize,
    /// `true` when the server is authenticated: the verdict is `verified` or `pinned`.
    pub verified: bool,
    /// The verdict, one word of a stable vocabulary (see README).
    pub verdict: Verdict,
    /// The verdict in a sentence: what is wrong with the certificate (or how a pin trusted it);
    /// null when verified.
    pub reason: Option<String>,
    /// What to do about it, in a sentence; null when verified or pinned.
    pub advice: Option<String>,
    /// Whether the certificate is valid for `name` (checked even when the chain is not trusted).
    pub name_matched: bool,
    /// The base64 SHA-256 of the certificate's SubjectPublicKeyInfo: the value for
    /// `--tls-pin sha256:...` (and curl's `--pinnedpubkey sha256//...`).
    pub spki_sha256: Option<String>,
    /// The subject of the client certificate offered (`--tls-cert`), when one was configured
    /// (absent otherwise). The key is never shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// The certificates the server presented (leaf first), DER; written by `--tls-save-chain`.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
}

/// How TLS is used (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Never.
    Off,
    /// STARTTLS when offered; a certificate that does not verify is a warning.
    Opportunistic,
    /// STARTTLS or fail; the certificate must verify unless `--insecure`.
    Required,
    /// TLS from the first byte; the certificate must verify unless `--insecure`.
    Implicit,
}

impl Policy {
    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Opportunistic => "opportunistic",
            Policy::Required => "required",
            Policy::Implicit => "implicit",
        }
    }

    /// `true` when a certificate that does not verify ends the session (unless `--insecure`).
    pub fn strict(self) -> bool {
        matches!(self, Policy::Required | Policy::Implicit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(host: &str, greeting: Option<&str>, ptr: Option<&[&str]>) -> Attempt {
        let mut a = Attempt::new(host, "192.0.2.7".parse().unwrap(), 25);
        a.greeting_name = greeting.map(str::to_string);
        a.ptr = ptr.map(|p| p.iter().map(|s| s.to_string()).collect());
        a
    }

    #[test]
    fn names_that_agree_give_no_note() {
        assert_eq!(
            attempt(
                "mx.example.com",
                Some("mx.example.com"),
                Some(&["mx.example.com"])
            )
            .name_note(),
            None
        );
        assert_eq!(
            attempt("MX.example.com.", Some("mx.example.com"), None).name_note(),
            None
        );
        // Reached by address, no PTR looked up: nothing to compare.
        assert_eq!(
            attempt("192.0.2.7", Some("mx.example.com"), None).name_note(),
            None
        );
        // Reached as another name, but the PTR names one of them: nothing useful to say.
        assert_eq!(
            attempt(
                "mx1.example.com",
                Some("relay.example.net"),
                Some(&["relay.example.net"])
            )
            .name_note(),
            None
        );
        assert_eq!(
            attempt("mx1.example.com", Some("relay.example.net"), None).name_note(),
            None
        );
        // A greeting without a dotted name is not compared.
        assert_eq!(
            attempt("mx.example.com", Some("ESMTP"), Some(&[])).name_note(),
            None
        );
    }

    #[test]
    fn mismatches_are_noted() {
        let n = attempt(
            "mx1.example.com",
            Some("relay.example.net"),
            Some(&["host7.isp.example"]),
        )
        .name_note()
        .unwrap();
        assert!(
            n.starts_with("note: the server at 192.0.2.7 greets as relay.example.net"),
            "{n}"
        );
        assert!(n.contains("it was reached as mx1.example.com"), "{n}");
        assert!(
            n.contains("the PTR of 192.0.2.7 is host7.isp.example"),
            "{n}"
        );
        let n = attempt("192.0.2.7", Some("mx.example.com"), Some(&[]))
            .name_note()
            .unwrap();
        assert!(n.contains("192.0.2.7 has no PTR record"), "{n}");
    }
}
