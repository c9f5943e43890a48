//! SPF (RFC 7208) evaluated with a trace: the result, the record, the mechanism that decided, the
//! DNS-lookup count against the limit of 10 and the void lookups against the limit of 2.
//!
//! mail-auth parses each record and expands its macros; this walk asks the DNS itself so that it
//! can say which term decided and how many lookups it took (mail-auth's `check_host` reports only
//! the result, and does not apply the void-lookup limit of RFC 7208 4.6.4).

use super::lookup::{valid_domain, Answer, Lookup};
use super::report::SpfReport;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf, Variables};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// DNS-querying terms allowed per check (RFC 7208 4.6.4).
pub const LOOKUP_LIMIT: u32 = 10;
/// Lookups returning no records allowed per check (RFC 7208 4.6.4).
pub const VOID_LIMIT: u32 = 2;

/// An SPF result (RFC 7208 2.6, the words of RFC 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn word(self) -> &'static str {
        match self {
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

fn qualified(q: &Qualifier) -> SpfResult {
    match q {
        Qualifier::Pass => SpfResult::Pass,
        Qualifier::Fail => SpfResult::Fail,
        Qualifier::SoftFail => SpfResult::SoftFail,
        Qualifier::Neutral => SpfResult::Neutral,
    }
}

/// One check_host() outcome, with what decided it.
struct Outcome {
    result: SpfResult,
    /// The deciding term, with the path through include/redirect.
    mechanism: Option<String>,
    /// Why an error result was reached.
    reason: Option<String>,
}

impl Outcome {
    fn of(result: SpfResult, mechanism: Option<String>) -> Outcome {
        Outcome {
            result,
            mechanism,
            reason: None,
        }
    }
    fn error(result: SpfResult, reason: String) -> Outcome {
        Outcome {
            result,
            mechanism: None,
            reason: Some(reason),
        }
    }
}

/// The state of one evaluation.
struct Walk<'a> {
    dns: &'a Lookup,
    ip: IpAddr,
    sender: String,
    helo: String,
    lookups: u32,
    voids: u32,
    /// The record of the domain checked first.
    top_record: Option<String>,
    explanation: Option<String>,
}

