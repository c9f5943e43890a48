//! DMARC as RFC 7489 has it: the record of the From domain, else of its organizational domain
//! (Public Suffix List), `p`/`sp`/`pct`, relaxed or strict alignment, the disposition.
//!
//! mail-auth parses the record; its own `verify_dmarc` follows the DMARCbis tree walk and no
//! longer reads `pct`, so the policy is applied here, the way receivers apply RFC 7489 today.

use super::lookup::{Answer, Lookup};
use super::report::DmarcReport;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};

/// The organizational domain of `domain`: the registrable domain by the Public Suffix List, or
/// the domain itself when the list has none (a public suffix, a single label).
pub fn org_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    match psl::domain_str(&d) {
        Some(org) => org.to_string(),
        None => d,
    }
}

/// Relaxed alignment: the same organizational domain; strict: the same domain.
pub fn aligned(a: &str, b: &str, mode: Alignment) -> bool {
    let (a, b) = (
        a.trim_end_matches('.').to_ascii_lowercase(),
        b.trim_end_matches('.').to_ascii_lowercase(),
    );
    match mode {
        Alignment::Strict => a == b,
        Alignment::Relaxed => org_domain(&a) == org_domain(&b),
    }
}

/// What the DMARC check is given.
pub struct Inputs<'a> {
    /// The From domain (None: no single From domain).
    pub from_domain: Option<&'a str>,
    /// The SPF-authenticated domain when SPF passed, and whether SPF hit a temporary error.
    pub spf_pass_domain: Option<&'a str>,
    pub spf_temperror: bool,
    /// The d= of every DKIM signature that passed, and of those that met a temporary error.
    pub dkim_pass_domains: Vec<&'a str>,
    pub dkim_temperror_domains: Vec<&'a str>,
}

/// Discovers the policy and evaluates it.
pub async fn check(dns: &Lookup, inputs: &Inputs<'_>) -> DmarcReport {
    let mut report = DmarcReport {
        domain: inputs.from_domain.map(str::to_string),
        org_domain: inputs.from_domain.map(org_domain),
        record_domain: None,
        record: None,
        policy: None,
        subdomain_policy: None,
        pct: None,
        adkim: None,
        aspf: None,
        result: "none".into(),
        spf_aligned: false,
        dkim_aligned: false,
        disposition: "none".into(),
        reason: None,
    };
    let Some(from) = inputs.from_domain else {
        report.reason =
            Some("the message has no single From domain, so DMARC does not apply".into());
        return report;
    };
    let from = from.to_ascii_lowercase();
    let org = org_domain(&from);
    let mut found = None;
    for at in std::iter::once(from.clone()).chain((org != from).then(|| org.clone())) {
        match record(dns, &at).await {
            Ok(Some(r)) => {
                found = Some((at, r));
                break;
            }
            Ok(None) => {}
            Err(e) => {
                report.result = "temperror".into();
                report.reason = Some(e);
                return report;
            }
        }
    }
    let Some((at, (text, record))) = found else {
        report.reason = Some(if org == from {
            format!("no DMARC record at _dmarc.{from}")
        } else {
            format!("no DMARC record at _dmarc.{from} nor at _dmarc.{org}")
        });
        return report;
    };
    let tags = tags(&text);
    let pct = match tags.iter().find(|(k, _)| k == "pct") {
        Some((_, v)) => v.parse::<u8>().ok().filter(|p| *p <= 100).unwrap_or(100),
        None => 100,
    };
    let sp_given = tags.iter().any(|(k, _)| k == "sp");
    report.record_domain = Some(at.clone());
    report.record = Some(text.clone());
    report.policy = Some(word(record.p).into());
    report.subdomain_policy = sp_given.then(|| word(record.sp).into());
    report.pct = Some(pct);
    report.adkim = Some(alignment(record.adkim).into());
    report.aspf = Some(alignment(record.aspf).into());
    // A record without a valid p= counts as p=none (RFC 7489 6.6.3) when it has rua=.
    let p = match record.p {
        Policy::Unspecified if !record.rua.is_empty() => Policy::None,
        Policy::Unspecified => {
            report.result = "permerror".into();
            report.reason = Some(format!("the record at _dmarc.{at} has no valid p= tag"));
            return report;
        }
        p => p,
    };
    // The record found at the organizational domain applies sp= (when given) to a subdomain.
    let policy = if at != from && sp_given { record.sp } else { p };

    report.spf_aligned = inputs
        .spf_pass_domain
        .is_some_and(|d| aligned(d, &from, record.aspf));
    report.dkim_aligned = inputs
        .dkim_pass_domains
        .iter()
        .any(|d| aligned(d, &from, record.adkim));
    if report.spf_aligned || report.dkim_aligned {
        report.result = "pass".into();
        report.reason = Some(match (report.spf_aligned, report.dkim_aligned) {
            (true, true) => "SPF and DKIM pass aligned with the From domain".into(),
            (true, false) => "SPF passes aligned with the From domain".into(),
            _ => "DKIM passes aligned with the From domain".into(),
        });
        return report;
    }
    let temp = (inputs.spf_temperror)
        || inputs
            .dkim_temperror_domains
            .iter()
            .any(|d| aligned(d, &from, record.adkim));
    if temp {
        report.result = "temperror".into();
        report.reason = Some(
            "an aligned SPF or DKIM check met a temporary DNS error, so DMARC can neither pass nor fail"
                .into(),
        );
        return report;
    }
    report.result = "fail".into();
    report.disposition = word(policy).into();
    let mut why = format!(
        "neither SPF nor DKIM passes aligned ({} SPF, {} DKIM) with {from}",
        alignment(record.aspf),
        alignment(record.adkim)
    );
    if pct < 100 && policy != Policy::None {
        let lower = match policy {
            Policy::Reject => "quarantine",
            _ => "none",
        };
        why.push_str(&format!(
            "; pct={pct}: the policy applies to {pct}% of failing messages, the others get {lower}"
        ));
    }
    report.reason = Some(why);
    report
}

