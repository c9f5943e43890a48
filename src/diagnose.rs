//! Explanations: for every failure, a plain-language cause and a next step.
//!
//! One table keyed on the stage, the reply code, the enhanced status code, or (when no reply came)
//! the kind of break. The first row that matches wins, so specific rows come before general ones.
//! README's troubleshooting section is built from this table.

use crate::transcript::{BreakKind, Failure, Stage};
use serde::Serialize;

/// What a failure most likely means and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    /// The likely cause, in plain words.
    pub cause: String,
    /// What to try next.
    pub next_step: String,
}

/// What a table row matches on.
#[derive(Debug, Clone, Copy)]
enum When {
    /// A failure with this break kind.
    Kind(BreakKind),
    /// A failure with this kind at this stage.
    KindAt(BreakKind, Stage),
    /// An enhanced status code starting with this text (`5.7.1`, `5.1.`).
    Enhanced(&'static str),
    /// An enhanced status code at this stage.
    EnhancedAt(&'static str, Stage),
    /// This reply code at this stage.
    CodeAt(u16, Stage),
    /// This reply code at any stage.
    Code(u16),
    /// Any reply of this class (4 or 5) at this stage.
    ClassAt(u16, Stage),
    /// Anything at this stage.
    Stage(Stage),
}

/// One row: the condition, the cause and the next step.
struct Row(When, &'static str, &'static str);

/// The table. Order matters: the first match wins.
const TABLE: &[Row] = &[
    // Input.
    Row(When::Stage(Stage::Input), "smtpcheck could not use the message file, an address or a flag value.", "Fix the file or flag named in the reason and run again; nothing was sent."),
    // DNS.
    Row(When::Kind(BreakKind::NoDomain), "The recipient's domain does not exist in DNS (NXDOMAIN).", "Check the spelling of the domain in the recipient address."),
    Row(When::Kind(BreakKind::NullMx), "The domain publishes a null MX (RFC 7505): it accepts no mail at all.", "Use another address for this recipient; mail to this domain cannot be delivered."),
    Row(When::Kind(BreakKind::NoAddress), "The domain has no mail host with an address (MX hosts without A/AAAA records, or no MX and no address).", "Ask the domain's administrator to fix its MX records; check -4/-6 if you restricted the address family."),
    Row(When::Kind(BreakKind::DnsError), "The DNS lookup failed temporarily (timeout, SERVFAIL or an unreachable DNS server).", "Retry later; check the resolver (--resolver) and --dns-timeout, and that this machine can reach DNS."),
    // Connection.
    Row(When::Kind(BreakKind::ConnectionRefused), "Nothing accepts connections on that address and port (no mail server running there, or a firewall rejects the connection).", "Check the host and port (--smart-host HOST:PORT, --port) and that the mail server is running."),
    Row(When::Kind(BreakKind::ConnectTimeout), "No answer to the connection attempt: outbound port 25 is commonly blocked by ISPs, cloud providers and firewalls, or the host is down.", "Try your provider's relay with --smart-host (often port 587 with --auth-user), or test from another network."),
    Row(When::Kind(BreakKind::ConnectFailed), "The connection could not be made: no route to the address, or the network is unreachable.", "Check this machine's network and routing; try -4 or -6 if one address family is broken."),
    // Greeting.
    Row(When::CodeAt(421, Stage::Greeting), "The server is busy, throttling connections, or temporarily refusing your address.", "Retry later (--retry with --retry-delay); if it persists your address may be rate-limited."),
    Row(When::CodeAt(554, Stage::Greeting), "The server refused the session outright: your IP address is probably on a blocklist or not allowed to connect.", "Read the greeting for a blocklist link and request delisting, or send through your own relay (--smart-host)."),
    Row(When::ClassAt(5, Stage::Greeting), "The server refused the session in its greeting.", "Read the server's words; use a relay that accepts your address (--smart-host)."),
    Row(When::ClassAt(4, Stage::Greeting), "The server temporarily refused the session in its greeting.", "Retry later."),
    // TLS and AUTH.
    Row(When::Stage(Stage::Tls), "TLS from the first byte (--tls implicit) could not be established, or the certificate was not trusted: the port may speak plain SMTP, or the server's TLS is broken.", "Read the reason: it says what the certificate needs (--ca, --tls-pin, --tls-name) or which mode the port speaks."),
    Row(When::Stage(Stage::Starttls), "TLS could not be established or the certificate was not trusted.", "Read the reason and the TLS facts: trust a private CA or this very certificate with --ca, pin the key with --tls-pin, check another name with --tls-name, or go on while still reporting with --insecure."),
    Row(When::Code(530), "The server requires authentication before it accepts mail (530 5.7.0).", "Log in with --auth-user (the password via SMTPCHECK_PASSWORD or --auth-password-file), usually with --tls required."),
    Row(When::Enhanced("5.7.0"), "The server requires authentication or encryption first.", "Log in with --auth-user, usually with --tls required."),
    Row(When::Code(535), "Authentication failed: the user name or password was not accepted (535 5.7.8).", "Check --auth-user and the password; some providers need an app password or a different mechanism (--auth-mech)."),
    Row(When::Stage(Stage::Auth), "Authentication did not succeed.", "Check the user, the password and the mechanisms the server offers (see capabilities)."),
    // Policy codes, recognised at any stage.
    Row(When::Enhanced("5.7.23"), "SPF check failed: the sender's domain does not authorise your sending address.", "Send through the sender domain's own relay, or add your sending IP to its SPF record."),
    Row(When::Enhanced("5.7.25"), "Your sending address has no valid reverse DNS (PTR) record.", "Give your sending IP a PTR record that matches your --helo name, or use a relay that has one."),
    Row(When::Enhanced("5.7.26"), "The message failed sender authentication (DMARC: SPF and DKIM did not align with the From domain).", "Sign the message with DKIM for the From domain and make SPF pass, or send through the domain's own relay."),
    Row(When::Enhanced("5.7.27"), "The sender's domain publishes a null MX, so mail from it is refused (RFC 7505).", "Use an envelope sender (--from) whose domain can receive mail."),
    Row(When::Enhanced("4.7.1"), "Greylisting or a temporary policy deferral: the server asks you to come back later.", "Retry after a few minutes (--retry 3 --retry-delay 5m), as a real mail server would."),
    Row(When::CodeAt(451, Stage::Rcpt), "The server deferred the recipient temporarily (often greylisting).", "Retry after a few minutes (--retry with --retry-delay)."),
    Row(When::Enhanced("5.7.1"), "Relaying denied or refused by policy: this server does not accept this mail from your client (it does not relay to that domain for you).", "Authenticate (--auth-user), use the relay that serves your network (--smart-host), or send to a domain this server hosts."),
    // Recipients.
    Row(When::EnhancedAt("5.1.1", Stage::Rcpt), "The mailbox does not exist at the recipient's server.", "Check the recipient address for typos; ask the recipient for the right address."),
    Row(When::CodeAt(452, Stage::Rcpt), "Too many recipients, or the server is out of storage for now.", "Send to fewer recipients per message, or retry later."),
    Row(When::Enhanced("4.5.3"), "Too many recipients in one transaction.", "Send to fewer recipients per message."),
    Row(When::Enhanced("5.1.10"), "The recipient's domain publishes a null MX: it accepts no mail.", "Use another address for this recipient."),
    Row(When::ClassAt(5, Stage::Rcpt), "The server refused the recipient.", "Read the server's words; check the address and whether this server accepts mail for that domain."),
    Row(When::ClassAt(4, Stage::Rcpt), "The server deferred the recipient temporarily.", "Retry later."),
    // Size.
    Row(When::Kind(BreakKind::TooLarge), "The message is larger than the server's advertised SIZE limit, so it was not sent.", "Shrink the message or its attachments below the limit, or use a server with a larger limit."),
    Row(When::Enhanced("5.3.4"), "The message is too large for the server.", "Shrink the message or its attachments; compare with the SIZE the server advertises."),
    Row(When::Enhanced("5.2.3"), "The message is larger than the recipient's server or mailbox accepts.", "Shrink the message or its attachments."),
    Row(When::Code(552), "The server refused the message as too large or over a storage limit.", "Shrink the message, or retry later if the mailbox is full."),
    Row(When::Kind(BreakKind::Unsupported), "The message needs an extension the server does not offer (SMTPUTF8 for non-ASCII addresses).", "Use ASCII addresses, or send through a server that offers SMTPUTF8."),
    // Commands not understood.
    Row(When::Code(500), "The server did not recognise a command (500): it may not speak ESMTP, or a proxy is interfering.", "Check the transcript for the command it refused; make sure you reach a real mail server on that port."),
    Row(When::Code(502), "The server does not implement a command smtpcheck needed.", "Check the transcript for the command it refused."),
    // EHLO and HELO.
    Row(When::Stage(Stage::Ehlo), "The server refused the EHLO greeting.", "Use --helo with a fully qualified name that resolves (ideally your IP's PTR name); 421 means the server is closing: retry later."),
    Row(When::Stage(Stage::Helo), "The server refused both EHLO and HELO: it does not accept your client name or your client.", "Use --helo with a fully qualified name that resolves (ideally your IP's PTR name)."),
    // Sender.
    Row(When::ClassAt(5, Stage::Mail), "The server refused the envelope sender (MAIL FROM).", "Check --from: the sender's domain may be refused by policy, or need authentication (--auth-user)."),
    Row(When::ClassAt(4, Stage::Mail), "The server deferred the envelope sender temporarily.", "Retry later."),
    // DATA and the message.
    Row(When::Stage(Stage::Data), "The server refused DATA (often: no valid recipients left, or a policy decision).", "Read the server's words and the recipients' replies."),
    Row(When::ClassAt(5, Stage::Message), "The server refused the message content after the data (spam or virus filter, or policy).", "Read the server's words; check the content, attachments and sender authentication (SPF, DKIM)."),
    Row(When::ClassAt(4, Stage::Message), "The server deferred the message after the data.", "Retry later."),
    // Broken sessions.
    Row(When::KindAt(BreakKind::Timeout, Stage::Greeting), "The server accepted the connection but never greeted: a tarpit, an overloaded server, or a TLS port (465) that waits for a handshake.", "Raise --timeout; for port 465 use --tls implicit."),
    Row(When::Kind(BreakKind::Timeout), "The server stopped answering within --timeout.", "Raise --timeout if the server is just slow; otherwise a firewall, a proxy or a tarpit may be in the way."),
    Row(When::Kind(BreakKind::Closed), "The server closed the connection without a reply (often a policy drop, a rate limit or a crash).", "Check the server's log for this session; retry later."),
    Row(When::Kind(BreakKind::Io), "A network error broke the session.", "Retry; check the network path."),
    Row(When::Kind(BreakKind::Malformed), "The reply is not valid SMTP: the port may not be a mail server (HTTP?) or it expects TLS first.", "Check the port; for port 465 use --tls implicit."),
    Row(When::Kind(BreakKind::Protocol), "The server broke the SMTP protocol.", "Report it to the server's administrator with this transcript."),
];

/// The generic hints for anything the table does not know.
fn fallback(f: &Failure) -> Hint {
    let (cause, next) = match (f.code, f.class) {
        (Some(c), _) if c >= 500 => (
            "The server refused this step permanently.",
            "Read the server's words in the verdict; retrying unchanged will fail again.",
        ),
        (Some(_), _) => ("The server refused this step temporarily.", "Retry later."),
        (None, crate::transcript::FailureClass::Transient) => (
            "The check failed for a reason that may go away.",
            "Retry later.",
        ),
        (None, crate::transcript::FailureClass::Permanent) => {
            ("The check failed.", "Read the reason in the verdict.")
        }
    };
    Hint {
        cause: cause.into(),
        next_step: next.into(),
    }
}

fn matches(when: When, f: &Failure) -> bool {
    let enhanced = f.enhanced.as_deref().unwrap_or("");
    let code_class = f.code.map(|c| c / 100);
    match when {
        When::Kind(k) => f.kind == Some(k),
        When::KindAt(k, s) => f.kind == Some(k) && f.stage == s,
        When::Enhanced(e) => enhanced == e || (e.ends_with('.') && enhanced.starts_with(e)),
        When::EnhancedAt(e, s) => f.stage == s && enhanced == e,
        When::CodeAt(c, s) => f.code == Some(c) && f.stage == s,
        When::Code(c) => f.code == Some(c),
        When::ClassAt(c, s) => code_class == Some(c) && f.stage == s,
        When::Stage(s) => f.stage == s,
    }
}

/// The cause and next step for a failure.
pub fn explain(f: &Failure) -> Hint {
    TABLE
        .iter()
        .find(|Row(when, _, _)| matches(*when, f))
        .map(|Row(_, cause, next)| Hint {
            cause: (*cause).into(),
            next_step: (*next).into(),
        })
        .unwrap_or_else(|| fallback(f))
}

/// The table as Markdown rows (`| when | cause | next step |`), for README's troubleshooting section.
#[cfg(test)]
pub fn table_markdown() -> String {
    let mut s = String::from("| failure | likely cause | next step |\n|---|---|---|\n");
    for Row(when, cause, next) in TABLE {
        let w = match when {
            When::Kind(k) => format!("`{}`", k.as_str()),
            When::KindAt(k, st) => format!("`{}` at {}", k.as_str(), st),
            When::Enhanced(e) => format!("enhanced code {e}"),
            When::EnhancedAt(e, st) => format!("{e} at {st}"),
            When::CodeAt(c, st) => format!("{c} at {st}"),
            When::Code(c) => format!("{c}"),
            When::ClassAt(c, st) => format!("{c}xx at {st}"),
            When::Stage(st) => format!("any failure at {st}"),
        };
        s.push_str(&format!("| {w} | {cause} | {next} |\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{FailureClass, Reply};

    fn reply(stage: Stage, line: &str) -> Failure {
        let code: u16 = line[..3].parse().unwrap();
        let r = Reply {
            code,
            enhanced: crate::smtp::codec::enhanced_code(code, line),
            lines: vec![line.to_string()],
        };
        Failure::refused(stage, &r, "x")
    }

    fn broken(stage: Stage, kind: BreakKind) -> Failure {
        Failure::broken(stage, kind, "x".into())
    }

    fn cause(f: &Failure) -> String {
        explain(f).cause
    }

    #[test]
    fn connection_rows() {
        assert!(cause(&broken(Stage::Connect, BreakKind::ConnectionRefused))
            .contains("Nothing accepts connections"));
        let t = explain(&broken(Stage::Connect, BreakKind::ConnectTimeout));
        assert!(t.cause.contains("port 25 is commonly blocked"));
        assert!(t.next_step.contains("587"));
        assert!(cause(&broken(Stage::Connect, BreakKind::ConnectFailed)).contains("no route"));
    }

    #[test]
    fn dns_rows() {
        assert!(cause(&broken(Stage::Dns, BreakKind::NoDomain)).contains("does not exist"));
        assert!(cause(&broken(Stage::Dns, BreakKind::NullMx)).contains("null MX"));
        assert!(cause(&broken(Stage::Dns, BreakKind::NoAddress))
            .contains("no mail host with an address"));
        assert!(cause(&broken(Stage::Dns, BreakKind::DnsError)).contains("failed temporarily"));
    }

    #[test]
    fn greeting_rows() {
        assert!(cause(&reply(Stage::Greeting, "421 4.3.2 busy")).contains("busy"));
        assert!(cause(&reply(Stage::Greeting, "554 5.7.1 you are listed")).contains("blocklist"));
        assert!(cause(&broken(Stage::Greeting, BreakKind::Timeout)).contains("never greeted"));
    }

    #[test]
    fn hello_rows() {
        assert!(cause(&reply(Stage::Ehlo, "421 closing")).contains("refused the EHLO"));
        assert!(cause(&reply(Stage::Helo, "550 go away")).contains("both EHLO and HELO"));
    }

    #[test]
    fn auth_and_relay_rows() {
        assert!(
            cause(&reply(Stage::Mail, "530 5.7.0 Authentication required"))
                .contains("requires authentication")
        );
        assert!(
            cause(&reply(Stage::Rcpt, "554 5.7.1 <a@b>: Relay access denied"))
                .contains("Relaying denied")
        );
        assert!(cause(&reply(Stage::Rcpt, "550 5.7.1 relaying denied")).contains("Relaying denied"));
        assert!(cause(&reply(
            Stage::Auth,
            "535 5.7.8 Error: authentication failed"
        ))
        .contains("password"));
    }

    #[test]
    fn recipient_rows() {
        assert!(cause(&reply(
            Stage::Rcpt,
            "550 5.1.1 <x@y>: Recipient address rejected"
        ))
        .contains("mailbox does not exist"));
        assert!(
            cause(&reply(Stage::Rcpt, "451 4.7.1 Greylisted, try again")).contains("Greylisting")
        );
        assert!(cause(&reply(Stage::Rcpt, "452 4.5.3 Too many recipients"))
            .contains("Too many recipients"));
    }

    #[test]
    fn size_rows() {
        assert!(cause(&reply(
            Stage::Message,
            "552 5.3.4 Message size exceeds fixed limit"
        ))
        .contains("too large"));
        assert!(cause(&reply(Stage::Message, "552 Message too big")).contains("too large"));
        let f = Failure {
            stage: Stage::Mail,
            class: FailureClass::Permanent,
            reason: "x".into(),
            code: None,
            enhanced: None,
            kind: Some(BreakKind::TooLarge),
        };
        assert!(cause(&f).contains("SIZE"));
    }

    #[test]
    fn policy_rows() {
        assert!(cause(&reply(Stage::Rcpt, "550 5.7.23 SPF fail")).contains("SPF"));
        assert!(cause(&reply(Stage::Mail, "550 5.7.25 no PTR")).contains("reverse DNS"));
        assert!(cause(&reply(Stage::Message, "550 5.7.26 DMARC policy")).contains("DMARC"));
        assert!(
            cause(&reply(Stage::Mail, "550 5.7.27 sender domain has null MX")).contains("null MX")
        );
    }

    #[test]
    fn protocol_rows() {
        assert!(
            cause(&reply(Stage::Mail, "500 5.5.1 command not recognized"))
                .contains("did not recognise")
        );
        assert!(cause(&broken(Stage::Starttls, BreakKind::Protocol)).contains("certificate"));
        assert!(cause(&broken(Stage::Mail, BreakKind::Timeout)).contains("stopped answering"));
        assert!(cause(&broken(Stage::Mail, BreakKind::Closed)).contains("closed the connection"));
        assert!(cause(&broken(Stage::Greeting, BreakKind::Malformed)).contains("not valid SMTP"));
    }

    /// Every row can be reached: a failure built to match it gets that row's hint, not an earlier
    /// row's (a row shadowed by a more general one above it fails here).
    #[test]
    fn every_row_is_reachable() {
        for (i, Row(when, cause, _)) in TABLE.iter().enumerate() {
            let mut f = Failure {
                stage: Stage::Mail,
                class: FailureClass::Permanent,
                reason: "x".into(),
                code: None,
                enhanced: None,
                kind: None,
            };
            let class_code = |e: &str| u16::from(e.as_bytes()[0] - b'0') * 100 + 50;
            match *when {
                When::Kind(k) => {
                    f.stage = Stage::Connect;
                    f.kind = Some(k);
                }
                When::KindAt(k, st) => {
                    f.stage = st;
                    f.kind = Some(k);
                }
                When::Enhanced(e) => {
                    f.code = Some(class_code(e));
                    f.enhanced = Some(e.to_string());
                }
                When::EnhancedAt(e, st) => {
                    f.stage = st;
                    f.code = Some(class_code(e));
                    f.enhanced = Some(e.to_string());
                }
                When::CodeAt(c, st) => {
                    f.stage = st;
                    f.code = Some(c);
                }
                When::Code(c) => f.code = Some(c),
                When::ClassAt(c, st) => {
                    f.stage = st;
                    f.code = Some(c * 100 + 99);
                }
                When::Stage(st) => f.stage = st,
            }
            assert_eq!(
                explain(&f).cause,
                *cause,
                "row {i} ({when:?}) is shadowed by an earlier row"
            );
        }
    }

    #[test]
    fn readme_has_the_same_table() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&table_markdown()),
            "README's troubleshooting table differs from src/diagnose.rs: regenerate it with table_markdown()"
        );
    }

    #[test]
    fn every_failure_gets_a_hint() {
        let f = reply(Stage::Quit, "599 odd");
        assert!(!explain(&f).next_step.is_empty());
        assert!(table_markdown().lines().count() > TABLE.len());
    }
}
