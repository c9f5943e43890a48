//! The text report: a transcript that reads like the telnet session (`->` sent, `<-` received,
//! `**` what went wrong), then a step summary and the verdict on the last line.
//!
//! Live lines go to a [`Screen`] shared by every route's printer. On a terminal the screen also
//! runs a ticker: while a reply has been awaited for more than a second, a status line shows what
//! is awaited and for how long; it is erased before the next line is printed and when the check
//! ends. Nothing of it is written anywhere but a terminal.

use crate::events::{Event, Events};
use crate::output::style::Paint;
use crate::plan::Target;
use crate::report::{Outcome, Report};
use crate::transcript::{RcptStatus, Stage, Step};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a wait lasts before the ticker shows it.
pub const TICK_AFTER: Duration = Duration::from_secs(1);
/// How often the ticker redraws its status line.
const TICK_EVERY: Duration = Duration::from_millis(100);
/// The spinner's frames.
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
/// Erases the current terminal line (carriage return, then erase the whole line).
const ERASE_LINE: &str = "\r\x1b[2K";

/// What the text report looks like: colours, and `--verbose` detail.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Colours (or none).
    pub paint: Paint,
    /// Timings on reply lines and the servers' capabilities in the summary.
    pub verbose: bool,
}

/// The writer that live transcript lines go to, shared by the printers of every route, with the
/// ticker's status line on a terminal.
pub struct Screen {
    inner: Arc<Mutex<ScreenInner>>,
    stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicUsize,
}

struct ScreenInner {
    out: Box<dyn Write + Send>,
    /// What each printer is waiting for, and since when.
    waiting: Vec<(usize, String, Instant)>,
    /// A status line is on the screen and must be erased before the next line.
    status_shown: bool,
    frame: usize,
    paint: Paint,
}

impl ScreenInner {
    fn erase_status(&mut self) {
        if self.status_shown {
            let _ = self.out.write_all(ERASE_LINE.as_bytes());
            self.status_shown = false;
        }
    }

    /// Redraws (or erases) the status line: the longest wait, once it is over [`TICK_AFTER`].
    fn tick(&mut self) {
        let longest = self
            .waiting
            .iter()
            .filter(|(_, _, since)| since.elapsed() >= TICK_AFTER)
            .min_by_key(|(_, _, since)| *since)
            .map(|(_, what, since)| (what.clone(), since.elapsed()));
        match longest {
            Some((what, waited)) => {
                self.frame = (self.frame + 1) % SPINNER.len();
                let line = format!(
                    "{} waiting for {what}: {:.1} s",
                    SPINNER[self.frame],
                    waited.as_secs_f64()
                );
                let _ = write!(self.out, "{ERASE_LINE}{}", self.paint.note(&line));
                self.status_shown = true;
            }
            None => self.erase_status(),
        }
        let _ = self.out.flush();
    }
}