/// Evaluates SPF for `domain` (the MAIL FROM domain, or the HELO name) and the connecting `ip`.
/// `sender` is the MAIL FROM address (`postmaster@helo` for the HELO check).
pub async fn check(dns: &Lookup, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> SpfReport {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut walk = Walk {
        dns,
        ip,
        sender: sender.to_string(),
        helo: helo.to_string(),
        lookups: 0,
        voids: 0,
        top_record: None,
        explanation: None,
    };
    let outcome = if valid_domain(&domain) && domain.contains('.') {
        walk.check_host(domain.clone(), true).await
    } else {
        Outcome::error(
            SpfResult::None,
            format!("{domain:?} is not a fully qualified domain name"),
        )
    };
    SpfReport {
        domain,
        result: outcome.result.word().to_string(),
        record: walk.top_record,
        mechanism: outcome.mechanism,
        lookups: walk.lookups,
        void_lookups: walk.voids,
        explanation: walk.explanation,
        reason: outcome.reason,
    }
}

type Boxed<'b> = Pin<Box<dyn Future<Output = Outcome> + 'b>>;

impl Walk<'_> {
    /// check_host() of RFC 7208 4 for `domain`.
    fn check_host(&mut self, domain: String, top: bool) -> Boxed<'_> {
        Box::pin(async move {
            let (text, record) = match self.record(&domain).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Outcome::error(
                        SpfResult::None,
                        format!("{domain} publishes no SPF record"),
                    )
                }
                Err(o) => return o,
            };
            if top {
                self.top_record = Some(text.clone());
            }
            let terms = directive_terms(&text);
            for (i, d) in record.directives.iter().enumerate() {
                let term = terms
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("directive {}", i + 1));
                let matched = match self.matches(&d.mechanism, &domain, &term).await {
                    Ok(m) => m,
                    Err(o) => return o,
                };
                if let Some(inner) = matched {
                    let result = qualified(&d.qualifier);
                    if result == SpfResult::Fail {
                        self.explain(&record, &domain).await;
                    }
                    let shown = match inner {
                        Some(inner) => format!("{term} ({inner})"),
                        None => term,
                    };
                    return Outcome::of(result, Some(in_domain(&shown, &domain, top)));
                }
            }
            if let Some(target) = &record.redirect {
                if let Err(o) = self.count(&domain) {
                    return o;
                }
                let target = self.expand(target, &domain).await;
                if !valid_domain(&target) {
                    return Outcome::error(
                        SpfResult::PermError,
                        format!("redirect={target} in {domain} is not a valid domain name"),
                    );
                }
                let inner = self.check_host(target.clone(), false).await;
                if inner.result == SpfResult::None {
                    return Outcome::error(
                        SpfResult::PermError,
                        format!("redirect={target} in {domain}: {target} publishes no SPF record"),
                    );
                }
                return Outcome {
                    mechanism: Some(format!(
                        "redirect={target} → {}",
                        inner.mechanism.as_deref().unwrap_or("no match: neutral")
                    )),
                    ..inner
                };
            }
            Outcome::of(
                SpfResult::Neutral,
                Some(in_domain(
                    "no mechanism matched (default neutral)",
                    &domain,
                    top,
                )),
            )
        })
    }

    /// The single SPF record of `domain`: `Ok(None)` when it has none.
    async fn record(&mut self, domain: &str) -> Result<Option<(String, Spf)>, Outcome> {
        let texts = match self.dns.txt(domain).await {
            Answer::Found(t) => t,
            Answer::Void => return Ok(None),
            Answer::Failed(e) => return Err(Outcome::error(SpfResult::TempError, e)),
        };
        let spf: Vec<Vec<u8>> = texts.into_iter().filter(|t| is_spf(t)).collect();
        match spf.as_slice() {
            [] => Ok(None),
            [one] => {
                let text = String::from_utf8_lossy(one).into_owned();
                if let Some(why) = bad_term(&text) {
                    return Err(Outcome::error(
                        SpfResult::PermError,
                        format!("the SPF record of {domain} is invalid: {why}"),
                    ));
                }
                match Spf::parse(one) {
                    Ok(r) => Ok(Some((text, r))),
                    Err(e) => Err(Outcome::error(
                        SpfResult::PermError,
                        format!("the SPF record of {domain} does not parse ({e}): {text}"),
                    )),
                }
            }
            more => Err(Outcome::error(
                SpfResult::PermError,
                format!(
                    "{domain} publishes {} SPF records; there must be exactly one",
                    more.len()
                ),
            )),
        }
    }

    /// Counts one DNS-querying term; past the limit, the permerror.
    fn count(&mut self, domain: &str) -> Result<(), Outcome> {
        self.lookups += 1;
        if self.lookups > LOOKUP_LIMIT {
            return Err(Outcome::error(
                SpfResult::PermError,
                format!("more than {LOOKUP_LIMIT} DNS lookups (the limit was reached in {domain})"),
            ));
        }
        Ok(())
    }

    /// Counts a void lookup; past the limit, the permerror.
    fn void(&mut self, name: &str) -> Result<(), Outcome> {
        self.voids += 1;
        if self.voids > VOID_LIMIT {
            return Err(Outcome::error(
                SpfResult::PermError,
                format!("more than {VOID_LIMIT} void lookups (the last: {name})"),
            ));
        }
        Ok(())
    }

    /// Whether `mechanism` matches: `Some(detail)` when it does, with the path inside an include.
    async fn matches(
        &mut self,
        mechanism: &Mechanism,
        domain: &str,
        term: &str,
    ) -> Result<Option<Option<String>>, Outcome> {
        let ip = self.ip;
        let yes = |b: bool| if b { Some(None) } else { None };
        match mechanism {
            Mechanism::All => Ok(Some(None)),
            Mechanism::Ip4 { addr, mask } => Ok(yes(match ip {
                IpAddr::V4(ip) => u32::from(ip) & mask == u32::from(*addr) & mask,
                IpAddr::V6(_) => false,
            })),
            Mechanism::Ip6 { addr, mask } => Ok(yes(match ip {
                IpAddr::V6(ip) => u128::from(ip) & mask == u128::from(*addr) & mask,
                IpAddr::V4(_) => false,
            })),
            Mechanism::A {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.count(domain)?;
                let target = self.expand(macro_string, domain).await;
                self.target_ok(&target, term)?;
                let found = self.addresses(&target, true).await?;
                Ok(yes(found
                    .iter()
                    .any(|a| in_net(ip, *a, *ip4_mask, *ip6_mask))))
            }
            Mechanism::Mx {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.count(domain)?;
                let target = self.expand(macro_string, domain).await;
                self.target_ok(&target, term)?;
                let hosts = match self.dns.mx(&target).await {
                    Answer::Found(h) => h,
                    Answer::Void => {
                        self.void(&target)?;
                        return Ok(None);
                    }
                    Answer::Failed(e) => return Err(Outcome::error(SpfResult::TempError, e)),
                };
                let hosts: Vec<String> = hosts.into_iter().filter(|h| !h.is_empty()).collect();
                if hosts.len() > 10 {
                    return Err(Outcome::error(
                        SpfResult::PermError,
                        format!("{term}: {target} has more than 10 MX records"),
                    ));
                }
                for host in hosts {
                    let found = self.addresses(&host, false).await?;
                    if found.iter().any(|a| in_net(ip, *a, *ip4_mask, *ip6_mask)) {
                        return Ok(Some(Some(format!("MX host {host}"))));
                    }
                }
                Ok(None)
            }
            Mechanism::Ptr { macro_string } => {
                self.count(domain)?;
                let target = self.expand(macro_string, domain).await.to_ascii_lowercase();
                let validated = self.validated_names().await;
                Ok(validated
                    .into_iter()
                    .find(|n| n == &target || n.ends_with(&format!(".{target}")))
                    .map(|n| Some(format!("validated PTR {n}"))))
            }
            Mechanism::Exists { macro_string } => {
                self.count(domain)?;
                let target = self.expand(macro_string, domain).await;
                self.target_ok(&target, term)?;
                match self.dns.a(&target).await {
                    Answer::Found(_) => Ok(Some(None)),
                    Answer::Void => {
                        self.void(&target)?;
                        Ok(None)
                    }
                    Answer::Failed(e) => Err(Outcome::error(SpfResult::TempError, e)),
                }
            }
            Mechanism::Include { macro_string } => {
                self.count(domain)?;
                let target = self.expand(macro_string, domain).await;
                self.target_ok(&target, term)?;
                let inner = self.check_host(target.clone(), false).await;
                match inner.result {
                    SpfResult::Pass => Ok(Some(inner.mechanism)),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(None),
                    SpfResult::TempError | SpfResult::PermError => Err(inner),
                    SpfResult::None => Err(Outcome::error(
                        SpfResult::PermError,
                        format!("{term} in {domain}: {target} publishes no SPF record"),
                    )),
                }
            }
        }
    }

    /// A target name that is not a valid domain name makes the check a permerror (RFC 7208 4.8).
    fn target_ok(&self, target: &str, term: &str) -> Result<(), Outcome> {
        if valid_domain(target) {
            Ok(())
        } else {
            Err(Outcome::error(
                SpfResult::PermError,
                format!("{term}: {target:?} is not a valid domain name"),
            ))
        }
    }

    /// The addresses of `name` in the IP's family; a void answer counts when `count_void`.
    async fn addresses(&mut self, name: &str, count_void: bool) -> Result<Vec<IpAddr>, Outcome> {
        match self.dns.addresses_like(name, self.ip).await {
            Answer::Found(a) => Ok(a),
            Answer::Void => {
                if count_void {
                    self.void(name)?;
                }
                Ok(Vec::new())
            }
            Answer::Failed(e) => Err(Outcome::error(SpfResult::TempError, e)),
        }
    }

    /// The IP's PTR names whose addresses include the IP (RFC 7208 5.5), at most 10 tried.
    async fn validated_names(&mut self) -> Vec<String> {
        let names = match self.dns.ptr(self.ip).await {
            Answer::Found(n) => n,
            _ => return Vec::new(),
        };
        let mut valid = Vec::new();
        for name in names.into_iter().take(10) {
            if let Answer::Found(a) = self.dns.addresses_like(&name, self.ip).await {
                if a.contains(&self.ip) {
                    valid.push(name);
                }
            }
        }
        valid
    }

    /// A domain-spec with its macros expanded (`domain` when there is none).
    async fn expand(&mut self, m: &Macro, domain: &str) -> String {
        let validated = if m.needs_ptr() {
            self.validated_names().await.into_iter().next()
        } else {
            None
        };
        let vars = self.vars(domain, validated.as_deref());
        let s = m.eval(&vars, domain, false).into_owned();
        s.trim_end_matches('.').to_ascii_lowercase()
    }

    fn vars<'v>(&'v self, domain: &'v str, validated: Option<&'v str>) -> Variables<'v> {
        let mut vars = Variables::new();
        vars.set_ip(&self.ip);
        vars.set_sender(self.sender.as_bytes());
        vars.set_domain(domain.as_bytes());
        vars.set_helo_domain(self.helo.as_bytes());
        vars.set_host_domain("smtpcheck.invalid".as_bytes());
        vars.set_validated_domain(validated.unwrap_or("unknown").as_bytes());
        vars
    }

    /// The explanation of a fail (`exp=`), when it can be had; its failures are ignored.
    async fn explain(&mut self, record: &Spf, domain: &str) {
        let Some(exp) = &record.exp else { return };
        let target = self.expand(exp, domain).await;
        if let Answer::Found(texts) = self.dns.txt(&target).await {
            if let [one] = texts.as_slice() {
                if let Ok(m) = Macro::parse(one) {
                    let vars = self.vars(domain, None);
                    self.explanation = Some(m.eval(&vars, domain, false).into_owned());
                }
            }
        }
    }
}

