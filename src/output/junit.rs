//! The JUnit XML report (`--format junit`), in the Ant/Jenkins shape that GitLab, Jenkins and the
//! GitHub test-report actions read:
//!
//! ```text
//! <testsuites name="smtpcheck send" tests="2" failures="1" errors="0" time="0.012">
//!   <testsuite name="smart host 127.0.0.1:2525" tests="2" failures="1" errors="0" skipped="0" …>
//!     <properties>outcome, exit code, route, queue id, arrival (--confirm)…</properties>
//!     <testcase classname="smtpcheck.send" name="bob@example.com" time="0.004">
//!       <failure type="rcpt" message="rcpt refused (550 5.1.1): …">stage, code, the server's words, cause, next step</failure>
//!     </testcase>
//!     <system-out>the transcript of the route, then the arrival block of --confirm</system-out>
//!     <system-err>warnings</system-err>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! One test suite per route (one for the smart host, one per recipient domain in direct mode) and
//! one test case per recipient: passed when accepted, a `<failure>` when refused or never accepted
//! (carrying the stage, the reply codes and the server's words), `<skipped>` when a `--quit-after`
//! probe stopped before the recipient was offered. A check that could not run (bad input) is one
//! test case with an `<error>`. `smtpcheck mx` gives one test case per domain. With `--confirm`,
//! every suite's properties carry the arrival (`arrival.found`, `arrival.folder`, …) and its
//! `<system-out>` ends with the text report's arrival block; the test cases stay about SMTP (the
//! exit code says 16, 17 or 18).
//!
//! Everything is escaped for XML 1.0, including characters XML cannot carry at all (control
//! characters other than tab, CR and LF, U+FFFE, U+FFFF), which are written as `\u{…}` text.

use crate::diagnose::Hint;
use crate::report::{Diagnosis, Outcome, Report, RouteReport};
use crate::transcript::{Attempt, Failure, RecipientResult, Stage};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::SystemTime;

/// Writes `report` as a JUnit XML document; `started` is when the check began, `hostname` the
/// machine it ran on.
pub fn write(
    report: &Report,
    started: SystemTime,
    hostname: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let doc = document(report, started, hostname);
    out.write_all(doc.as_bytes())
}

/// One test case's result.
enum Verdict {
    Passed,
    Skipped(String),
    Failed(Failed),
    /// The check could not run (bad input): a JUnit `<error>`.
    Error(Failed),
}

/// What a failed test case carries.
struct Failed {
    stage: Stage,
    class: &'static str,
    code: Option<u16>,
    enhanced: Option<String>,
    kind: Option<&'static str>,
    /// The failure in words; quotes the server's reply when there was one.
    reason: String,
    /// The server's reply lines, when the failure is a reply.
    server: Vec<String>,
    hint: Hint,
}

impl Failed {
    fn of(d: &Diagnosis, server: Vec<String>) -> Failed {
        Failed {
            stage: d.stage,
            class: d.class.as_str(),
            code: d.code,
            enhanced: d.enhanced.clone(),
            kind: d.kind.map(|k| k.as_str()),
            reason: d.reason.clone(),
            server,
            hint: d.hint.clone(),
        }
    }

    /// The one-line `message` attribute: stage, codes, and the reason.
    fn message(&self) -> String {
        let codes = match (self.code, &self.enhanced) {
            (Some(c), Some(e)) => format!(" ({c} {e})"),
            (Some(c), None) => format!(" ({c})"),
            _ => self.kind.map(|k| format!(" ({k})")).unwrap_or_default(),
        };
        if self.code.is_some() {
            // The reason quotes the reply, codes included.
            format!("failed at {}: {}", self.stage, self.reason)
        } else {
            format!("failed at {}{codes}: {}", self.stage, self.reason)
        }
    }

