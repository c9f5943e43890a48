//! What the receiving side wrote into the message's header: `Authentication-Results` (RFC 8601),
//! the `Received` chain (RFC 5321 §4.4) and the spam filters' verdict headers. Pure parsing of the
//! header block the IMAP server returned; no I/O.

use serde::Serialize;
use std::collections::BTreeMap;

/// One `Authentication-Results` header field, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// The host that did the checks (`mx.google.com`); null when the field names none (Microsoft
    /// 365 writes none).
    pub authserv_id: Option<String>,
    /// Each check: `spf`, `dkim`, `dmarc`, `arc`, `compauth`… in the order written.
    pub results: Vec<AuthResult>,
}

/// One check of an `Authentication-Results` field: `dkim=pass header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResult {
    /// The method, lower case (`spf`, `dkim`, `dmarc`…).
    pub method: String,
    /// Its result, lower case (`pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`…).
    pub result: String,
    /// `reason=` when given.
    pub reason: Option<String>,
    /// The properties: `header.d`, `smtp.mailfrom`, `header.from`, `action`…
    pub properties: BTreeMap<String, String>,
}

/// One `Received` field: a hop of the message's way, in the order travelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The host that handed the message on (the `from` clause), with its address when the
    /// receiving host noted it: `client.example.com [192.0.2.1]`.
    pub from: Option<String>,
    /// The host that received it (the `by` clause).
    pub by: Option<String>,
    /// The protocol (`ESMTPS`, `SMTP`, `LMTP`, `HTTPS`…).
    pub with: Option<String>,
    /// When it was received, RFC 3339 in UTC; null when the date cannot be read.
    pub at: Option<String>,
    /// Milliseconds since the previous hop (null for the first hop, or when either date is
    /// missing); clocks of different hosts may disagree by a little.
    pub delay_ms: Option<i64>,
}

/// The spam filters' verdict headers found in the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spam {
    /// `true` when a header says spam (`X-Spam-Flag: YES`, `X-Spam-Status: Yes`, an SCL of 5 or
    /// more, `SFV:SPM`, an rspamd action other than `no action`); `false` when the headers say
    /// it is not; null when there are none.
    pub flagged: Option<bool>,
    /// The score, when a header gives one (`X-Spam-Score`, `score=` of `X-Spam-Status`,
    /// `X-Rspamd-Score`).
    pub score: Option<f64>,
    /// Each verdict header as found (unfolded), in message order.
    pub headers: Vec<HeaderField>,
}

/// A header field, name and unfolded value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// The name as written.
    pub name: String,
    /// The value, unfolded and trimmed.
    pub value: String,
}

/// The fields of a header block (up to the first empty line), unfolded, in order.
pub fn fields(block: &[u8]) -> Vec<HeaderField> {
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<HeaderField> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push(HeaderField {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            });
        }
    }
    for f in &mut out {
        f.value = f.value.trim().to_string();
    }
    out
}

/// The values of the fields called `name` (case-insensitive), in order.
pub fn values<'a>(fields: &'a [HeaderField], name: &'a str) -> impl Iterator<Item = &'a str> {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
}

