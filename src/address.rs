//! Validation of envelope addresses and the EHLO/HELO name: nothing reaches a command line unchecked.

use crate::error::{show, Error};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// RFC 5321 4.5.3.1.1: the longest local part.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2: the longest domain.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3: the longest path (`<` + address + `>`).
pub const MAX_PATH: usize = 256;

/// Checks one envelope address and returns it as a `lettre::Address`.
///
/// `origin` names where it came from (`--to`, `the From header`) for the error message.
pub fn parse_address(value: &str, origin: &str) -> Result<Address, Error> {
    let err = |why: &str| Error::BadAddress {
        value: show(value),
        origin: origin.to_string(),
        why: why.to_string(),
    };
    if value.is_empty() {
        return Err(err("it is empty"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n') {
        return Err(err(
            "it contains a line break (CR or LF), which could inject SMTP commands",
        ));
    }
    if value.chars().any(|c| c == '\0') {
        return Err(err("it contains a NUL byte"));
    }
    if value.chars().any(char::is_control) {
        return Err(err("it contains a control character"));
    }
    if value.contains('<') || value.contains('>') {
        return Err(err(
            "give the bare address without angle brackets or a display name (user@example.com)",
        ));
    }
    if value.chars().any(char::is_whitespace) && !value.starts_with('"') {
        return Err(err("it contains white space"));
    }
    let Some(at) = value.rfind('@') else {
        return Err(err("it has no @domain part"));
    };
    let (local, domain) = (&value[..at], &value[at + 1..]);
    if local.len() > MAX_LOCAL_PART {
        return Err(err(&format!(
            "the local part is {} octets, over the limit of {MAX_LOCAL_PART}",
            local.len()
        )));
    }
    if domain.len() > MAX_DOMAIN {
        return Err(err(&format!(
            "the domain is {} octets, over the limit of {MAX_DOMAIN}",
            domain.len()
        )));
    }
    if value.len() + 2 > MAX_PATH {
        return Err(err(&format!(
            "the address is {} octets; with its angle brackets that is over the path limit of {MAX_PATH}",
            value.len()
        )));
    }
    Address::from_str(value).map_err(|e| err(&format!("not a valid address ({e})")))
}

/// Splits a `--to` value on commas that are not inside a quoted local part.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `true` when the address needs SMTPUTF8 (RFC 6531) to be sent.
pub fn needs_smtputf8(address: &Address) -> bool {
    !AsRef::<str>::as_ref(address).is_ascii()
}

/// Checks a `--helo` value: a domain name or an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
pub fn parse_helo(value: &str) -> Result<ClientId, Error> {
    let err = |why: &str| Error::BadHelo {
        value: show(value),
        why: why.to_string(),
    };
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            "it contains white space or a control character (CR, LF, NUL)",
        ));
    }
    if let Some(inner) = value.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| err("an address literal must end with ]"))?;
        if let Some(v6) = inner.strip_prefix("IPv6:") {
            return v6
                .parse::<Ipv6Addr>()
                .map(ClientId::Ipv6)
                .map_err(|_| err("not a valid IPv6 address literal"));
        }
        return match inner.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Ok(ClientId::Ipv4(v4)),
            Ok(IpAddr::V6(_)) => Err(err("write IPv6 address literals as [IPv6:…]")),
            Err(_) => Err(err("not a valid IPv4 address literal")),
        };
    }
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => {
            return Err(err(&format!(
                "a bare IP address is not a domain name (servers answer 501); write it as an address literal: --helo [{value}]"
            )))
        }
        Ok(IpAddr::V6(_)) => {
            return Err(err(&format!(
                "a bare IP address is not a domain name (servers answer 501); write it as an address literal: --helo [IPv6:{value}]"
            )))
        }
        Err(_) => {}
    }
    if let Some(name) = value.strip_suffix('.').filter(|n| !n.is_empty()) {
        return Err(err(&format!(
            "the EHLO domain takes no trailing dot (RFC 5321 4.1.2; servers answer 501): write --helo {name}"
        )));
    }
    check_domain(value).map_err(|why| err(&why))?;
    Ok(ClientId::Domain(value.to_string()))
}

