//! Where `send --check-sender` takes the sending IP and the HELO name from: `--ip`, else the
//! address the server says it sees (many echo it in the greeting or the EHLO reply), else the
//! local address of the connection. Pure functions over the recorded attempt.

use crate::transcript::{Attempt, Stage};
use std::net::IpAddr;

/// The client address a server echoes in one reply (its lines as received, with their codes):
/// the last bracketed IP literal after the server's own name, as in
///
/// - Gmail: `250-smtp.gmail.com at your service, [203.0.113.5]`
/// - Microsoft 365 and Exchange: `250-…outlook.com Hello [203.0.113.5]`
/// - Exim: `250-mx.example.net Hello host.example [203.0.113.5]`
/// - Sendmail and OpenSMTPD: `250-mx.example.net Hello host.example [203.0.113.5], pleased to
///   meet you`, with `[IPv6:2001:db8::5]` for IPv6.
///
/// The first word of the first line (the server's name, which may itself be an address literal)
/// is never taken, and neither is an address without brackets (too easily the server's own).
/// Postfix does not echo the address: `None`.
pub fn echoed_ip(lines: &[String]) -> Option<IpAddr> {
    let mut found = None;
    for (i, line) in lines.iter().enumerate() {
        // `250-text`, `250 text`, or a bare `250`.
        let text = line.get(4..).unwrap_or("");
        let text = if i == 0 {
            text.trim_start()
                .split_once(char::is_whitespace)
                .map_or("", |(_, rest)| rest)
        } else {
            text
        };
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            let inside = after[..close].trim();
            let inside = inside
                .strip_prefix("IPv6:")
                .or_else(|| inside.strip_prefix("ipv6:"))
                .unwrap_or(inside);
            if let Ok(ip) = inside.parse::<IpAddr>() {
                found = Some(ip);
            }
            rest = &after[close + 1..];
        }
    }
    found
}

/// The sending IP of a `send` run, where it came from (`--ip`, `greeting`, `local`) and a note
/// saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The IP.
    pub ip: IpAddr,
    /// `--ip`, `greeting` (the server's greeting or EHLO reply) or `local`.
    pub source: String,
    /// Where it came from, in words (null for `--ip`).
    pub note: Option<String>,
}

/// The attempt whose server judged the message: the last one that accepted the message, else the
/// last one that greeted, else the last one connected.
pub fn deciding(attempts: &[Attempt]) -> Option<&Attempt> {
    let accepted = |a: &&Attempt| {
        a.steps.iter().any(|s| {
            s.stage == Stage::Message && s.reply.as_ref().is_some_and(|r| r.code / 100 == 2)
        })
    };
    let greeted = |a: &&Attempt| {
        a.steps
            .iter()
            .any(|s| s.stage == Stage::Greeting && s.reply.is_some())
    };
    attempts
        .iter()
        .rev()
        .find(accepted)
        .or_else(|| attempts.iter().rev().find(greeted))
        .or_else(|| attempts.iter().rev().find(|a| a.local_ip.is_some()))
}

/// The IP to check: `given` (`--ip`), else what the server of `attempt` says it sees (its EHLO or
/// HELO reply, the last one first, then its greeting), else the local address of the connection.
/// `None` when there is no IP at all (nothing was connected).
pub fn origin(given: Option<IpAddr>, attempt: Option<&Attempt>) -> Option<Origin> {
    if let Some(ip) = given {
        return Some(Origin {
            ip,
            source: "--ip".into(),
            note: None,
        });
    }
    let attempt = attempt?;
    let server = if attempt.host == attempt.address {
        attempt.address.clone()
    } else {
        format!("{} [{}]", attempt.host, attempt.address)
    };
    let replies = attempt
        .steps
        .iter()
        .rev()
        .filter(|s| matches!(s.stage, Stage::Ehlo | Stage::Helo))
        .chain(attempt.steps.iter().filter(|s| s.stage == Stage::Greeting))
        .filter_map(|s| s.reply.as_ref().map(|r| (s.stage, r)));
    for (stage, reply) in replies {
        if let Some(ip) = echoed_ip(&reply.lines) {
            let line = reply.lines.first().cloned().unwrap_or_default();
            let what = if stage == Stage::Greeting {
                "greeting"
            } else {
                "EHLO reply"
            };
            return Some(Origin {
                ip,
                source: "greeting".into(),
                note: Some(format!(
                    "the IP {ip} is the address {server} says it sees (its {what}: {line:?}); give --ip to check another"
                )),
            });
        }
    }
    let ip = attempt.local_ip?;
    let private = if is_private(ip) {
        format!(" {ip} is a private address, so the receiver surely sees another one.")
    } else {
        String::new()
    };
    Some(Origin {
        ip,
        source: "local".into(),
        note: Some(format!(
            "the IP {ip} is the local address of the connection to {server}: the server did not say which address it sees, and a NAT on the way may change it.{private} Give --ip PUBLIC-IP to check the address the receiver sees"
        )),
    })
}