/// `true` for a TXT record that is an SPF version 1 record (RFC 7208 4.5).
fn is_spf(txt: &[u8]) -> bool {
    let head = b"v=spf1";
    txt.len() >= head.len()
        && txt[..head.len()].eq_ignore_ascii_case(head)
        && (txt.len() == head.len() || txt[head.len()] == b' ')
}

/// The first term of a record that RFC 7208 4.6.1 and 12 do not allow (an unknown mechanism, a
/// repeated `redirect=` or `exp=`): mail-auth's parser skips some of them, a receiver does not.
fn bad_term(record: &str) -> Option<String> {
    const MECHANISMS: [&str; 8] = ["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"];
    let (mut redirects, mut exps) = (0, 0);
    for term in record.split_ascii_whitespace().skip(1) {
        let name_end = term
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(term.len());
        if term.as_bytes().get(name_end) == Some(&b'=') {
            let name = term[..name_end].to_ascii_lowercase();
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Some(format!("{term:?} is not a valid modifier"));
            }
            match name.as_str() {
                "redirect" => redirects += 1,
                "exp" => exps += 1,
                _ => {}
            }
            continue;
        }
        let bare = term.trim_start_matches(['+', '-', '~', '?']);
        if bare.len() + 1 < term.len() {
            return Some(format!("{term:?} has more than one qualifier"));
        }
        let name = bare
            .split([':', '/'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !MECHANISMS.contains(&name.as_str()) {
            return Some(format!("unknown mechanism {term:?}"));
        }
    }
    if redirects > 1 || exps > 1 {
        return Some("redirect= or exp= appears more than once".into());
    }
    None
}

/// The record's directive terms in order (the modifiers and the version left out), as written.
fn directive_terms(record: &str) -> Vec<String> {
    record
        .split_ascii_whitespace()
        .skip(1)
        .filter(|t| {
            let name_end = t.find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)));
            !matches!(name_end.map(|i| t.as_bytes()[i]), Some(b'='))
        })
        .map(str::to_string)
        .collect()
}

