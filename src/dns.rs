//! DNS lookups for direct mode: MX records and host addresses, as plain data.
//!
//! This is the only module that talks to `hickory-resolver`. Every lookup returns an answer value
//! ([`MxAnswer`], [`AddrAnswer`]) rather than an error: "no such domain", "no records" and "the
//! lookup failed" are all results a diagnostic tool reports, not reasons to stop.
//!
//! Every lookup is bounded by the timeout given to [`Resolver::new`]: hickory's own per-request
//! timeout with no retries of the whole request (UDP retransmits still happen inside that window),
//! and around it a `tokio::time::timeout` as a second bound. Lookups run on whatever tokio runtime
//! polls them; a current-thread runtime is enough.
//!
//! Names are always queried fully qualified (with a trailing dot), so the search list and `ndots`
//! from `/etc/resolv.conf` never apply, and `/etc/hosts` is never consulted: like an MTA, only DNS
//! decides where mail goes. hickory answers the RFC 6761 special-use names itself, without asking
//! any server: `*.localhost` has no MX and the addresses 127.0.0.1 and ::1 (so `user@localhost`
//! goes to the local machine through the implicit MX rule), `*.invalid` does not exist.

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MxRecord {
    /// The preference (lower is tried first).
    pub preference: u16,
    /// The exchange host name, lower-case, without the trailing dot (`mx1.example.com`).
    pub host: String,
}

/// The outcome of an MX lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// The domain has MX records, in the order the server returned them (not sorted; see
    /// [`crate::plan::order_mx`]). A null MX record mixed with real ones is left out.
    Records(Vec<MxRecord>),
    /// The domain publishes a null MX (RFC 7505: a single `MX 0 .`): it accepts no mail.
    NullMx,
    /// The name exists but has no MX records: the implicit MX rule applies (RFC 5321 5.1),
    /// i.e. deliver to the domain's own address records.
    NoRecords,
    /// The domain does not exist (NXDOMAIN). Final.
    NoDomain,
    /// The lookup gave no usable answer.
    Failed {
        /// `true` when retrying later may help (timeout, SERVFAIL, server unreachable);
        /// `false` when it cannot (the name is not a valid domain name).
        transient: bool,
        /// What went wrong, in words.
        reason: String,
    },
}

/// DNS settings (direct mode and `mx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsOptions {
    /// The DNS server to ask (None: the system resolver).
    pub resolver: Option<SocketAddr>,
    /// The bound on each lookup.
    pub timeout: Duration,
    /// Which address families to connect to.
    pub family: Family,
    /// The port MX hosts are contacted on.
    pub port: u16,
}

/// Which address families to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6: A records first, then AAAA.
    #[default]
    Any,
    /// IPv4 only (A records).
    V4,
    /// IPv6 only (AAAA records).
    V6,
}

impl Family {
    /// `true` when `ip` belongs to this family.
    pub fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// The outcome of an address lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrAnswer {
    /// The host's addresses: IPv4 (A) first, then IPv6 (AAAA), each in answer order, without
    /// duplicates. Never empty.
    Addresses(Vec<IpAddr>),
    /// The name exists but has no address records of the requested family.
    NoRecords,
    /// The name does not exist (NXDOMAIN).
    NoDomain,
    /// The lookup gave no usable answer (and no addresses were found).
    Failed {
        /// `true` when retrying later may help (timeout, SERVFAIL, server unreachable).
        transient: bool,
        /// What went wrong, in words.
        reason: String,
    },
}

/// A DNS resolver for direct mode: the system's, or one given DNS server.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    timeout: Duration,
    /// How the resolver is described in messages ("the system resolver", "DNS server 127.0.0.1:53").
    label: String,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.label)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The kind of record being looked up, for messages.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Mx,
    A,
    Aaaa,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Mx => "MX",
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
        }
    }
}

/// What one hickory lookup came to, before it is turned into an answer.
enum Outcome {
    Found(Vec<RData>),
    NoRecords,
    NoDomain,
    Failed { transient: bool, reason: String },
}

