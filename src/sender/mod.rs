//! `smtpcheck sender`: would the receiver accept this message from this IP? SPF, DKIM, DMARC,
//! ARC, reverse DNS, blocklists and the bulk-sender checklist, evaluated as a receiving MTA would,
//! with a verdict and the next steps.
//!
//! Built on Stalwart's `mail-auth`: it parses the message, verifies DKIM signatures and ARC
//! chains, checks iprev, parses SPF and DMARC records and expands SPF macros. smtpcheck adds the
//! SPF walk with its trace ([`spf`]), RFC 7489 DMARC with `pct` and the Public Suffix List
//! ([`dmarc`]), blocklists, the checklist, the verdict and the next steps. mail-auth stays inside
//! this module; what leaves it is the plain [`SenderReport`].

pub mod dmarc;
pub mod lookup;
pub mod origin;
pub mod report;
pub mod spf;
mod verdict;

use crate::exit::Exit;
use lookup::{Answer, Lookup};
use mail_auth::common::crypto::Algorithm;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, DnsError, Error as AuthError, IprevResult,
    MessageAuthenticator,
};
pub use report::SenderReport;
use report::{ArcReport, BulkReport, DkimReport, DnsblReport, IprevReport, SpfReport};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The zones `--dnsbl default` stands for.
pub const DEFAULT_DNSBL: [&str; 4] = [
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "psbl.surriel.com",
];

/// The largest message read.
pub const MAX_MESSAGE: u64 = 64 * 1024 * 1024;

/// Everything `smtpcheck sender` needs.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// The message.
    pub eml: PathBuf,
    /// The sending IP (None: from the topmost Received header).
    pub ip: Option<IpAddr>,
    /// The HELO name (None: no HELO check).
    pub helo: Option<String>,
    /// The envelope sender (None: Return-Path, else From); `Some("")` is the null sender.
    pub from: Option<String>,
    /// The blocklist zones.
    pub dnsbl: Vec<String>,
    /// The DNS server (None: the system resolver) and the bound on each lookup.
    pub resolver: Option<SocketAddr>,
    pub dns_timeout: Duration,
}

/// The facts of one check, before the verdict.
pub struct Facts {
    pub ip: IpAddr,
    pub ip_source: String,
    pub helo: Option<String>,
    pub mail_from: String,
    pub from_domain: Option<String>,
    pub notes: Vec<String>,
}

/// Reads the message and settles the IP and the envelope sender: `Err` is bad input (exit 3).
pub fn prepare(options: &SenderOptions) -> Result<(Vec<u8>, Facts), String> {
    let raw = crate::files::read_bounded(&options.eml, MAX_MESSAGE)
        .map_err(|e| format!("cannot read --eml {}: {e}", options.eml.display()))?;
    let message = AuthenticatedMessage::parse(&raw).ok_or_else(|| {
        format!(
            "--eml {}: not a message (no header section could be parsed)",
            options.eml.display()
        )
    })?;
    let mut notes = Vec::new();
    let (ip, ip_source) = match options.ip {
        Some(ip) => (ip, "--ip".to_string()),
        None => match received_ip(&message) {
            Some(ip) => {
                notes.push(format!(
                    "the IP {ip} is the one the topmost Received header field names; give --ip to check another"
                ));
                (ip, "received".to_string())
            }
            None => return Err(
                "no sending IP: give --ip (the message has no Received header field naming one)"
                    .into(),
            ),
        },
    };
    let from_domain = from_domain(&message, &mut notes);
    let mail_from = match &options.from {
        Some(f) => f
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
        None => match header(&message, "Return-Path") {
            Some(rp) => {
                notes.push(
                    "MAIL FROM is the message's Return-Path; give --from to check another".into(),
                );
                rp.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            }
            None => {
                let from = message.from.first().cloned().unwrap_or_default();
                notes.push(format!(
                    "MAIL FROM is taken to be the From address {from} (no Return-Path); give --from to check another"
                ));
                from
            }
        },
    };
    let helo = options.helo.clone().map(|h| h.trim().to_ascii_lowercase());
    Ok((
        raw,
        Facts {
            ip,
            ip_source,
            helo,
            mail_from,
            from_domain,
            notes,
        },
    ))
}

