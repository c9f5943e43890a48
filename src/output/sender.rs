//! The text report of `smtpcheck sender`: one line per check, the bulk-sender checklist, the
//! verdict and the next steps. Formatting only.

use crate::output::style::Paint;
use crate::sender::report::{SenderReport, SpfReport};
use std::fmt::Write as _;

/// The whole text report.
pub fn render(r: &SenderReport, paint: Paint) -> String {
    let mut s = String::new();
    let word = |w: &str| -> String {
        match w {
            "pass" => paint.good(w),
            "none" | "neutral" => paint.note(w),
            "temperror" | "softfail" => paint.partial(w),
            _ => paint.bad(w),
        }
    };
    let _ = writeln!(
        s,
        "{} {} (from {})",
        paint.heading("Sender check for IP"),
        r.ip,
        r.ip_source
    );
    let _ = writeln!(
        s,
        "  HELO {}   MAIL FROM <{}>   From domain {}",
        r.helo.as_deref().unwrap_or("(not given)"),
        r.mail_from,
        r.from_domain.as_deref().unwrap_or("(none)")
    );
    for n in &r.notes {
        let _ = writeln!(s, "  {}", paint.note(&format!("note: {n}")));
    }
    let _ = writeln!(s);
    spf_line(&mut s, "SPF (MAIL FROM)", &r.spf, &word);
    if let Some(h) = &r.helo_spf {
        spf_line(&mut s, "SPF (HELO)", h, &word);
    }
    if r.dkim.is_empty() {
        let _ = writeln!(
            s,
            "DKIM             {}: the message is not signed",
            word("none")
        );
    }
    for k in &r.dkim {
        let _ = writeln!(
            s,
            "DKIM             {} d={} s={} {}{}",
            word(&k.result),
            k.domain,
            k.selector,
            k.algorithm,
            k.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "                 signed: {}", k.signed_headers.join(":"));
    }
    if let Some(a) = &r.arc {
        let _ = writeln!(
            s,
            "ARC              {} ({} instance(s)){}",
            word(&a.result),
            a.instances,
            a.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    let d = &r.dmarc;
    let _ = writeln!(
        s,
        "DMARC            {} for {} → disposition {}",
        word(&d.result),
        d.domain.as_deref().unwrap_or("(no From domain)"),
        d.disposition
    );
    if let Some(rec) = &d.record {
        let _ = writeln!(
            s,
            "                 _dmarc.{}: {rec}",
            d.record_domain.as_deref().unwrap_or("")
        );
        let _ = writeln!(
            s,
            "                 p={} sp={} pct={} adkim={} aspf={}; SPF aligned: {}, DKIM aligned: {}",
            d.policy.as_deref().unwrap_or("-"),
            d.subdomain_policy.as_deref().unwrap_or("(p)"),
            d.pct.unwrap_or(100),
            d.adkim.as_deref().unwrap_or("-"),
            d.aspf.as_deref().unwrap_or("-"),
            yes(d.spf_aligned),
            yes(d.dkim_aligned)
        );
    }
    if let Some(why) = &d.reason {
        let _ = writeln!(s, "                 {why}");
    }
    let i = &r.iprev;
    let _ = writeln!(
        s,
        "iprev            {} {} → {}{}",
        word(&i.result),
        i.ip,
        if i.ptr.is_empty() {
            "no PTR".to_string()
        } else {
            i.ptr.join(", ")
        },
        i.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    if let (Some(h), Some(m), Some(f)) = (&r.helo, i.helo_matches_ptr, i.helo_resolves_to_ip) {
        let _ = writeln!(
            s,
            "                 HELO {h}: {} the PTR name, {} to {}",
            if m { "is" } else { "is not" },
            if f { "resolves" } else { "does not resolve" },
            i.ip
        );
    }
    for l in &r.dnsbl {
        let state = if l.listed {
            paint.bad(&format!("listed ({})", l.codes.join(", ")))
        } else if l.error.is_some() {
            paint.partial("unknown")
        } else {
            paint.good("not listed")
        };
        let extra = l
            .reason
            .as_deref()
            .or(l.error.as_deref())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let _ = writeln!(s, "DNSBL            {} {state}{extra}", l.zone);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{}",
        paint.heading("Bulk-sender checklist (Gmail/Yahoo 2024, Outlook.com 2025)")
    );
    for (check, passed) in &r.bulk.checks {
        let mark = if *passed {
            paint.good("[x]")
        } else {
            paint.bad("[ ]")
        };
        let _ = writeln!(s, "  {mark} {check}");
    }
    for n in &r.bulk.notes {
        let _ = writeln!(s, "  {}", paint.note(n));
    }
    if !r.next_steps.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", paint.heading("Next steps"));
        for (n, step) in r.next_steps.iter().enumerate() {
            let _ = writeln!(s, "  {}. {step}", n + 1);
        }
    }
    let _ = writeln!(s);
    let verdict = format!("Verdict: {} (exit {})", r.verdict, r.exit.code());
    let _ = writeln!(
        s,
        "{}",
        if r.exit.code() == 0 {
            paint.good(&verdict)
        } else {
            paint.bad(&verdict)
        }
    );
    s
}

fn spf_line(s: &mut String, label: &str, spf: &SpfReport, word: &dyn Fn(&str) -> String) {
    let _ = writeln!(
        s,
        "{label:<16} {} for {}{}",
        word(&spf.result),
        spf.domain,
        spf.mechanism
            .as_deref()
            .map(|m| format!(" by {m}"))
            .unwrap_or_default()
    );
    if let Some(rec) = &spf.record {
        let _ = writeln!(s, "                 record: {rec}");
    }
    let _ = writeln!(
        s,
        "                 {} of 10 DNS lookups, {} of 2 void lookups{}{}",
        spf.lookups,
        spf.void_lookups,
        spf.reason
            .as_deref()
            .map(|r| format!("; {r}"))
            .unwrap_or_default(),
        spf.explanation
            .as_deref()
            .map(|e| format!("; explanation: {e}"))
            .unwrap_or_default()
    );
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The compact block of `send --check-sender`'s text report: the IP and where it came from, one
/// line of results, the verdict and the next steps (the full report is `smtpcheck sender`'s).
pub fn compact(r: &SenderReport, paint: Paint) -> String {
    let mut s = String::new();
    let word = |w: &str| -> String {
        match w {
            "pass" | "none" => w.to_string(),
            _ => paint.bad(w),
        }
    };
    let _ = writeln!(
        s,
        "{}",
        paint.heading(&format!(
            "Sender check (IP {} from {}, HELO {}, MAIL FROM <{}>):",
            r.ip,
            r.ip_source,
            r.helo.as_deref().unwrap_or("(none)"),
            r.mail_from
        ))
    );
    let dkim = if r.dkim.is_empty() {
        "none (not signed)".to_string()
    } else {
        r.dkim
            .iter()
            .map(|k| format!("{} d={}", word(&k.result), k.domain))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!(
        "  SPF {} ({})  DKIM {dkim}  DMARC {} → {}  iprev {}",
        word(&r.spf.result),
        r.spf.domain,
        word(&r.dmarc.result),
        r.dmarc.disposition,
        word(&r.iprev.result)
    );
    if let Some(h) = &r.helo_spf {
        line.push_str(&format!("  HELO SPF {}", word(&h.result)));
    }
    if let Some(a) = &r.arc {
        line.push_str(&format!("  ARC {}", word(&a.result)));
    }
    let listed: Vec<&str> = r
        .dnsbl
        .iter()
        .filter(|l| l.listed)
        .map(|l| l.zone.as_str())
        .collect();
    if !r.dnsbl.is_empty() {
        line.push_str(&if listed.is_empty() {
            "  DNSBL not listed".to_string()
        } else {
            format!(
                "  DNSBL {}",
                paint.bad(&format!("listed on {}", listed.join(", ")))
            )
        });
    }
    let _ = writeln!(s, "{line}");
    for n in &r.notes {
        let _ = writeln!(s, "  {}", paint.note(&format!("note: {n}")));
    }
    let verdict = format!("{} (sender exit {})", r.verdict, r.exit.code());
    let _ = writeln!(
        s,
        "  {}",
        if r.exit.code() == 0 {
            paint.good(&verdict)
        } else {
            paint.bad(&verdict)
        }
    );
    for step in &r.next_steps {
        let _ = writeln!(s, "  - {step}");
    }
    s
}
