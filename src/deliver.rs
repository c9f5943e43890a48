//! Delivering the whole envelope: recipients grouped by domain, one route (and one session) per
//! domain in direct mode, or a single route through the smart host.

use crate::dns::{DnsOptions, Resolver};
use crate::events::{Event, Events};
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::plan::Target;
use crate::plan::{plan_domain_for, MxHost, RoutePlan};
use crate::route::{smart_host_targets, try_targets};
use crate::session::{AttemptResult, SessionOptions};
use crate::transcript::{BreakKind, Failure, FailureClass};
use futures_util::stream::{self, StreamExt};
use lettre::Address;
use serde::Serialize;
use std::net::IpAddr;

/// How a route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The recipient domain's own mail servers (MX records).
    Direct,
    /// A relay given with --smart-host.
    SmartHost,
}

/// Routing settings, validated.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// The relay for smart-host mode; `None` is direct mode.
    pub smart_host: Option<crate::address::HostPort>,
    /// Direct mode: the relay tried after every MX target failed.
    pub fallback: Option<crate::address::HostPort>,
    /// The most targets tried per domain.
    pub max_attempts: usize,
    /// How many domains are handled at once.
    pub concurrency: usize,
    /// DNS: the server, the bound on each lookup, the address families, the MX port.
    pub dns: DnsOptions,
}

/// What happened on one route.
#[derive(Debug, Clone)]
pub struct RouteResult {
    /// The recipient domain (None in smart-host mode).
    pub domain: Option<String>,
    /// Direct or smart host.
    pub mode: Mode,
    /// The relay (`host:port`) in smart-host mode, or the fallback relay when it was tried.
    pub relay: Option<String>,
    /// The MX hosts found, in the order tried.
    pub mx: Vec<MxHost>,
    /// A note on the DNS answer (implicit MX, null MX, NXDOMAIN…).
    pub note: Option<String>,
    /// The recipients sent over this route.
    pub recipients: Vec<String>,
    /// Every attempt, in order.
    pub results: Vec<AttemptResult>,
    /// The attempt whose result is the route's verdict.
    pub decisive: Option<usize>,
    /// The failure when no attempt could be made (DNS).
    pub failure: Option<Failure>,
    /// The route's exit code.
    pub exit: Exit,
}

/// Groups recipients by domain (case-insensitive), in the order the domains first appear (an
/// index by domain: linear in the number of recipients).
pub fn group_by_domain(recipients: &[Address]) -> Vec<(String, Vec<Address>)> {
    let mut groups: Vec<(String, Vec<Address>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for r in recipients {
        let domain = r.domain().to_ascii_lowercase();
        match index.get(&domain) {
            Some(&i) => groups[i].1.push(r.clone()),
            None => {
                index.insert(domain.clone(), groups.len());
                groups.push((domain, vec![r.clone()]));
            }
        }
    }
    groups
}

/// The route groups: one per domain in direct mode, a single one in smart-host mode.
pub fn groups(opts: &DeliverOptions, envelope: &Envelope) -> Vec<(Option<String>, Vec<Address>)> {
    if opts.smart_host.is_some() {
        vec![(None, envelope.recipients.clone())]
    } else {
        group_by_domain(&envelope.recipients)
            .into_iter()
            .map(|(d, r)| (Some(d), r))
            .collect()
    }
}

/// Delivers to every group, at most `concurrency` at once; results keep the groups' order.
/// `observers[i]` receives the progress of group `i` (see [`groups`]).
pub async fn deliver(
    opts: &DeliverOptions,
    session: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    observers: &[Box<dyn Events>],
) -> Vec<RouteResult> {
    let groups = groups(opts, envelope);
    // No resolver is set up in smart-host mode: it is not needed there.
    let resolver = if opts.smart_host.is_none() {
        Resolver::new(opts.dns.resolver, opts.dns.timeout)
    } else {
        Err("not needed in smart-host mode".into())
    };
    let resolver = &resolver;
    stream::iter(groups.into_iter().zip(observers))
        .map(|((domain, recipients), observer)| async move {
            let sub = Envelope {
                recipients,
                ..envelope.clone()
            };
            match (&opts.smart_host, resolver) {
                (Some(relay), _) => {
                    via_smart_host(opts, relay, session, message, &sub, observer.as_ref()).await
                }
                (None, resolver) => {
                    let domain = domain.unwrap_or_default();
                    direct(
                        opts,
                        resolver,
                        &domain,
                        session,
                        message,
                        &sub,
                        observer.as_ref(),
                    )
                    .await
                }
            }
        })
        .buffered(opts.concurrency.max(1))
        .collect()
        .await
}

fn route_from(
    domain: Option<String>,
    mode: Mode,
    relay: Option<String>,
    envelope: &Envelope,
    results: Vec<AttemptResult>,
    decisive: Option<usize>,
) -> RouteResult {
    let exit = decisive
        .and_then(|i| results.get(i))
        .map_or(Exit::Connect, |r| r.exit);
    RouteResult {
        domain,
        mode,
        relay,
        mx: Vec::new(),
        note: None,
        recipients: envelope.recipients.iter().map(|a| a.to_string()).collect(),
        results,
        decisive,
        failure: None,
        exit,
    }
}

async fn via_smart_host(
    opts: &DeliverOptions,
    relay: &crate::address::HostPort,
    session: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    observer: &dyn Events,
) -> RouteResult {
    match smart_host_targets(relay, opts.dns.timeout).await {
        Ok(targets) => {
            let (results, decisive) = try_targets(
                &targets,
                opts.max_attempts,
                session,
                message,
                envelope,
                observer,
            )
            .await;
            route_from(
                None,
                Mode::SmartHost,
                Some(relay.to_string()),
                envelope,
                results,
                decisive,
            )
        }
        Err(failure) => {
            let mut r = route_from(
                None,
                Mode::SmartHost,
                Some(relay.to_string()),
                envelope,
                Vec::new(),
                None,
            );
            r.exit = Exit::Dns.with_class(failure.class);
            r.failure = Some(failure);
            r
        }
    }
}

/// An address-literal domain (`user@[192.0.2.1]`) routes straight to that address.
fn literal_target(domain: &str, port: u16) -> Option<Target> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    let address: IpAddr = inner.parse().ok()?;
    // The host is the bare address: it is what a certificate would name (as an IP SAN).
    Some(Target {
        host: address.to_string(),
        address,
        port,
    })
}