impl Resolver {
    /// A resolver whose every lookup is bounded by `timeout`.
    ///
    /// `server: None` uses the system configuration (`/etc/resolv.conf`); `Some(addr)` asks only
    /// that DNS server, over UDP and TCP on `addr`'s port (for `--resolver` and for tests).
    /// Fails only when the system configuration cannot be read or the timeout is zero.
    /// It may be called outside a tokio runtime; the lookups need one.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Resolver, String> {
        if timeout.is_zero() {
            return Err("the DNS timeout must be greater than zero".to_string());
        }
        let (mut builder, label) = match server {
            None => {
                let builder = TokioResolver::builder_tokio().map_err(|e| {
                    format!(
                        "cannot read the system DNS configuration (/etc/resolv.conf): {}",
                        describe(&e)
                    )
                })?;
                (builder, "the system resolver".to_string())
            }
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
                let builder =
                    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
                (builder, format!("DNS server {addr}"))
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        // One request per lookup: the pool's deadline is `timeout`, and UDP retransmits within it.
        opts.attempts = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        let inner = builder
            .build()
            .map_err(|e| format!("cannot set up the DNS resolver: {}", describe(&e)))?;
        Ok(Resolver {
            inner,
            timeout,
            label,
        })
    }

    /// The bound on each lookup.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The configured hickory resolver itself, for the sender checks (mail-auth asks its own
    /// questions through it): the same server, timeout and no hosts file.
    pub fn hickory(&self) -> TokioResolver {
        self.inner.clone()
    }

    /// Which server is asked, in words ("DNS server 127.0.0.1:53", "the system resolver").
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The MX records of `domain` (with or without a trailing dot; case does not matter).
    pub async fn mx(&self, domain: &str) -> MxAnswer {
        let name = match fqdn(domain) {
            Ok(name) => name,
            Err(reason) => {
                return MxAnswer::Failed {
                    transient: false,
                    reason,
                }
            }
        };
        match self.query(&name, Kind::Mx).await {
            Outcome::Found(data) => {
                let mut records = Vec::new();
                let mut seen = std::collections::HashSet::new();
                let mut null = 0usize;
                for rdata in data {
                    if let RData::MX(mx) = rdata {
                        if mx.exchange.is_root() {
                            null += 1;
                            continue;
                        }
                        let record = MxRecord {
                            preference: mx.preference,
                            host: host_name(&mx.exchange),
                        };
                        if seen.insert(record.clone()) {
                            records.push(record);
                        }
                    }
                }
                if records.is_empty() {
                    if null > 0 {
                        MxAnswer::NullMx
                    } else {
                        // Only other record types (e.g. a CNAME whose target has no MX).
                        MxAnswer::NoRecords
                    }
                } else {
                    MxAnswer::Records(records)
                }
            }
            Outcome::NoRecords => MxAnswer::NoRecords,
            Outcome::NoDomain => MxAnswer::NoDomain,
            Outcome::Failed { transient, reason } => MxAnswer::Failed { transient, reason },
        }
    }

