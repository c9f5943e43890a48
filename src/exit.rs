//! Exit codes: defined once here, listed in `--help` and README, tested as a table.

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
}

impl Exit {
    /// Every exit code, in numeric order.
    pub const ALL: [Exit; 15] = [
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
        }
    }

    /// One line saying what the code means.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Delivered => "message accepted for every recipient",
            Exit::Partial => "partial: accepted for some recipients, refused for others",
            Exit::Usage => "usage error (unknown flag or bad flag value)",
            Exit::BadInput => "bad input: message, address, config file or profile",
            Exit::Dns => "DNS: no mail host found",
            Exit::Connect => "could not connect to any target",
            Exit::Tls => "TLS failure",
            Exit::Auth => "authentication failed",
            Exit::Broken => "session broke: timeout, connection closed, malformed reply",
            Exit::Greeting => "greeting refused (not 220)",
            Exit::Hello => "EHLO and HELO refused",
            Exit::Mail => "MAIL FROM refused",
            Exit::Rcpt => "no recipient accepted",
            Exit::Data => "DATA refused",
            Exit::Message => "message refused after the data (or larger than the server's SIZE)",
        }
    }

    /// The table of exit codes as shown at the end of `--help`.
    pub fn help_table() -> String {
        let mut s = String::from("Exit status:\n");
        for e in Exit::ALL {
            s.push_str(&format!("  {:>2}  {}\n", e.code(), e.meaning()));
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
            ]
        );
    }

    #[test]
    fn help_lists_every_code() {
        let help = Exit::help_table();
        for e in Exit::ALL {
            assert!(help.contains(e.meaning()), "{e:?} missing");
        }
    }
}
