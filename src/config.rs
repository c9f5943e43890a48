//! What a run is asked to do, settled before anything runs: the flags, the profile and the
//! environment lowered into plain settings (see `cli::lower`). No clap types here or below.

use crate::confirm::ConfirmOptions;
use crate::deliver::DeliverOptions;
use crate::dns::DnsOptions;
use crate::session::SessionOptions;
use std::path::PathBuf;
use std::time::Duration;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A transcript that reads like the telnet session, a step summary and a verdict.
    #[default]
    Text,
    /// Exactly one JSON document.
    Json,
    /// A JUnit XML report.
    Junit,
}

/// When to colour the text report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// When stdout is a terminal and `NO_COLOR` is not set (`CLICOLOR_FORCE` forces it).
    #[default]
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// Where and how the report is written (`send` and `mx`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputConfig {
    /// The report format (on stdout, or in `file`).
    pub format: Format,
    /// `--output`: the file that gets the report in `format` (the terminal then gets text).
    pub file: Option<PathBuf>,
    /// Only the verdict line of the text report.
    pub quiet: bool,
    /// Timings and capabilities in the text report.
    pub verbose: bool,
}

/// Where the message comes from and what its envelope is, as given (checked by the input stage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputConfig {
    /// `--eml`: a saved message, or `-` for stdin; `None` generates a test message.
    pub eml: Option<PathBuf>,
    /// `--from`, as given (`Some("")` is the null sender).
    pub from: Option<String>,
    /// `--to` values, as given (each may hold a comma-separated list).
    pub to: Vec<String>,
    /// Generated message: its Subject.
    pub subject: Option<String>,
    /// Generated message: its body text.
    pub body: Option<String>,
    /// Generated message: the file its body is read from.
    pub body_file: Option<PathBuf>,
    /// Generated message: extra header fields, `Name: value`.
    pub headers: Vec<String>,
    /// The largest message (file, stdin or body file) accepted, in bytes.
    pub max_size: u64,
}

/// Everything `smtpcheck send` needs.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// The message and the envelope, as given.
    pub input: InputConfig,
    /// The conversation with each server (HELO name, timeouts, TLS, AUTH, DSN, `--quit-after`).
    pub session: SessionOptions,
    /// Routing: smart host or direct MX delivery, DNS, attempts, concurrency.
    pub deliver: DeliverOptions,
    /// `--log`: the protocol log file.
    pub log: Option<PathBuf>,
    /// `--retry`: more rounds while the outcome is a transient failure.
    pub retry: u32,
    /// `--retry-delay`: the pause between rounds.
    pub retry_delay: Duration,
    /// `--confirm`: find the message in the recipient's mailbox over IMAP afterwards.
    pub confirm: Option<ConfirmOptions>,
    /// `--check-sender`: judge the message and the sending IP as the receiver would, afterwards.
    pub check_sender: Option<SenderCheck>,
}

/// `send --check-sender`: the sender checks run after the session (DNS through the settings of
/// `deliver.dns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderCheck {
    /// `--ip`: the sending IP (None: the one the server says it sees, else the local address).
    pub ip: Option<std::net::IpAddr>,
    /// `--dnsbl`: the blocklist zones, `default` expanded.
    pub dnsbl: Vec<String>,
    /// `--require-sender-pass`: a failing sender verdict changes the exit code.
    pub require_pass: bool,
}

/// Everything `smtpcheck mx` needs.
#[derive(Debug, Clone)]
pub struct MxConfig {
    /// The domains to look up, as given.
    pub domains: Vec<String>,
    /// Also connect to each address and read its greeting and EHLO.
    pub probe: bool,
    /// The probe conversations.
    pub session: SessionOptions,
    /// DNS.
    pub dns: DnsOptions,
}
