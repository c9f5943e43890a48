//! Trying targets in order: which failures move on to the next address, and which are the answer.

use crate::events::{Event, Events};
use crate::message::{Envelope, Message};
use crate::plan::Target;
use crate::session::{attempt, AttemptResult, SessionOptions};
use crate::smtp::rules;
use crate::transcript::{BreakKind, Failure, Policy, Stage};

/// `true` when another target may be tried after this attempt (RFC 5321 5.1 and the seed procedure):
/// the connection failed, the greeting was not 220, EHLO and HELO were both refused, or the session
/// broke before MAIL FROM was accepted. Never after MAIL FROM was accepted: a refused recipient is an
/// answer, and trying elsewhere could deliver twice.
pub fn may_try_next(result: &AttemptResult) -> bool {
    if result.mail_accepted {
        return false;
    }
    match &result.failure {
        None => false,
        Some(f) => match f.stage {
            Stage::Connect | Stage::Greeting | Stage::Ehlo | Stage::Helo => true,
            _ => f.kind.is_some() && f.stage < Stage::Rcpt,
        },
    }
}

/// The warning when `result` is an opportunistic session whose TLS handshake failed, to be tried
/// again in clear (see [`rules::tls_fallback`]).
fn fallback_warning(opts: &SessionOptions, result: &AttemptResult) -> Option<String> {
    let why = result.failure.as_ref().map_or("", |f| f.reason.as_str());
    let why = why.strip_prefix("starttls: ").unwrap_or(why);
    rules::tls_fallback(
        opts.tls.policy,
        result.handshake_failed,
        &result.attempt.host,
        why,
    )
}

/// How far into the session a failed attempt got (for choosing which attempt speaks for a route).
pub fn progress(result: &AttemptResult) -> Stage {
    match &result.failure {
        Some(f) => f.stage,
        None => Stage::Quit,
    }
}

/// Tries `targets` in order, moving on only as [`may_try_next`] allows, at most `max_attempts`
/// times. Returns every attempt made and the index of the one that decides the outcome.
pub async fn try_targets(
    targets: &[Target],
    max_attempts: usize,
    opts: &SessionOptions,
    message: &Message,
    envelope: &Envelope,
    observer: &dyn Events,
) -> (Vec<AttemptResult>, Option<usize>) {
    let mut results: Vec<AttemptResult> = Vec::new();
    let limit = targets.len().min(max_attempts.max(1));
    for (i, target) in targets.iter().take(limit).enumerate() {
        let mut result = attempt(target, opts, message, envelope, observer).await;
        if let Some(warning) = fallback_warning(opts, &result) {
            // Opportunistic TLS whose handshake failed: again in clear, on a new connection.
            observer.on(&Event::Note(&warning));
            results.push(result);
            let clear = SessionOptions {
                tls: crate::tls::TlsOptions {
                    policy: Policy::Off,
                    ..opts.tls.clone()
                },
                ..opts.clone()
            };
            result = attempt(target, &clear, message, envelope, observer).await;
            result.warnings.insert(0, warning);
        }
        let next = may_try_next(&result);
        if next && i + 1 < limit {
            if let Some(f) = &result.failure {
                observer.on(&Event::MovingOn(&f.reason));
            }
        }
        results.push(result);
        if !next {
            let last = results.len() - 1;
            return (results, Some(last));
        }
    }
    // Every attempt failed in a way that allowed moving on: the one that got furthest speaks.
    let best = results
        .iter()
        .enumerate()
        .max_by_key(|(i, r)| (progress(r), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    (results, best)
}

/// The targets of smart-host mode: the relay's addresses (an IP address as it is, a name looked up
/// with the system resolver), in the order returned.
pub async fn smart_host_targets(
    relay: &crate::address::HostPort,
    timeout: std::time::Duration,
) -> Result<Vec<Target>, Failure> {
    use crate::transcript::FailureClass;
    if let Ok(ip) = relay.host.parse::<std::net::IpAddr>() {
        return Ok(vec![Target {
            host: relay.host.clone(),
            address: ip,
            port: relay.port,
        }]);
    }
    let dns_failure = |class, reason: String| Failure::dns(class, BreakKind::DnsError, reason);
    let lookup = tokio::net::lookup_host((relay.host.as_str(), relay.port));
    let addrs = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => {
            return Err(dns_failure(
                FailureClass::Transient,
                format!(
                    "looking up smart host {} took longer than {}",
                    relay.host,
                    crate::time::human(timeout)
                ),
            ))
        }
        Ok(Err(e)) => {
            return Err(dns_failure(
                FailureClass::Permanent,
                format!("cannot resolve smart host {}: {e}", relay.host),
            ))
        }
        Ok(Ok(addrs)) => addrs,
    };
    let mut targets: Vec<Target> = Vec::new();
    for a in addrs {
        if !targets.iter().any(|t| t.address == a.ip()) {
            targets.push(Target {
                host: relay.host.clone(),
                address: a.ip(),
                port: relay.port,
            });
        }
    }
    if targets.is_empty() {
        return Err(dns_failure(
            FailureClass::Permanent,
            format!("smart host {} has no address", relay.host),
        ));
    }
    Ok(targets)
}