/// The single DMARC record at `_dmarc.<domain>`: `Ok(None)` when there is none (or several,
/// which RFC 7489 6.6.3 treats as none); `Err` on a temporary failure.
async fn record(dns: &Lookup, domain: &str) -> Result<Option<(String, Dmarc)>, String> {
    let name = format!("_dmarc.{domain}");
    let texts = match dns.txt(&name).await {
        Answer::Found(t) => t,
        Answer::Void => return Ok(None),
        Answer::Failed(e) => return Err(e),
    };
    let mut records: Vec<(String, Dmarc)> = texts
        .iter()
        .filter(|t| t.starts_with(b"v=DMARC1"))
        .filter_map(|t| {
            Dmarc::parse(t)
                .ok()
                .map(|d| (String::from_utf8_lossy(t).into_owned(), d))
        })
        .collect();
    Ok(if records.len() == 1 {
        records.pop()
    } else {
        None
    })
}

/// The tag=value pairs of a record, names lower-case.
fn tags(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

pub fn word(p: Policy) -> &'static str {
    match p {
        Policy::None | Policy::Unspecified => "none",
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
    }
}

fn alignment(a: Alignment) -> &'static str {
    match a {
        Alignment::Relaxed => "relaxed",
        Alignment::Strict => "strict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizational_domains() {
        assert_eq!(org_domain("mail.bi.example.com"), "example.com");
        assert_eq!(org_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("Example.COM."), "example.com");
    }

    #[test]
    fn alignment_modes() {
        assert!(aligned(
            "bounce.example.com",
            "example.com",
            Alignment::Relaxed
        ));
        assert!(!aligned(
            "bounce.example.com",
            "example.com",
            Alignment::Strict
        ));
        assert!(aligned("EXAMPLE.com", "example.com.", Alignment::Strict));
        assert!(!aligned("example.net", "example.com", Alignment::Relaxed));
        assert!(!aligned("a.co.uk", "b.co.uk", Alignment::Relaxed));
    }

    #[test]
    fn tag_list() {
        assert_eq!(
            tags("v=DMARC1; p=reject; PCT = 20"),
            vec![
                ("v".into(), "DMARC1".into()),
                ("p".into(), "reject".into()),
                ("pct".into(), "20".into())
            ]
        );
    }
}
