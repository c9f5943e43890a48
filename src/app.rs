//! The commands, each a short pipeline: config → input → plan and deliver → report → render.

use crate::cli::{self, lower, Cli, Command, MxArgs, SendArgs};
use crate::config::SendConfig;
use crate::error::Error;
use crate::events::Events;
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::output::log::LogFile;
use crate::output::{Reporter, Terminal};
use crate::report::{Report, SenderOutcome};
use crate::time::{elapsed_ms, human};
use crate::{deliver, input, message, mx};
use std::io::Write;
use std::time::Instant;

/// Runs a parsed command line and returns its exit code. Output goes to stdout (report) and
/// stderr (errors).
pub fn run(cli: Cli) -> Exit {
    let terminal = Terminal::stdout(lower::color(cli.color));
    let mut stdout = std::io::stdout();
    match cli.command {
        Command::Send(args) => send(&args, terminal, &mut stdout),
        Command::Mx(args) => mx(&args, terminal, &mut stdout),
        Command::Sender(args) => sender(&args, cli.color, &mut stdout),
        Command::Completions { shell } => completions(shell, &mut stdout),
        Command::Man => man(&mut stdout),
    }
}

/// A command line whose profile could not be used (exit 3): reported in the format asked for.
pub fn config_failed(cli: &Cli, error: &Error) -> Exit {
    let out = match &cli.command {
        Command::Send(a) => Some(&a.out),
        Command::Mx(a) => Some(&a.out),
        _ => None,
    };
    let terminal = Terminal::stdout(lower::color(cli.color));
    match out {
        Some(out) => {
            let (reporter, _) = Reporter::new(&lower::output(out), terminal);
            input_error(error, &reporter, &mut std::io::stdout())
        }
        None => {
            eprintln!("smtpcheck: error: {error}");
            // `sender --format json`: the one JSON document its other input errors give too.
            if let Command::Sender(a) = &cli.command {
                if a.format == cli::SenderFormat::Json {
                    let report = Report::input_error(error.to_string(), error.exit(), None, None);
                    let mut out = std::io::stdout();
                    let _ = crate::output::json::write(&report, &mut out);
                    let _ = out.flush();
                }
            }
            error.exit()
        }
    }
}

/// A usage error (exit 2) when the JSON report was asked for: the whole report on stdout, its
/// failure at stage `usage` quoting clap's first line.
pub fn usage_error_json(clap_text: &str) {
    let first = clap_text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("usage error");
    let reason = first.strip_prefix("error: ").unwrap_or(first).trim();
    let report = Report::input_error(reason.to_string(), Exit::Usage, None, None);
    let mut out = std::io::stdout();
    let _ = crate::output::json::write(&report, &mut out);
    let _ = out.flush();
}

/// `smtpcheck completions SHELL`: the completion script, generated from the CLI definition.
fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Exit {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Rendered in memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "smtpcheck", &mut script);
    write_out(&script, "the completion script", out)
}

/// Writes a generated document to stdout: a closed pipe ends quietly, any other failure (a full
/// disk) is an error on stderr; both exit 3.
fn write_out(bytes: &[u8], what: &str, out: &mut dyn Write) -> Exit {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Exit::Delivered,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::BadInput,
        Err(e) => {
            eprintln!("smtpcheck: error: cannot write {what} to standard output: {e}");
            Exit::BadInput
        }
    }
}

/// The exit code once the report or the log could not be written (`written` is false): the
/// result's own code when it already says something went wrong, else 3.
fn unless_unwritten(exit: Exit, written: bool) -> Exit {
    if written || exit != Exit::Delivered {
        exit
    } else {
        Exit::BadInput
    }
}

/// `smtpcheck man`: the man page, generated from the CLI definition.
fn man(out: &mut dyn Write) -> Exit {
    match cli::man::man_page() {
        Ok(page) => write_out(&page, "the man page", out),
        Err(e) => {
            eprintln!("smtpcheck: error: cannot render the man page: {e}");
            Exit::Broken
        }
    }
}

