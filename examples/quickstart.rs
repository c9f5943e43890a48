//! A first run with no mail server: starts a receiving SMTP server inside this process on an
//! ephemeral loopback port and runs `smtpcheck send` (the same code path as the binary) against it,
//! delivering `examples/report.eml`.
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart -- --format json     # extra flags go to `smtpcheck send`
//! ```

use smtpcheck_sink::{Script, Sink};
use std::process::ExitCode;

fn main() -> ExitCode {
    let sink = match Sink::start(Script::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quickstart: cannot start the loopback SMTP server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let eml = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/report.eml");
    let relay = sink.addr().to_string();
    let extra: Vec<String> = std::env::args().skip(1).collect();
    // On stderr, so that with --format json stdout stays a single JSON document.
    eprintln!("quickstart: a test SMTP server is listening on {relay}");
    eprintln!(
        "$ smtpcheck send --eml examples/report.eml --to user@domain.com --smart-host {relay} {}\n",
        extra.join(" ")
    );
    let mut args: Vec<String> = [
        "smtpcheck",
        "send",
        "--eml",
        eml,
        "--to",
        "user@domain.com",
        "--smart-host",
        &relay,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(std::env::args().skip(1));
    smtpcheck::main_with(args.into_iter().map(Into::into).collect())
}
