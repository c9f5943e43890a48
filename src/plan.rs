//! The routing plan of direct mode: which hosts and addresses to try for a recipient domain, and
//! in what order (RFC 5321 section 5.1, RFC 7505).
//!
//! [`order_mx`] is pure and deterministic for a given seed; [`plan_domain`] drives the lookups
//! through [`crate::dns::Resolver`] and turns every DNS outcome into a [`RoutePlan`]: the targets
//! to try, or the [`Failure`] that means there is nothing to try.

use crate::dns::{AddrAnswer, Family, MxAnswer, MxRecord, Resolver};
use crate::transcript::{BreakKind, Failure, FailureClass};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::HashSet;
use std::net::IpAddr;

/// The most addresses kept for one host: a DNS answer with thousands of A records costs no more
/// than this many targets (the rest is noted on the host).
pub const MAX_ADDRESSES_PER_HOST: usize = 16;

/// The most MX hosts of one domain whose addresses are looked up (in preference order); the
/// rest is summarised in the plan's note.
pub const MAX_MX_HOSTS: usize = 32;

/// How many address lookups of one domain run at once.
pub const LOOKUP_CONCURRENCY: usize = 8;

/// One address to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The host name as asked for (an MX name, the smart host's name, or an address).
    pub host: String,
    /// The address to connect to.
    pub address: IpAddr,
    /// The TCP port.
    pub port: u16,
}

/// The note on the plan when the implicit MX rule applies.
pub const IMPLICIT_MX_NOTE: &str =
    "implicit MX: no MX records, using the domain's own address records";

/// One mail exchanger of the plan, in the order it will be tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// The MX preference (0 for an implicit MX).
    pub preference: u16,
    /// The exchange host name (lower-case, no trailing dot); for an implicit MX, the domain.
    pub host: String,
    /// The host's addresses in the order they will be tried (IPv4 first), possibly empty.
    pub addresses: Vec<IpAddr>,
    /// Why the host contributes no targets, or anything else worth saying about it
    /// (`"no address records: skipped"`, `"lookup failed: …"`).
    pub note: Option<String>,
}

/// Where mail for one domain goes: the MX hosts and, flattened, the targets to try in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// The domain, lower-case, without a trailing dot.
    pub domain: String,
    /// The mail exchangers in the order they will be tried (empty after a null MX, NXDOMAIN or a
    /// failed MX lookup).
    pub mx: Vec<MxHost>,
    /// A note about the plan as a whole ([`IMPLICIT_MX_NOTE`] when there were no MX records).
    pub note: Option<String>,
    /// Every address to try, in order: host by host, each host's addresses in turn;
    /// `Target.host` is the MX host name. An address already listed for an earlier host is not
    /// repeated. Empty exactly when `failure` is set.
    pub targets: Vec<Target>,
    /// Why there is nothing to try (stage `dns`): null MX, NXDOMAIN, a failed lookup, no address.
    pub failure: Option<Failure>,
}

/// Sorts MX records by preference, lowest first, and shuffles records of equal preference using
/// `seed` (RFC 5321 5.1: spread the load over equally preferred hosts). The same records and seed
/// always give the same order.
pub fn order_mx(mut records: Vec<MxRecord>, seed: u64) -> Vec<MxRecord> {
    // A stable sort keeps the answer order within a preference before shuffling, so the result
    // depends only on the input and the seed.
    records.sort_by_key(|r| r.preference);
    let mut rng = SplitMix64(seed);
    let mut start = 0;
    while start < records.len() {
        let preference = records[start].preference;
        let end = records[start..]
            .iter()
            .position(|r| r.preference != preference)
            .map_or(records.len(), |n| start + n);
        shuffle(&mut records[start..end], &mut rng);
        start = end;
    }
    records
}

/// A seed for [`order_mx`] that differs from run to run (time and process id, no `rand` crate).
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    SplitMix64(nanos ^ (u64::from(std::process::id()) << 32)).next()
}

/// SplitMix64: a small, well-mixed generator; plenty for shuffling a handful of MX records.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max` (the modulo bias is irrelevant at these sizes).
    fn below_or_eq(&mut self, max: usize) -> usize {
        (self.next() % (max as u64 + 1)) as usize
    }
}

/// Fisher–Yates.
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = rng.below_or_eq(i);
        items.swap(i, j);
    }
}

fn class(transient: bool) -> FailureClass {
    if transient {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    }
}