/// `smtpcheck send`: config, input, deliver (in rounds with `--retry`), report, render.
fn send(args: &SendArgs, terminal: Terminal, out: &mut dyn Write) -> Exit {
    let started = Instant::now();
    let (reporter, file_error) = Reporter::new(&lower::output(&args.out), terminal);
    if let Some(e) = file_error {
        return input_error(&e, &reporter, out);
    }
    let config = match lower::send(args) {
        Ok(c) => c,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let via = match &config.deliver.smart_host {
        Some(relay) => format!("smart host {relay}"),
        None => "direct MX delivery".to_string(),
    };
    let prepared = input::load(&config.input, &via).and_then(|(message, envelope)| {
        let log = open_log(&config)?;
        Ok((message, envelope, log, runtime()?))
    });
    let (message, envelope, log, runtime) = match prepared {
        Ok(x) => x,
        Err(e) => return input_error(&e, &reporter, out),
    };
    reporter.header(&message, &envelope, &via, config.session.quit_after, out);
    if let Some(log) = &log {
        log.event(None, "START", &start_line(&message, &envelope, &via));
    }
    let groups = deliver::groups(&config.deliver, &envelope);
    let events: Vec<Box<dyn Events>> = groups
        .iter()
        .map(|(domain, _)| {
            let prefix = domain.as_deref().filter(|_| groups.len() > 1);
            reporter.events(prefix, log.as_ref(), domain.as_deref())
        })
        .collect();

    let run = Run {
        config: &config,
        runtime: &runtime,
        message: &message,
        envelope: &envelope,
        events: &events,
    };
    let Some(rounds) = run.rounds(&reporter, log.as_ref(), out) else {
        drop(events);
        let report = Report::input_error(
            INTERRUPTED.into(),
            Exit::Interrupted,
            Some(message.info()),
            Some(envelope.info()),
        );
        if let Some(log) = &log {
            log.event(None, "VERDICT", &crate::output::text::verdict(&report));
        }
        reporter.input_error(&report, out);
        return report.exit;
    };
    let arrival = run.confirm(&rounds, &reporter, log.as_ref(), out);
    let sender = run.check_sender(&rounds, &reporter, log.as_ref(), out);
    let mut report = Report::finish(
        rounds,
        config.session.quit_after,
        message::preflight(&message, &envelope),
        elapsed_ms(started),
        arrival,
        sender,
    );
    if let Some(path) = &config.session.tls.save_chain {
        let tls = report.routes.iter().flat_map(|r| &r.attempts);
        let tls = tls.filter_map(|a| a.tls.as_ref());
        if let Some(problem) = save_chain(path, tls) {
            report.warnings.push(problem);
        }
    }
    if let Some(log) = &log {
        for w in &report.warnings {
            log.event(None, "NOTE", w);
        }
        log.event(None, "VERDICT", &crate::output::text::verdict(&report));
    }
    drop(events);
    let mut written = reporter.finish(&report, out);
    if let Some(e) = log.as_ref().and_then(LogFile::error) {
        eprintln!(
            "smtpcheck: error: cannot write --log {}: {e}",
            config
                .log
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        );
        written = false;
    }
    unless_unwritten(report.exit, written)
}

/// What the delivery rounds of one `send` run over.
struct Run<'a> {
    config: &'a SendConfig,
    runtime: &'a tokio::runtime::Runtime,
    message: &'a Message,
    envelope: &'a Envelope,
    events: &'a [Box<dyn Events>],
}

impl Run<'_> {
    /// The whole check, again while the outcome is a transient failure (`--retry`), with a note
    /// and a pause between rounds. Returns every round's report, the deciding one last; `None`
    /// when Ctrl-C interrupted it.
    fn rounds(
        &self,
        reporter: &Reporter,
        log: Option<&LogFile>,
        out: &mut dyn Write,
    ) -> Option<Vec<Report>> {
        let (config, message, envelope) = (self.config, self.message, self.envelope);
        let mut rounds: Vec<Report> = Vec::new();
        loop {
            let round_started = Instant::now();
            let routes = self.runtime.block_on(until_interrupted(deliver::deliver(
                &config.deliver,
                &config.session,
                message,
                envelope,
                self.events,
            )))?;
            let round = Report::from_routes(message.info(), envelope.info(), routes)
                .took(elapsed_ms(round_started));
            let again = round.is_transient_failure() && rounds.len() < config.retry as usize;
            rounds.push(round);
            if !again {
                return Some(rounds);
            }
            let note = format!(
                "round {} ended in a transient failure; waiting {} before round {}",
                rounds.len(),
                human(config.retry_delay),
                rounds.len() + 1
            );
            reporter.note(&note, out);
            if let Some(log) = log {
                log.event(None, "NOTE", &note);
            }
            let pause = async { tokio::time::sleep(config.retry_delay).await };
            self.runtime.block_on(until_interrupted(pause))?;
        }
    }
}