/// The From domain DMARC is about (`None`, with a note, when From names several domains).
fn from_domain(message: &AuthenticatedMessage<'_>, notes: &mut Vec<String>) -> Option<String> {
    let mut domains = message
        .from
        .iter()
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()));
    let first = domains.next();
    match first {
        Some(d) if domains.all(|o| o == d) => Some(d),
        Some(_) => {
            notes.push("the From header field names several domains: DMARC does not apply".into());
            None
        }
        None => None,
    }
}

/// The facts of `send --check-sender`: the message as sent, the session's IP ([`origin`]), the
/// name smtpcheck announced (or why there is none) and the envelope sender (empty: `<>`).
pub fn facts_for_send(
    raw: &[u8],
    origin: origin::Origin,
    helo: Result<String, String>,
    mail_from: String,
) -> Result<Facts, String> {
    let message = AuthenticatedMessage::parse(raw)
        .ok_or_else(|| "the message has no header section that could be parsed".to_string())?;
    let mut notes: Vec<String> = origin.note.into_iter().collect();
    let helo = match helo {
        Ok(h) => Some(h),
        Err(why) => {
            notes.push(why);
            None
        }
    };
    let from_domain = from_domain(&message, &mut notes);
    Ok(Facts {
        ip: origin.ip,
        ip_source: origin.source,
        helo,
        mail_from,
        from_domain,
        notes,
    })
}

/// Runs every check over `raw` for `facts`, through `resolver`.
pub async fn check(
    raw: &[u8],
    facts: Facts,
    dnsbl: &[String],
    resolver: &crate::dns::Resolver,
) -> Result<SenderReport, String> {
    let dns = Lookup::new(resolver.hickory(), resolver.timeout());
    let auth = MessageAuthenticator(resolver.hickory());
    // Each mail-auth check asks a handful of questions, each bounded by the resolver; this bounds
    // the whole check as well.
    let bound = resolver.timeout().saturating_mul(12);
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return Err("the message has no header section that could be parsed".into());
    };
    let ip = facts.ip;

    // SPF: the MAIL FROM domain (for the null sender, the HELO name), and the HELO name.
    let helo_name = facts.helo.clone().unwrap_or_default();
    let (spf_domain, spf_sender) = match facts.mail_from.rsplit_once('@') {
        Some((_, d)) if !facts.mail_from.is_empty() => {
            (d.to_ascii_lowercase(), facts.mail_from.clone())
        }
        _ => (helo_name.clone(), format!("postmaster@{helo_name}")),
    };
    let spf = spf::check(&dns, ip, &spf_domain, &spf_sender, &helo_name).await;
    let helo_spf = match &facts.helo {
        Some(h) => Some(spf::check(&dns, ip, h, &format!("postmaster@{h}"), h).await),
        None => None,
    };

    // DKIM.
    let (outputs, dkim_late): (Vec<DkimOutput<'_>>, bool) =
        match tokio::time::timeout(bound, auth.verify_dkim(&message)).await {
            Ok(o) => (o, false),
            Err(_) => (Vec::new(), true),
        };
    let mut dkim: Vec<DkimReport> = outputs.iter().map(dkim_report).collect();
    if dkim_late {
        dkim.push(DkimReport {
            domain: String::new(),
            selector: String::new(),
            algorithm: String::new(),
            result: "temperror".into(),
            reason: Some(format!(
                "the DKIM key lookups took longer than {}",
                crate::time::human(bound)
            )),
            signed_headers: Vec::new(),
        });
    }

    // ARC, when the message has ARC header fields.
    let has_arc = message
        .headers
        .iter()
        .any(|(n, _)| n.len() > 4 && n[..4].eq_ignore_ascii_case(b"arc-"));
    let arc = if has_arc {
        Some(
            match tokio::time::timeout(bound, auth.verify_arc(&message)).await {
                Ok(out) => ArcReport {
                    result: arc_word(out.result()).into(),
                    instances: message.as_headers.len(),
                    reason: dkim_reason(out.result(), None),
                },
                Err(_) => ArcReport {
                    result: "temperror".into(),
                    instances: message.as_headers.len(),
                    reason: Some("no answer in time".into()),
                },
            },
        )
    } else {
        None
    };

    // DMARC.
    let pass_domains: Vec<&str> = outputs
        .iter()
        .filter(|o| matches!(o.result(), DkimResult::Pass))
        .filter_map(|o| o.signature().map(|s| s.d.as_str()))
        .collect();
    let temp_domains: Vec<&str> = outputs
        .iter()
        .filter(|o| matches!(o.result(), DkimResult::TempError(_)))
        .filter_map(|o| o.signature().map(|s| s.d.as_str()))
        .collect();
    let dmarc = dmarc::check(
        &dns,
        &dmarc::Inputs {
            from_domain: facts.from_domain.as_deref(),
            spf_pass_domain: (spf.result == "pass").then_some(spf.domain.as_str()),
            spf_temperror: spf.result == "temperror",
            dkim_pass_domains: pass_domains,
            dkim_temperror_domains: temp_domains,
        },
    )
    .await;

    // iprev, and the HELO name against it.
    let iprev = iprev(&auth, &dns, ip, facts.helo.as_deref(), bound).await;

    // Blocklists.
    let mut lists = Vec::new();
    for zone in dnsbl {
        lists.push(dnsbl_check(&dns, ip, zone).await);
    }

    let bulk = bulk(&message, &spf, &dkim, &dmarc, &iprev);
    let mut report = SenderReport {
        ip: ip.to_string(),
        ip_source: facts.ip_source,
        helo: facts.helo,
        mail_from: facts.mail_from,
        from_domain: facts.from_domain,
        spf,
        helo_spf,
        dkim,
        arc,
        dmarc,
        iprev,
        dnsbl: lists,
        bulk,
        verdict: String::new(),
        next_steps: Vec::new(),
        notes: facts.notes,
        exit: Exit::Delivered,
    };
    verdict::decide(&mut report);
    Ok(report)
}