/// The name smtpcheck announced in its last EHLO or HELO to `attempt`'s server; `Err` with a note
/// when it announced an address literal (there is no name to check) or nothing.
pub fn announced_helo(attempt: Option<&Attempt>) -> Result<String, String> {
    let sent = attempt.and_then(|a| {
        a.steps
            .iter()
            .rev()
            .filter(|s| matches!(s.stage, Stage::Ehlo | Stage::Helo))
            .find_map(|s| s.sent.clone())
    });
    let Some(sent) = sent else {
        return Err("no EHLO or HELO was sent, so there is no HELO name to check".into());
    };
    let name = sent.split_whitespace().nth(1).unwrap_or("").to_string();
    if name.is_empty() {
        return Err("no EHLO or HELO name was sent, so there is no HELO name to check".into());
    }
    if name.starts_with('[') {
        return Err(format!(
            "smtpcheck announced the address literal {name}, so there is no HELO name to check (give --helo NAME to announce one)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Loopback, RFC 1918, shared (RFC 6598), link-local and unique-local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Reply, Step};

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_address_servers_echo_is_found_in_real_world_replies() {
        let cases: &[(&str, Option<&str>)] = &[
            // Gmail (smtp.gmail.com and the MX).
            ("250-smtp.gmail.com at your service, [203.0.113.5]\n250-SIZE 35882577\n250 SMTPUTF8", Some("203.0.113.5")),
            ("250-mx.google.com at your service, [2001:db8::5]\n250 8BITMIME", Some("2001:db8::5")),
            // Microsoft 365 and on-premises Exchange.
            ("250-BN8NAM12FT067.mail.protection.outlook.com Hello [203.0.113.5]\n250-SIZE 49283072\n250 CHUNKING", Some("203.0.113.5")),
            ("250-AM0PR02CA0001.outlook.office365.com Hello [198.51.100.20]\n250 STARTTLS", Some("198.51.100.20")),
            ("250-EXCH01.contoso.local Hello [10.1.2.3]", Some("10.1.2.3")),
            // Exim (its default: Hello $sender_host_name [$sender_host_address]).
            ("250-mx.example.net Hello host.example.org [203.0.113.5]\n250-SIZE 52428800\n250 HELP", Some("203.0.113.5")),
            ("250-mx.example.net Hello [192.0.2.9] [203.0.113.5]\n250 HELP", Some("203.0.113.5")),
            ("250-mx.example.net Hello user at host.example.org [203.0.113.5]", Some("203.0.113.5")),
            // Sendmail and OpenSMTPD.
            ("250-mx.example.net Hello host.example.org [203.0.113.5], pleased to meet you\n250 ENHANCEDSTATUSCODES", Some("203.0.113.5")),
            ("250-mx.example.net Hello host.example.org [203.0.113.5] (may be forged), pleased to meet you", Some("203.0.113.5")),
            ("250-mx.example.net Hello host.example.org [IPv6:2001:db8::7], pleased to meet you", Some("2001:db8::7")),
            // Haraka.
            ("250-mx.example.net Hello host.example.org [203.0.113.5], Haraka is at your service.", Some("203.0.113.5")),
            // A greeting that says it.
            ("220 mx.example.net ESMTP ready; client [203.0.113.5]", Some("203.0.113.5")),
            // The test sink.
            ("250-sink.test Hello [127.0.0.1]\n250 PIPELINING", Some("127.0.0.1")),
            // Postfix, and others that do not echo it.
            ("250-mail.example.com\n250-PIPELINING\n250 SIZE 10240000", None),
            ("220 mail.example.com ESMTP Postfix (Debian/GNU)", None),
            ("220 mx.google.com ESMTP a1si123456qkb.123 - gsmtp", None),
            // The server's own name as an address literal is not the client's address.
            ("220 [192.0.2.1] ESMTP ready", None),
            ("250-[192.0.2.1]\n250 8BITMIME", None),
            // Brackets that hold no address, or no bracket at all.
            ("250-mx.example.net Hello host [unknown]", None),
            ("250-mx.example.net Hello 203.0.113.5", None),
            ("250-mx.example.net Hello [203.0.113.5", None),
            ("250", None),
        ];
        for (reply, want) in cases {
            let want: Option<IpAddr> = want.map(|w| w.parse().unwrap());
            assert_eq!(echoed_ip(&lines(reply)), want, "{reply}");
        }
    }

    fn step(stage: Stage, sent: Option<&str>, reply: &str) -> Step {
        Step {
            stage,
            sent: sent.map(str::to_string),
            octets: None,
            reply: Some(Reply {
                code: reply[..3].parse().unwrap(),
                enhanced: None,
                lines: lines(reply),
            }),
            elapsed_ms: 1.0,
            ok: true,
            error: None,
            error_kind: None,
        }
    }

    fn attempt(ehlo: &str, sent: &str) -> Attempt {
        let mut a = Attempt::new("mx.example.net", "192.0.2.25".parse().unwrap(), 25);
        a.local_ip = Some("192.168.1.20".parse().unwrap());
        a.steps
            .push(step(Stage::Greeting, None, "220 mx.example.net ESMTP"));
        a.steps.push(step(Stage::Ehlo, Some(sent), ehlo));
        a
    }

    #[test]
    fn the_ip_is_given_else_echoed_else_local_with_a_nat_note() {
        let echo = attempt(
            "250-mx.example.net Hello [203.0.113.5]\n250 8BITMIME",
            "EHLO client.example",
        );
        let given = origin(Some("198.51.100.1".parse().unwrap()), Some(&echo)).unwrap();
        assert_eq!(
            (given.ip.to_string(), given.source.as_str()),
            ("198.51.100.1".into(), "--ip")
        );
        let seen = origin(None, Some(&echo)).unwrap();
        assert_eq!(
            (seen.ip.to_string(), seen.source.as_str()),
            ("203.0.113.5".into(), "greeting")
        );
        assert!(seen.note.unwrap().contains("EHLO reply"));
        let quiet = attempt("250-mx.example.net\n250 8BITMIME", "EHLO client.example");
        let local = origin(None, Some(&quiet)).unwrap();
        assert_eq!(
            (local.ip.to_string(), local.source.as_str()),
            ("192.168.1.20".into(), "local")
        );
        let note = local.note.unwrap();
        assert!(
            note.contains("NAT") && note.contains("private address"),
            "{note}"
        );
        assert_eq!(origin(None, None), None);
    }

    #[test]
    fn the_helo_name_is_the_one_announced_and_never_an_address_literal() {
        let a = attempt("250 mx.example.net", "EHLO Client.Example");
        assert_eq!(announced_helo(Some(&a)), Ok("client.example".into()));
        let a = attempt("250 mx.example.net", "EHLO [192.168.1.20]");
        assert!(announced_helo(Some(&a))
            .unwrap_err()
            .contains("address literal"));
        assert!(announced_helo(None).is_err());
    }

    #[test]
    fn the_deciding_attempt_is_the_one_that_accepted_the_message() {
        let first = attempt("250 a", "EHLO a.example");
        let mut second = attempt("250 b", "EHLO b.example");
        second
            .steps
            .push(step(Stage::Message, Some("."), "250 2.0.0 Ok"));
        let third = attempt("250 c", "EHLO c.example");
        let all = [first, second, third];
        let chosen = deciding(&all).unwrap();
        assert_eq!(announced_helo(Some(chosen)), Ok("b.example".into()));
        assert_eq!(
            deciding(&all[..1]).map(|a| a.host.as_str()),
            Some("mx.example.net")
        );
        assert!(deciding(&[]).is_none());
    }
}
