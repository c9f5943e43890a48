//! The `sender` report: plain `Serialize` data (the JSON schema is in README, "sender").

use crate::exit::Exit;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything `smtpcheck sender` found.
#[derive(Debug, Clone, Serialize)]
pub struct SenderReport {
    /// The sending IP checked.
    pub ip: String,
    /// Where the IP came from: `--ip`, `received` (the topmost Received header), `greeting`
    /// (the server's greeting or EHLO reply), `local` (the local end of the connection).
    pub ip_source: String,
    /// The HELO name checked (null: none given).
    pub helo: Option<String>,
    /// The envelope sender (MAIL FROM) checked; empty for the null sender.
    pub mail_from: String,
    /// The domain of the message's From address (null: none found).
    pub from_domain: Option<String>,
    /// SPF for the MAIL FROM domain (for the null sender: the HELO name, RFC 7208 2.4).
    pub spf: SpfReport,
    /// SPF for the HELO name (null: no --helo).
    pub helo_spf: Option<SpfReport>,
    /// Every DKIM signature.
    pub dkim: Vec<DkimReport>,
    /// The ARC chain (null: the message has no ARC header fields).
    pub arc: Option<ArcReport>,
    /// DMARC for the From domain.
    pub dmarc: DmarcReport,
    /// Reverse DNS of the IP.
    pub iprev: IprevReport,
    /// One entry per --dnsbl zone.
    pub dnsbl: Vec<DnsblReport>,
    /// The bulk-sender checklist (Gmail/Yahoo 2024, Outlook.com 2025).
    pub bulk: BulkReport,
    /// What a receiver enforcing DMARC would do, and why.
    pub verdict: String,
    /// What to change, most important first.
    pub next_steps: Vec<String>,
    /// Remarks on the check itself (where the IP came from, what was assumed).
    pub notes: Vec<String>,
    /// The process exit code.
    pub exit: Exit,
}

/// One SPF check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SpfReport {
    /// The domain checked.
    pub domain: String,
    /// pass, fail, softfail, neutral, none, temperror, permerror.
    pub result: String,
    /// The domain's SPF record (null: none).
    pub record: Option<String>,
    /// The term that decided, with the path through include/redirect (null: none decided).
    pub mechanism: Option<String>,
    /// DNS-querying terms evaluated (the limit is 10).
    pub lookups: u32,
    /// Lookups that found nothing (the limit is 2).
    pub void_lookups: u32,
    /// The domain's explanation of a fail (`exp=`).
    pub explanation: Option<String>,
    /// Why the result is none, temperror or permerror.
    pub reason: Option<String>,
}

/// One DKIM signature.
#[derive(Debug, Clone, Serialize)]
pub struct DkimReport {
    /// d=
    pub domain: String,
    /// s=
    pub selector: String,
    /// a= (rsa-sha256, ed25519-sha256, rsa-sha1).
    pub algorithm: String,
    /// pass, fail, neutral, temperror, permerror.
    pub result: String,
    /// Why it did not pass, precisely (null on pass).
    pub reason: Option<String>,
    /// h=, lower-case.
    pub signed_headers: Vec<String>,
}

/// The ARC chain.
#[derive(Debug, Clone, Serialize)]
pub struct ArcReport {
    /// pass, fail, none (RFC 8617); temperror when the chain could not be checked in time.
    pub result: String,
    /// The number of ARC sets (i=1..n).
    pub instances: usize,
    /// Why it did not pass.
    pub reason: Option<String>,
}

/// DMARC (RFC 7489).
#[derive(Debug, Clone, Serialize)]
pub struct DmarcReport {
    /// The From domain.
    pub domain: Option<String>,
    /// Its organizational domain (Public Suffix List).
    pub org_domain: Option<String>,
    /// Where the record was found (`_dmarc.` + this), null when none was.
    pub record_domain: Option<String>,
    /// The record (null: none).
    pub record: Option<String>,
    /// p=
    pub policy: Option<String>,
    /// sp= (null when the record has none: p applies to subdomains).
    pub subdomain_policy: Option<String>,
    /// pct= (100 when absent).
    pub pct: Option<u8>,
    /// adkim= and aspf=: relaxed or strict.
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    /// pass, fail, none, temperror, permerror.
    pub result: String,
    /// SPF passed for a domain aligned with the From domain.
    pub spf_aligned: bool,
    /// A DKIM signature passed for a domain aligned with the From domain.
    pub dkim_aligned: bool,
    /// What the receiver would do: none (deliver), quarantine, reject.
    pub disposition: String,
    /// Why, in words.
    pub reason: Option<String>,
}

/// Reverse DNS (RFC 8601 iprev).
#[derive(Debug, Clone, Serialize)]
pub struct IprevReport {
    /// The IP.
    pub ip: String,
    /// Its PTR names.
    pub ptr: Vec<String>,
    /// pass (a PTR name resolves back to the IP), fail, temperror, permerror.
    pub result: String,
    /// The HELO name is one of the PTR names (null: no HELO name).
    pub helo_matches_ptr: Option<bool>,
    /// The HELO name resolves to the IP (null: no HELO name).
    pub helo_resolves_to_ip: Option<bool>,
    /// Why it did not pass.
    pub reason: Option<String>,
}

/// One blocklist.
#[derive(Debug, Clone, Serialize)]
pub struct DnsblReport {
    /// The zone asked.
    pub zone: String,
    /// The IP is listed.
    pub listed: bool,
    /// The A records of the listing (127.0.0.x return codes).
    pub codes: Vec<String>,
    /// The TXT reason of the listing.
    pub reason: Option<String>,
    /// The lookup failed, or the list refused to answer (its codes then mean no listing).
    pub error: Option<String>,
}

/// The bulk-sender checklist.
#[derive(Debug, Clone, Serialize)]
pub struct BulkReport {
    /// Each requirement and whether it is met.
    pub checks: BTreeMap<String, bool>,
    /// What the requirements mean for this message.
    pub notes: Vec<String>,
}
