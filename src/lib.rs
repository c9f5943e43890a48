//! smtpcheck: find out exactly where and why an e-mail fails to get through.
//!
//! The program is a pipeline, one module per stage, data flowing one way: `cli` (the flags,
//! lowered into `config`'s plain settings) → `input` (the message and its envelope) → `deliver`
//! (routes from `plan` and `dns`, attempts through `route`) → `session` (the SMTP conversation over
//! `smtp`'s wire formats and rules, the only code that touches sockets) → `report` (one `Serialize`
//! result and its exit code) → `output` (text, JSON, JUnit, the protocol log). `app` runs each
//! command as that pipeline; progress flows to the renderers as `events`.
//!
//! The modules are private: the tool is the command line. [`internals`] re-exports what the
//! project's own tests, benchmarks, examples and fuzz targets reach into.

mod address;
mod app;
mod cli;
mod config;
mod confirm;
mod deliver;
mod diagnose;
mod dns;
mod error;
mod events;
mod exit;
mod files;
mod generate;
mod host;
mod input;
mod message;
mod mx;
mod oauth;
mod output;
mod plan;
mod report;
mod route;
mod secret;
mod sender;
mod session;
mod smtp;
mod time;
mod tls;
mod transcript;

use std::ffi::OsString;

/// The parts of the crate that its own tests, benchmarks, examples and fuzz targets reach into.
/// Not a stable API: the tool is the command line.
#[doc(hidden)]
pub mod internals {
    pub use crate::address::{parse_address, parse_helo};
    pub use crate::dns::{AddrAnswer, Family, MxAnswer, MxRecord, Resolver};
    pub use crate::events::Silent;
    pub use crate::plan::{plan_domain, RoutePlan, Target, IMPLICIT_MX_NOTE};
    pub use crate::session::{attempt, Helo, SessionOptions};
    pub use crate::smtp::codec::{
        encode_data, escape_line, normalized_len, parse_capabilities, parse_reply, DataEncoder,
        Parsed, MAX_REPLY_LINE, MAX_REPLY_LINES,
    };
    pub use crate::transcript::{BreakKind, FailureClass, Reply, Stage};

    /// The message loader and the envelope.
    pub mod message {
        pub use crate::message::{
            from_bytes, load, preflight, Envelope, HeaderScan, MAX_HEADER_SECTION, STREAM_ABOVE,
        };
    }
}

/// The whole program for a command line (`argv[0]` first): parse it with the environment and the
/// profile, run it, and return the process exit code. Usage errors are clap's (exit 2; `--help`
/// and `--version` exit 0); a bad config file or profile is exit 3.
pub fn main_with(argv: Vec<OsString>) -> std::process::ExitCode {
    match cli::profile::parse_cli(argv.clone()) {
        Ok(cli) => app::run(cli).into(),
        Err(cli::profile::Failed::Clap(e)) => {
            let advice = cli::usage::advice(&argv, &e);
            match &advice {
                Some(text) => eprint!("{text}"),
                None => drop(e.print()),
            }
            let code = u8::try_from(e.exit_code()).unwrap_or(2);
            if code == exit::Exit::Usage.code() && cli::profile::wants_json(&argv) {
                app::usage_error_json(&advice.unwrap_or_else(|| e.render().to_string()));
            }
            std::process::ExitCode::from(code)
        }
        Err(cli::profile::Failed::Config { cli, error }) => app::config_failed(&cli, &error).into(),
    }
}