    /// The addresses of `host` in `family`: A records first, then AAAA (both asked at once), each
    /// in answer order, without duplicates. An IP address literal (`127.0.0.1`, `::1`, `[::1]`) is
    /// returned as it is, without a lookup (or `NoRecords` when it is of the wrong family).
    ///
    /// When one of the two lookups finds addresses, the other one's failure is not reported.
    pub async fn addresses(&self, host: &str, family: Family) -> AddrAnswer {
        let literal = host.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return if family.allows(&ip) {
                AddrAnswer::Addresses(vec![ip])
            } else {
                AddrAnswer::NoRecords
            };
        }
        let name = match fqdn(host) {
            Ok(name) => name,
            Err(reason) => {
                return AddrAnswer::Failed {
                    transient: false,
                    reason,
                }
            }
        };
        let outcomes = match family {
            Family::V4 => vec![self.query(&name, Kind::A).await],
            Family::V6 => vec![self.query(&name, Kind::Aaaa).await],
            Family::Any => {
                let (a, aaaa) =
                    tokio::join!(self.query(&name, Kind::A), self.query(&name, Kind::Aaaa));
                vec![a, aaaa]
            }
        };
        combine_addresses(outcomes)
    }

    /// The PTR names of `ip` (lower-case, no trailing dot); an empty list when it has none.
    /// `Err` says why the lookup failed.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, String> {
        let lookup = self.inner.reverse_lookup(Name::from(ip));
        let result = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout),
        };
        match result {
            Ok(lookup) => {
                let mut names: Vec<String> = Vec::new();
                for r in lookup.answers() {
                    if let RData::PTR(ptr) = &r.data {
                        let n = host_name(&ptr.0);
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
                Ok(names)
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!(
                "PTR lookup for {ip} via {}: {}",
                self.label,
                failure(&e, self.timeout).1
            )),
        }
    }

    /// One lookup of `kind` records for `name`, bounded by the timeout.
    async fn query(&self, name: &Name, kind: Kind) -> Outcome {
        let shown = host_name(name);
        let lookup = async {
            match kind {
                Kind::Mx => self.inner.mx_lookup(name.clone()).await,
                Kind::A => self.inner.ipv4_lookup(name.clone()).await,
                Kind::Aaaa => self.inner.ipv6_lookup(name.clone()).await,
            }
        };
        let result = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout),
        };
        match result {
            Ok(lookup) => {
                let data: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .map(|r| r.data.clone())
                    .filter(|d| {
                        matches!(
                            (kind, d),
                            (Kind::Mx, RData::MX(_))
                                | (Kind::A, RData::A(_))
                                | (Kind::Aaaa, RData::AAAA(_))
                        )
                    })
                    .collect();
                if data.is_empty() {
                    Outcome::NoRecords
                } else {
                    Outcome::Found(data)
                }
            }
            Err(e) if e.is_nx_domain() => Outcome::NoDomain,
            Err(e) if e.is_no_records_found() => Outcome::NoRecords,
            Err(e) => {
                let (transient, what) = failure(&e, self.timeout);
                Outcome::Failed {
                    transient,
                    reason: format!(
                        "{} lookup for {shown} via {}: {what}",
                        kind.as_str(),
                        self.label
                    ),
                }
            }
        }
    }
}

/// Merges the A and AAAA outcomes (in that order) into one answer.
fn combine_addresses(outcomes: Vec<Outcome>) -> AddrAnswer {
    let mut addresses: Vec<IpAddr> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut failed: Option<(bool, String)> = None;
    let mut all_nxdomain = true;
    for outcome in outcomes {
        match outcome {
            Outcome::Found(data) => {
                all_nxdomain = false;
                for rdata in data {
                    let ip = match rdata {
                        RData::A(a) => IpAddr::V4(a.0),
                        RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                        _ => continue,
                    };
                    if seen.insert(ip) {
                        addresses.push(ip);
                    }
                }
            }
            Outcome::NoRecords => all_nxdomain = false,
            Outcome::NoDomain => {}
            Outcome::Failed { transient, reason } => {
                all_nxdomain = false;
                failed = Some(match failed {
                    None => (transient, reason),
                    Some((t, r)) => (t || transient, format!("{r}; {reason}")),
                });
            }
        }
    }
    if !addresses.is_empty() {
        AddrAnswer::Addresses(addresses)
    } else if let Some((transient, reason)) = failed {
        AddrAnswer::Failed { transient, reason }
    } else if all_nxdomain {
        AddrAnswer::NoDomain
    } else {
        AddrAnswer::NoRecords
    }
}

/// `domain` as a fully qualified DNS name (trailing dot added), or why it is not one.
fn fqdn(domain: &str) -> Result<Name, String> {
    let trimmed = domain.trim();
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if bare.is_empty() {
        return Err("empty domain name".to_string());
    }
    if bare.starts_with('.') || bare.contains("..") || bare.chars().any(char::is_whitespace) {
        return Err(format!("{trimmed:?} is not a valid domain name"));
    }
    match Name::from_utf8(format!("{bare}.")) {
        Ok(mut name) => {
            name.set_fqdn(true);
            Ok(name)
        }
        Err(_) => Err(format!("{trimmed:?} is not a valid domain name")),
    }
}

/// A DNS name as shown and as stored: ASCII (punycode), lower-case, no trailing dot.
fn host_name(name: &Name) -> String {
    let ascii = name.to_lowercase().to_ascii();
    match ascii.strip_suffix('.') {
        Some(s) => s.to_string(),
        None => ascii,
    }
}

