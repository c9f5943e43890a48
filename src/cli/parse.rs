//! Parsers for flag values (clap `value_parser`s): durations, sizes, DSN values, the resolver.
//! Each returns the error text clap shows after "invalid value".

use crate::address::parse_host_port_default;
use std::time::Duration;

/// The `--notify` keywords, upper-cased (`NEVER`, or some of `SUCCESS`, `FAILURE`, `DELAY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify(pub Vec<String>);

/// Parses `--notify`: `never`, or a comma-separated list of `success`, `failure`, `delay`.
pub fn parse_notify(value: &str) -> Result<Notify, String> {
    let items: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    if items.iter().any(|i| i == "NEVER") {
        return if items.len() == 1 {
            Ok(Notify(items))
        } else {
            Err("'never' cannot be combined with other values".into())
        };
    }
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !matches!(i.as_str(), "SUCCESS" | "FAILURE" | "DELAY") {
            return Err(format!(
                "{i:?} is not one of success, failure, delay, never"
            ));
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(Notify(out))
}

/// Parses `--envid`: 1 to 100 printable ASCII characters (RFC 3461 4.4).
pub fn parse_envid(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 100 || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("give 1 to 100 printable ASCII characters without spaces".into());
    }
    Ok(value.to_string())
}

/// Parses `IP[:PORT]` for --resolver (port 53 when absent).
pub fn parse_resolver(value: &str) -> Result<std::net::SocketAddr, String> {
    let hp = parse_host_port_default(value, 53)?;
    let ip: std::net::IpAddr = hp.host.parse().map_err(|_| {
        format!("{value:?}: give the DNS server as an IP address, e.g. 127.0.0.1:5353")
    })?;
    Ok(std::net::SocketAddr::new(ip, hp.port))
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `1.5s` or a bare number of seconds (at most 24h).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a duration: write e.g. 10s, 500ms or 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {value:?}: use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!("{value:?} must be more than 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `100MB`, `512KiB`, `2000000` (bytes; KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let v = value.trim();
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a size: write e.g. 100MB or 2000000"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {value:?}: use B, KB, MB, GB, KiB, MiB or GiB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{value:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::HostPort;

    fn parse_host_port(value: &str) -> Result<HostPort, String> {
        parse_host_port_default(value, 25)
    }

    #[test]
    fn host_port_forms() {
        let hp = |s| parse_host_port(s).unwrap();
        assert_eq!(
            hp("relay.example.com"),
            HostPort {
                host: "relay.example.com".into(),
                port: 25
            }
        );
        assert_eq!(hp("relay:587").port, 587);
        assert_eq!(hp("127.0.0.1:2525").host, "127.0.0.1");
        assert_eq!(
            hp("[::1]:2525"),
            HostPort {
                host: "::1".into(),
                port: 2525
            }
        );
        assert_eq!(hp("::1").port, 25);
        assert_eq!(hp("[::1]").to_string(), "[::1]:25");
        for bad in [
            "relay:0",
            "relay:x",
            "relay:70000",
            "[::1",
            "bad host",
            "a\r\nb:25",
            "[::1]x",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        for bad in ["0", "-1s", "x", "25h", "1d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("2KiB").unwrap(), 2048);
        assert_eq!(parse_size("17").unwrap(), 17);
        assert!(parse_size("1XB").is_err());
    }

    #[test]
    fn notify_values() {
        assert_eq!(
            parse_notify("success,failure").unwrap().0,
            vec!["SUCCESS", "FAILURE"]
        );
        assert_eq!(parse_notify("never").unwrap().0, vec!["NEVER"]);
        assert!(parse_notify("never,success").is_err());
        assert!(parse_notify("sometimes").is_err());
    }
}
