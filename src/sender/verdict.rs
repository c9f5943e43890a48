//! The verdict, the next steps and the exit code of a sender check: pure decisions over the
//! report's facts.

use super::report::SenderReport;
use crate::exit::Exit;

/// Fills in `verdict`, `next_steps` and `exit`.
pub fn decide(r: &mut SenderReport) {
    let steps = next_steps(r);
    let from = r
        .from_domain
        .clone()
        .unwrap_or_else(|| "(no From domain)".into());
    let ip = r.ip.clone();
    let d = &r.dmarc;
    let temp = d.result == "temperror"
        || (d.result != "pass"
            && (r.spf.result == "temperror" || r.dkim.iter().any(|k| k.result == "temperror")));
    let why_not = || {
        let spf = format!("SPF {} for {}", r.spf.result, r.spf.domain);
        let dkim = if r.dkim.is_empty() {
            "no DKIM signature".to_string()
        } else {
            r.dkim
                .iter()
                .map(|k| format!("DKIM d={} {}", k.domain, k.result))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("{spf}; {dkim}")
    };
    let (verdict, exit) = if temp {
        (
            format!(
                "undecided: a receiver would defer this message from {ip} (4xx) because a DNS lookup failed temporarily ({})",
                d.reason.clone().unwrap_or_else(why_not)
            ),
            Exit::DnsLater,
        )
    } else {
        match d.result.as_str() {
            "pass" => (
                format!(
                    "a receiver enforcing DMARC would accept this message from {ip}: {} ({from})",
                    d.reason.clone().unwrap_or_default()
                ),
                Exit::Delivered,
            ),
            "fail" if d.disposition == "reject" || d.disposition == "quarantine" => (
                format!(
                    "a receiver enforcing DMARC would {} this message from {ip}, because {}: {}",
                    d.disposition,
                    d.reason.clone().unwrap_or_default(),
                    why_not()
                ),
                Exit::SenderRejected,
            ),
            "fail" => (
                format!(
                    "a receiver would deliver this message from {ip} only because {from} publishes p=none: DMARC fails ({})",
                    why_not()
                ),
                Exit::SenderFailed,
            ),
            _ => (
                format!(
                    "DMARC does not apply ({}); without it, Gmail, Yahoo and Outlook.com junk or refuse unauthenticated bulk mail: {}",
                    d.reason.clone().unwrap_or_else(|| d.result.clone()),
                    why_not()
                ),
                Exit::SenderFailed,
            ),
        }
    };
    let failing = matches!(r.spf.result.as_str(), "fail" | "softfail" | "permerror")
        || r.helo_spf
            .as_ref()
            .is_some_and(|h| matches!(h.result.as_str(), "fail" | "permerror"))
        || r.dkim.iter().any(|k| k.result != "pass")
        || matches!(r.iprev.result.as_str(), "fail" | "permerror")
        || r.dnsbl.iter().any(|l| l.listed)
        || r.arc.as_ref().is_some_and(|a| a.result == "fail");
    r.exit = if exit == Exit::Delivered && failing {
        Exit::SenderFailed
    } else {
        exit
    };
    r.verdict = if exit == Exit::Delivered && failing {
        format!("{verdict}; but a check failed (see the next steps)")
    } else {
        verdict
    };
    r.next_steps = steps;
}

fn next_steps(r: &SenderReport) -> Vec<String> {
    let mut steps = Vec::new();
    let ip = &r.ip;
    let mech = if ip.contains(':') { "ip6" } else { "ip4" };
    let spf = &r.spf;
    let reason = spf.reason.clone().unwrap_or_default();
    match spf.result.as_str() {
        "fail" | "softfail" | "neutral" => steps.push(format!(
            "add `{mech}:{ip}` to the SPF record of {} (or send through a server it already lists)",
            spf.domain
        )),
        "none" if !spf.domain.is_empty() => steps.push(format!(
            "publish an SPF record for {}, e.g. `v=spf1 {mech}:{ip} -all`",
            spf.domain
        )),
        "permerror" if spf.lookups > super::spf::LOOKUP_LIMIT => steps.push(format!(
            "the SPF record of {} needs more than {} DNS lookups: flatten includes into ip4:/ip6: terms",
            spf.domain,
            super::spf::LOOKUP_LIMIT
        )),
        "permerror" if spf.void_lookups > super::spf::VOID_LIMIT => steps.push(format!(
            "remove from the SPF record of {} the terms naming domains without records ({reason})",
            spf.domain
        )),
        "permerror" => steps.push(format!("fix the SPF record of {}: {reason}", spf.domain)),
        _ => {}
    }
    for k in &r.dkim {
        let Some(why) = &k.reason else { continue };
        let key = format!("{}._domainkey.{}", k.selector, k.domain);
        steps.push(if why.starts_with("body hash mismatch") {
            format!("DKIM d={}: the body was changed after signing (a footer, a disclaimer, re-encoding): sign after the last change, or stop changing the body", k.domain)
        } else if why.starts_with("signature does not verify") {
            format!("DKIM d={}: a signed header field was changed after signing (or {key} holds another key): sign after the last change", k.domain)
        } else if why.starts_with("key not found") {
            format!("publish the DKIM public key at {key}")
        } else if why.starts_with("key revoked") {
            format!("{key} is revoked (empty p=): sign with a current key and selector")
        } else if why.starts_with("signature expired") {
            format!("DKIM d={}: the signature expired (x=): sign closer to sending or lengthen x=", k.domain)
        } else {
            format!("DKIM d={} s={}: {why}", k.domain, k.selector)
        });
    }
    let from = r.from_domain.clone().unwrap_or_default();
    let d = &r.dmarc;
    if d.record.is_none() && d.result == "none" && !from.is_empty() {
        steps.push(format!(
            "publish a DMARC record at _dmarc.{}, e.g. `v=DMARC1; p=none; rua=mailto:dmarc@{}`",
            d.org_domain.clone().unwrap_or(from.clone()),
            d.org_domain.clone().unwrap_or(from.clone())
        ));
    }
    if d.result == "fail" {
        if r.dkim.iter().all(|k| k.result != "pass") && r.dkim.is_empty() {
            steps.push(format!("sign the message with DKIM with d={from} (or a subdomain of it under relaxed alignment)"));
        } else {
            steps.push(format!(
                "sign with d={from} or align the envelope domain (MAIL FROM {}) with {from}",
                if r.mail_from.is_empty() {
                    "<>"
                } else {
                    &r.mail_from
                }
            ));
        }
    }
    match r.iprev.result.as_str() {
        "fail" | "permerror" => steps.push(format!(
            "ask whoever runs {ip} (the ISP or hosting provider) for a PTR record naming a host whose address record is {ip}"
        )),
        _ => {}
    }
    if r.iprev.helo_resolves_to_ip == Some(false) {
        if let Some(h) = &r.helo {
            steps.push(format!("announce a HELO name that resolves to {ip} (today {h} does not), ideally its PTR name"));
        }
    }
    for l in r.dnsbl.iter().filter(|l| l.listed) {
        steps.push(format!(
            "{ip} is listed on {} ({}): find out why and ask the list for delisting",
            l.zone,
            l.reason.clone().unwrap_or_else(|| l.codes.join(", "))
        ));
    }
    for n in r.bulk.notes.iter().skip(1) {
        steps.push(format!("for bulk mail: {n}"));
    }
    steps
}