/// A term as shown: with the domain whose record holds it, unless that is the checked one.
fn in_domain(term: &str, domain: &str, top: bool) -> String {
    if top {
        term.to_string()
    } else {
        format!("{term} in {domain}")
    }
}

/// Whether `ip` is within `net` under the CIDR masks of an a/mx mechanism.
fn in_net(ip: IpAddr, net: IpAddr, mask4: u32, mask6: u128) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) & mask4 == u32::from(b) & mask4,
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) & mask6 == u128::from(b) & mask6,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_records_are_told_apart() {
        assert!(is_spf(b"v=spf1 -all"));
        assert!(is_spf(b"V=SPF1"));
        assert!(!is_spf(b"v=spf10 -all"));
        assert!(!is_spf(b"v=DMARC1; p=none"));
    }

    #[test]
    fn invalid_terms_are_found() {
        assert_eq!(bad_term("v=spf1 ip4:192.0.2.1 include:a.test -all"), None);
        assert_eq!(bad_term("v=spf1 redirect=a.test foo=bar"), None);
        assert!(bad_term("v=spf1 frobnicate -all").is_some());
        assert!(bad_term("v=spf1 --all").is_some());
        assert!(bad_term("v=spf1 redirect=a.test redirect=b.test").is_some());
    }

    #[test]
    fn terms_skip_modifiers() {
        assert_eq!(
            directive_terms("v=spf1 ip4:192.0.2.1 include:a.test redirect=b.test exp=x.test -all"),
            vec!["ip4:192.0.2.1", "include:a.test", "-all"]
        );
        assert_eq!(
            directive_terms("v=spf1 exists:%{i}.x.test ~all"),
            vec!["exists:%{i}.x.test", "~all"]
        );
    }

    #[test]
    fn networks() {
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        assert!(in_net(ip, "192.0.2.1".parse().unwrap(), 0xffff_ff00, 0));
        assert!(!in_net(ip, "192.0.3.1".parse().unwrap(), 0xffff_ff00, 0));
        assert!(!in_net(ip, "::1".parse().unwrap(), 0, 0));
    }
}