/// Whether a failed lookup may succeed later, and what happened in words.
fn failure(e: &NetError, timeout: Duration) -> (bool, String) {
    match e {
        NetError::Timeout => (
            true,
            format!("no answer within {}", crate::time::human(timeout)),
        ),
        NetError::NoConnections => (true, "no DNS server could be reached".to_string()),
        NetError::Busy => (true, "the DNS server is too busy".to_string()),
        NetError::Io(io) => (
            true,
            format!("network error talking to the DNS server: {io}"),
        ),
        NetError::Truncated => (true, "the answer was truncated, even over TCP".to_string()),
        NetError::QueryCaseMismatch => (
            true,
            "the answer did not match the query (possible spoofing)".to_string(),
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => (true, response_code(*code)),
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: code,
            ..
        })) => (true, response_code(*code)),
        NetError::Dns(DnsError::DnssecBogus) => (true, "DNSSEC validation failed".to_string()),
        NetError::Proto(_) => (true, "the DNS answer could not be decoded".to_string()),
        other => (
            true,
            format!("lookup failed ({})", other.as_metrics_label()),
        ),
    }
}

/// Words for an error response code.
fn response_code(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "the DNS server failed to answer (SERVFAIL)".to_string(),
        ResponseCode::Refused => "the DNS server refused the query (REFUSED)".to_string(),
        ResponseCode::FormErr => {
            "the DNS server rejected the query as malformed (FORMERR)".to_string()
        }
        ResponseCode::NotImp => "the DNS server does not implement this query (NOTIMP)".to_string(),
        ResponseCode::NXDomain => "the domain does not exist (NXDOMAIN)".to_string(),
        other => format!(
            "the DNS server answered with error code {}",
            u16::from(other)
        ),
    }
}

/// A hickory error in words, without its `Debug` dumps.
fn describe(e: &NetError) -> String {
    match e {
        NetError::Io(io) => io.to_string(),
        NetError::Message(m) => (*m).to_string(),
        NetError::Msg(m) => m.clone(),
        other => other.as_metrics_label().replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_adds_one_trailing_dot() {
        assert_eq!(
            fqdn("Example.COM").unwrap().to_ascii().to_lowercase(),
            "example.com."
        );
        assert_eq!(fqdn("example.com.").unwrap().to_ascii(), "example.com.");
        assert!(fqdn("example.com.").unwrap().is_fqdn());
        assert!(fqdn("").is_err());
        assert!(fqdn(".").is_err());
        assert!(fqdn("a..b").is_err());
        assert!(fqdn("a b.com").is_err());
    }

    #[test]
    fn host_name_is_lower_case_without_dot() {
        let name = Name::from_ascii("MX1.Example.COM.").unwrap();
        assert_eq!(host_name(&name), "mx1.example.com");
    }

    #[test]
    fn combining_keeps_a_before_aaaa_and_dedups() {
        use hickory_resolver::proto::rr::rdata::{A, AAAA};
        let a = Outcome::Found(vec![
            RData::A(A("127.0.0.3".parse().unwrap())),
            RData::A(A("127.0.0.2".parse().unwrap())),
            RData::A(A("127.0.0.3".parse().unwrap())),
        ]);
        let aaaa = Outcome::Found(vec![RData::AAAA(AAAA("::1".parse().unwrap()))]);
        let want: Vec<IpAddr> = vec![
            "127.0.0.3".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "::1".parse().unwrap(),
        ];
        assert_eq!(
            combine_addresses(vec![a, aaaa]),
            AddrAnswer::Addresses(want)
        );
    }

    #[test]
    fn combining_negative_answers() {
        assert_eq!(
            combine_addresses(vec![Outcome::NoDomain, Outcome::NoDomain]),
            AddrAnswer::NoDomain
        );
        assert_eq!(
            combine_addresses(vec![Outcome::NoRecords, Outcome::NoDomain]),
            AddrAnswer::NoRecords
        );
        let failed = combine_addresses(vec![
            Outcome::NoRecords,
            Outcome::Failed {
                transient: true,
                reason: "x".into(),
            },
        ]);
        assert!(matches!(
            failed,
            AddrAnswer::Failed {
                transient: true,
                ..
            }
        ));
        let found = combine_addresses(vec![
            Outcome::Failed {
                transient: true,
                reason: "x".into(),
            },
            Outcome::Found(vec![RData::AAAA(hickory_resolver::proto::rr::rdata::AAAA(
                "::1".parse().unwrap(),
            ))]),
        ]);
        assert!(matches!(found, AddrAnswer::Addresses(_)));
    }
}