/// The value of the first header field `name`.
fn header(message: &AuthenticatedMessage<'_>, name: &str) -> Option<String> {
    message
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
}

/// How many header fields are called `name`.
fn count(message: &AuthenticatedMessage<'_>, name: &str) -> usize {
    message
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// The IP in the topmost Received header field's `from` clause (`[203.0.113.5]`).
fn received_ip(message: &AuthenticatedMessage<'_>) -> Option<IpAddr> {
    let value = header(message, "Received")?;
    let from = value.split(" by ").next()?;
    let mut rest = from;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inside = after[..close].trim_start_matches("IPv6:");
        if let Ok(ip) = inside.parse::<IpAddr>() {
            return Some(ip);
        }
        rest = &after[close..];
    }
    None
}

fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// The ARC chain's result as RFC 8617 has it (none, pass, fail): a chain that does not validate
/// fails, whatever mail-auth calls it (it says neutral when the body changed after the last
/// seal); temperror stays, as the chain could not be checked.
fn arc_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::None => "none",
        DkimResult::TempError(_) => "temperror",
        DkimResult::Neutral(_) | DkimResult::Fail(_) | DkimResult::PermError(_) => "fail",
    }
}

/// Why a DKIM (or ARC) check did not pass, precisely.
fn dkim_reason(result: &DkimResult, key: Option<&str>) -> Option<String> {
    use mail_auth::arc::ArcError;
    use mail_auth::common::crypto::CryptoError;
    use mail_auth::dkim::DkimError;
    let err = match result {
        DkimResult::Pass | DkimResult::None => return None,
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => e,
    };
    let key = key.unwrap_or("the key record");
    Some(match err {
        AuthError::Dkim(DkimError::FailedBodyHashMatch) => {
            "body hash mismatch: the body was changed after signing".into()
        }
        AuthError::Arc(ArcError::FailedBodyHashMatch) => {
            "body hash mismatch: the body was changed after the last ARC seal".into()
        }
        AuthError::Arc(ArcError::SignatureExpired) => {
            "the last ARC-Message-Signature expired (x= is past)".into()
        }
        AuthError::Crypto(CryptoError::FailedVerification) => {
            "signature does not verify: a signed header field was changed after signing, or the key does not match".into()
        }
        AuthError::Dkim(DkimError::RevokedPublicKey) => {
            format!("key revoked: {key} has an empty p=")
        }
        AuthError::Dkim(DkimError::SignatureExpired) => "signature expired (x= is past)".into(),
        AuthError::Dns(DnsError::RecordNotFound(_)) => format!("key not found: no record at {key}"),
        AuthError::Dns(DnsError::InvalidRecordType) | AuthError::ParseError => {
            format!("{key} is not a valid DKIM key record")
        }
        AuthError::Dns(DnsError::Resolver(e)) => format!("the key lookup failed: {e}"),
        AuthError::Crypto(CryptoError::IncompatibleAlgorithms) => {
            format!("the key type at {key} does not match the signature's a=")
        }
        AuthError::Dkim(DkimError::FailedAuidMatch) => {
            "i= is not within d= (the key requires t=s)".into()
        }
        other => other.to_string(),
    })
}