/// The note for a host without address records of `family`.
fn no_address_note(family: Family) -> &'static str {
    match family {
        Family::Any => "no address records: skipped",
        Family::V4 => "no IPv4 (A) address records: skipped",
        Family::V6 => "no IPv6 (AAAA) address records: skipped",
    }
}

/// `domain` lower-cased, trimmed, without its trailing dot.
fn normalize(domain: &str) -> String {
    let d = domain.trim();
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// [`plan_domain_for`] with every MX host looked up (up to [`MAX_MX_HOSTS`]): the `mx` command's
/// full picture.
pub async fn plan_domain(
    resolver: &Resolver,
    domain: &str,
    family: Family,
    port: u16,
    seed: u64,
) -> RoutePlan {
    plan_domain_for(resolver, domain, family, port, seed, usize::MAX).await
}

/// Looks up where mail for `domain` goes and plans the delivery attempts.
///
/// The resolution is lazy: MX hosts are looked up in preference order, [`LOOKUP_CONCURRENCY`] at
/// a time, and only until `needed` targets are known (`--max-attempts`), at most
/// [`MAX_MX_HOSTS`]; the hosts not looked up are summarised in the plan's note. Each host keeps
/// at most [`MAX_ADDRESSES_PER_HOST`] addresses, and an address already listed is not repeated
/// (a set, not a scan).
///
/// MX records are ordered with [`order_mx`] (`seed`), each host's addresses are looked up in
/// `family` and become targets on `port`. Hosts without addresses are noted and skipped. Without
/// MX records the domain's own addresses are used (implicit MX, preference 0). A null MX,
/// NXDOMAIN or a permanent lookup failure give a permanent failure; a timeout, SERVFAIL or an
/// unreachable DNS server a transient one. Never fails itself: the outcome is in the plan.
pub async fn plan_domain_for(
    resolver: &Resolver,
    domain: &str,
    family: Family,
    port: u16,
    seed: u64,
    needed: usize,
) -> RoutePlan {
    let needed = needed.max(1);
    let domain = normalize(domain);
    let mut seen: HashSet<IpAddr> = HashSet::new();
    let mut plan = RoutePlan {
        domain: domain.clone(),
        mx: Vec::new(),
        note: None,
        targets: Vec::new(),
        failure: None,
    };
    match resolver.mx(&domain).await {
        MxAnswer::Records(records) => {
            let mut transient = false;
            let mut address_mx = Vec::new();
            let mut ordered = Vec::new();
            for record in order_mx(records, seed) {
                // RFC 5321 5.1: the MX target is a host name; Postfix and Exim refuse an address.
                let bare = record.host.trim_end_matches('.');
                if bare.parse::<std::net::IpAddr>().is_ok() {
                    address_mx.push(bare.to_string());
                    plan.mx.push(MxHost {
                        preference: record.preference,
                        host: record.host.clone(),
                        addresses: Vec::new(),
                        note: Some(MX_IS_ADDRESS_NOTE.to_string()),
                    });
                } else {
                    ordered.push(record);
                }
            }
            let total = ordered.len();
            let mut lookups = stream::iter(ordered.into_iter().take(MAX_MX_HOSTS))
                .map(|record| async move {
                    resolve_host(resolver, record.preference, &record.host, family).await
                })
                .buffered(LOOKUP_CONCURRENCY);
            let mut looked_up = 0;
            while plan.targets.len() < needed {
                let Some((host, answer)) = lookups.next().await else {
                    break;
                };
                looked_up += 1;
                transient |= matches!(
                    answer,
                    AddrAnswer::Failed {
                        transient: true,
                        ..
                    }
                );
                plan.add_host(host, port, &mut seen);
            }
            // Lookups started ahead and not needed are cancelled here.
            drop(lookups);
            plan.note = not_looked_up(total - looked_up, looked_up, needed);
            if plan.targets.is_empty() {
                let reason = match family {
                    Family::Any => "no MX host has an address".to_string(),
                    Family::V4 => "no MX host has an address (IPv4 only)".to_string(),
                    Family::V6 => "no MX host has an address (IPv6 only)".to_string(),
                };
                let kind = if transient {
                    BreakKind::DnsError
                } else {
                    BreakKind::NoAddress
                };
                plan.failure = Some(Failure::dns(class(transient), kind, reason));
            }
            if !address_mx.is_empty() {
                let why = format!(
                    "DNS misconfiguration: the MX record of {domain} names the IP address {} instead of a host name (RFC 5321 5.1); mail servers refuse to use it",
                    address_mx.join(", ")
                );
                if plan.targets.is_empty() && !transient {
                    plan.failure = Some(Failure::dns(
                        FailureClass::Permanent,
                        BreakKind::MxIsAddress,
                        why.clone(),
                    ));
                }
                plan.note = Some(why);
            }
        }
        MxAnswer::NoRecords => {
            plan.note = Some(IMPLICIT_MX_NOTE.to_string());
            let (host, answer) = resolve_host(resolver, 0, &domain, family).await;
            let failure = match answer {
                AddrAnswer::Addresses(_) => None,
                AddrAnswer::NoRecords => Some(Failure::dns(
                    FailureClass::Permanent,
                    BreakKind::NoAddress,
                    match family {
                        Family::Any => "no MX records and no address records: nowhere to deliver",
                        Family::V4 => {
                            "no MX records and no IPv4 address records: nowhere to deliver"
                        }
                        Family::V6 => {
                            "no MX records and no IPv6 address records: nowhere to deliver"
                        }
                    },
                )),
                AddrAnswer::NoDomain => Some(Failure::dns(
                    FailureClass::Permanent,
                    BreakKind::NoDomain,
                    "domain does not exist (NXDOMAIN)",
                )),
                AddrAnswer::Failed { transient, reason } => Some(Failure::dns(
                    class(transient),
                    BreakKind::DnsError,
                    format!("implicit MX: looking up the domain's addresses failed: {reason}"),
                )),
            };
            plan.add_host(host, port, &mut seen);
            plan.failure = failure;
        }
        MxAnswer::NullMx => {
            plan.note = Some("null MX (RFC 7505): the domain accepts no mail".into());
            plan.failure = Some(Failure::dns(
                FailureClass::Permanent,
                BreakKind::NullMx,
                "domain accepts no mail (null MX, RFC 7505)",
            ));
        }
        MxAnswer::NoDomain => {
            plan.note = Some("NXDOMAIN: the domain does not exist".into());
            plan.failure = Some(Failure::dns(
                FailureClass::Permanent,
                BreakKind::NoDomain,
                "domain does not exist (NXDOMAIN)",
            ));
        }
        MxAnswer::Failed { transient, reason } => {
            plan.failure = Some(Failure::dns(class(transient), BreakKind::DnsError, reason));
        }
    }
    plan
}

/// The note for the MX hosts that were not looked up (`skipped` of them, after `looked_up`).
fn not_looked_up(skipped: usize, looked_up: usize, needed: usize) -> Option<String> {
    if skipped == 0 {
        None
    } else if looked_up >= MAX_MX_HOSTS {
        Some(format!(
            "{skipped} more MX host(s) not looked up: at most {MAX_MX_HOSTS} per domain"
        ))
    } else {
        Some(format!(
            "{skipped} more MX host(s) not looked up: the first {looked_up} give the {needed} address(es) --max-attempts allows"
        ))
    }
}

/// Looks up one host's addresses: the host for the plan, and the answer it came from.
/// The note on an MX record whose target is an IP address.
pub const MX_IS_ADDRESS_NOTE: &str =
    "an IP address, not a host name: not used, as MTAs refuse it (RFC 5321 5.1)";

async fn resolve_host(
    resolver: &Resolver,
    preference: u16,
    host: &str,
    family: Family,
) -> (MxHost, AddrAnswer) {
    let answer = resolver.addresses(host, family).await;
    let (addresses, note) = match &answer {
        AddrAnswer::Addresses(addresses) if addresses.len() > MAX_ADDRESSES_PER_HOST => (
            addresses[..MAX_ADDRESSES_PER_HOST].to_vec(),
            Some(format!(
                "{} addresses: only the first {MAX_ADDRESSES_PER_HOST} are kept",
                addresses.len()
            )),
        ),
        AddrAnswer::Addresses(addresses) => (addresses.clone(), None),
        AddrAnswer::NoRecords => (Vec::new(), Some(no_address_note(family).to_string())),
        AddrAnswer::NoDomain => (
            Vec::new(),
            Some("host does not exist (NXDOMAIN): skipped".to_string()),
        ),
        AddrAnswer::Failed { reason, .. } => (Vec::new(), Some(format!("lookup failed: {reason}"))),
    };
    let mx = MxHost {
        preference,
        host: host.to_string(),
        addresses,
        note,
    };
    (mx, answer)
}

impl RoutePlan {
    /// The plan for a domain when no resolver could be set up: nothing to try.
    pub fn unresolved(domain: &str, why: &str) -> RoutePlan {
        RoutePlan {
            domain: domain.to_string(),
            mx: Vec::new(),
            note: None,
            targets: Vec::new(),
            failure: Some(Failure::dns(
                FailureClass::Transient,
                BreakKind::DnsError,
                format!("cannot set up the DNS resolver: {why}"),
            )),
        }
    }

    /// Appends `host` and its addresses as targets, skipping addresses already listed (`seen`:
    /// every address of the targets so far).
    fn add_host(&mut self, mut host: MxHost, port: u16, seen: &mut HashSet<IpAddr>) {
        let mut added = 0;
        for address in &host.addresses {
            if !seen.insert(*address) {
                continue;
            }
            self.targets.push(Target {
                host: host.host.clone(),
                address: *address,
                port,
            });
            added += 1;
        }
        if added == 0 && !host.addresses.is_empty() && host.note.is_none() {
            host.note = Some("its addresses are already listed for an earlier host".to_string());
        }
        self.mx.push(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(preference: u16, host: &str) -> MxRecord {
        MxRecord {
            preference,
            host: host.to_string(),
        }
    }

    fn hosts(records: &[MxRecord]) -> Vec<&str> {
        records.iter().map(|r| r.host.as_str()).collect()
    }

    #[test]
    fn sorts_by_preference() {
        let records = vec![rec(30, "c"), rec(10, "a"), rec(20, "b"), rec(0, "z")];
        let ordered = order_mx(records, 7);
        assert_eq!(hosts(&ordered), ["z", "a", "b", "c"]);
    }

    #[test]
    fn empty_and_single() {
        assert!(order_mx(Vec::new(), 1).is_empty());
        assert_eq!(hosts(&order_mx(vec![rec(5, "only")], 1)), ["only"]);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let records = vec![
            rec(10, "a"),
            rec(10, "b"),
            rec(10, "c"),
            rec(10, "d"),
            rec(20, "e"),
            rec(20, "f"),
        ];
        for seed in 0..50 {
            assert_eq!(
                order_mx(records.clone(), seed),
                order_mx(records.clone(), seed)
            );
        }
    }

    #[test]
    fn equal_preferences_shuffled_across_seeds() {
        let records = vec![rec(20, "backup"), rec(10, "a"), rec(10, "b")];
        let mut a_first = 0;
        let mut b_first = 0;
        for seed in 0..200 {
            let ordered = order_mx(records.clone(), seed);
            // Preferences stay sorted whatever the seed.
            assert_eq!(ordered[2].host, "backup");
            assert!(ordered
                .windows(2)
                .all(|w| w[0].preference <= w[1].preference));
            match ordered[0].host.as_str() {
                "a" => a_first += 1,
                "b" => b_first += 1,
                other => panic!("unexpected first host {other}"),
            }
        }
        assert!(a_first > 40 && b_first > 40, "a {a_first}, b {b_first}");
    }

    #[test]
    fn every_permutation_of_three_occurs() {
        let records = vec![rec(5, "x"), rec(5, "y"), rec(5, "z")];
        let mut seen = std::collections::HashSet::new();
        for seed in 0..300 {
            seen.insert(hosts(&order_mx(records.clone(), seed)).join(","));
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn shuffle_keeps_every_record() {
        let records = vec![rec(1, "a"), rec(1, "b"), rec(2, "c"), rec(1, "d")];
        let mut ordered = hosts(&order_mx(records, 99))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        assert_eq!(ordered.pop().as_deref(), Some("c"));
        ordered.sort();
        assert_eq!(ordered, ["a", "b", "d"]);
    }

    #[test]
    fn add_host_skips_duplicate_addresses() {
        let mut plan = RoutePlan {
            domain: "test".into(),
            mx: Vec::new(),
            note: None,
            targets: Vec::new(),
            failure: None,
        };
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let mut seen = HashSet::new();
        for name in ["mx1.test", "mx2.test"] {
            plan.add_host(
                MxHost {
                    preference: 10,
                    host: name.into(),
                    addresses: vec![ip],
                    note: None,
                },
                25,
                &mut seen,
            );
        }
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(plan.targets[0].host, "mx1.test");
        assert!(plan.mx[1].note.is_some());
    }

    #[test]
    fn mx_host_serializes_with_its_field_names() {
        let host = MxHost {
            preference: 10,
            host: "mx1.test".into(),
            addresses: vec!["127.0.0.2".parse().unwrap()],
            note: None,
        };
        let json = serde_json::to_value(&host).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "preference": 10,
                "host": "mx1.test",
                "addresses": ["127.0.0.2"],
                "note": null
            })
        );
    }
}