impl Run<'_> {
    /// `--confirm`: once the message was accepted (for at least one recipient, and not a
    /// `--quit-after` probe), find it in the mailbox over IMAP.
    fn confirm(
        &self,
        rounds: &[Report],
        reporter: &Reporter,
        log: Option<&LogFile>,
        out: &mut dyn Write,
    ) -> Option<crate::confirm::Arrival> {
        let opts = self.config.confirm.as_ref()?;
        let accepted = rounds.last()?.recipients.iter().any(|r| r.accepted);
        if !accepted || self.config.session.quit_after.is_some() {
            return None;
        }
        let ended = Instant::now();
        let message = self.message;
        let wanted = crate::confirm::wanted(
            message.message_id.as_deref(),
            message.subject.as_deref(),
            &message.raw,
        );
        let Some(wanted) = wanted else {
            let note = "--confirm: the message has neither a Message-ID nor a Date header, so it cannot be found in the mailbox".to_string();
            reporter.note(&note, out);
            return None;
        };
        let note = format!(
            "accepted; looking for the message in {} (up to {})",
            opts.url,
            human(opts.timeout)
        );
        reporter.note(&note, out);
        if let Some(log) = log {
            log.event(None, "NOTE", &note);
        }
        let checking = crate::confirm::confirm(opts, &wanted, ended);
        let arrival = self
            .runtime
            .block_on(until_interrupted(checking))
            .unwrap_or_else(|| crate::confirm::interrupted(opts, &wanted));
        if let Some(log) = log {
            log.event(
                None,
                "ARRIVAL",
                &crate::output::text::arrival_line(&arrival),
            );
        }
        Some(arrival)
    }
}

impl Run<'_> {
    /// `--check-sender`: once the session is over, the checks of `smtpcheck sender` for the IP
    /// the deciding server saw (`--ip`, else the address it echoed, else the local address of the
    /// connection), the name smtpcheck announced and the envelope sender.
    fn check_sender(
        &self,
        rounds: &[Report],
        reporter: &Reporter,
        log: Option<&LogFile>,
        out: &mut dyn Write,
    ) -> Option<SenderOutcome> {
        use crate::sender::origin;
        let check = self.config.check_sender.as_ref()?;
        let attempts = rounds.last().map(|r| r.attempts.as_slice()).unwrap_or(&[]);
        let attempt = origin::deciding(attempts);
        let not_done = |why: String| Some(SenderOutcome::NotDone(format!("--check-sender: {why}")));
        let Some(found) = origin::origin(check.ip, attempt) else {
            return not_done(
                "not checked: no connection was made, so there is no sending IP; give --ip".into(),
            );
        };
        let note = format!(
            "checking the sender as the receiver would (SPF, DKIM, DMARC, reverse DNS) for {}",
            found.ip
        );
        reporter.note(&note, out);
        if let Some(log) = log {
            log.event(None, "NOTE", &note);
        }
        let mail_from = self
            .envelope
            .from
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let helo = origin::announced_helo(attempt);
        let facts = match crate::sender::facts_for_send(&self.message.raw, found, helo, mail_from) {
            Ok(f) => f,
            Err(e) => return not_done(format!("not checked: {e}")),
        };
        let dns = &self.config.deliver.dns;
        let resolver = match crate::dns::Resolver::new(dns.resolver, dns.timeout) {
            Ok(r) => r,
            Err(e) => return not_done(format!("not checked: {e}")),
        };
        let work = crate::sender::check(&self.message.raw, facts, &check.dnsbl, &resolver);
        let report = match self.runtime.block_on(until_interrupted(work)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return not_done(format!("not checked: {e}")),
            None => return not_done("not finished: interrupted (Ctrl-C)".into()),
        };
        if let Some(log) = log {
            log.event(None, "SENDER", &report.verdict);
        }
        Some(SenderOutcome::Done {
            report: Box::new(report),
            required: check.require_pass,
        })
    }
}

/// The reason of the verdict after Ctrl-C.
const INTERRUPTED: &str = "interrupted (Ctrl-C) before the check finished";

/// Runs `work` unless Ctrl-C (SIGINT) comes first: `None` then, and `work` is dropped (its
/// connections closed). Where the signal cannot be watched, `work` simply runs.
async fn until_interrupted<T>(work: impl std::future::Future<Output = T>) -> Option<T> {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        done = work => Some(done),
        () = interrupted => None,
    }
}

/// The `--log` file, opened (appending) before any connection.
fn open_log(config: &SendConfig) -> Result<Option<LogFile>, Error> {
    match &config.log {
        Some(path) => LogFile::open(path)
            .map(Some)
            .map_err(|source| Error::LogFile {
                path: path.clone(),
                source,
            }),
        None => Ok(None),
    }
}

/// The log's first line: the version, the message, the envelope and the route.
fn start_line(message: &Message, envelope: &Envelope, via: &str) -> String {
    let to: Vec<String> = envelope.recipients.iter().map(|a| a.to_string()).collect();
    format!(
        "smtpcheck {} send {} from <{}> to {} via {via}",
        env!("CARGO_PKG_VERSION"),
        message.path.display(),
        envelope
            .from
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        to.join(",")
    )
}