fn dkim_report(o: &DkimOutput<'_>) -> DkimReport {
    let sig = o.signature();
    let key = sig.map(|s| format!("{}._domainkey.{}", s.s, s.d));
    DkimReport {
        domain: sig.map(|s| s.d.to_ascii_lowercase()).unwrap_or_default(),
        selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
        algorithm: sig
            .map(|s| match s.a {
                Algorithm::RsaSha1 => "rsa-sha1",
                Algorithm::RsaSha256 => "rsa-sha256",
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
            })
            .unwrap_or_default()
            .into(),
        result: dkim_word(o.result()).into(),
        reason: dkim_reason(o.result(), key.as_deref()),
        signed_headers: sig
            .map(|s| s.h.iter().map(|h| h.to_ascii_lowercase()).collect())
            .unwrap_or_default(),
    }
}

async fn iprev(
    auth: &MessageAuthenticator,
    dns: &Lookup,
    ip: IpAddr,
    helo: Option<&str>,
    bound: Duration,
) -> IprevReport {
    let (result, ptr, reason) = match tokio::time::timeout(bound, auth.verify_iprev(ip)).await {
        Ok(out) => {
            let ptr: Vec<String> = out
                .ptr
                .as_ref()
                .map(|p| {
                    p.iter()
                        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let (word, reason) = match &out.result {
                IprevResult::Pass => ("pass", None),
                IprevResult::Fail(_) => (
                    "fail",
                    Some(format!(
                        "no PTR name of {ip} resolves back to it ({})",
                        if ptr.is_empty() {
                            "none".to_string()
                        } else {
                            ptr.join(", ")
                        }
                    )),
                ),
                IprevResult::TempError(e) => ("temperror", Some(e.to_string())),
                IprevResult::PermError(AuthError::Dns(DnsError::RecordNotFound(_))) => {
                    ("permerror", Some(format!("{ip} has no PTR record")))
                }
                IprevResult::PermError(e) => ("permerror", Some(e.to_string())),
                IprevResult::None => ("none", None),
            };
            (word.to_string(), ptr, reason)
        }
        Err(_) => (
            "temperror".to_string(),
            Vec::new(),
            Some("no answer in time".to_string()),
        ),
    };
    let (helo_matches_ptr, helo_resolves_to_ip) = match helo {
        Some(h) => {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            let resolves =
                matches!(dns.addresses_like(&h, ip).await, Answer::Found(a) if a.contains(&ip));
            (Some(ptr.contains(&h)), Some(resolves))
        }
        None => (None, None),
    };
    IprevReport {
        ip: ip.to_string(),
        ptr,
        result,
        helo_matches_ptr,
        helo_resolves_to_ip,
        reason,
    }
}

/// The blocklist name of `ip` in `zone` (RFC 5782 2.1, 2.4).
pub fn dnsbl_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut nibbles = Vec::with_capacity(32);
            for b in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", b & 0x0f));
                nibbles.push(format!("{:x}", b >> 4));
            }
            format!("{}.{zone}", nibbles.join("."))
        }
    }
}

