//! Exit codes: defined once here, listed in `--help`, the man page and README, tested as a table.
//!
//! The stage a check failed at gives the code; whether retrying later may help gives its range: a
//! temporary failure (a 4xx reply, a DNS timeout) exits with the stage's code plus 20 (24, 26, 27,
//! 30–35), and the connection and broken-session codes (5, 8) are temporary by nature. So a script
//! can tell "retry later" from "fix it" by `$?` alone ([`Exit::temporary`]).

use crate::transcript::FailureClass;
use serde::Serialize;

/// What the process exit code tells a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "u8")]
pub enum Exit {
    /// 0: the message was accepted for every recipient.
    Delivered,
    /// 1: accepted for some recipients, refused for others.
    Partial,
    /// 2: usage error (unknown flag, bad flag value): reported by the argument parser.
    Usage,
    /// 3: bad input: the message file or an address.
    BadInput,
    /// 4: DNS: no mail host found for a domain.
    Dns,
    /// 5: could not connect to any target.
    Connect,
    /// 6: TLS failure.
    Tls,
    /// 7: authentication failed.
    Auth,
    /// 8: the session broke: timeout, connection closed, malformed reply.
    Broken,
    /// 10: the server's greeting was not 220.
    Greeting,
    /// 11: both EHLO and HELO were refused.
    Hello,
    /// 12: MAIL FROM was refused.
    Mail,
    /// 13: no recipient was accepted.
    Rcpt,
    /// 14: DATA was refused.
    Data,
    /// 15: the message was refused after the data, or not sent because it exceeds the server's SIZE.
    Message,
    /// 16: `--confirm`: accepted, but found in the junk folder (special use `\Junk`).
    Junk,
    /// 17: `--confirm`: accepted, but not found in the mailbox within `--confirm-timeout`.
    NotArrived,
    /// 18: `--confirm`: accepted, but the mailbox could not be checked (IMAP connection, TLS or
    /// login failed).
    ConfirmFailed,
    /// 24: DNS failed temporarily (timeout, SERVFAIL).
    DnsLater,
    /// 26: TLS failed temporarily (STARTTLS answered with a 4xx under `--tls required`).
    TlsLater,
    /// 27: authentication failed temporarily (a 4xx to AUTH).
    AuthLater,
    /// 30: the greeting was a 4xx (421: busy, throttled).
    GreetingLater,
    /// 31: EHLO/HELO answered with a 4xx.
    HelloLater,
    /// 32: MAIL FROM deferred (4xx).
    MailLater,
    /// 33: no recipient accepted, every refusal temporary (4xx: greylisting, limits).
    RcptLater,
    /// 34: DATA deferred (4xx).
    DataLater,
    /// 35: the message was deferred after the data (4xx).
    MessageLater,
    /// 40: `sender` (and `send --require-sender-pass`): a receiver enforcing DMARC would reject
    /// or quarantine the message.
    SenderRejected,
    /// 41: `sender` (and `send --require-sender-pass`): DMARC would not reject it, but a check
    /// failed (DMARC fails under p=none or does not apply, SPF, DKIM, iprev, a blocklist listing).
    SenderFailed,
    /// 130: interrupted (Ctrl-C, SIGINT) before the check finished (128 + SIGINT, as shells do).
    Interrupted,
}

impl Exit {
    /// Every exit code, in numeric order.
    pub const ALL: [Exit; 30] = [
        Exit::Delivered,
        Exit::Partial,
        Exit::Usage,
        Exit::BadInput,
        Exit::Dns,
        Exit::Connect,
        Exit::Tls,
        Exit::Auth,
        Exit::Broken,
        Exit::Greeting,
        Exit::Hello,
        Exit::Mail,
        Exit::Rcpt,
        Exit::Data,
        Exit::Message,
        Exit::Junk,
        Exit::NotArrived,
        Exit::ConfirmFailed,
        Exit::DnsLater,
        Exit::TlsLater,
        Exit::AuthLater,
        Exit::GreetingLater,
        Exit::HelloLater,
        Exit::MailLater,
        Exit::RcptLater,
        Exit::DataLater,
        Exit::MessageLater,
        Exit::SenderRejected,
        Exit::SenderFailed,
        Exit::Interrupted,
    ];

