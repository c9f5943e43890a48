//! The text report: a transcript that reads like the telnet session (`->` sent, `<-` received,
//! `**` what went wrong), then a step summary and the verdict on the last line.

use crate::report::{Outcome, Report};
use crate::session::{Observer, Target};
use crate::transcript::{Stage, Step};
use std::io::{self, Write};
use std::sync::Mutex;

/// Prints the transcript as the session runs.
pub struct Live {
    out: Mutex<Box<dyn Write + Send>>,
    prefix: String,
}

impl Live {
    /// A live printer to stdout.
    pub fn stdout(prefix: Option<&str>) -> Self {
        Live::new(Box::new(io::stdout()), prefix)
    }

    /// A live printer to any writer; every line starts with `[prefix] ` when a prefix is given.
    pub fn new(out: Box<dyn Write + Send>, prefix: Option<&str>) -> Self {
        Live {
            out: Mutex::new(out),
            prefix: prefix.map(|p| format!("[{p}] ")).unwrap_or_default(),
        }
    }

    fn print(&self, text: &str) {
        let text = if self.prefix.is_empty() {
            text.to_string()
        } else {
            text.lines()
                .map(|l| format!("{}{l}\n", self.prefix))
                .collect()
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

impl Observer for Live {
    fn attempt_started(&self, target: &Target) {
        let addr = match target.address {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            std::net::IpAddr::V4(a) => a.to_string(),
        };
        let name = if target.host == target.address.to_string() {
            String::new()
        } else {
            format!(" ({})", target.host)
        };
        self.print(&format!("*  Connecting to {addr}:{}{name}\n", target.port));
    }

    fn step_started(&self, stage: Stage, sent: Option<&str>, octets: Option<u64>) {
        match (stage, sent) {
            (Stage::Message, _) => self.print(&format!(
                "-> [message data: {} bytes, CRLF-normalised and dot-stuffed]\n-> .\n",
                octets.unwrap_or(0)
            )),
            (_, Some(line)) => self.print(&format!("-> {line}\n")),
            _ => {}
        }
    }

    fn step_finished(&self, step: &Step) {
        self.print(&transcript_lines(step));
    }

    fn route_planned(&self, plan: &crate::plan::RoutePlan) {
        self.print(&plan_lines(plan));
    }

    fn moving_on(&self, why: &str) {
        self.print(&format!("*  Trying the next address: {why}\n"));
    }

    fn tls_established(&self, tls: &crate::tls::TlsInfo) {
        self.print(&format!("*  {}\n", tls_line(tls)));
    }

    fn note(&self, text: &str) {
        self.print(&format!("*  {text}\n"));
    }
}

/// The transcript line for an established TLS session: `TLS 1.3 TLS13_AES_256_GCM_SHA384,
/// certificate CN=mx.example.com issued by CN=R11, O=Let's Encrypt, C=US, verified: yes` (or
/// `verified: no (unknown issuer)`: the reason follows as a warning or in the verdict).
pub fn tls_line(tls: &crate::tls::TlsInfo) -> String {
    let cert = match (&tls.subject, &tls.issuer) {
        (Some(s), Some(i)) => format!("certificate {} issued by {i}", or_empty(s)),
        _ => "certificate not parsable".to_string(),
    };
    let verified = if tls.verified {
        "yes".to_string()
    } else {
        format!("no ({})", tls.verdict.as_str().replace('-', " "))
    };
    format!(
        "{} {}, {cert}, verified: {verified}",
        tls_version(&tls.version),
        tls.cipher_suite
    )
}

/// `TLSv1.3` as `TLS 1.3`.
fn tls_version(v: &str) -> String {
    v.strip_prefix("TLSv")
        .map(|n| format!("TLS {n}"))
        .unwrap_or_else(|| v.to_string())
}

fn or_empty(s: &str) -> &str {
    if s.is_empty() {
        "(empty subject)"
    } else {
        s
    }
}

/// The TLS facts of an attempt in the summary; nothing when the attempt used no TLS.
fn tls_summary(attempt: &crate::transcript::Attempt, out: &mut dyn Write) -> io::Result<()> {
    let Some(tls) = &attempt.tls else {
        return Ok(());
    };
    let unknown = "?".to_string();
    writeln!(
        out,
        "  TLS:         {} {} (--tls {})",
        tls_version(&tls.version),
        tls.cipher_suite,
        tls.mode.as_str()
    )?;
    let subject = tls.subject.as_deref().map_or("?", or_empty);
    writeln!(out, "  certificate: {subject}")?;
    if !tls.san.is_empty() {
        writeln!(out, "  names:       {}", tls.san.join(", "))?;
    }
    writeln!(
        out,
        "  issuer:      {}",
        tls.issuer.as_ref().unwrap_or(&unknown)
    )?;
    let days = match tls.days_left {
        Some(d) if d < 0 => format!(" (expired {} days ago)", -d),
        Some(d) => format!(" ({d} days left)"),
        None => String::new(),
    };
    writeln!(
        out,
        "  valid:       {} to {}{days}",
        tls.not_before.as_ref().unwrap_or(&unknown),
        tls.not_after.as_ref().unwrap_or(&unknown)
    )?;
    let matched = if tls.name_matched {
        "matches"
    } else {
        "does not match"
    };
    let verdict = if tls.verified {
        "yes".to_string()
    } else {
        format!(
            "no: {}",
            tls.reason.as_deref().unwrap_or(tls.verdict.as_str())
        )
    };
    writeln!(
        out,
        "  verified:    {verdict} (name {} {matched})",
        tls.name
    )
}

/// The DNS answers for a domain, as shown before its attempts (and by `smtpcheck mx`).
pub fn plan_lines(plan: &crate::plan::RoutePlan) -> String {
    dns_lines(
        &plan.domain,
        &plan.mx,
        plan.note.as_deref(),
        plan.failure.as_ref(),
    )
}

/// The DNS answers for a domain.
fn dns_lines(
    domain: &str,
    mx_hosts: &[crate::plan::MxHost],
    note: Option<&str>,
    failure: Option<&crate::transcript::Failure>,
) -> String {
    let mut s = format!(";; Mail hosts for {domain}\n");
    for mx in mx_hosts {
        let addrs: Vec<String> = mx.addresses.iter().map(|a| a.to_string()).collect();
        let addrs = if addrs.is_empty() {
            "-".to_string()
        } else {
            addrs.join(", ")
        };
        s.push_str(&format!(
            ";;   MX {:>5} {}  {addrs}",
            mx.preference, mx.host
        ));
        if let Some(note) = &mx.note {
            s.push_str(&format!("  ({note})"));
        }
        s.push('\n');
    }
    if let Some(note) = note {
        s.push_str(&format!(";;   {note}\n"));
    }
    if let Some(f) = failure {
        s.push_str(&format!(";;   {} ({})\n", f.reason, f.class.as_str()));
    }
    s
}

/// The text report of `smtpcheck mx`: each domain's DNS answers, probe results, and a verdict.
pub fn mx_report(report: &crate::mx::MxReport, out: &mut dyn Write) -> io::Result<()> {
    for d in &report.domains {
        write!(
            out,
            "{}",
            dns_lines(&d.domain, &d.mx, d.note.as_deref(), d.failure.as_ref())
        )?;
        for p in &d.probes {
            let greeting = p
                .steps
                .iter()
                .find(|s| s.stage == Stage::Greeting)
                .and_then(|s| s.reply.as_ref())
                .map(|r| r.lines.join(" / "));
            let problem = p.steps.iter().find(|s| !s.ok && s.stage != Stage::Quit);
            let status = match (problem, &greeting) {
                (Some(s), _) => format!(
                    "failed at {}: {}",
                    s.stage,
                    s.error
                        .clone()
                        .or_else(|| s.reply.as_ref().map(|r| r.lines.join(" / ")))
                        .unwrap_or_default()
                ),
                (None, Some(g)) => g.clone(),
                (None, None) => "no greeting".into(),
            };
            writeln!(
                out,
                ";;   probe {} [{}]:{}  {status}",
                p.host, p.address, p.port
            )?;
            if let Some(caps) = &p.capabilities {
                writeln!(out, ";;     EHLO: {}", caps.keywords.join(", "))?;
            }
        }
        let verdict = match d.exit {
            crate::exit::Exit::Delivered if d.probes.is_empty() => "usable mail host found",
            crate::exit::Exit::Delivered => "a mail host answered",
            crate::exit::Exit::Connect => "no mail host answered",
            _ => "no usable mail host",
        };
        writeln!(out, ";;   => {verdict}\n")?;
    }
    writeln!(
        out,
        "Verdict: {} of {} domain(s) usable (exit {})",
        report
            .domains
            .iter()
            .filter(|d| d.exit == crate::exit::Exit::Delivered)
            .count(),
        report.domains.len(),
        report.exit.code()
    )
}

/// The received side of a step as transcript lines.
fn transcript_lines(step: &Step) -> String {
    let mut s = String::new();
    if step.stage == Stage::Connect && step.ok {
        s.push_str(&format!("*  Connected in {}\n", fmt_ms(step.elapsed_ms)));
    }
    if let Some(reply) = &step.reply {
        for line in &reply.lines {
            s.push_str(&format!("<- {line}\n"));
        }
    }
    if let Some(err) = &step.error {
        s.push_str(&format!("** {err}\n"));
    }
    s
}

fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// One attempt's step table.
fn attempt_table(
    attempt: &crate::transcript::Attempt,
    i: usize,
    n: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let title = if n > 1 {
        format!("Attempt {} of {n}: ", i + 1)
    } else {
        String::new()
    };
    writeln!(
        out,
        "  {title}{} [{}]:{}",
        attempt.host, attempt.address, attempt.port
    )?;
    writeln!(
        out,
        "    {:<9} {:<5} {:<9} {:>10}  result",
        "step", "code", "enhanced", "time"
    )?;
    for step in &attempt.steps {
        let (code, enhanced) = match &step.reply {
            Some(r) => (
                r.code.to_string(),
                r.enhanced.clone().unwrap_or_else(|| "-".into()),
            ),
            None => ("-".into(), "-".into()),
        };
        let result = match (&step.error, step.ok) {
            (Some(e), _) => format!("failed: {e}"),
            (None, true) => "ok".to_string(),
            (None, false) => "failed".to_string(),
        };
        writeln!(
            out,
            "    {:<9} {:<5} {:<9} {:>10}  {result}",
            step.stage.as_str(),
            code,
            enhanced,
            fmt_ms(step.elapsed_ms)
        )?;
    }
    Ok(())
}

/// Writes the step summary, recipients, warnings and the verdict (the last line).
pub fn summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for route in &report.routes {
        writeln!(out)?;
        let name = match (&route.domain, &route.relay) {
            (Some(d), Some(relay)) => {
                format!("Route for {d}: MX hosts, then fallback smart host {relay}")
            }
            (Some(d), None) if d.starts_with('[') => {
                format!("Route for {d}: the address literal itself")
            }
            (Some(d), None) => format!("Route for {d}: MX hosts"),
            (None, Some(relay)) => format!("Route: smart host {relay}"),
            (None, None) => "Route".to_string(),
        };
        writeln!(
            out,
            "{name} ({}, exit {})",
            route.outcome.as_str(),
            route.exit.code()
        )?;
        if route.attempts.is_empty() {
            if let Some(f) = &route.failure {
                writeln!(out, "  no attempt made: {}", f.reason)?;
            }
        }
        for (i, attempt) in route.attempts.iter().enumerate() {
            attempt_table(attempt, i, route.attempts.len(), out)?;
            tls_summary(attempt, out)?;
        }
    }
    if !report.recipients.is_empty() {
        writeln!(out)?;
        writeln!(out, "Recipients:")?;
        for r in &report.recipients {
            let said = r
                .reply
                .as_ref()
                .map(|x| x.lines.join(" / "))
                .unwrap_or_else(|| "(not tried)".into());
            let mark = if r.accepted { "accepted" } else { "refused " };
            writeln!(out, "  {mark}  {}  {said}", r.address)?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        for w in &report.warnings {
            match w.strip_prefix("note: ") {
                Some(note) => writeln!(out, "Note: {note}")?,
                None => writeln!(out, "Warning: {w}")?,
            }
        }
    }
    writeln!(out)?;
    if let Some(f) = &report.failure {
        writeln!(out, "Cause:     {}", f.hint.cause)?;
        writeln!(out, "Next step: {}", f.hint.next_step)?;
    }
    writeln!(out, "{}", verdict(report))
}

/// The one-line verdict: outcome, where it failed, the server's words, and the exit code.
pub fn verdict(report: &Report) -> String {
    let total = report.recipients.len();
    let accepted = report.recipients.iter().filter(|r| r.accepted).count();
    let code = report.exit.code();
    match report.outcome {
        Outcome::Delivered => {
            let queued = report
                .queued_as
                .as_deref()
                .map(|q| format!(": {q}"))
                .unwrap_or_default();
            format!("Verdict: delivered, accepted for {accepted} of {total} recipient(s){queued} (exit {code})")
        }
        Outcome::Probed => {
            let rcpts = if total > 0 && report.recipients.iter().any(|r| r.reply.is_some()) {
                format!(", {accepted} of {total} recipient(s) accepted")
            } else {
                String::new()
            };
            format!("Verdict: probe succeeded{rcpts}; nothing was sent (exit {code})")
        }
        Outcome::Partial | Outcome::Failed => {
            let what = if report.outcome == Outcome::Partial {
                format!("partial, accepted for {accepted} of {total} recipient(s)")
            } else {
                "failed".to_string()
            };
            match &report.failure {
                Some(f) => format!(
                    "Verdict: {what} at {} ({}): {} (exit {code})",
                    f.stage,
                    f.class.as_str(),
                    f.reason
                ),
                None => format!("Verdict: {what} (exit {code})"),
            }
        }
    }
}

/// The first line of the text report: what is sent, from and to whom, through which route.
pub fn header(
    message: &crate::message::Message,
    envelope: &crate::message::Envelope,
    route: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let from = envelope
        .from
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let to: Vec<String> = envelope.recipients.iter().map(|a| a.to_string()).collect();
    writeln!(
        out,
        "smtpcheck: sending {} ({} bytes) from <{from}> to {} via {route}",
        message.path.display(),
        message.raw.len(),
        to.join(", ")
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use crate::transcript::{Failure, RecipientResult, Reply};

    fn reply(code: u16, line: &str) -> Reply {
        Reply {
            code,
            enhanced: crate::codec::enhanced_code(code, line),
            lines: vec![line.to_string()],
        }
    }

    #[test]
    fn verdict_is_the_last_line_and_quotes_the_server() {
        let mut r = Report::input_error("x".into(), Exit::BadInput, None, None);
        r.outcome = Outcome::Failed;
        r.exit = Exit::Rcpt;
        let rep = reply(550, "550 5.1.1 <bob@x>: Recipient address rejected");
        r.failure = Some(crate::report::Diagnosis::of(Failure::refused(
            Stage::Rcpt,
            &rep,
            "no recipient was accepted",
        )));
        r.recipients = vec![RecipientResult {
            address: "bob@x".into(),
            accepted: false,
            reply: Some(rep),
        }];
        let mut out = Vec::new();
        summary(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("Verdict: failed at rcpt (permanent)"),
            "{last}"
        );
        assert!(last.contains("550 5.1.1 <bob@x>: Recipient address rejected"));
        assert!(last.ends_with("(exit 13)"));
        assert!(text.contains("refused   bob@x"));
        assert!(text.contains("Cause:     The mailbox does not exist"));
    }

    #[test]
    fn transcript_marks_direction() {
        let step = Step {
            stage: Stage::Ehlo,
            sent: Some("EHLO x".into()),
            octets: None,
            reply: Some(reply(250, "250 mx")),
            elapsed_ms: 1.0,
            ok: true,
            error: None,
            error_kind: None,
        };
        assert_eq!(transcript_lines(&step), "<- 250 mx\n");
    }
}