async fn dnsbl_check(dns: &Lookup, ip: IpAddr, zone: &str) -> DnsblReport {
    let name = dnsbl_name(ip, zone);
    let mut report = DnsblReport {
        zone: zone.to_string(),
        listed: false,
        codes: Vec::new(),
        reason: None,
        error: None,
    };
    match dns.a(&name).await {
        Answer::Found(codes) => {
            report.codes = codes.iter().map(|c| c.to_string()).collect();
            // RFC 5782 2.1: listings are 127.0.0.0/8; Spamhaus answers 127.255.255.x when it
            // refuses a query (an open or public resolver, over the free limit).
            let refused = codes
                .iter()
                .all(|c| c.octets()[0] != 127 || c.octets()[1] == 255);
            if refused {
                report.error = Some(format!(
                    "{zone} answered {} instead of a listing: it refused the query (a public or open resolver, or over its free limit); ask through your own resolver",
                    report.codes.join(", ")
                ));
            } else {
                report.listed = true;
                if let Answer::Found(txt) = dns.txt(&name).await {
                    let reasons: Vec<String> = txt
                        .iter()
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                        .collect();
                    report.reason = Some(reasons.join("; "));
                }
            }
        }
        Answer::Void => {}
        Answer::Failed(e) => report.error = Some(e),
    }
    report
}

/// The bulk-sender checklist (Gmail and Yahoo since February 2024, Outlook.com since May 2025).
fn bulk(
    message: &AuthenticatedMessage<'_>,
    spf: &SpfReport,
    dkim: &[DkimReport],
    dmarc: &report::DmarcReport,
    iprev: &IprevReport,
) -> BulkReport {
    let passing: Vec<&DkimReport> = dkim.iter().filter(|d| d.result == "pass").collect();
    let covered = |name: &str| {
        passing
            .iter()
            .any(|d| d.signed_headers.iter().any(|h| h == name))
    };
    let unsubscribe = header(message, "List-Unsubscribe");
    let post = header(message, "List-Unsubscribe-Post");
    let one_click = post
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("List-Unsubscribe=One-Click"));
    let https = unsubscribe
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().contains("<https://"));
    let mut checks = std::collections::BTreeMap::new();
    checks.insert("spf_pass".to_string(), spf.result == "pass");
    checks.insert("dkim_pass".to_string(), !passing.is_empty());
    checks.insert("dmarc_record".to_string(), dmarc.record.is_some());
    checks.insert("dmarc_aligned".to_string(), dmarc.result == "pass");
    checks.insert("fcrdns".to_string(), iprev.result == "pass");
    checks.insert("list_unsubscribe_one_click".to_string(), https && one_click);
    checks.insert(
        "list_unsubscribe_signed".to_string(),
        https && one_click && covered("list-unsubscribe") && covered("list-unsubscribe-post"),
    );
    checks.insert("single_from".to_string(), count(message, "From") == 1);
    checks.insert("single_date".to_string(), count(message, "Date") == 1);
    checks.insert(
        "single_message_id".to_string(),
        count(message, "Message-ID") == 1,
    );
    let mut notes = vec![
        "Gmail and Yahoo (2024) and Outlook.com (2025) require SPF, DKIM, DMARC (at least p=none) aligned with From, and forward-confirmed reverse DNS of senders of more than 5,000 messages a day; all senders need SPF or DKIM".to_string(),
    ];
    if unsubscribe.is_none() {
        notes.push("no List-Unsubscribe: marketing and subscribed mail must offer one-click unsubscribe (RFC 8058); transactional mail need not".into());
    } else if !(https && one_click) {
        notes.push("List-Unsubscribe needs an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click for one-click unsubscribe (RFC 8058)".into());
    } else if !(covered("list-unsubscribe") && covered("list-unsubscribe-post")) {
        notes.push("List-Unsubscribe and List-Unsubscribe-Post must both be covered by a passing DKIM signature (RFC 8058 4)".into());
    }
    BulkReport { checks, notes }
}
