//! smtpcheck: find out exactly where and why an e-mail fails to get through.
//!
//! The pipeline, one module per stage: [`cli`] (flags) → [`message`] (the .eml and its envelope) →
//! [`route`] (which addresses to try, in what order) → [`session`] (the SMTP conversation, the only
//! code that touches sockets, using [`codec`] for the wire formats) → [`report`] (one `Serialize`
//! result and its [`exit`] code) → [`output`] (text, JSON or JUnit).
//!
//! Around it: [`config`] layers a profile of the config file under the command line, and
//! [`generate`] makes the test message when no `.eml` is given (or reads one from stdin).

pub mod address;
pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod deliver;
pub mod diagnose;
pub mod dns;
pub mod error;
pub mod exit;
pub mod generate;
pub mod message;
pub mod mx;
pub mod output;
pub mod plan;
pub mod report;
pub mod route;
pub mod secret;
pub mod session;
pub mod tls;
pub mod transcript;

use cli::{Cli, Command, SendArgs};
use error::Error;
use exit::Exit;
use message::{Envelope, Message};
use output::{Reporter, Terminal};
use report::Report;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The whole program for a command line (`argv[0]` first): parse it with the environment and the
/// profile, run it, and return the process exit code. Usage errors are clap's (exit 2; `--help`
/// and `--version` exit 0); a bad config file or profile is exit 3.
pub fn main_with(argv: Vec<OsString>) -> std::process::ExitCode {
    match config::parse_cli(argv) {
        Ok(cli) => run(cli).into(),
        Err(config::Failed::Clap(e)) => {
            let _ = e.print();
            std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
        Err(config::Failed::Config { cli, error }) => {
            let out = match &cli.command {
                Command::Send(a) => Some(&a.out),
                Command::Mx(a) => Some(&a.out),
                _ => None,
            };
            let terminal = Terminal::stdout(cli.color);
            let exit = match out {
                Some(out) => {
                    let (reporter, _) = Reporter::new(out, terminal);
                    input_error(&error, &reporter, &mut std::io::stdout())
                }
                None => {
                    eprintln!("smtpcheck: error: {error}");
                    error.exit()
                }
            };
            exit.into()
        }
    }
}

/// Runs a parsed command line and returns its exit code. Output goes to stdout (report) and
/// stderr (errors).
pub fn run(cli: Cli) -> Exit {
    let terminal = Terminal::stdout(cli.color);
    let mut stdout = std::io::stdout();
    match cli.command {
        Command::Send(args) => send(&args, terminal, &mut stdout),
        Command::Mx(args) => mx(&args, terminal, &mut stdout),
        Command::Completions { shell } => completions(shell, &mut stdout),
        Command::Man => man(&mut stdout),
    }
}

/// `smtpcheck completions SHELL`: the completion script, generated from the CLI definition.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Exit {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "smtpcheck", out);
    let _ = out.flush();
    Exit::Delivered
}

/// `smtpcheck man`: the man page, generated from the CLI definition.
pub fn man(out: &mut dyn Write) -> Exit {
    match cli::man_page() {
        Ok(page) => {
            let _ = out.write_all(&page);
            let _ = out.flush();
            Exit::Delivered
        }
        Err(e) => {
            eprintln!("smtpcheck: error: cannot render the man page: {e}");
            Exit::Broken
        }
    }
}

/// `smtpcheck send`: load (or generate), route, converse, report.
pub fn send(args: &SendArgs, terminal: Terminal, out: &mut dyn Write) -> Exit {
    let started = Instant::now();
    let (reporter, file_error) = Reporter::new(&args.out, terminal);
    if let Some(e) = file_error {
        return input_error(&e, &reporter, out);
    }
    let deliver_opts = args.deliver_options();
    let via = match &deliver_opts.smart_host {
        Some(relay) => format!("smart host {relay}"),
        None => "direct MX delivery".to_string(),
    };
    let (opts, message, envelope, log) = match prepare(args, &via) {
        Ok(x) => x,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let groups = deliver::groups(&deliver_opts, &envelope);
    reporter.header(&message, &envelope, &via, out);
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
            reporter.observer(prefix, log.as_ref(), domain.as_deref())
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
        reporter.note(&note, out);
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
    drop(observers);
    reporter.finish(&report, out);
    report.exit
}

fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `smtpcheck mx`: the routing plan for each domain, optionally probing each server.
pub fn mx(args: &cli::MxArgs, terminal: Terminal, out: &mut dyn Write) -> Exit {
    let (reporter, file_error) = Reporter::new(&args.out, terminal);
    if let Some(e) = file_error {
        return input_error(&e, &reporter, out);
    }
    let opts = match args.conn.session_options() {
        Ok(o) => o,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return input_error(&e, &reporter, out),
    };
    let report = runtime.block_on(mx::run(args, &opts, &session::Silent));
    reporter.finish_mx(&report, out);
    report.exit
}

/// Reports an error found before any connection: on stderr, and as the report in the chosen
/// format (the verdict line in text; the whole JSON or JUnit report), on stdout and in the
/// `--output` file.
fn input_error(e: &Error, reporter: &Reporter, out: &mut dyn Write) -> Exit {
    eprintln!("smtpcheck: error: {e}");
    let report = Report::input_error(e.to_string(), e.exit(), None, None);
    reporter.input_error(&report, out);
    e.exit()
}

/// The single-threaded runtime the network code runs on (one check needs no more).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Everything checked before any connection: flags, the message (file, stdin or generated), the
/// envelope, the log file. `via` names the route for the generated message's body.
#[allow(clippy::type_complexity)]
fn prepare(
    args: &SendArgs,
    via: &str,
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
    let message = match &args.eml {
        Some(path) if path.as_os_str() == "-" => message::from_bytes(
            Path::new(generate::STDIN_PATH),
            generate::read_stdin(args.max_size)?,
        )?,
        Some(path) => message::load(path, args.max_size)?,
        None => generated_message(args, via)?,
    };
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

/// The generated test message: the envelope from --from and --to (both required), shaped by
/// --subject, --body, --body-file and --header.
fn generated_message(args: &SendArgs, via: &str) -> Result<Message, Error> {
    let from = args.from.as_deref().ok_or(Error::GeneratedNoSender)?;
    if args.to.is_empty() {
        return Err(Error::GeneratedNoRecipients);
    }
    let path = PathBuf::from(generate::GENERATED_PATH);
    let empty = Message {
        path: path.clone(),
        raw: Vec::new(),
        streamed: None,
        message_id: None,
        subject: None,
        eight_bit: false,
        headers: Default::default(),
    };
    let envelope = Envelope::resolve(&empty, Some(from), &args.to)?;
    let body = match (&args.body, &args.body_file) {
        (Some(text), _) => Some(text.clone().into_bytes()),
        (None, Some(file)) => Some(generate::read_body_file(file, args.max_size)?),
        (None, None) => None,
    };
    let shape = generate::Shape {
        subject: args.subject.clone(),
        body,
        headers: args.header.clone(),
    };
    let raw = generate::message(
        &envelope,
        &shape,
        via,
        &generate::this_host(),
        std::time::SystemTime::now(),
        plan::random_seed(),
    )?;
    message::from_bytes(&path, raw)
}
