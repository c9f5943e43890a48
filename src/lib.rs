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
    let (opts, message, envelope) = match prepare(args) {
        Ok(x) => x,
        Err(e) => return input_error(&e, format, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, format, out),
    };
    let deliver_opts = args.deliver_options();
    let groups = deliver::groups(&deliver_opts, &envelope);
    if format == cli::Format::Text {
        let via = match &deliver_opts.smart_host {
            Some(relay) => format!("smart host {relay}"),
            None => "direct MX delivery".to_string(),
        };
        let _ = output::text::header(&message, &envelope, &via, out);
    }
    let observers: Vec<Box<dyn session::Observer>> = groups
        .iter()
        .map(|(domain, _)| {
            let prefix = domain.as_deref().filter(|_| groups.len() > 1);
            output::live(format, prefix)
        })
        .collect();
    let routes = runtime.block_on(deliver::deliver(
        &deliver_opts,
        &opts,
        &message,
        &envelope,
        &observers,
    ));
    let mut report = Report::from_routes(message.info(), envelope.info(), routes);
    report.elapsed_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    output::finish(format, &report, out);
    report.exit
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
    if format == cli::Format::Json {
        let report = Report::input_error(e.to_string(), e.exit(), None, None);
        output::finish(format, &report, out);
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

/// Everything checked before any connection: flags, the message file, the envelope.
fn prepare(args: &SendArgs) -> Result<(session::SessionOptions, Message, Envelope), Error> {
    let opts = args.session_options()?;
    let message = message::load(&args.eml, args.max_size)?;
    let envelope = Envelope::resolve(&message, args.from.as_deref(), &args.to)?;
    Ok((opts, message, envelope))
}