async fn direct(
    opts: &DeliverOptions,
    resolver: &Result<Resolver, String>,
    domain: &str,
    session: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    observer: &dyn Events,
) -> RouteResult {
    let plan = if let Some(target) = literal_target(domain, opts.dns.port) {
        RoutePlan {
            domain: domain.to_string(),
            mx: Vec::new(),
            note: Some("address literal: no DNS lookup".into()),
            targets: vec![target],
            failure: None,
        }
    } else {
        match resolver {
            Ok(resolver) => {
                // Only as many hosts are looked up as --max-attempts can use.
                plan_domain_for(
                    resolver,
                    domain,
                    opts.dns.family,
                    opts.dns.port,
                    crate::plan::random_seed(),
                    opts.max_attempts,
                )
                .await
            }
            Err(why) => RoutePlan::unresolved(domain, why),
        }
    };
    observer.on(&Event::RoutePlanned(&plan));

    // --max-attempts bounds the MX tries; the fallback relay comes after them, on top.
    let mut targets = plan.targets.clone();
    targets.truncate(opts.max_attempts);
    let mx_tries = targets.len();
    let mut relay = None;
    let mut fallback_note = None;
    // The domain said "no mail" (null MX, NXDOMAIN): no fallback either.
    let fallback_allowed = plan
        .failure
        .as_ref()
        .is_none_or(|f| f.class == FailureClass::Transient);
    if let (Some(fb), true) = (&opts.fallback, fallback_allowed) {
        match smart_host_targets(fb, opts.dns.timeout).await {
            Ok(fb_targets) => {
                targets.extend(fb_targets);
                relay = Some(fb.to_string());
            }
            Err(f) => fallback_note = Some(format!("fallback smart host unusable: {}", f.reason)),
        }
    }

    let mut route = if targets.is_empty() {
        let mut r = route_from(
            Some(domain.to_string()),
            Mode::Direct,
            None,
            envelope,
            Vec::new(),
            None,
        );
        r.failure = plan.failure.clone().or_else(|| {
            Some(Failure::dns(
                FailureClass::Permanent,
                BreakKind::NoAddress,
                format!("no mail host found for {domain}"),
            ))
        });
        r.exit = Exit::Dns.with_class(
            r.failure
                .as_ref()
                .map_or(FailureClass::Permanent, |f| f.class),
        );
        r
    } else {
        let (mut results, decisive) =
            try_targets(&targets, usize::MAX, session, message, envelope, observer).await;
        // Server facts: the PTR names of each address that greeted, to compare with its greeting.
        if let Ok(resolver) = resolver {
            for r in &mut results {
                if r.attempt.greeting_name.is_some() {
                    if let Ok(ip) = r.attempt.address.parse() {
                        r.attempt.ptr = resolver.reverse(ip).await.ok();
                    }
                }
            }
        }
        let used_fallback = relay.is_some() && results.len() > mx_tries;
        route_from(
            Some(domain.to_string()),
            Mode::Direct,
            if used_fallback { relay } else { None },
            envelope,
            results,
            decisive,
        )
    };
    route.mx = plan.mx;
    route.note = match (plan.note, fallback_note) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    if route.results.is_empty() && route.failure.is_none() {
        route.failure = plan.failure;
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_order_and_ignore_case() {
        let a = |s: &str| s.parse::<Address>().unwrap();
        let g = group_by_domain(&[a("x@B.test"), a("y@a.test"), a("z@b.TEST")]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, "b.test");
        assert_eq!(g[0].1.len(), 2);
        assert_eq!(g[1].0, "a.test");
    }

    #[test]
    fn address_literals_route_directly() {
        let t = literal_target("[127.0.0.1]", 2525).unwrap();
        assert_eq!(t.address.to_string(), "127.0.0.1");
        assert_eq!(t.port, 2525);
        assert!(literal_target("[IPv6:::1]", 25).unwrap().address.is_ipv6());
        assert!(literal_target("example.com", 25).is_none());
    }
}