/// Removes RFC 5322 comments (nested parentheses), keeping quoted strings intact.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits on `sep` outside quoted strings.
fn split_outside_quotes(value: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in value.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == sep && !quoted {
            parts.push(String::new());
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    parts
}

/// Whitespace-separated tokens, a quoted string being one token (its quotes removed), and
/// `name = value` written with spaces joined into one token.
fn tokens(value: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    for word in split_outside_quotes(value, ' ') {
        for w in split_outside_quotes(&word, '\t') {
            if !w.is_empty() {
                raw.push(w);
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        match out.last_mut() {
            Some(last) if last.ends_with('=') || t.starts_with('=') => last.push_str(&t),
            _ => out.push(t),
        }
    }
    out.into_iter().map(|t| t.replace('"', "")).collect()
}

/// Parses one `Authentication-Results` value. Returns `None` when it holds no result at all.
pub fn parse_auth_results(value: &str) -> Option<AuthResults> {
    let clean = strip_comments(value);
    let mut parts = split_outside_quotes(&clean, ';').into_iter();
    let head = parts.next()?;
    let head_tokens = tokens(&head);
    let mut results = Vec::new();
    // Microsoft 365 writes no authserv-id: the first part is already a result.
    let authserv_id = match head_tokens.first() {
        Some(t) if t.contains('=') => {
            results.extend(resinfo(&head_tokens));
            None
        }
        Some(t) => Some(t.to_ascii_lowercase()),
        None => None,
    };
    for part in parts {
        let t = tokens(&part);
        if t.len() == 1 && t[0].eq_ignore_ascii_case("none") {
            continue;
        }
        results.extend(resinfo(&t));
    }
    if authserv_id.is_none() && results.is_empty() {
        return None;
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// `method[/version]=result [reason=…] [ptype.property=value…]`.
fn resinfo(tokens: &[String]) -> Option<AuthResult> {
    let (first, rest) = tokens.split_first()?;
    let (method, result) = first.split_once('=')?;
    let method = method.split('/').next().unwrap_or(method).trim();
    if method.is_empty() || result.is_empty() {
        return None;
    }
    let mut reason = None;
    let mut properties = BTreeMap::new();
    for t in rest {
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if k.eq_ignore_ascii_case("reason") {
            reason = Some(v.to_string());
        } else if !k.is_empty() {
            properties.insert(k.to_ascii_lowercase(), v.to_string());
        }
    }
    Some(AuthResult {
        method: method.to_ascii_lowercase(),
        result: result.to_ascii_lowercase(),
        reason,
        properties,
    })
}

/// The `Received` chain in the order travelled (the header lists the last hop first), with the
/// delay of each hop.
pub fn hops(fields: &[HeaderField]) -> Vec<Hop> {
    let mut parsed: Vec<(Hop, Option<i64>)> = values(fields, "Received").map(received).collect();
    parsed.reverse();
    let mut previous: Option<i64> = None;
    let mut out = Vec::with_capacity(parsed.len());
    for (mut hop, at) in parsed {
        hop.delay_ms = match (previous, at) {
            (Some(p), Some(a)) => Some((a - p) * 1000),
            _ => None,
        };
        if at.is_some() {
            previous = at;
        }
        out.push(hop);
    }
    out
}

/// One `Received` value: its clauses and its date (Unix seconds).
fn received(value: &str) -> (Hop, Option<i64>) {
    let (clauses, date) = match value.rsplit_once(';') {
        Some((c, d)) => (c, Some(d.trim())),
        None => (value, None),
    };
    let at = date
        .and_then(mail_parser::DateTime::parse_rfc822)
        .filter(|d| d.year > 1970)
        .map(|d| d.to_timestamp());
    // The address the receiving host saw for `from` is in the comment that follows it:
    // `from name (rdns [192.0.2.1])`.
    let from_ip = clauses
        .split_once(" by ")
        .map_or(clauses, |(f, _)| f)
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(ip, _)| ip.trim().to_string())
        .filter(|ip| !ip.is_empty() && ip.len() < 64);
    let words = tokens(&strip_comments(clauses));
    let after = |key: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(key))
            .and_then(|i| words.get(i + 1))
            .map(|w| w.trim_end_matches('.').to_string())
    };
    let from = after("from").map(|f| match &from_ip {
        Some(ip) if !f.contains(ip.as_str()) => format!("{f} [{ip}]"),
        _ => f,
    });
    let hop = Hop {
        from,
        by: after("by"),
        with: after("with"),
        at: at.map(crate::time::rfc3339),
        delay_ms: None,
    };
    (hop, at)
}

/// The header names whose presence is a spam filter's verdict.
fn is_spam_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "x-spam-status"
            | "x-spam-flag"
            | "x-spam-score"
            | "x-spam-level"
            | "x-spam"
            | "x-ms-exchange-organization-scl"
            | "x-forefront-antispam-report"
            | "x-microsoft-antispam"
    ) || n.starts_with("x-rspamd-")
}

