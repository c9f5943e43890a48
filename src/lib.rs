//! smtpcheck: find out exactly where and why an e-mail fails to get through.
//!
//! The pipeline, one module per stage: [`cli`] (flags) → [`message`] (the .eml and its envelope) →
//! [`route`] (which addresses to try, in what order) → [`session`] (the SMTP conversation, the only
//! code that touches sockets, using [`codec`] for the wire formats) → [`report`] (one `Serialize`
//! result and its [`exit`] code) → [`output`] (text or JSON).
//!
//! [`sink`] is a small scripted SMTP server for loopback tests and the quickstart example.

pub mod address;
pub mod auth;
pub mod cli;
pub mod codec;
pub mod deliver;
pub mod diagnose;
pub mod dns;
pub mod error;
pub mod exit;
pub mod message;
pub mod mx;
pub mod output;
pub mod plan;
pub mod report;
pub mod route;
pub mod secret;
pub mod session;
pub mod sink;
pub mod tls;
pub mod transcript;

use cli::{Cli, Command, SendArgs};
use error::Error;
use exit::Exit;
use message::{Envelope, Message};
use report::Report;
use std::io::Write;
use std::time::Instant;

/// Runs a parsed command line and returns its exit code. Output goes to stdout (report) and
/// stderr (errors).
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Send(args) => send(&args, &mut std::io::stdout()),
        Command::Mx(args) => mx(&args, &mut std::io::stdout()),
    }
}

/// `smtpcheck send`: load, route, converse, report.
pub fn send(args: &SendArgs, out: &mut dyn Write) -> Exit {
    let started = Instant::now();
    let format = args.conn.format;
    let (opts, message, envelope, log) = match prepare(args) {
        Ok(x) => x,
        Err(e) => return input_error(&e, format, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, format, out),
    };
    let deliver_opts = args.deliver_options();
    let groups = deliver::groups(&deliver_opts, &envelope);
    let via = match &deliver_opts.smart_host {
        Some(relay) => format!("smart host {relay}"),
        None => "direct MX delivery".to_string(),
    };
    if format == cli::Format::Text {
        let _ = output::text::header(&message, &envelope, &via, out);
    }
    if let Some(log) = &log {
        let to: Vec<String> = envelope.recipients.iter().map(|a| a.to_string()).collect();
        log.event(
            None,
            "START",
            &format!(
                "smtpcheck {} send {} from <{}> to {} via {via}",
                env!("CARGO_PKG_VERSION"),
                message.path.display(),
                envelope
                    .from
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                to.join(",")
            ),
        );
    }
    let observers: Vec<Box<dyn session::Observer>> = groups
        .iter()
        .map(|(domain, _)| {
            let prefix = domain.as_deref().filter(|_| groups.len() > 1);
            output::observer(format, prefix, log.as_ref(), domain.as_deref())
        })
        .collect();

    // Rounds: the whole check again while the outcome is a transient failure (--retry).
    let mut rounds = Vec::new();
    let mut report = loop {
        let round_started = Instant::now();
        let routes = runtime.block_on(deliver::deliver(
            &deliver_opts,
            &opts,
            &message,
            &envelope,
            &observers,
        ));
        let mut report = Report::from_routes(message.info(), envelope.info(), routes);
        report.elapsed_ms = elapsed_ms(round_started);
        rounds.push(report::Round::of(rounds.len() as u32 + 1, &report));
        if rounds.len() as u32 > args.retry || !report.is_transient_failure() {
            break report;
        }
        let note = format!(
            "round {} ended in a transient failure; waiting {} before round {}",
            rounds.len(),
            session::human(args.retry_delay),
            rounds.len() + 1
        );
        if format == cli::Format::Text {
            let _ = writeln!(out, "\n*  {note}\n");
        }
        if let Some(log) = &log {
            log.event(None, "NOTE", &note);
        }
        runtime.block_on(async { tokio::time::sleep(args.retry_delay).await });
    };
    if opts.quit_after.is_some() {
        report.mark_probe();
    }
    let mut warnings = message::preflight(&message, &envelope);
    warnings.append(&mut report.warnings);
    warnings.extend(report.slow_steps());
    report.warnings = warnings;
    report.rounds = rounds;
    report.elapsed_ms = elapsed_ms(started);
    if let Some(log) = &log {
        for w in &report.warnings {
            log.event(None, "NOTE", w);
        }
        log.event(None, "VERDICT", &output::text::verdict(&report));
    }
    output::finish(format, &report, out);
    report.exit
}

fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `smtpcheck mx`: the routing plan for each domain, optionally probing each server.
pub fn mx(args: &cli::MxArgs, out: &mut dyn Write) -> Exit {
    let format = args.conn.format;
    let opts = match args.conn.session_options() {
        Ok(o) => o,
        Err(e) => return input_error(&e, format, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, format, out),
    };
    let report = runtime.block_on(mx::run(args, &opts, &session::Silent));
    let _ = match format {
        cli::Format::Text => output::text::mx_report(&report, out),
        cli::Format::Json => output::json::write(&report, out),
    };
    let _ = out.flush();
    report.exit
}

/// Reports an error found before any connection: on stderr, and as the JSON report in JSON mode.
fn input_error(e: &Error, format: cli::Format, out: &mut dyn Write) -> Exit {
    eprintln!("smtpcheck: error: {e}");
    let report = Report::input_error(e.to_string(), e.exit(), None, None);
    match format {
        cli::Format::Json => output::finish(format, &report, out),
        // The verdict is the last line of stdout in every case.
        cli::Format::Text => {
            let _ = writeln!(out, "{}", output::text::verdict(&report));
        }
    }
    e.exit()
}

/// The single-threaded runtime the network code runs on (one check needs no more).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Everything checked before any connection: flags, the message file, the envelope, the log file.
#[allow(clippy::type_complexity)]
fn prepare(
    args: &SendArgs,
) -> Result<
    (
        session::SessionOptions,
        Message,
        Envelope,
        Option<output::log::LogFile>,
    ),
    Error,
> {
    let mut opts = args.session_options()?;
    opts.quit_after = args.quit_after.map(cli::QuitAfter::stage);
    opts.dsn = session::Dsn {
        notify: args.notify.clone().map(|n| n.0),
        ret: args.ret.map(|r| match r {
            cli::DsnRet::Full => "FULL".to_string(),
            cli::DsnRet::Hdrs => "HDRS".to_string(),
        }),
        envid: args.envid.clone(),
    };
    let message = message::load(&args.eml, args.max_size)?;
    let envelope = Envelope::resolve(&message, args.from.as_deref(), &args.to)?;
    let log = match &args.log {
        Some(path) => Some(
            output::log::LogFile::open(path).map_err(|source| Error::LogFile {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    Ok((opts, message, envelope, log))
}