/// Checks RFC 5321 domain syntax: dot-separated labels of letters, digits and inner hyphens.
pub fn check_domain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.len() > MAX_DOMAIN {
        return Err(format!("it is longer than {MAX_DOMAIN} octets"));
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 octets".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, hyphens and dots are allowed".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with a hyphen".into());
        }
    }
    Ok(())
}

/// A `HOST[:PORT]` flag value whose port may be left to a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPortSpec {
    /// A host name or an IP address (without brackets).
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

impl HostPortSpec {
    /// The host with its port, or `default_port` when none was given.
    pub fn with_default(&self, default_port: u16) -> HostPort {
        HostPort {
            host: self.host.clone(),
            port: self.port.unwrap_or(default_port),
        }
    }
}

/// Parses `HOST[:PORT]` keeping note of whether a port was given.
pub fn parse_host_port_opt(value: &str) -> Result<HostPortSpec, String> {
    let hp = parse_host_port_default(value, 0)?;
    Ok(HostPortSpec {
        host: hp.host,
        port: (hp.port != 0).then_some(hp.port),
    })
}

/// A host with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// A host name or an IP address (without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses a host with an optional port, using `default_port` when absent.
pub fn parse_host_port_default(value: &str, default_port: u16) -> Result<HostPort, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{p:?} is not a port number (1-65535)"))
    };
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("missing ] after an IPv6 address")?;
        match after {
            "" => (h.to_string(), default_port),
            _ => match after.strip_prefix(':') {
                Some(p) => (h.to_string(), port(p)?),
                None => return Err("expected :PORT after ]".into()),
            },
        }
    } else if value.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (value.to_string(), default_port)
    } else if let Some((h, p)) = value.split_once(':') {
        (h.to_string(), port(p)?)
    } else {
        (value.to_string(), default_port)
    };
    if host.parse::<std::net::IpAddr>().is_err() {
        check_domain(&host).map_err(|why| format!("host {host:?} is not a valid name: {why}"))?;
    }
    Ok(HostPort { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        for a in [
            "user@example.com",
            "a.b+c@sub.example.org",
            "\"john doe\"@example.com",
            "x@[127.0.0.1]",
        ] {
            assert!(parse_address(a, "--to").is_ok(), "{a}");
        }
    }

    #[test]
    fn injection_and_junk_refused() {
        for a in [
            "a@b.com>\r\nRCPT TO:<evil@x>",
            "a@b.com\nRCPT TO:<x@y>",
            "a@b.com\r",
            "a\0@b.com",
            "",
            "no-at-sign",
            "<a@b.com>",
            "Name <a@b.com>",
            "a b@c.com",
            "a@",
            "@b.com",
        ] {
            let e = parse_address(a, "--to").unwrap_err();
            assert!(matches!(e, Error::BadAddress { .. }), "{a}: {e}");
            assert!(
                !e.to_string().contains('\n'),
                "error message must not contain a raw LF: {e}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let local = "a".repeat(65);
        assert!(parse_address(&format!("{local}@example.com"), "--to").is_err());
        let label = "b".repeat(60);
        let domain = [label.as_str(); 5].join(".");
        assert!(parse_address(&format!("a@{domain}"), "--to").is_err());
    }

    #[test]
    fn lists_split_outside_quotes() {
        assert_eq!(split_list("a@x, b@y,,c@z"), vec!["a@x", "b@y", "c@z"]);
        assert_eq!(split_list("\"a,b\"@x,c@y"), vec!["\"a,b\"@x", "c@y"]);
    }

    #[test]
    fn helo_values() {
        assert_eq!(
            parse_helo("mail.example.com").unwrap().to_string(),
            "mail.example.com"
        );
        assert_eq!(
            parse_helo("[192.0.2.1]").unwrap().to_string(),
            "[192.0.2.1]"
        );
        assert_eq!(
            parse_helo("[IPv6:2001:db8::1]").unwrap().to_string(),
            "[IPv6:2001:db8::1]"
        );
        for bad in [
            "",
            "a b",
            "x\r\nMAIL FROM:<>",
            "-a.com",
            "a..b",
            "[1.2.3]",
            "[2001:db8::1]",
            "ex_ample.com",
        ] {
            assert!(parse_helo(bad).is_err(), "{bad:?}");
        }
    }
}