/// The spam verdict headers and what they say.
pub fn spam(fields: &[HeaderField]) -> Spam {
    let headers: Vec<HeaderField> = fields
        .iter()
        .filter(|f| is_spam_header(&f.name))
        .cloned()
        .collect();
    let mut flagged: Option<bool> = None;
    let mut score: Option<f64> = None;
    let mut say = |spam: bool| flagged = Some(flagged.unwrap_or(false) || spam);
    for f in &headers {
        let name = f.name.to_ascii_lowercase();
        let value = f.value.trim();
        let lower = value.to_ascii_lowercase();
        match name.as_str() {
            "x-spam-flag" | "x-spam" => say(lower.starts_with("yes") || lower == "true"),
            "x-spam-status" => {
                say(lower.starts_with("yes"));
                if let Some(s) = lower
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .find_map(|w| w.strip_prefix("score="))
                    .and_then(|s| s.parse().ok())
                {
                    score = score.or(Some(s));
                }
            }
            "x-spam-score" | "x-rspamd-score" => {
                if let Ok(s) = value.parse::<f64>() {
                    score = Some(s);
                }
            }
            "x-ms-exchange-organization-scl" => {
                if let Ok(scl) = value.parse::<i32>() {
                    say(scl >= 5);
                }
            }
            "x-forefront-antispam-report" => {
                for item in value.split(';') {
                    if let Some((k, v)) = item.split_once(':') {
                        let (k, v) = (k.trim(), v.trim());
                        if k.eq_ignore_ascii_case("SFV") {
                            say(v.eq_ignore_ascii_case("SPM"));
                        } else if k.eq_ignore_ascii_case("SCL") {
                            if let Ok(scl) = v.parse::<i32>() {
                                say(scl >= 5);
                            }
                        }
                    }
                }
            }
            "x-rspamd-action" => say(lower != "no action" && lower != "greylist"),
            _ => {}
        }
    }
    Spam {
        flagged,
        score,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> AuthResults {
        let block = format!("{name}: {value}\r\n\r\n");
        let f = fields(block.as_bytes());
        parse_auth_results(&f[0].value).expect("parsed")
    }

    fn summary(a: &AuthResults) -> Vec<(String, String)> {
        a.results
            .iter()
            .map(|r| (r.method.clone(), r.result.clone()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn gmail_authentication_results() {
        let a = one(
            "Authentication-Results",
            "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=AbCdEf12;\r\n       spf=pass (google.com: domain of alice@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=alice@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com",
        );
        assert_eq!(a.authserv_id.as_deref(), Some("mx.google.com"));
        assert_eq!(
            summary(&a),
            pairs(&[("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass")])
        );
        assert_eq!(a.results[0].properties["header.i"], "@example.com");
        assert_eq!(
            a.results[1].properties["smtp.mailfrom"],
            "alice@example.com"
        );
        assert_eq!(a.results[2].properties["header.from"], "example.com");
    }

    #[test]
    fn microsoft_365_authentication_results_without_authserv_id() {
        let a = one(
            "Authentication-Results",
            "spf=pass (sender IP is 209.85.128.54)\r\n smtp.mailfrom=example.com; dkim=pass (signature was verified)\r\n header.d=example.com;dmarc=pass action=none\r\n header.from=example.com;compauth=pass reason=100",
        );
        assert_eq!(a.authserv_id, None);
        assert_eq!(
            summary(&a),
            pairs(&[
                ("spf", "pass"),
                ("dkim", "pass"),
                ("dmarc", "pass"),
                ("compauth", "pass")
            ])
        );
        assert_eq!(a.results[0].properties["smtp.mailfrom"], "example.com");
        assert_eq!(a.results[2].properties["action"], "none");
        assert_eq!(a.results[3].reason.as_deref(), Some("100"));
    }

    #[test]
    fn opendkim_and_opendmarc_authentication_results() {
        let dkim = one(
            "Authentication-Results",
            "mail.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=default header.b=abcdEFGH",
        );
        assert_eq!(dkim.authserv_id.as_deref(), Some("mail.example.org"));
        assert_eq!(summary(&dkim), pairs(&[("dkim", "pass")]));
        assert_eq!(dkim.results[0].properties["header.s"], "default");
        let dmarc = one(
            "Authentication-Results",
            "mail.example.org; dmarc=fail (p=reject dis=quarantine) header.from=example.com",
        );
        assert_eq!(summary(&dmarc), pairs(&[("dmarc", "fail")]));
        let none = one("Authentication-Results", "mail.example.org 1; none");
        assert_eq!(none.authserv_id.as_deref(), Some("mail.example.org"));
        assert!(none.results.is_empty());
        let quoted = one(
            "Authentication-Results",
            "mail.example.org; spf=softfail reason=\"ip not listed; see policy\" smtp.mailfrom=a@b.example",
        );
        assert_eq!(summary(&quoted), pairs(&[("spf", "softfail")]));
        assert_eq!(
            quoted.results[0].reason.as_deref(),
            Some("ip not listed; see policy")
        );
    }

    #[test]
    fn rspamd_authentication_results_and_spam_headers() {
        let block = b"Authentication-Results: mx.example.net;\r\n\tdkim=pass header.d=example.com header.s=mail header.b=Xyz123;\r\n\tspf=pass (mx.example.net: domain of bob@example.com designates 192.0.2.10 as permitted sender) smtp.mailfrom=bob@example.com;\r\n\tdmarc=pass (policy=reject) header.from=example.com\r\nX-Rspamd-Queue-Id: 4F1A23C0042\r\nX-Rspamd-Server: mx1\r\nX-Rspamd-Action: add header\r\nX-Rspamd-Score: 7.42\r\nX-Spam: Yes\r\nSubject: hi\r\n\r\nbody: not a header\r\n";
        let f = fields(block);
        let a = parse_auth_results(values(&f, "authentication-results").next().unwrap()).unwrap();
        assert_eq!(a.authserv_id.as_deref(), Some("mx.example.net"));
        assert_eq!(
            summary(&a),
            pairs(&[("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass")])
        );
        let s = spam(&f);
        assert_eq!(s.flagged, Some(true));
        assert_eq!(s.score, Some(7.42));
        let names: Vec<&str> = s.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "X-Rspamd-Queue-Id",
                "X-Rspamd-Server",
                "X-Rspamd-Action",
                "X-Rspamd-Score",
                "X-Spam"
            ]
        );
        assert!(!f.iter().any(|h| h.name == "body"));
    }

    #[test]
    fn spamassassin_and_microsoft_verdicts() {
        let ham = fields(b"X-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED,DKIM_VALID\r\n\tautolearn=ham autolearn_force=no version=3.4.6\r\nX-Spam-Flag: NO\r\n\r\n");
        let s = spam(&ham);
        assert_eq!((s.flagged, s.score), (Some(false), Some(-0.1)));
        let ms = fields(b"X-MS-Exchange-Organization-SCL: 1\r\nX-Forefront-Antispam-Report: CIP:209.85.128.54;CTRY:US;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:mail.example.com;PTR:mail.example.com;CAT:NONE;SFS:;DIR:INB;\r\n\r\n");
        assert_eq!(spam(&ms).flagged, Some(false));
        let junk = fields(b"X-MS-Exchange-Organization-SCL: 5\r\nX-Forefront-Antispam-Report: SFV:SPM;SCL:5\r\n\r\n");
        assert_eq!(spam(&junk).flagged, Some(true));
        assert_eq!(spam(&fields(b"Subject: x\r\n\r\n")), Spam::default());
    }

    #[test]
    fn received_chain_in_travel_order_with_delays() {
        // Top first, as in the message: Gmail's last hop, then its first, then the sender's
        // Postfix.
        let block = b"Received: by 2002:a05:7300:5b0e:b0:16c:1f5b:7d0e with SMTP id o14csp123;\r\n        Tue, 3 Jun 2025 01:02:09 -0700 (PDT)\r\nReceived: from mail.example.org (mail.example.org. [192.0.2.1])\r\n        by mx.google.com with ESMTPS id x5si123.2025.06.03.01.02.05\r\n        for <bob@gmail.com>\r\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n        Tue, 03 Jun 2025 01:02:05 -0700 (PDT)\r\nReceived: from client.example.com (client.example.com [198.51.100.7])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\t key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256)\r\n\t(No client certificate requested)\r\n\tby mail.example.org (Postfix) with ESMTPS id 4ABC123\r\n\tfor <bob@gmail.com>; Tue,  3 Jun 2025 10:02:03 +0200 (CEST)\r\n\r\n";
        let h = hops(&fields(block));
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[0].from.as_deref(),
            Some("client.example.com [198.51.100.7]")
        );
        assert_eq!(h[0].by.as_deref(), Some("mail.example.org"));
        assert_eq!(h[0].with.as_deref(), Some("ESMTPS"));
        assert_eq!(h[0].at.as_deref(), Some("2025-06-03T08:02:03Z"));
        assert_eq!(h[0].delay_ms, None);
        assert_eq!(h[1].from.as_deref(), Some("mail.example.org [192.0.2.1]"));
        assert_eq!(h[1].by.as_deref(), Some("mx.google.com"));
        assert_eq!(h[1].delay_ms, Some(2000));
        assert_eq!(h[2].from, None);
        assert_eq!(h[2].with.as_deref(), Some("SMTP"));
        assert_eq!(h[2].delay_ms, Some(4000));
    }

    #[test]
    fn microsoft_365_received_and_a_bad_date() {
        let block = b"Received: from AM0PR02MB5678.eurprd02.prod.outlook.com (2603:10a6:208:1::12)\r\n by DB9PR02MB1234.eurprd02.prod.outlook.com with HTTPS; Tue, 3 Jun 2025\r\n 08:02:05 +0000\r\nReceived: from mail-wm1-f54.google.com (209.85.128.54) by\r\n AM0PR02MB5678.mail.protection.outlook.com (10.167.16.7) with Microsoft SMTP\r\n Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7633.15 via\r\n Frontend Transport; Tue, 3 Jun 2025 08:02:04 +0000\r\nReceived: from somewhere by here; not a date\r\n\r\n";
        let h = hops(&fields(block));
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].at, None);
        assert_eq!(h[1].from.as_deref(), Some("mail-wm1-f54.google.com"));
        assert_eq!(h[1].with.as_deref(), Some("Microsoft"));
        assert_eq!(h[1].delay_ms, None);
        assert_eq!(
            h[2].by.as_deref(),
            Some("DB9PR02MB1234.eurprd02.prod.outlook.com")
        );
        assert_eq!(h[2].delay_ms, Some(1000));
    }
}