    /// The element's text: every fact on its own line.
    fn body(&self, exit: u8) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "stage: {}", self.stage);
        let _ = writeln!(s, "class: {}", self.class);
        if let Some(code) = self.code {
            let _ = writeln!(s, "code: {code}");
        }
        if let Some(e) = &self.enhanced {
            let _ = writeln!(s, "enhanced: {e}");
        }
        if let Some(k) = self.kind {
            let _ = writeln!(s, "kind: {k}");
        }
        let _ = writeln!(s, "reason: {}", self.reason);
        for line in &self.server {
            let _ = writeln!(s, "server: {line}");
        }
        let _ = writeln!(s, "cause: {}", self.hint.cause);
        let _ = writeln!(s, "next step: {}", self.hint.next_step);
        let _ = writeln!(s, "exit code: {exit}");
        s
    }
}

/// The verdict for one recipient of a route.
fn recipient_verdict(r: &RecipientResult, route: &RouteReport, report: &Report) -> Verdict {
    if r.accepted {
        return Verdict::Passed;
    }
    let probed = report.outcome == Outcome::Probed || route.outcome == Outcome::Probed;
    match &r.reply {
        Some(reply) if reply.code >= 400 => {
            let f = Failure::refused(Stage::Rcpt, reply, "recipient refused");
            return Verdict::Failed(Failed::of(&Diagnosis::of(f), reply.lines.clone()));
        }
        Some(_) if probed => return Verdict::Passed,
        None if probed => {
            return Verdict::Skipped(
                "not offered: the --quit-after probe stopped before RCPT TO".into(),
            )
        }
        _ => {}
    }
    match route.failure.as_ref().or(report.failure.as_ref()) {
        Some(d) => Verdict::Failed(Failed::of(d, server_words(route, d))),
        None => Verdict::Failed(Failed {
            stage: Stage::Rcpt,
            class: "permanent",
            code: None,
            enhanced: None,
            kind: None,
            reason: "the recipient was not accepted".into(),
            server: Vec::new(),
            hint: Hint {
                cause: "The server did not accept the message for this recipient.".into(),
                next_step: "Read the transcript.".into(),
            },
        }),
    }
}

/// The reply lines behind a route's failure: those of the last step at the failed stage that has
/// the failure's code.
fn server_words(route: &RouteReport, d: &Diagnosis) -> Vec<String> {
    let Some(code) = d.code else {
        return Vec::new();
    };
    route
        .attempts
        .iter()
        .flat_map(|a| a.steps.iter())
        .rev()
        .filter(|s| s.stage == d.stage)
        .find_map(|s| s.reply.as_ref().filter(|r| r.code == code))
        .map(|r| r.lines.clone())
        .unwrap_or_default()
}

/// The route's name as a test suite.
fn suite_name(route: &RouteReport) -> String {
    match (&route.domain, &route.relay) {
        (Some(d), Some(relay)) => format!("{d}: MX hosts, then fallback smart host {relay}"),
        (Some(d), None) => format!("{d}: MX hosts"),
        (None, Some(relay)) => format!("smart host {relay}"),
        (None, None) => "route".to_string(),
    }
}

/// Seconds with millisecond precision, as JUnit's `time` attributes want them.
fn secs(ms: f64) -> String {
    // An empty sum of f64 is -0.0, which would print as "-0.000".
    let s = if ms > 0.0 { ms / 1000.0 } else { 0.0 };
    format!("{s:.3}")
}

