//! smtpcheck: find out exactly where and why an e-mail fails to get through.
//!
//! The pipeline, one module per stage: [`cli`] (flags) → [`message`] (the .eml and its envelope) →
//! [`route`] (which addresses to try, in what order) → [`session`] (the SMTP conversation, the only
//! code that touches sockets, using [`codec`] for the wire formats) → [`report`] (one `Serialize`
//! result and its [`exit`] code) → [`output`] (text or JSON).
//!
//! [`sink`] is a small scripted SMTP server for loopback tests and the quickstart example.

pub mod address;
pub mod cli;
pub mod codec;
pub mod error;
pub mod exit;
pub mod message;
pub mod output;
pub mod report;
pub mod route;
pub mod session;
pub mod sink;
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
        Command::Mx(_) => {
            eprintln!("smtpcheck: error: 'smtpcheck mx' is not available yet");
            Exit::Usage
        }
    }
}

/// `smtpcheck send`: load, route, converse, report.
pub fn send(args: &SendArgs, out: &mut dyn Write) -> Exit {
    let started = Instant::now();
    let Some(relay) = args.smart_host.as_ref().map(|h| h.with_default(25)) else {
        eprintln!("smtpcheck: error: direct MX delivery is not available yet: give --smart-host HOST[:PORT]");
        return Exit::Usage;
    };
    let (opts, message, envelope) = match prepare(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("smtpcheck: error: {e}");
            let report = Report::input_error(e.to_string(), e.exit(), None, None);
            if args.conn.format == cli::Format::Json {
                output::finish(args.conn.format, &report, out);
            }
            return e.exit();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = Error::Runtime(e);
            eprintln!("smtpcheck: error: {e}");
            return e.exit();
        }
    };
    if args.conn.format == cli::Format::Text {
        let _ = output::text::header(&message, &envelope, &relay.to_string(), out);
    }
    let observer = output::live(args.conn.format);
    let mut report = runtime.block_on(async {
        match route::smart_host_targets(&relay, args.conn.connect_timeout).await {
            Ok(targets) => {
                let (results, decisive) = route::try_targets(
                    &targets,
                    usize::MAX,
                    &opts,
                    &message,
                    &envelope,
                    observer.as_ref(),
                )
                .await;
                Report::from_attempts(
                    message.info(),
                    envelope.info(),
                    results,
                    decisive,
                    None,
                    Exit::Connect,
                )
            }
            Err(failure) => Report::from_attempts(
                message.info(),
                envelope.info(),
                Vec::new(),
                None,
                Some(failure),
                Exit::Dns,
            ),
        }
    });
    report.elapsed_ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    output::finish(args.conn.format, &report, out);
    report.exit
}

/// Everything checked before any connection: flags, the message file, the envelope.
fn prepare(args: &SendArgs) -> Result<(session::SessionOptions, Message, Envelope), Error> {
    let opts = args.conn.session_options()?;
    let message = message::load(&args.eml, args.max_size)?;
    let envelope = Envelope::resolve(&message, args.from.as_deref(), &args.to)?;
    Ok((opts, message, envelope))
}