impl Screen {
    /// A screen over `out`; with `ticker`, a thread redraws the status line of long waits (use it
    /// only when `out` is a terminal).
    pub fn new(out: Box<dyn Write + Send>, paint: Paint, ticker: bool) -> Arc<Screen> {
        let inner = Arc::new(Mutex::new(ScreenInner {
            out,
            waiting: Vec::new(),
            status_shown: false,
            frame: 0,
            paint,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = ticker.then(|| {
            let inner = Arc::clone(&inner);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK_EVERY);
                    if let Ok(mut i) = inner.lock() {
                        i.tick();
                    }
                }
            })
        });
        Arc::new(Screen {
            inner,
            stop,
            ticker: Mutex::new(handle),
            next_id: AtomicUsize::new(0),
        })
    }

    /// A screen on stdout: with the ticker when `terminal`.
    pub fn stdout(paint: Paint, terminal: bool) -> Arc<Screen> {
        Screen::new(Box::new(io::stdout()), paint, terminal)
    }

    /// Writes text, erasing the status line first.
    pub fn write(&self, text: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.erase_status();
            let _ = i.out.write_all(text.as_bytes());
            let _ = i.out.flush();
        }
    }

    fn waiting(&self, id: usize, what: Option<String>) {
        if let Ok(mut i) = self.inner.lock() {
            i.waiting.retain(|(w, _, _)| *w != id);
            if let Some(what) = what {
                i.waiting.push((id, what, Instant::now()));
            }
        }
    }

    /// Stops the ticker and erases its status line: call before the summary is printed.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.ticker.lock().ok().and_then(|mut t| t.take()) {
            let _ = handle.join();
        }
        if let Ok(mut i) = self.inner.lock() {
            i.waiting.clear();
            i.erase_status();
            let _ = i.out.flush();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Prints the transcript as the session runs.
pub struct Live {
    screen: Arc<Screen>,
    id: usize,
    prefix: String,
    opts: TextOptions,
    /// The current attempt runs over TLS: its lines are marked `~>`/`<~`.
    encrypted: std::sync::atomic::AtomicBool,
}

impl Live {
    /// A live printer on a shared screen.
    pub fn on(screen: Arc<Screen>, prefix: Option<&str>, opts: TextOptions) -> Self {
        let id = screen.next_id.fetch_add(1, Ordering::Relaxed);
        Live {
            screen,
            id,
            prefix: prefix.map(|p| format!("[{p}] ")).unwrap_or_default(),
            opts,
            encrypted: std::sync::atomic::AtomicBool::new(false),
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
        self.screen.write(&text);
    }

    fn note_line(&self, text: &str) -> String {
        format!("{}\n", self.opts.paint.note(&format!("*  {text}")))
    }
}

/// What a step waits for, in words for the ticker.
fn awaited(stage: Stage, sent: Option<&str>) -> String {
    match (stage, sent) {
        (Stage::Connect, _) => "the connection".into(),
        (Stage::Greeting, _) => "the greeting".into(),
        (Stage::Starttls, None) => "the TLS handshake".into(),
        (Stage::Message, _) => "the reply to the message data".into(),
        (_, Some(line)) => {
            let verb = line.split([' ', ':']).next().unwrap_or(line);
            format!("the reply to {verb}")
        }
        (_, None) => format!("the {stage} reply"),
    }
}

impl Live {
    fn is_encrypted(&self) -> bool {
        self.encrypted.load(Ordering::Relaxed)
    }

    fn attempt_started(&self, target: &Target) {
        self.encrypted.store(false, Ordering::Relaxed);
        let addr = match target.address {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            std::net::IpAddr::V4(a) => a.to_string(),
        };
        let name = if target.host == target.address.to_string() {
            String::new()
        } else {
            format!(" ({})", target.host)
        };
        self.print(&self.note_line(&format!("Connecting to {addr}:{}{name}", target.port)));
    }

    fn step_started(&self, stage: Stage, sent: Option<&str>, octets: Option<u64>) {
        let paint = self.opts.paint;
        let (out, _) = arrows(self.is_encrypted());
        match (stage, sent) {
            (Stage::Message, _) => self.print(&format!(
                "{}\n{}\n",
                paint.sent(&format!(
                    "{out} [message data: {} bytes, CRLF-normalised and dot-stuffed]",
                    octets.unwrap_or(0)
                )),
                paint.sent(&format!("{out} ."))
            )),
            (_, Some(line)) => self.print(&format!("{}\n", paint.sent(&format!("{out} {line}")))),
            _ => {}
        }
        let what = awaited(stage, sent);
        let what = match self.prefix.trim_end() {
            "" => what,
            prefix => format!("{what} {prefix}"),
        };
        self.screen.waiting(self.id, Some(what));
    }

    fn step_finished(&self, step: &Step) {
        self.screen.waiting(self.id, None);
        self.print(&transcript_lines_marked(
            step,
            self.opts,
            self.is_encrypted(),
        ));
    }

    fn route_planned(&self, plan: &crate::plan::RoutePlan) {
        self.print(&plan_lines(plan));
    }

    fn moving_on(&self, why: &str) {
        self.print(&self.note_line(&format!("Trying the next address: {why}")));
    }

    fn tls_established(&self, tls: &crate::transcript::TlsInfo) {
        self.encrypted.store(true, Ordering::Relaxed);
        self.print(&self.note_line(&tls_line(tls)));
        self.print(&self.note_line(ENCRYPTED_FROM_HERE));
    }

    fn note(&self, text: &str) {
        self.print(&self.note_line(text));
    }
}

impl Events for Live {
    fn on(&self, event: &Event<'_>) {
        match *event {
            Event::AttemptStarted(target) => self.attempt_started(target),
            Event::StepStarted {
                stage,
                sent,
                octets,
            } => self.step_started(stage, sent, octets),
            Event::StepFinished(step) => self.step_finished(step),
            Event::RoutePlanned(plan) => self.route_planned(plan),
            Event::MovingOn(why) => self.moving_on(why),
            Event::TlsEstablished(tls) => self.tls_established(tls),
            Event::Note(text) => self.note(text),
        }
    }
}

/// The transcript line for an established TLS session: `TLS 1.3 TLS13_AES_256_GCM_SHA384,
/// certificate CN=mx.example.com issued by CN=R11, O=Let's Encrypt, C=US, verdict: verified for
/// mx.example.com` (or `verdict: self-signed for …`: the reason follows as a warning or in the
/// verdict).
pub fn tls_line(tls: &crate::transcript::TlsInfo) -> String {
    let cert = match (&tls.subject, &tls.issuer) {
        (Some(s), Some(i)) => format!("certificate {} issued by {i}", or_empty(s)),
        _ => "certificate not parsable".to_string(),
    };
    format!(
        "{} {}, {cert}, verdict: {} for {}",
        tls_version(&tls.version),
        tls.cipher_suite,
        tls.verdict.as_str(),
        tls.name
    )
}

/// The transcript line that marks where encryption starts.
pub const ENCRYPTED_FROM_HERE: &str =
    "TLS established: from here on ~> is sent and <~ received encrypted";

/// The arrows of the transcript: `->`/`<-` in clear, `~>`/`<~` over TLS (as swaks marks them).
fn arrows(encrypted: bool) -> (&'static str, &'static str) {
    if encrypted {
        ("~>", "<~")
    } else {
        ("->", "<-")
    }
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
    writeln!(
        out,
        "  verdict:     {} (name {} {matched})",
        tls.verdict.as_str(),
        tls.name
    )?;
    if let Some(reason) = &tls.reason {
        writeln!(out, "  why:         {reason}")?;
    }
    if let Some(advice) = &tls.advice {
        writeln!(out, "  what to do:  {advice}")?;
    }
    if let Some(pin) = &tls.spki_sha256 {
        writeln!(out, "  pin:         --tls-pin sha256:{pin}")?;
    }
    if let Some(subject) = &tls.client_certificate {
        writeln!(out, "  client cert: {subject} (offered with --tls-cert)")?;
    }
    Ok(())
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
    // Without MX records the domain itself is the mail host: shown as such, not as a record.
    let implicit = note == Some(crate::plan::IMPLICIT_MX_NOTE);
    for mx in mx_hosts {
        let addrs: Vec<String> = mx.addresses.iter().map(|a| a.to_string()).collect();
        let addrs = if addrs.is_empty() {
            "-".to_string()
        } else {
            addrs.join(", ")
        };
        if implicit {
            s.push_str(&format!(
                ";;   no MX record: the domain itself (implicit MX)  {}  {addrs}",
                mx.host
            ));
        } else {
            s.push_str(&format!(
                ";;   MX {:>5} {}  {addrs}",
                mx.preference, mx.host
            ));
        }
        if let Some(note) = &mx.note {
            s.push_str(&format!("  ({note})"));
        }
        s.push('\n');
    }
    if let Some(note) = note.filter(|_| !implicit || mx_hosts.is_empty()) {
        s.push_str(&format!(";;   {note}\n"));
    }
    if let Some(f) = failure {
        s.push_str(&format!(";;   {} ({})\n", f.reason, f.class.as_str()));
    }
    s
}

/// [`mx_report`] with colours and, with `verbose`, each probe's steps with their times.
pub fn mx_report_with(
    report: &crate::mx::MxReport,
    opts: TextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    for d in &report.domains {
        write!(
            out,
            "{}",
            dns_lines(
                &d.domain,
                &d.mx,
                d.note.as_deref(),
                d.failure.as_ref().map(|f| &f.failure)
            )
        )?;
        for probe in &d.probes {
            let p = &probe.attempt;
            let greeting = p
                .steps
                .iter()
                .find(|s| s.stage == Stage::Greeting)
                .and_then(|s| s.reply.as_ref())
                .map(|r| r.lines.join(" / "));
            let helo_ok = p.steps.iter().any(|s| s.stage == Stage::Helo && s.ok);
            let problem = p
                .steps
                .iter()
                .find(|s| !s.ok && s.stage != Stage::Quit && !(s.stage == Stage::Ehlo && helo_ok));
            let status = match (problem, &probe.failure, &greeting) {
                (Some(s), _, _) => format!(
                    "failed at {}: {}",
                    s.stage,
                    s.error
                        .clone()
                        .or_else(|| s.reply.as_ref().map(|r| r.lines.join(" / ")))
                        .unwrap_or_default()
                ),
                (None, Some(f), _) => format!("failed at {}: {}", f.stage, f.reason),
                (None, None, Some(g)) => g.clone(),
                (None, None, None) => "no greeting".into(),
            };
            writeln!(
                out,
                ";;   probe {} [{}]:{}  {status}",
                p.host, p.address, p.port
            )?;
            if let Some(caps) = p
                .capabilities_before_tls
                .as_ref()
                .or(p.capabilities.as_ref())
            {
                writeln!(out, ";;     EHLO: {}", caps.keywords.join(", "))?;
            }
            write!(out, "{}", probe_tls_lines(probe))?;
            if opts.verbose {
                for s in &p.steps {
                    let code = s
                        .reply
                        .as_ref()
                        .map_or("-".to_string(), |r| r.code.to_string());
                    let result = if s.ok { "ok" } else { "failed" };
                    writeln!(
                        out,
                        ";;     {:<9} {:<4} {:>9}  {result}",
                        s.stage.as_str(),
                        code,
                        fmt_ms(s.elapsed_ms)
                    )?;
                }
            }
        }
        let verdict = match d.exit {
            crate::exit::Exit::Delivered if d.probes.is_empty() => "usable mail host found",
            crate::exit::Exit::Delivered => "a mail host answered",
            crate::exit::Exit::Connect => "no mail host answered",
            crate::exit::Exit::Tls => "no mail host answered with TLS as --tls asks",
            _ => "no usable mail host",
        };
        writeln!(out, ";;   => {verdict}\n")?;
    }
    let line = mx_verdict(report);
    let line = if report.exit == crate::exit::Exit::Delivered {
        opts.paint.good(&line)
    } else {
        opts.paint.bad(&line)
    };
    writeln!(out, "{line}")
}

/// A probe's row of the TLS matrix: connect time, EHLO or HELO, STARTTLS offered and used, the
/// TLS version and cipher, the certificate verdict with its days left, the pin; then warnings.
fn probe_tls_lines(probe: &crate::mx::Probe) -> String {
    let p = &probe.attempt;
    let step = |stage: Stage| p.steps.iter().find(|s| s.stage == stage);
    let mut parts = Vec::new();
    if let Some(c) = step(Stage::Connect).filter(|s| s.ok) {
        parts.push(format!("connect {}", fmt_ms(c.elapsed_ms)));
    }
    if step(Stage::Helo).is_some_and(|s| s.ok) {
        parts.push("HELO (EHLO refused)".to_string());
    } else if step(Stage::Ehlo).is_some_and(|s| s.ok) {
        parts.push("EHLO".to_string());
    }
    let offered = p
        .capabilities_before_tls
        .as_ref()
        .or(p.capabilities.as_ref())
        .is_some_and(|c| c.starttls);
    let handshake = p
        .steps
        .iter()
        .find(|s| matches!(s.stage, Stage::Starttls | Stage::Tls) && s.sent.is_none());
    let starttls = match (&p.tls, handshake) {
        (Some(t), _) if t.mode == crate::transcript::Policy::Implicit => "implicit TLS",
        (Some(_), _) => "STARTTLS offered and used",
        (None, Some(_)) => "STARTTLS offered, handshake failed",
        (None, None) if offered => "STARTTLS offered, not used",
        (None, None) => "STARTTLS not offered",
    };
    parts.push(starttls.to_string());
    let mut out = format!(";;     {}\n", parts.join(", "));
    if let Some(t) = &p.tls {
        let days = match t.days_left {
            Some(d) if d < 0 => format!(", expired {} days ago", -d),
            Some(d) => format!(", {d} days left"),
            None => String::new(),
        };
        out.push_str(&format!(
            ";;     TLS: {} {}, certificate {}: {} for {}{days}\n",
            tls_version(&t.version),
            t.cipher_suite,
            t.subject.as_deref().map_or("?", or_empty),
            t.verdict.as_str(),
            t.name
        ));
        if let Some(pin) = &t.spki_sha256 {
            out.push_str(&format!(";;     pin: sha256:{pin}\n"));
        }
    }
    for w in &probe.warnings {
        out.push_str(&format!(";;     warning: {w}\n"));
    }
    out
}

/// The verdict line of `smtpcheck mx`.
pub fn mx_verdict(report: &crate::mx::MxReport) -> String {
    format!(
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

/// The received side of a step, coloured by `opts`; with `--verbose` the step's time follows its
/// last line.
#[cfg(test)]
fn transcript_lines_with(step: &Step, opts: TextOptions) -> String {
    transcript_lines_marked(step, opts, false)
}

/// [`transcript_lines_with`], marked `<~` when the step ran over TLS.
fn transcript_lines_marked(step: &Step, opts: TextOptions, encrypted: bool) -> String {
    let paint = opts.paint;
    let (_, back) = arrows(encrypted);
    let mut lines: Vec<String> = Vec::new();
    if step.stage == Stage::Connect && step.ok {
        lines.push(paint.note(&format!("*  Connected in {}", fmt_ms(step.elapsed_ms))));
    }
    if let Some(reply) = &step.reply {
        for line in &reply.lines {
            lines.push(paint.received(&format!("{back} {line}"), reply.code));
        }
    }
    if let Some(err) = &step.error {
        lines.push(paint.error(&format!("** {err}")));
    }
    if opts.verbose && step.stage != Stage::Connect {
        let timing = paint.note(&format!("({} {})", step.stage, fmt_ms(step.elapsed_ms)));
        match lines.last_mut() {
            Some(last) => {
                last.push_str("  ");
                last.push_str(&timing);
            }
            None => lines.push(timing),
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
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

/// [`summary`] with colours and, with `verbose`, each attempt's capabilities and timings.
pub fn summary_with(report: &Report, opts: TextOptions, out: &mut dyn Write) -> io::Result<()> {
    let paint = opts.paint;
    for route in &report.routes {
        writeln!(out)?;
        let name = match (&route.domain, &route.relay) {
            (Some(d), Some(relay)) => {
                format!("Route for {d}: MX hosts, then fallback smart host {relay}")
            }
            (Some(d), None) => format!("Route for {d}: MX hosts"),
            (None, Some(relay)) => format!("Route: smart host {relay}"),
            (None, None) => "Route".to_string(),
        };
        writeln!(
            out,
            "{}",
            paint.heading(&format!(
                "{name} ({}, exit {})",
                route.outcome.as_str(),
                route.exit.code()
            ))
        )?;
        if route.attempts.is_empty() {
            if let Some(f) = &route.failure {
                writeln!(out, "  no attempt made: {}", f.reason)?;
            }
        }
        for (i, attempt) in route.attempts.iter().enumerate() {
            attempt_table(attempt, i, route.attempts.len(), out)?;
            tls_summary(attempt, out)?;
            if opts.verbose {
                attempt_details(attempt, out)?;
            }
        }
    }
    if !report.recipients.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint.heading("Recipients:"))?;
        for r in &report.recipients {
            let said = match (&r.reply, &r.reason) {
                (Some(x), Some(why)) => format!("{} ({why})", x.lines.join(" / ")),
                (Some(x), None) => x.lines.join(" / "),
                (None, Some(why)) => format!("({why})"),
                (None, None) => String::new(),
            };
            let word = format!("{:<13}", r.status.as_str());
            let mark = match r.status {
                RcptStatus::Delivered | RcptStatus::RcptAccepted => paint.good(&word),
                RcptStatus::Refused => paint.bad(&word),
                RcptStatus::Deferred | RcptStatus::NotTried => paint.partial(&word),
            };
            writeln!(out, "  {mark}  {}  {said}", r.address)?;
        }
    }
    if let Some(a) = &report.arrival {
        arrival_block(a, paint, out)?;
    }
    if let Some(r) = &report.sender {
        writeln!(out)?;
        write!(out, "{}", crate::output::sender::compact(r, paint))?;
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        for w in &report.warnings {
            // A warning that is only a note ("note: …" in JSON) is labelled once, as a note.
            let line = match w.strip_prefix("note: ") {
                Some(note) => format!("Note: {note}"),
                None => format!("Warning: {w}"),
            };
            writeln!(out, "{}", paint.warn(&line))?;
        }
    }
    if opts.verbose {
        writeln!(out)?;
        timings(report, out)?;
    }
    writeln!(out)?;
    if report.failures.len() > 1 {
        failures_block(report, out)?;
    } else if let Some(f) = &report.failure {
        writeln!(out, "Cause:     {}", f.hint.cause)?;
        writeln!(out, "Next step: {}", f.hint.next_step)?;
    }
    writeln!(out, "{}", verdict_line(report, paint))
}

/// Several distinct failures: each with its domain, recipients, stage, class, reason and hint.
fn failures_block(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Failures:")?;
    for (i, g) in report.failures.iter().enumerate() {
        let mut whom: Vec<String> = g.domain.iter().cloned().collect();
        if !g.recipients.is_empty() {
            whom.push(g.recipients.join(", "));
        }
        let whom = if whom.is_empty() {
            String::new()
        } else {
            format!("{}: ", whom.join(" — "))
        };
        writeln!(
            out,
            "  {}. {whom}at {} ({}): {}",
            i + 1,
            g.diagnosis.stage,
            g.diagnosis.class.as_str(),
            g.diagnosis.reason
        )?;
        writeln!(out, "     Cause:     {}", g.diagnosis.hint.cause)?;
        writeln!(out, "     Next step: {}", g.diagnosis.hint.next_step)?;
    }
    Ok(())
}

/// `--verbose`: what the server advertised, in words, and the attempt's time.
fn attempt_details(attempt: &crate::transcript::Attempt, out: &mut dyn Write) -> io::Result<()> {
    let total: f64 = attempt.steps.iter().fold(0.0, |t, s| t + s.elapsed_ms);
    writeln!(
        out,
        "  time:         {} in {} steps",
        fmt_ms(total),
        attempt.steps.len()
    )?;
    if let Some(g) = &attempt.greeting_name {
        writeln!(out, "  greeting:     {g}")?;
    }
    if let Some(ptr) = &attempt.ptr {
        let names = if ptr.is_empty() {
            "(none)".to_string()
        } else {
            ptr.join(", ")
        };
        writeln!(out, "  PTR:          {names}")?;
    }
    let Some(c) = &attempt.capabilities else {
        return writeln!(out, "  capabilities: none (EHLO not accepted)");
    };
    let yes = |b: bool| if b { "yes" } else { "no" };
    let size = match c.size {
        Some(0) => "advertised, no fixed limit".to_string(),
        Some(n) => format!("{n} bytes ({})", human_bytes(n)),
        None => "not advertised".to_string(),
    };
    let auth = if c.auth.is_empty() {
        "not offered".to_string()
    } else {
        c.auth.join(" ")
    };
    writeln!(out, "  capabilities: {}", c.keywords.join(", "))?;
    writeln!(out, "    SIZE:       {size}")?;
    writeln!(
        out,
        "    STARTTLS {}, PIPELINING {}, 8BITMIME {}, SMTPUTF8 {}, DSN {}, ENHANCEDSTATUSCODES {}, CHUNKING {}",
        yes(c.starttls),
        yes(c.pipelining),
        yes(c.eight_bit_mime),
        yes(c.smtputf8),
        yes(c.dsn),
        yes(c.enhanced_status_codes),
        yes(c.chunking)
    )?;
    writeln!(out, "    AUTH:       {auth}")
}

/// `--verbose`: the time of the whole check and of each round.
fn timings(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.rounds.len() > 1 {
        for r in &report.rounds {
            writeln!(
                out,
                "Round {}: {} (exit {}) in {}",
                r.round,
                r.outcome.as_str(),
                r.exit.code(),
                fmt_ms(r.elapsed_ms)
            )?;
        }
    }
    writeln!(out, "Elapsed: {}", fmt_ms(report.elapsed_ms))
}

/// `10240000` as `10.2 MB`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// The verdict, coloured by the outcome.
pub fn verdict_line(report: &Report, paint: Paint) -> String {
    let text = verdict(report);
    match report.outcome {
        Outcome::Delivered if report.exit != crate::exit::Exit::Delivered => paint.partial(&text),
        Outcome::Delivered => paint.good(&text),
        Outcome::Probed if report.exit == crate::exit::Exit::Delivered => paint.good(&text),
        Outcome::Probed => paint.partial(&text),
        Outcome::Partial => paint.partial(&text),
        Outcome::Failed => paint.bad(&text),
    }
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
            let arrived = report
                .arrival
                .as_ref()
                .map(|a| format!("; {}", arrival_line(a)))
                .unwrap_or_default();
            let sender = report
                .sender
                .as_ref()
                .filter(|s| s.exit != crate::exit::Exit::Delivered)
                .map(|s| {
                    format!(
                        "; the sender check did not pass (its exit {})",
                        s.exit.code()
                    )
                })
                .unwrap_or_default();
            format!("Verdict: delivered, accepted for {accepted} of {total} recipient(s){queued}{arrived}{sender} (exit {code})")
        }
        Outcome::Probed => {
            let answered = report
                .recipients
                .iter()
                .filter(|r| r.reply.is_some())
                .count();
            let at_rcpt = report
                .recipients
                .iter()
                .filter(|r| r.status == RcptStatus::RcptAccepted)
                .count();
            let rcpts = if total > 0 && answered > 0 {
                format!(", {at_rcpt} of {total} recipient(s) accepted at RCPT")
            } else {
                String::new()
            };
            let what = if report.exit == crate::exit::Exit::Delivered {
                "probe succeeded"
            } else {
                "probed"
            };
            let failed = match &report.failure {
                Some(_) if report.failures.len() > 1 => {
                    format!("; {} failures, listed above", report.failures.len())
                }
                Some(f) => format!("; {}", f.reason),
                None => String::new(),
            };
            format!("Verdict: {what}{rcpts}{failed}; nothing was sent (exit {code})")
        }
        Outcome::Partial | Outcome::Failed => {
            let what = if report.outcome == Outcome::Partial {
                format!("partial, accepted for {accepted} of {total} recipient(s)")
            } else {
                "failed".to_string()
            };
            let others = match report.failures.len() {
                0 | 1 => String::new(),
                n => format!(" and {} other failure(s), listed above", n - 1),
            };
            match &report.failure {
                Some(f) if f.stage == Stage::Interrupted => {
                    format!("Verdict: {} (exit {code})", f.reason)
                }
                Some(f) => format!(
                    "Verdict: {what} at {} ({}): {}{others} (exit {code})",
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
    probe: Option<Stage>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let verb = match probe {
        Some(stage) => format!("probing (--quit-after {stage}, nothing will be sent) with"),
        None => "sending".to_string(),
    };
    let from = envelope
        .from
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let to: Vec<String> = envelope.recipients.iter().map(|a| a.to_string()).collect();
    writeln!(
        out,
        "smtpcheck: {verb} {} ({} bytes) from <{from}> to {} via {route}",
        message.path.display(),
        message.size(),
        to.join(", ")
    )?;
    out.flush()
}

/// `--confirm` in a few words: where the message was found and after how long, or why not.
pub fn arrival_line(a: &crate::confirm::Arrival) -> String {
    if let Some(why) = &a.error {
        return format!("mailbox not checked: {why}");
    }
    if !a.found {
        return format!("not found in {} within the --confirm-timeout", a.mailbox);
    }
    let folder = a.folder.as_deref().unwrap_or("?");
    let after = match a.after_ms {
        Some(ms) if ms < 1000.0 => format!(" after {ms:.0} ms"),
        Some(ms) => format!(" after {:.1} s", ms / 1000.0),
        None => String::new(),
    };
    if a.is_junk() {
        format!("arrived in the JUNK folder {folder}{after}")
    } else {
        format!("arrived in {folder}{after}")
    }
}

/// The `--confirm` block: the folder, the wait, the receiver's verdicts and the hops.
pub fn arrival_block(
    a: &crate::confirm::Arrival,
    paint: Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        paint.heading(&format!("Arrival ({}):", a.mailbox))
    )?;
    let line = arrival_line(a);
    let line = if a.error.is_some() || !a.found || a.is_junk() {
        paint.bad(&line)
    } else {
        paint.good(&line)
    };
    writeln!(out, "  {line}")?;
    if a.found {
        let how = match a.matched_by {
            crate::confirm::MatchedBy::MessageId => "by its Message-ID",
            crate::confirm::MatchedBy::SubjectAndDate => {
                "by its Subject and Date (it has no Message-ID)"
            }
        };
        let special = a
            .special_use
            .as_deref()
            .map(|u| format!(", special use {u}"))
            .unwrap_or_default();
        writeln!(out, "  found {how}{special}")?;
    }
    if let Some(w) = a.watch {
        let how = match w {
            crate::confirm::Watch::Idle => "IMAP IDLE",
            crate::confirm::Watch::Poll => "polling (the server offers no IDLE)",
        };
        writeln!(
            out,
            "  waited with {how}; searched {}",
            a.folders.join(", ")
        )?;
    }
    if let Some(tls) = &a.tls {
        writeln!(out, "  IMAP {}", tls_line(tls))?;
    }
    for ar in &a.authentication_results {
        let checks: Vec<String> = ar
            .results
            .iter()
            .map(|r| format!("{}={}", r.method, r.result))
            .collect();
        let by = ar.authserv_id.as_deref().unwrap_or("(no authserv-id)");
        let checks = if checks.is_empty() {
            "none".to_string()
        } else {
            checks.join(" ")
        };
        writeln!(out, "  Authentication-Results by {by}: {checks}")?;
    }
    if let Some(flagged) = a.spam.flagged {
        let score = a
            .spam
            .score
            .map(|s| format!(", score {s}"))
            .unwrap_or_default();
        let word = if flagged { "spam" } else { "not spam" };
        writeln!(out, "  spam headers say: {word}{score}")?;
    }
    for h in &a.spam.headers {
        writeln!(out, "    {}: {}", h.name, h.value)?;
    }
    if !a.hops.is_empty() {
        writeln!(out, "  Received hops (oldest first):")?;
        for (i, h) in a.hops.iter().enumerate() {
            let delay = h
                .delay_ms
                .map(|ms| format!("+{:.0} s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_string());
            writeln!(
                out,
                "    {}. {:>6}  from {} by {} with {} at {}",
                i + 1,
                delay,
                h.from.as_deref().unwrap_or("?"),
                h.by.as_deref().unwrap_or("?"),
                h.with.as_deref().unwrap_or("?"),
                h.at.as_deref().unwrap_or("?")
            )?;
        }
    }
    if a.deleted {
        writeln!(
            out,
            "  deleted from {} (--confirm-delete)",
            a.folder.as_deref().unwrap_or("?")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use crate::transcript::{Failure, RecipientResult, Reply};

    fn reply(code: u16, line: &str) -> Reply {
        Reply {
            code,
            enhanced: crate::smtp::codec::enhanced_code(code, line),
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
        r.recipients = vec![RecipientResult::answered("bob@x".into(), rep)];
        let mut out = Vec::new();
        summary_with(&r, TextOptions::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("Verdict: failed at rcpt (permanent)"),
            "{last}"
        );
        assert!(last.contains("550 5.1.1 <bob@x>: Recipient address rejected"));
        assert!(last.ends_with("(exit 13)"));
        assert!(text.contains("refused        bob@x"), "{text}");
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
        assert_eq!(
            transcript_lines_with(&step, TextOptions::default()),
            "<- 250 mx\n"
        );
        let verbose = TextOptions {
            verbose: true,
            ..Default::default()
        };
        assert_eq!(
            transcript_lines_with(&step, verbose),
            "<- 250 mx  (ehlo 1.0 ms)\n"
        );
        let colour = TextOptions {
            paint: Paint::new(true),
            verbose: false,
        };
        let refused = Step {
            reply: Some(reply(550, "550 no")),
            ..step.clone()
        };
        assert!(transcript_lines_with(&refused, colour).contains("\x1b[31m<- 550 no"));
    }
}