/// The whole document.
pub fn document(report: &Report, started: SystemTime, hostname: &str) -> String {
    let timestamp = timestamp(started);
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors) = (0usize, 0usize, 0usize);
    let exit = report.exit.code();
    if report.routes.is_empty() {
        // The check did not get as far as a route: bad input, or nothing to try.
        let verdict = match &report.failure {
            Some(d) if d.stage == Stage::Input => Verdict::Error(Failed::of(d, Vec::new())),
            Some(d) => Verdict::Failed(Failed::of(d, Vec::new())),
            None => Verdict::Passed,
        };
        let name = match &report.envelope {
            Some(e) if !e.recipients.is_empty() => e.recipients.join(", "),
            _ => "check".to_string(),
        };
        let case = testcase("smtpcheck.send", &name, 0.0, &verdict, exit);
        let (f, e) = counts(&verdict);
        tests += 1;
        failures += f;
        errors += e;
        suites.push_str(&suite(
            &SuiteHead {
                name: "smtpcheck send",
                tests: 1,
                failures: f,
                errors: e,
                skipped: 0,
                ms: report.elapsed_ms,
                timestamp: &timestamp,
                hostname,
            },
            &properties(report, None),
            &case,
            &arrival_out(report),
            &report.warnings.join("\n"),
        ));
    }
    for route in &report.routes {
        let route_ms: f64 = route
            .attempts
            .iter()
            .flat_map(|a| a.steps.iter())
            .map(|s| s.elapsed_ms)
            .sum();
        let mut cases = String::new();
        let (mut f_count, mut e_count, mut s_count) = (0, 0, 0);
        for r in &route.recipients {
            let verdict = recipient_verdict(r, route, report);
            let (f, e) = counts(&verdict);
            f_count += f;
            e_count += e;
            if matches!(verdict, Verdict::Skipped(_)) {
                s_count += 1;
            }
            cases.push_str(&testcase(
                "smtpcheck.send",
                &r.address,
                route_ms,
                &verdict,
                route.exit.code(),
            ));
        }
        tests += route.recipients.len();
        failures += f_count;
        errors += e_count;
        let name = suite_name(route);
        suites.push_str(&suite(
            &SuiteHead {
                name: &name,
                tests: route.recipients.len(),
                failures: f_count,
                errors: e_count,
                skipped: s_count,
                ms: route_ms,
                timestamp: &timestamp,
                hostname,
            },
            &properties(report, Some(route)),
            &cases,
            &(route_transcript(route) + &arrival_out(report)),
            &report.warnings.join("\n"),
        ));
    }
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        doc,
        "<testsuites name=\"smtpcheck send\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        secs(report.elapsed_ms)
    );
    doc.push_str(&suites);
    doc.push_str("</testsuites>\n");
    doc
}

/// (failures, errors) a verdict adds to the counts.
fn counts(v: &Verdict) -> (usize, usize) {
    match v {
        Verdict::Failed(_) => (1, 0),
        Verdict::Error(_) => (0, 1),
        _ => (0, 0),
    }
}

struct SuiteHead<'a> {
    name: &'a str,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    ms: f64,
    timestamp: &'a str,
    hostname: &'a str,
}

/// One `<testsuite>` element.
fn suite(head: &SuiteHead, properties: &str, cases: &str, out: &str, err: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
        attr(head.name),
        head.tests,
        head.failures,
        head.errors,
        head.skipped,
        secs(head.ms),
        attr(head.timestamp),
        attr(head.hostname)
    );
    s.push_str(properties);
    s.push_str(cases);
    let _ = writeln!(s, "    <system-out>{}</system-out>", text(out));
    let _ = writeln!(s, "    <system-err>{}</system-err>", text(err));
    s.push_str("  </testsuite>\n");
    s
}

/// One `<testcase>` element.
fn testcase(classname: &str, name: &str, ms: f64, verdict: &Verdict, exit: u8) -> String {
    let open = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
        attr(classname),
        attr(name),
        secs(ms)
    );
    match verdict {
        Verdict::Passed => format!("{open}/>\n"),
        Verdict::Skipped(why) => format!(
            "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
            attr(why)
        ),
        Verdict::Failed(f) | Verdict::Error(f) => {
            let element = if matches!(verdict, Verdict::Error(_)) {
                "error"
            } else {
                "failure"
            };
            format!(
                "{open}>\n      <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>\n",
                attr(f.stage.as_str()),
                attr(&f.message()),
                text(&f.body(exit))
            )
        }
    }
}

