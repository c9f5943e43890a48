//! The strict JSON mirror of the `sender` report: an unknown or missing key fails the test.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSenderReport {
    pub ip: String,
    pub ip_source: String,
    pub helo: Option<String>,
    pub mail_from: String,
    pub from_domain: Option<String>,
    pub spf: JsonSpf,
    pub helo_spf: Option<JsonSpf>,
    pub dkim: Vec<JsonDkim>,
    pub arc: Option<JsonArc>,
    pub dmarc: JsonDmarc,
    pub iprev: JsonIprev,
    pub dnsbl: Vec<JsonDnsbl>,
    pub bulk: JsonBulk,
    pub verdict: String,
    pub next_steps: Vec<String>,
    pub notes: Vec<String>,
    pub exit: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpf {
    pub domain: String,
    pub result: String,
    pub record: Option<String>,
    pub mechanism: Option<String>,
    pub lookups: u32,
    pub void_lookups: u32,
    pub explanation: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDkim {
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub result: String,
    pub reason: Option<String>,
    pub signed_headers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonArc {
    pub result: String,
    pub instances: usize,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDmarc {
    pub domain: Option<String>,
    pub org_domain: Option<String>,
    pub record_domain: Option<String>,
    pub record: Option<String>,
    pub policy: Option<String>,
    pub subdomain_policy: Option<String>,
    pub pct: Option<u8>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub result: String,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
    pub disposition: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonIprev {
    pub ip: String,
    pub ptr: Vec<String>,
    pub result: String,
    pub helo_matches_ptr: Option<bool>,
    pub helo_resolves_to_ip: Option<bool>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDnsbl {
    pub zone: String,
    pub listed: bool,
    pub codes: Vec<String>,
    pub reason: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBulk {
    pub checks: BTreeMap<String, bool>,
    pub notes: Vec<String>,
}

/// The result words of RFC 8601 each field may hold.
const SPF_WORDS: [&str; 7] = [
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
];
const AUTH_WORDS: [&str; 7] = [
    "pass",
    "fail",
    "neutral",
    "none",
    "temperror",
    "permerror",
    "policy",
];

impl JsonSenderReport {
    /// Parses `v` strictly and checks the result words and the consistency of the fields.
    pub fn check(v: &serde_json::Value) -> JsonSenderReport {
        let r: JsonSenderReport = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("sender report does not match the schema: {e}\n{v:#}"));
        for spf in std::iter::once(&r.spf).chain(r.helo_spf.as_ref()) {
            assert!(SPF_WORDS.contains(&spf.result.as_str()), "{}", spf.result);
        }
        for k in &r.dkim {
            assert!(AUTH_WORDS.contains(&k.result.as_str()), "{}", k.result);
            assert_eq!(k.reason.is_none(), k.result == "pass", "{k:?}");
        }
        assert!(AUTH_WORDS.contains(&r.dmarc.result.as_str()));
        assert!(AUTH_WORDS.contains(&r.iprev.result.as_str()));
        assert!(["none", "quarantine", "reject"].contains(&r.dmarc.disposition.as_str()));
        assert_eq!(r.iprev.ip, r.ip);
        assert!(!r.verdict.is_empty());
        for key in [
            "spf_pass",
            "dkim_pass",
            "dmarc_record",
            "dmarc_aligned",
            "fcrdns",
            "list_unsubscribe_one_click",
            "list_unsubscribe_signed",
            "single_from",
            "single_date",
            "single_message_id",
        ] {
            assert!(r.bulk.checks.contains_key(key), "bulk check {key} missing");
        }
        r
    }
}