/// `smtpcheck sender`: read the message, settle the IP and the envelope, run the checks, render.
fn sender(args: &cli::SenderArgs, color: cli::ColorWhen, out: &mut dyn Write) -> Exit {
    let json = args.format == cli::SenderFormat::Json;
    let failed = |why: String, exit: Exit, out: &mut dyn Write| {
        eprintln!("smtpcheck: error: {why}");
        if json {
            let report = Report::input_error(why, exit, None, None);
            let _ = crate::output::json::write(&report, out);
        }
        exit
    };
    let options = match lower::sender(args) {
        Ok(o) => o,
        Err(e) => return failed(e, Exit::BadInput, out),
    };
    let (raw, facts) = match crate::sender::prepare(&options) {
        Ok(x) => x,
        Err(e) => return failed(e, Exit::BadInput, out),
    };
    let prepared = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        crate::dns::Resolver::new(options.resolver, options.dns_timeout).map(|r| (rt, r))
    });
    let (runtime, resolver) = match prepared {
        Ok(x) => x,
        Err(e) => return failed(e, Exit::BadInput, out),
    };
    let report =
        match runtime.block_on(crate::sender::check(&raw, facts, &options.dnsbl, &resolver)) {
            Ok(r) => r,
            Err(e) => return failed(e, Exit::BadInput, out),
        };
    let written = if json {
        crate::output::json::write(&report, out)
    } else {
        let paint = crate::output::style::Paint::new(crate::output::style::stdout_color(
            lower::color(color),
        ));
        out.write_all(crate::output::sender::render(&report, paint).as_bytes())
    };
    let written = written.and_then(|()| out.flush()).is_ok();
    unless_unwritten(report.exit, written)
}

/// `smtpcheck mx`: the routing plan for each domain, optionally probing each server.
fn mx(args: &MxArgs, terminal: Terminal, out: &mut dyn Write) -> Exit {
    let (reporter, file_error) = Reporter::new(&lower::output(&args.out), terminal);
    if let Some(e) = file_error {
        return input_error(&e, &reporter, out);
    }
    let config = match lower::mx(args) {
        Ok(c) => c,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let Some(report) =
        runtime.block_on(until_interrupted(mx::run(&config, &crate::events::Silent)))
    else {
        let report = Report::input_error(INTERRUPTED.into(), Exit::Interrupted, None, None);
        reporter.input_error(&report, out);
        return report.exit;
    };
    if let Some(path) = &config.session.tls.save_chain {
        let probes = report.domains.iter().flat_map(|d| &d.probes);
        if let Some(problem) = save_chain(path, probes.filter_map(|p| p.attempt.tls.as_ref())) {
            eprintln!("smtpcheck: warning: {problem}");
        }
    }
    let written = reporter.finish_mx(&report, out);
    unless_unwritten(report.exit, written)
}

/// `--tls-save-chain`: writes the chain of the first server whose handshake completed as PEM;
/// returns a warning when there was none or the file could not be written.
fn save_chain<'a>(
    path: &std::path::Path,
    mut tls: impl Iterator<Item = &'a crate::transcript::TlsInfo>,
) -> Option<String> {
    let Some(info) = tls.find(|t| !t.chain.is_empty()) else {
        return Some(format!(
            "--tls-save-chain {}: no TLS handshake completed, nothing was written",
            path.display()
        ));
    };
    std::fs::write(path, crate::tls::chain_pem(&info.chain))
        .err()
        .map(|e| {
            format!(
                "cannot write --tls-save-chain {}: {}",
                path.display(),
                crate::error::words(&e)
            )
        })
}

/// Reports an error found before any connection: on stderr, and as the report in the chosen
/// format (the verdict line in text; the whole JSON or JUnit report), on stdout and in the
/// `--output` file.
/// When stdout and stderr are the same terminal and the verdict line goes there, the error is
/// shown once, in the verdict line (scripts still get it on stderr and the verdict last on stdout).
fn input_error(e: &Error, reporter: &Reporter, out: &mut dyn Write) -> Exit {
    if !(reporter.text_on_stdout() && same_terminal()) {
        eprintln!("smtpcheck: error: {e}");
    }
    let report = Report::input_error(e.to_string(), e.exit(), None, None);
    reporter.input_error(&report, out);
    e.exit()
}

/// `true` when stdout and stderr are the same terminal (so a line on each is seen twice).
#[cfg(unix)]
fn same_terminal() -> bool {
    use std::io::IsTerminal;
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::fs::MetadataExt;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    if !(stdout.is_terminal() && stderr.is_terminal()) {
        return false;
    }
    let device = |fd: BorrowedFd<'_>| {
        let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        file.metadata().ok().map(|m| m.rdev())
    };
    matches!((device(stdout.as_fd()), device(stderr.as_fd())), (Some(a), Some(b)) if a == b)
}

/// `true` when stdout and stderr are the same terminal: not known here.
#[cfg(not(unix))]
fn same_terminal() -> bool {
    false
}

/// The single-threaded runtime the network code runs on (one check needs no more).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