/// The `<properties>` of a suite: the check's (and the route's) facts.
fn properties(report: &Report, route: Option<&RouteReport>) -> String {
    let mut props: Vec<(&str, String)> = vec![
        ("smtpcheck.version", report.version.to_string()),
        ("outcome", report.outcome.as_str().to_string()),
        ("exit_code", report.exit.code().to_string()),
    ];
    if let Some(e) = &report.envelope {
        props.push(("envelope.from", e.from.clone()));
    }
    if let Some(m) = &report.message {
        props.push(("message.path", m.path.clone()));
        props.push(("message.bytes", m.bytes.to_string()));
        if let Some(id) = &m.message_id {
            props.push(("message.message_id", id.clone()));
        }
        if let Some(subject) = &m.subject {
            props.push(("message.subject", subject.clone()));
        }
    }
    if let Some(r) = &report.sender {
        props.push(("sender.ip", r.ip.clone()));
        props.push(("sender.ip_source", r.ip_source.clone()));
        props.push(("sender.spf", r.spf.result.clone()));
        props.push(("sender.dmarc", r.dmarc.result.clone()));
        props.push(("sender.disposition", r.dmarc.disposition.clone()));
        props.push(("sender.exit_code", r.exit.code().to_string()));
        props.push(("sender.verdict", r.verdict.clone()));
    }
    if let Some(r) = route {
        let mode = match r.mode {
            crate::deliver::Mode::Direct => "direct",
            crate::deliver::Mode::SmartHost => "smart-host",
        };
        props.push(("route.mode", mode.to_string()));
        if let Some(d) = &r.domain {
            props.push(("route.domain", d.clone()));
        }
        if let Some(relay) = &r.relay {
            props.push(("route.relay", relay.clone()));
        }
        props.push(("route.outcome", r.outcome.as_str().to_string()));
        props.push(("route.exit_code", r.exit.code().to_string()));
        if let Some(q) = &r.queued_as {
            props.push(("route.queued_as", q.clone()));
        }
    }
    if let Some(a) = &report.arrival {
        props.extend(arrival_properties(a));
    }
    let mut s = String::from("    <properties>\n");
    for (name, value) in props {
        let _ = writeln!(
            s,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(name),
            attr(&value)
        );
    }
    s.push_str("    </properties>\n");
    s
}

/// The `--confirm` facts as properties (JSON `arrival`'s names, after `arrival.`).
fn arrival_properties(a: &crate::confirm::Arrival) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("arrival.mailbox", a.mailbox.clone()),
        ("arrival.found", a.found.to_string()),
    ];
    if let Some(f) = &a.folder {
        props.push(("arrival.folder", f.clone()));
    }
    if let Some(u) = &a.special_use {
        props.push(("arrival.special_use", u.clone()));
    }
    if let Some(ms) = a.after_ms {
        props.push(("arrival.after_ms", format!("{ms:.0}")));
    }
    if a.found {
        let by = match a.matched_by {
            crate::confirm::MatchedBy::MessageId => "message-id",
            crate::confirm::MatchedBy::SubjectAndDate => "subject-and-date",
        };
        props.push(("arrival.matched_by", by.to_string()));
    }
    if let Some(w) = a.watch {
        let w = match w {
            crate::confirm::Watch::Idle => "idle",
            crate::confirm::Watch::Poll => "poll",
        };
        props.push(("arrival.watch", w.to_string()));
    }
    props.push(("arrival.deleted", a.deleted.to_string()));
    if let Some(e) = &a.error {
        props.push(("arrival.error", e.clone()));
    }
    props.push(("arrival.summary", super::text::arrival_line(a)));
    props
}