    /// The codes `smtpcheck mx` can end with, each with what it means for `mx`.
    pub const MX: [(Exit, &'static str); 7] = [
        (
            Exit::Delivered,
            "every domain has a usable mail host (with --probe: one that answered)",
        ),
        (Exit::Usage, "usage error (unknown flag or bad flag value)"),
        (
            Exit::BadInput,
            "bad input: a domain or address, config file or profile",
        ),
        (
            Exit::Dns,
            "a domain has no usable mail host (no such domain, null MX, bad MX data, DNS failure)",
        ),
        (
            Exit::Connect,
            "with --probe: none of a domain's mail hosts answered",
        ),
        (
            Exit::Tls,
            "with --probe: a domain's hosts answered, none with TLS as --tls asks",
        ),
        (Exit::Interrupted, "interrupted (Ctrl-C)"),
    ];

    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Delivered => 0,
            Exit::Partial => 1,
            Exit::Usage => 2,
            Exit::BadInput => 3,
            Exit::Dns => 4,
            Exit::Connect => 5,
            Exit::Tls => 6,
            Exit::Auth => 7,
            Exit::Broken => 8,
            Exit::Greeting => 10,
            Exit::Hello => 11,
            Exit::Mail => 12,
            Exit::Rcpt => 13,
            Exit::Data => 14,
            Exit::Message => 15,
            Exit::Junk => 16,
            Exit::NotArrived => 17,
            Exit::ConfirmFailed => 18,
            Exit::DnsLater => 24,
            Exit::TlsLater => 26,
            Exit::AuthLater => 27,
            Exit::GreetingLater => 30,
            Exit::HelloLater => 31,
            Exit::MailLater => 32,
            Exit::RcptLater => 33,
            Exit::DataLater => 34,
            Exit::MessageLater => 35,
            Exit::SenderRejected => 40,
            Exit::SenderFailed => 41,
            Exit::Interrupted => 130,
        }
    }

    /// One line saying what the code means.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Delivered => "message accepted for every recipient",
            Exit::Partial => "partial: accepted for some recipients, refused for others",
            Exit::Usage => "usage error (unknown flag or bad flag value)",
            Exit::BadInput => "bad input: message, address, config file or profile",
            Exit::Dns => "DNS: no mail host found (no such domain, null MX, bad MX data)",
            Exit::Connect => "could not connect to any target (temporary)",
            Exit::Tls => "TLS failure",
            Exit::Auth => "authentication failed",
            Exit::Broken => {
                "session broke: timeout, connection closed, malformed reply (temporary)"
            }
            Exit::Greeting => "greeting refused (not 220)",
            Exit::Hello => "EHLO and HELO refused",
            Exit::Mail => "MAIL FROM refused",
            Exit::Rcpt => "no recipient accepted",
            Exit::Data => "DATA refused",
            Exit::Message => "message refused after the data (or larger than the server's SIZE)",
            Exit::Junk => "--confirm: accepted, but delivered to the junk (spam) folder",
            Exit::NotArrived => "--confirm: accepted, but not in the mailbox within --confirm-timeout",
            Exit::ConfirmFailed => {
                "--confirm: accepted, but the mailbox could not be checked (IMAP connect, TLS, login)"
            }
            Exit::DnsLater => "temporary: DNS lookup failed (timeout, SERVFAIL)",
            Exit::TlsLater => "temporary: STARTTLS refused with a 4xx",
            Exit::AuthLater => "temporary: authentication failed with a 4xx",
            Exit::GreetingLater => "temporary: greeting 4xx (421 busy or throttled)",
            Exit::HelloLater => "temporary: EHLO/HELO 4xx",
            Exit::MailLater => "temporary: MAIL FROM deferred (4xx)",
            Exit::RcptLater => "temporary: no recipient accepted, all deferred (4xx, greylisting)",
            Exit::DataLater => "temporary: DATA deferred (4xx)",
            Exit::MessageLater => "temporary: message deferred after the data (4xx)",
            Exit::SenderRejected => {
                "sender (send --require-sender-pass): a receiver enforcing DMARC would reject or quarantine the message"
            }
            Exit::SenderFailed => {
                "sender (send --require-sender-pass): not rejected, but a check failed (SPF, DKIM, DMARC none, iprev, blocklist)"
            }
            Exit::Interrupted => "interrupted (Ctrl-C) before the check finished",
        }
    }

    /// `true` for the codes that mean "retry later": 5, 8 and 20 to 35 (not 130, interrupted).
    pub fn temporary(self) -> bool {
        matches!(self, Exit::Connect | Exit::Broken) || (20..=35).contains(&self.code())
    }

    /// The code for a failure at this code's stage of the given class: a transient failure gets
    /// the stage's temporary code (stage + 20); codes without a temporary twin stay as they are.
    pub fn with_class(self, class: FailureClass) -> Exit {
        if class == FailureClass::Permanent {
            return self;
        }
        match self {
            Exit::Dns => Exit::DnsLater,
            Exit::Tls => Exit::TlsLater,
            Exit::Auth => Exit::AuthLater,
            Exit::Greeting => Exit::GreetingLater,
            Exit::Hello => Exit::HelloLater,
            Exit::Mail => Exit::MailLater,
            Exit::Rcpt => Exit::RcptLater,
            Exit::Data => Exit::DataLater,
            Exit::Message => Exit::MessageLater,
            other => other,
        }
    }

    /// The table of exit codes as shown at the end of `--help`.
    pub fn help_table() -> String {
        let mut s = String::from("Exit status:\n");
        for e in Exit::ALL {
            s.push_str(&format!("  {:>3}  {}\n", e.code(), e.meaning()));
        }
        s.push_str(
            "Temporary failures (retry later): 5, 8 and 20-35; permanent: 2-4, 6, 7, 10-18, 40, 41.\n",
        );
        s
    }

    /// The exit codes of `smtpcheck mx`, as shown at the end of `smtpcheck mx --help`.
    pub fn mx_help_table() -> String {
        let mut s = String::from("Exit status:\n");
        for (e, meaning) in Exit::MX {
            s.push_str(&format!("  {:>3}  {meaning}\n", e.code()));
        }
        s
    }
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e.code()
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let table: Vec<(u8, Exit)> = Exit::ALL.iter().map(|e| (e.code(), *e)).collect();
        assert_eq!(
            table,
            vec![
                (0, Exit::Delivered),
                (1, Exit::Partial),
                (2, Exit::Usage),
                (3, Exit::BadInput),
                (4, Exit::Dns),
                (5, Exit::Connect),
                (6, Exit::Tls),
                (7, Exit::Auth),
                (8, Exit::Broken),
                (10, Exit::Greeting),
                (11, Exit::Hello),
                (12, Exit::Mail),
                (13, Exit::Rcpt),
                (14, Exit::Data),
                (15, Exit::Message),
                (16, Exit::Junk),
                (17, Exit::NotArrived),
                (18, Exit::ConfirmFailed),
                (24, Exit::DnsLater),
                (26, Exit::TlsLater),
                (27, Exit::AuthLater),
                (30, Exit::GreetingLater),
                (31, Exit::HelloLater),
                (32, Exit::MailLater),
                (33, Exit::RcptLater),
                (34, Exit::DataLater),
                (35, Exit::MessageLater),
                (40, Exit::SenderRejected),
                (41, Exit::SenderFailed),
                (130, Exit::Interrupted),
            ]
        );
    }

    #[test]
    fn temporary_and_permanent_table() {
        use FailureClass::*;
        // (stage code, class) → exit code, and whether it means "retry later".
        let table = [
            (Exit::Dns, Permanent, 4, false),
            (Exit::Dns, Transient, 24, true),
            (Exit::Connect, Transient, 5, true),
            (Exit::Tls, Permanent, 6, false),
            (Exit::Tls, Transient, 26, true),
            (Exit::Auth, Permanent, 7, false),
            (Exit::Auth, Transient, 27, true),
            (Exit::Broken, Transient, 8, true),
            (Exit::Greeting, Permanent, 10, false),
            (Exit::Greeting, Transient, 30, true),
            (Exit::Hello, Permanent, 11, false),
            (Exit::Hello, Transient, 31, true),
            (Exit::Mail, Permanent, 12, false),
            (Exit::Mail, Transient, 32, true),
            (Exit::Rcpt, Permanent, 13, false),
            (Exit::Rcpt, Transient, 33, true),
            (Exit::Data, Permanent, 14, false),
            (Exit::Data, Transient, 34, true),
            (Exit::Message, Permanent, 15, false),
            (Exit::Message, Transient, 35, true),
            (Exit::Junk, Transient, 16, false),
            (Exit::NotArrived, Transient, 17, false),
            (Exit::ConfirmFailed, Transient, 18, false),
            (Exit::BadInput, Transient, 3, false),
            (Exit::Partial, Transient, 1, false),
            (Exit::Delivered, Transient, 0, false),
        ];
        for (stage, class, code, later) in table {
            let e = stage.with_class(class);
            assert_eq!(
                (e.code(), e.temporary()),
                (code, later),
                "{stage:?} {class:?}"
            );
        }
        for e in Exit::ALL {
            let code = e.code();
            assert_eq!(
                e.temporary(),
                (20..=35).contains(&code) || matches!(code, 5 | 8)
            );
        }
    }

    #[test]
    fn readme_and_the_example_script_list_every_code() {
        let readme = include_str!("../README.md");
        let script = include_str!("../examples/exit-codes.sh");
        for e in Exit::ALL {
            let row = format!("| {} | {} |", e.code(), e.meaning());
            assert!(readme.contains(&row), "README lacks {row}");
            let code = e.code().to_string();
            let branched = script.lines().any(|l| {
                let l = l.trim();
                l.ends_with(')') && l.trim_end_matches(')').split(" | ").any(|c| c == code)
            });
            assert!(branched, "examples/exit-codes.sh has no branch for {code}");
        }
        let mx = readme
            .split("\n### `smtpcheck mx`\n")
            .nth(1)
            .unwrap_or_default();
        for (e, meaning) in Exit::MX {
            let row = format!("| {} | {meaning} |", e.code());
            assert!(mx.contains(&row), "README's mx exit codes lack {row}");
        }
    }

    #[test]
    fn help_lists_every_code() {
        let help = Exit::help_table();
        for e in Exit::ALL {
            assert!(help.contains(e.meaning()), "{e:?} missing");
        }
        let mx = Exit::mx_help_table();
        for (e, meaning) in Exit::MX {
            assert!(mx.contains(&format!("{:>3}  {meaning}", e.code())), "{e:?}");
        }
        // mx's own codes: none of send's stage codes (10 and up, 1, 7, 8).
        assert!(!mx.contains("recipient"), "{mx}");
    }
}
