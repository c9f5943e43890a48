//! The DNS questions the sender checks ask themselves (SPF evaluation, DMARC records, blocklists),
//! each bounded by the timeout, as answers rather than errors.

use hickory_resolver::lookup::Lookup as HickoryLookup;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// One lookup's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// The records found (never empty).
    Found(Vec<T>),
    /// The name does not exist, or has no record of the type asked (a "void lookup", RFC 7208
    /// 4.6.4).
    Void,
    /// No usable answer (timeout, SERVFAIL, unreachable server): a temporary error.
    Failed(String),
}

/// The resolver and the bound on each lookup.
pub struct Lookup {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Lookup {
    pub fn new(resolver: TokioResolver, timeout: Duration) -> Lookup {
        Lookup { resolver, timeout }
    }

    /// TXT records of `name`, each record's strings joined.
    pub async fn txt(&self, name: &str) -> Answer<Vec<u8>> {
        let Some(fq) = fqdn(name) else {
            return Answer::Void;
        };
        self.ask(name, "TXT", self.resolver.txt_lookup(fq), |d| match d {
            RData::TXT(t) => Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect()),
            _ => None,
        })
        .await
    }

    /// A records of `name`.
    pub async fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        let Some(fq) = fqdn(name) else {
            return Answer::Void;
        };
        self.ask(name, "A", self.resolver.ipv4_lookup(fq), |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// AAAA records of `name`.
    pub async fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        let Some(fq) = fqdn(name) else {
            return Answer::Void;
        };
        self.ask(name, "AAAA", self.resolver.ipv6_lookup(fq), |d| match d {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// The addresses of `name` in `ip`'s family.
    pub async fn addresses_like(&self, name: &str, ip: IpAddr) -> Answer<IpAddr> {
        match ip {
            IpAddr::V4(_) => map(self.a(name).await, IpAddr::V4),
            IpAddr::V6(_) => map(self.aaaa(name).await, IpAddr::V6),
        }
    }

    /// MX exchange names of `name` (lower-case, no trailing dot), in answer order.
    pub async fn mx(&self, name: &str) -> Answer<String> {
        let Some(fq) = fqdn(name) else {
            return Answer::Void;
        };
        self.ask(name, "MX", self.resolver.mx_lookup(fq), |d| match d {
            RData::MX(mx) => Some(shown(&mx.exchange)),
            _ => None,
        })
        .await
    }

    /// PTR names of `ip` (lower-case, no trailing dot).
    pub async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        let what = ip.to_string();
        self.ask(
            &what,
            "PTR",
            self.resolver.reverse_lookup(Name::from(ip)),
            |d| match d {
                RData::PTR(p) => Some(shown(&p.0)),
                _ => None,
            },
        )
        .await
    }

    async fn ask<T>(
        &self,
        name: &str,
        kind: &str,
        lookup: impl std::future::Future<Output = Result<HickoryLookup, NetError>>,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Answer<T> {
        match tokio::time::timeout(self.timeout, lookup).await {
            Err(_) => Answer::Failed(format!(
                "{kind} {name}: no answer within {}",
                crate::time::human(self.timeout)
            )),
            Ok(Ok(found)) => {
                let records: Vec<T> = found
                    .answers()
                    .iter()
                    .filter_map(|r| pick(&r.data))
                    .collect();
                if records.is_empty() {
                    Answer::Void
                } else {
                    Answer::Found(records)
                }
            }
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => Answer::Void,
            Ok(Err(e)) => Answer::Failed(format!("{kind} {name}: {}", words(&e))),
        }
    }
}

/// A failed lookup in words.
fn words(e: &NetError) -> String {
    match e {
        NetError::Timeout => "no answer (timeout)".to_string(),
        NetError::NoConnections => "no DNS server could be reached".to_string(),
        NetError::Io(e) => format!("network error talking to the DNS server: {e}"),
        other => format!(
            "lookup failed ({})",
            other.as_metrics_label().replace('_', " ")
        ),
    }
}

fn map<A, B>(answer: Answer<A>, f: impl Fn(A) -> B) -> Answer<B> {
    match answer {
        Answer::Found(v) => Answer::Found(v.into_iter().map(f).collect()),
        Answer::Void => Answer::Void,
        Answer::Failed(e) => Answer::Failed(e),
    }
}

/// `name` as a fully qualified DNS name, or `None` when it is not a valid one.
fn fqdn(name: &str) -> Option<Name> {
    let bare = name.trim().trim_end_matches('.');
    if !valid_domain(bare) {
        return None;
    }
    let mut n = Name::from_ascii(format!("{bare}.")).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// RFC 1035 lengths: labels of 1 to 63 octets, at most 253 in all, no empty label.
pub fn valid_domain(name: &str) -> bool {
    let bare = name.trim_end_matches('.');
    !bare.is_empty()
        && bare.len() <= 253
        && bare
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.contains(char::is_whitespace))
}

/// A name as shown: lower-case ASCII without the trailing dot.
fn shown(name: &Name) -> String {
    let s = name.to_lowercase().to_ascii();
    s.strip_suffix('.').map(str::to_string).unwrap_or(s)
}