/// The text report's `--confirm` block (no colour), for `<system-out>`; empty without it.
fn arrival_out(report: &Report) -> String {
    let Some(a) = &report.arrival else {
        return String::new();
    };
    let mut out = Vec::new();
    let _ = super::text::arrival_block(a, super::style::Paint::plain(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The transcript of a route's attempts, as in the text report.
fn route_transcript(route: &RouteReport) -> String {
    let mut s = String::new();
    for a in &route.attempts {
        attempt_transcript(a, &mut s);
    }
    s
}

fn attempt_transcript(a: &Attempt, s: &mut String) {
    let _ = writeln!(s, "*  Connecting to {} [{}]:{}", a.host, a.address, a.port);
    let mut encrypted = false;
    for step in &a.steps {
        let (out, back) = if encrypted {
            ("~>", "<~")
        } else {
            ("->", "<-")
        };
        match (&step.sent, step.stage) {
            (_, Stage::Message) => {
                let _ = writeln!(
                    s,
                    "{out} [message data: {} bytes]\n{out} .",
                    step.octets.unwrap_or(0)
                );
            }
            (Some(sent), _) => {
                let _ = writeln!(s, "{out} {sent}");
            }
            (None, _) => {}
        }
        if let Some(reply) = &step.reply {
            for line in &reply.lines {
                let _ = writeln!(s, "{back} {line}");
            }
        }
        if let Some(e) = &step.error {
            let _ = writeln!(s, "** {e}");
        }
        let handshake = matches!(step.stage, Stage::Starttls | Stage::Tls) && step.sent.is_none();
        if handshake && step.ok {
            if let Some(tls) = &a.tls {
                encrypted = true;
                let _ = writeln!(s, "*  {}", crate::output::text::tls_line(tls));
                let _ = writeln!(s, "*  {}", crate::output::text::ENCRYPTED_FROM_HERE);
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, no zone: the form the Ant schema asks for).
fn timestamp(at: SystemTime) -> String {
    crate::time::rfc3339_seconds_local(at)
}

/// The JUnit report of `smtpcheck mx`: one test case per domain.
pub fn write_mx(
    report: &crate::mx::MxReport,
    started: SystemTime,
    hostname: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut cases = String::new();
    let mut failures = 0;
    for d in &report.domains {
        let verdict = if d.exit == crate::exit::Exit::Delivered {
            Verdict::Passed
        } else {
            failures += 1;
            let probed = d.probes.iter().find_map(|p| p.failure.clone());
            let failure = d.failure.clone().or(probed);
            let failure = failure.map(|f| f.failure).unwrap_or_else(|| Failure {
                stage: if d.targets.is_empty() {
                    Stage::Dns
                } else {
                    Stage::Connect
                },
                class: crate::transcript::FailureClass::Transient,
                reason: if d.targets.is_empty() {
                    "no mail host with an address".into()
                } else {
                    "no mail host answered the probe".into()
                },
                code: None,
                enhanced: None,
                kind: None,
            });
            Verdict::Failed(Failed::of(&Diagnosis::of(failure), Vec::new()))
        };
        let ms: f64 = d
            .probes
            .iter()
            .flat_map(|a| a.attempt.steps.iter())
            .map(|s| s.elapsed_ms)
            .sum();
        cases.push_str(&testcase(
            "smtpcheck.mx",
            &d.domain,
            ms,
            &verdict,
            d.exit.code(),
        ));
    }
    let mut transcript = String::new();
    for d in &report.domains {
        transcript.push_str(&crate::output::text::plan_lines(&crate::plan::RoutePlan {
            domain: d.domain.clone(),
            mx: d.mx.clone(),
            note: d.note.clone(),
            targets: d.targets.clone(),
            failure: d.failure.as_ref().map(|f| f.failure.clone()),
        }));
        for p in &d.probes {
            attempt_transcript(&p.attempt, &mut transcript);
        }
    }
    let mut props = String::from("    <properties>\n");
    let _ = writeln!(
        props,
        "      <property name=\"smtpcheck.version\" value=\"{}\"/>\n      <property name=\"exit_code\" value=\"{}\"/>",
        attr(env!("CARGO_PKG_VERSION")),
        report.exit.code()
    );
    props.push_str("    </properties>\n");
    let ts = timestamp(started);
    let total_ms: f64 = report
        .domains
        .iter()
        .flat_map(|d| d.probes.iter())
        .flat_map(|a| a.attempt.steps.iter())
        .map(|s| s.elapsed_ms)
        .sum();
    let body = suite(
        &SuiteHead {
            name: "smtpcheck mx",
            tests: report.domains.len(),
            failures,
            errors: 0,
            skipped: 0,
            ms: total_ms,
            timestamp: &ts,
            hostname,
        },
        &props,
        &cases,
        &transcript,
        "",
    );
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"smtpcheck mx\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">\n{body}</testsuites>\n",
        report.domains.len(),
        secs(total_ms)
    );
    out.write_all(doc.as_bytes())
}

/// `true` for the characters XML 1.0 can carry (the `Char` production), less the C1 controls
/// and DEL, which it only discourages but some readers refuse.
fn xml_safe(c: char) -> bool {
    matches!(c as u32,
        0x9 | 0xA | 0xD | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Escapes text for element content: `&`, `<`, `>`; CR as a character reference (a raw CR would
/// be read back as LF); characters XML cannot carry as visible `\u{…}` text.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes text for a double-quoted attribute value: as [`text`], plus quotes, and tab, CR and
/// LF as character references (attribute normalisation would turn them into spaces).
pub fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if xml_safe(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(
            attr("say \"hi\" & 'bye'"),
            "say &quot;hi&quot; &amp; &apos;bye&apos;"
        );
        assert_eq!(attr("a\nb\tc\rd"), "a&#10;b&#9;c&#13;d");
        assert_eq!(text("a\nb\tc\rd"), "a\nb\tc&#13;d");
        assert_eq!(
            text("nul\0 bel\x07 esc\x1b del\x7f c1\u{85}"),
            "nul\\u{0000} bel\\u{0007} esc\\u{001b} del\\u{007f} c1\\u{0085}"
        );
        assert_eq!(text("\u{fffe}\u{ffff}é😀"), "\\u{fffe}\\u{ffff}é😀");
    }

    #[test]
    fn timestamp_has_no_zone() {
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00");
    }

    #[test]
    fn input_error_is_one_error_case() {
        let r = Report::input_error(
            "bad <thing> & \u{1}".into(),
            crate::exit::Exit::BadInput,
            None,
            None,
        );
        let doc = document(&r, SystemTime::UNIX_EPOCH, "h");
        assert!(
            doc.contains("tests=\"1\" failures=\"0\" errors=\"1\""),
            "{doc}"
        );
        assert!(doc.contains("<error type=\"input\""), "{doc}");
        assert!(doc.contains("bad &lt;thing&gt; &amp; \\u{0001}"), "{doc}");
        assert!(!doc.contains('\u{1}'));
        assert!(!doc.contains("arrival."), "{doc}");
    }

    #[test]
    fn the_arrival_is_in_the_properties_and_system_out() {
        let mut r = Report::input_error("x".into(), crate::exit::Exit::BadInput, None, None);
        r.arrival = Some(crate::confirm::Arrival {
            mailbox: "imap://me%40corp.example@imap.corp.example:143".into(),
            found: true,
            folder: Some("Junk".into()),
            special_use: Some("\\Junk".into()),
            after_ms: Some(2500.4),
            matched_by: crate::confirm::MatchedBy::MessageId,
            watch: Some(crate::confirm::Watch::Idle),
            folders: vec!["INBOX".into(), "Junk".into()],
            authentication_results: Vec::new(),
            hops: Vec::new(),
            spam: Default::default(),
            deleted: false,
            tls: None,
            error: None,
            notes: Vec::new(),
            interrupted: false,
        });
        let doc = document(&r, SystemTime::UNIX_EPOCH, "h");
        for want in [
            "<property name=\"arrival.found\" value=\"true\"/>",
            "<property name=\"arrival.folder\" value=\"Junk\"/>",
            "<property name=\"arrival.special_use\" value=\"\\Junk\"/>",
            "<property name=\"arrival.after_ms\" value=\"2500\"/>",
            "<property name=\"arrival.watch\" value=\"idle\"/>",
            "<property name=\"arrival.summary\" value=\"arrived in the JUNK folder Junk after 2.5 s\"/>",
            "<system-out>\nArrival (imap://me%40corp.example@imap.corp.example:143):\n  arrived in the JUNK folder Junk after 2.5 s\n",
            "waited with IMAP IDLE; searched INBOX, Junk",
        ] {
            assert!(doc.contains(want), "{want}\n{doc}");
        }
        assert!(!doc.contains("arrival.error"), "{doc}");
    }
}
