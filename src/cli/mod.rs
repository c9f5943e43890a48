//! The command line: clap definitions (their doc comments are the help). [`lower`] turns them into
//! the plain settings of [`crate::config`]; [`profile`] layers a profile of the config file under
//! the command line; [`parse`] holds the value parsers; [`man`] renders the man page.
// The doc comments double as --help text, where [::1]:25 and IP[:PORT] are syntax, not links, and
// <NAME> and <timestamp> are placeholders, not HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

pub mod lower;
pub mod man;
pub mod parse;
pub mod profile;
pub mod usage;

use crate::address::{parse_host_port_opt, HostPortSpec};
use crate::exit::Exit;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use parse::{parse_duration, parse_envid, parse_notify, parse_resolver, parse_size, Notify};
use std::path::PathBuf;
use std::time::Duration;

/// `--confirm URL`.
fn parse_confirm_url(value: &str) -> Result<crate::confirm::ImapUrl, String> {
    crate::confirm::ImapUrl::parse(value)
}

/// Find out exactly where and why an e-mail fails to get through.
///
/// smtpcheck replays the SMTP conversation you would type by hand in telnet (greeting, EHLO, MAIL
/// FROM, RCPT TO, DATA, the message, QUIT), shows every line sent and received, and says which stage
/// failed and why. The exit code tells a script which stage failed.
///
/// Every option can also be set with an environment variable SMTPCHECK_<NAME> (shown with each
/// option), or in a profile of the config file (--profile). A flag given on the command line wins
/// over the profile, and the profile wins over the environment.
#[derive(Debug, Parser)]
#[command(name = "smtpcheck", version, after_long_help = Exit::help_table(), after_help = "See 'smtpcheck help send' for the exit codes.")]
pub struct Cli {
    /// Colour the text report: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, global = true, env = "SMTPCHECK_COLOR", help_heading = "Global options")]
    pub color: ColorWhen,

    /// Read profiles from this TOML file instead of $XDG_CONFIG_HOME/smtpcheck/config.toml
    /// (~/.config/smtpcheck/config.toml). At most 1 MiB; a FIFO is waited for at most 5 s.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        env = "SMTPCHECK_CONFIG",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    /// Take settings from this profile ([profile.NAME] in the config file). Flags on the command
    /// line win over it; it wins over SMTPCHECK_* environment variables.
    #[arg(
        long,
        value_name = "NAME",
        global = true,
        env = "SMTPCHECK_PROFILE",
        help_heading = "Global options"
    )]
    pub profile: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a message and report every step of the SMTP conversation: a saved message (--eml
    /// FILE, or --eml - for stdin), or without --eml a generated test message.
    #[command(after_long_help = Exit::help_table())]
    Send(Box<SendArgs>),
    /// Show the routing plan for domains (MX records, addresses, implicit or null MX) without
    /// sending anything; --probe also reads each server's greeting and EHLO capabilities.
    #[command(after_long_help = Exit::mx_help_table())]
    Mx(Box<MxArgs>),
    /// Would the receiver accept it? Check a saved message and the sending IP as a receiving
    /// MTA would: SPF (MAIL FROM and HELO), DKIM, DMARC, ARC, reverse DNS, blocklists and the
    /// bulk-sender checklist, with a verdict and the next steps.
    #[command(after_long_help = Exit::help_table())]
    Sender(Box<SenderArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    ///
    /// For example: smtpcheck completions bash > ~/.local/share/bash-completion/completions/smtpcheck
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, e.g. smtpcheck man > smtpcheck.1; man -l smtpcheck.1
    Man,
}

/// `--color`: when to colour the text report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// When stdout is a terminal and `NO_COLOR` is not set (`CLICOLOR_FORCE` forces it).
    #[default]
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A transcript that reads like the telnet session, a step summary and a verdict.
    Text,
    /// Exactly one JSON document (schema in README).
    Json,
    /// A JUnit XML report: one test case per recipient (per domain for mx), for CI test reports.
    Junit,
}

/// How to use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// Never use TLS.
    Off,
    /// STARTTLS when the server offers it; continue in clear when it does not.
    Opportunistic,
    /// STARTTLS is required and the certificate must verify (unless --insecure).
    Required,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// Where `--quit-after` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuitAfter {
    /// After the TCP connection is made (no greeting read).
    Connect,
    /// After the 220 greeting.
    Greeting,
    /// After EHLO (or HELO).
    Ehlo,
    /// After STARTTLS and the EHLO that follows it.
    Tls,
    /// After AUTH.
    Auth,
    /// After MAIL FROM was accepted (then RSET).
    Mail,
    /// After every RCPT TO (then RSET): tests recipients without sending.
    Rcpt,
}

/// What a DSN failure notice returns (RFC 3461 RET).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DsnRet {
    /// The whole message.
    Full,
    /// Only the headers.
    Hdrs,
}

/// SASL mechanisms for AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMech {
    /// AUTH PLAIN (RFC 4616).
    Plain,
    /// AUTH LOGIN.
    Login,
    /// AUTH CRAM-MD5 (RFC 2195).
    #[value(name = "cram-md5")]
    CramMd5,
    /// AUTH SCRAM-SHA-256 (RFC 7677): the server must prove it knows the password too.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// AUTH EXTERNAL: the identity of the TLS client certificate (--tls-cert).
    External,
    /// AUTH XOAUTH2 (Google, Microsoft): an OAuth 2.0 access token.
    Xoauth2,
    /// AUTH OAUTHBEARER (RFC 7628): an OAuth 2.0 access token.
    Oauthbearer,
}

/// OAuth 2.0 token flows (`--oauth2-flow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OAuthFlow {
    /// The application's own identity: client ID and secret (Microsoft app-only, SMTP.SendAsApp).
    ClientCredentials,
    /// A user signs in in a browser on any device; the code and the address are shown.
    DeviceCode,
    /// A refresh token from an earlier sign-in (--oauth2-refresh-token-file).
    RefreshToken,
}

/// Identity provider presets (`--oauth2-provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OAuthProvider {
    /// Microsoft Entra ID / Exchange Online (needs --oauth2-tenant).
    Microsoft,
    /// Google (Gmail, Google Workspace).
    Google,
}

/// DNS settings shared by `send` (direct mode) and `mx`.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Ask this DNS server instead of the system resolver (IP[:PORT], port 53 by default).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_resolver, env = "SMTPCHECK_RESOLVER")]
    pub resolver: Option<std::net::SocketAddr>,

    /// Give up on each DNS lookup after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "SMTPCHECK_DNS_TIMEOUT")]
    pub dns_timeout: Duration,

    /// Connect to IPv4 addresses only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6", env = "SMTPCHECK_IPV4", value_parser = BoolishValueParser::new())]
    pub ipv4: bool,

    /// Connect to IPv6 addresses only.
    #[arg(short = '6', long = "ipv6", env = "SMTPCHECK_IPV6", value_parser = BoolishValueParser::new())]
    pub ipv6: bool,

    /// The port to contact MX hosts on.
    #[arg(long, value_name = "PORT", default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..), env = "SMTPCHECK_PORT")]
    pub port: u16,
}

/// Connection settings shared by `send` and `mx --probe`.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// The name announced in EHLO/HELO: a domain name or an address literal ([192.0.2.1]).
    /// Default: this machine's fully qualified host name, else the address literal of the local
    /// end of the connection.
    #[arg(long, value_name = "NAME", env = "SMTPCHECK_HELO")]
    pub helo: Option<String>,

    /// Give up connecting after this long (e.g. 10s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, env = "SMTPCHECK_CONNECT_TIMEOUT")]
    pub connect_timeout: Duration,

    /// Give up waiting for any one reply, or for the server to take any one write, after this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, env = "SMTPCHECK_TIMEOUT")]
    pub timeout: Duration,

    /// TLS: off, opportunistic (STARTTLS when offered), required (STARTTLS or fail), implicit
    /// (TLS from the first byte, port 465 style).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = TlsMode::Opportunistic, env = "SMTPCHECK_TLS")]
    pub tls: TlsMode,

    /// Also trust the CA certificate(s) in this PEM file (for a private CA; also for the token
    /// endpoints of send --oauth2-flow). A certificate in it
    /// that is byte for byte the server's own is trusted as a pin, whatever its basicConstraints
    /// (a self-signed `openssl req -x509` certificate): verdict `pinned`. At most 8 MiB; a FIFO is
    /// waited for at most 5 s.
    #[arg(long, value_name = "FILE", env = "SMTPCHECK_CA")]
    pub ca: Option<PathBuf>,

    /// Trust a server whose public key has this hash, whatever its chain and name: sha256: and the
    /// base64 SHA-256 of its SubjectPublicKeyInfo (the spki_sha256 smtpcheck reports; curl's
    /// --pinnedpubkey value). Repeatable; with a pin, a server matching none is refused.
    #[arg(
        long,
        value_name = "sha256:BASE64",
        env = "SMTPCHECK_TLS_PIN",
        value_delimiter = ','
    )]
    pub tls_pin: Vec<String>,

    /// Write the certificate chain the server presented to FILE, as PEM (the first server whose
    /// TLS handshake completed), e.g. to trust it with --ca.
    #[arg(long, value_name = "FILE", env = "SMTPCHECK_TLS_SAVE_CHAIN")]
    pub tls_save_chain: Option<PathBuf>,

    /// Offer this client certificate (PEM, leaf first) when the server asks for one, with
    /// STARTTLS or implicit TLS (at most 1 MiB); the report shows its subject.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "SMTPCHECK_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert; it is never shown.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "SMTPCHECK_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Warn when the server certificate expires within this many days.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 14,
        env = "SMTPCHECK_CERT_WARN_DAYS"
    )]
    pub cert_warn_days: u32,

    /// Verify the server certificate against this name (default: the host name connected to; for
    /// an MX host, the MX name).
    #[arg(long, value_name = "NAME", env = "SMTPCHECK_TLS_NAME")]
    pub tls_name: Option<String>,

    /// Do not fail on certificate problems with --tls required or implicit (they are still
    /// reported, with the verdict not-checked).
    #[arg(long, env = "SMTPCHECK_INSECURE", value_parser = BoolishValueParser::new())]
    pub insecure: bool,
}

/// Output settings shared by `send` and `mx`.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Report format: text, json or junit. On stdout; with --output, in the file instead (the
    /// terminal then gets the text report).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text, env = "SMTPCHECK_FORMAT")]
    pub format: Format,

    /// Write the report in --format to FILE (created or truncated); the text report still goes
    /// to the terminal. E.g. --format junit --output smtpcheck.xml for a CI test report.
    #[arg(short = 'o', long, value_name = "FILE", env = "SMTPCHECK_OUTPUT")]
    pub output: Option<PathBuf>,

    /// Print only the verdict line of the text report (the exit code tells the rest).
    #[arg(short = 'q', long, conflicts_with = "verbose", env = "SMTPCHECK_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// Add detail to the text report: each reply's time, the servers' capabilities in words, and
    /// the time of the whole check.
    #[arg(short = 'v', long, env = "SMTPCHECK_VERBOSE", value_parser = BoolishValueParser::new())]
    pub verbose: bool,
}

/// Flags of `smtpcheck send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The message to send: a saved RFC 5322 message (.eml), sent as it is; `-` reads it from
    /// stdin. Without --eml a test message is generated (see --subject, --body, --header).
    #[arg(long, value_name = "FILE", env = "SMTPCHECK_EML")]
    pub eml: Option<PathBuf>,

    /// Envelope sender (MAIL FROM). An empty value (--from '') sends the null sender <>.
    /// Default: the message's Return-Path, else Sender, else the first From address. Required
    /// without --eml (it is also the generated message's From).
    #[arg(long, value_name = "ADDRESS", env = "SMTPCHECK_FROM")]
    pub from: Option<String>,

    /// Envelope recipient (RCPT TO); repeat the flag or separate with commas.
    /// Default: the message's To, Cc and Bcc addresses. Required without --eml.
    #[arg(long, value_name = "ADDRESS", env = "SMTPCHECK_TO")]
    pub to: Vec<String>,

    /// Generated message: its Subject (default: "smtpcheck test <timestamp>").
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "eml",
        env = "SMTPCHECK_SUBJECT"
    )]
    pub subject: Option<String>,

    /// Generated message: its body text (default: a short note naming this host and the route).
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["eml", "body_file"], env = "SMTPCHECK_BODY")]
    pub body: Option<String>,

    /// Generated message: take the body from this file (at most --max-size; a FIFO is waited for
    /// at most 5 s).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "eml",
        env = "SMTPCHECK_BODY_FILE"
    )]
    pub body_file: Option<PathBuf>,

    /// Generated message: add the header field "Name: value" (repeatable); one named like a
    /// generated field (Date, Message-ID, From, To, Subject, MIME-Version, Content-Type,
    /// Content-Transfer-Encoding) replaces it.
    #[arg(
        long,
        value_name = "NAME: VALUE",
        conflicts_with = "eml",
        env = "SMTPCHECK_HEADER"
    )]
    pub header: Vec<String>,

    /// Send through this relay only (smart-host mode). PORT defaults to 25 (465 with --tls
    /// implicit); write IPv6 as [::1]:25. Without it, deliver directly to each recipient
    /// domain's MX hosts.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_host_port_opt, env = "SMTPCHECK_SMART_HOST")]
    pub smart_host: Option<HostPortSpec>,

    /// Direct mode: when every MX host of a domain failed, try this relay as the last attempt.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_host_port_opt, conflicts_with = "smart_host", env = "SMTPCHECK_FALLBACK_SMART_HOST")]
    pub fallback_smart_host: Option<HostPortSpec>,

    /// Direct mode: try at most this many addresses per domain (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), env = "SMTPCHECK_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,

    /// Direct mode: handle at most this many recipient domains at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256), env = "SMTPCHECK_CONCURRENCY")]
    pub concurrency: u32,

    /// Log in with this user name (AUTH). The password comes from SMTPCHECK_PASSWORD,
    /// --auth-password-file, or a prompt when stdin is a terminal; never from the command line.
    #[arg(long, value_name = "USER", env = "SMTPCHECK_AUTH_USER")]
    pub auth_user: Option<String>,

    /// Read the AUTH password from the first line of this file (at most 64 KiB; a FIFO or pipe
    /// is waited for at most 5 s).
    #[arg(
        long,
        value_name = "FILE",
        requires = "auth_user",
        env = "SMTPCHECK_AUTH_PASSWORD_FILE"
    )]
    pub auth_password_file: Option<PathBuf>,

    /// Read the OAuth 2.0 access token (for XOAUTH2 or OAUTHBEARER) from the first line of this
    /// file (at most 64 KiB). The token may also come from SMTPCHECK_OAUTH2_TOKEN or
    /// --oauth2-token-cmd; never from the command line.
    #[arg(
        long,
        value_name = "FILE",
        requires = "auth_user",
        conflicts_with = "oauth2_token_cmd",
        env = "SMTPCHECK_OAUTH2_TOKEN_FILE"
    )]
    pub oauth2_token_file: Option<PathBuf>,

    /// Run this command (through the shell, stdin empty) and use the first line it prints as the
    /// OAuth 2.0 access token; it is stopped after 30 s.
    #[arg(
        long,
        value_name = "COMMAND",
        requires = "auth_user",
        env = "SMTPCHECK_OAUTH2_TOKEN_CMD"
    )]
    pub oauth2_token_cmd: Option<String>,

    /// Get the OAuth 2.0 access token from the identity provider with this flow (needs
    /// --oauth2-client-id, and --oauth2-provider or --oauth2-token-url).
    #[arg(
        long,
        value_enum,
        value_name = "FLOW",
        requires = "auth_user",
        conflicts_with_all = ["oauth2_token_file", "oauth2_token_cmd"],
        env = "SMTPCHECK_OAUTH2_FLOW"
    )]
    pub oauth2_flow: Option<OAuthFlow>,

    /// Fill in the token endpoints and scope of this identity provider.
    #[arg(
        long,
        value_enum,
        value_name = "PROVIDER",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_PROVIDER"
    )]
    pub oauth2_provider: Option<OAuthProvider>,

    /// The Microsoft tenant (its ID, or a domain such as contoso.onmicrosoft.com) for
    /// --oauth2-provider microsoft.
    #[arg(
        long,
        value_name = "TENANT",
        requires = "oauth2_provider",
        env = "SMTPCHECK_OAUTH2_TENANT"
    )]
    pub oauth2_tenant: Option<String>,

    /// The token endpoint (https://; http:// only for a loopback address).
    #[arg(
        long,
        value_name = "URL",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_TOKEN_URL"
    )]
    pub oauth2_token_url: Option<String>,

    /// The device authorization endpoint for --oauth2-flow device-code (https://).
    #[arg(
        long,
        value_name = "URL",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_DEVICE_URL"
    )]
    pub oauth2_device_url: Option<String>,

    /// The application (client) ID registered with the identity provider.
    #[arg(
        long,
        value_name = "ID",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_CLIENT_ID"
    )]
    pub oauth2_client_id: Option<String>,

    /// Read the client secret from the first line of this file (else from
    /// SMTPCHECK_OAUTH2_CLIENT_SECRET); never from the command line.
    #[arg(
        long,
        value_name = "FILE",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_CLIENT_SECRET_FILE"
    )]
    pub oauth2_client_secret_file: Option<PathBuf>,

    /// Read the refresh token for --oauth2-flow refresh-token from the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_REFRESH_TOKEN_FILE"
    )]
    pub oauth2_refresh_token_file: Option<PathBuf>,

    /// The scope to ask for (default: the preset's, e.g. https://outlook.office365.com/.default
    /// for Microsoft client credentials).
    #[arg(
        long,
        value_name = "SCOPE",
        requires = "oauth2_flow",
        env = "SMTPCHECK_OAUTH2_SCOPE"
    )]
    pub oauth2_scope: Option<String>,

    /// Use this AUTH mechanism (default: the strongest the server offers, a token mechanism
    /// when an OAuth token is given).
    #[arg(
        long,
        value_enum,
        value_name = "MECH",
        requires = "auth_user",
        env = "SMTPCHECK_AUTH_MECH"
    )]
    pub auth_mech: Option<AuthMech>,

    /// Allow AUTH over a connection that is not encrypted.
    #[arg(long, env = "SMTPCHECK_ALLOW_PLAIN_AUTH", value_parser = BoolishValueParser::new())]
    pub allow_plain_auth: bool,

    /// Refuse message files (and stdin, and --body-file) larger than this (e.g. 100MB, 512KiB,
    /// 2000000).
    #[arg(long, value_name = "SIZE", default_value = "100MB", value_parser = parse_size, env = "SMTPCHECK_MAX_SIZE")]
    pub max_size: u64,

    /// Stop after this stage succeeded, without sending the message: RSET (after mail or rcpt)
    /// and QUIT. `--quit-after rcpt` tests recipients without delivering anything.
    #[arg(long, value_enum, value_name = "STAGE", env = "SMTPCHECK_QUIT_AFTER")]
    pub quit_after: Option<QuitAfter>,

    /// Ask for delivery status notifications (RFC 3461): NOTIFY= on each RCPT when the server
    /// offers DSN. A comma-separated list of success, failure, delay; or never.
    #[arg(long, value_name = "WHEN", value_parser = parse_notify, env = "SMTPCHECK_NOTIFY")]
    pub notify: Option<Notify>,

    /// DSN: return the full message or only its headers in a failure notice (RET= on MAIL).
    #[arg(long, value_enum, value_name = "WHAT", env = "SMTPCHECK_RET")]
    pub ret: Option<DsnRet>,

    /// DSN: the envelope identifier (ENVID= on MAIL), echoed in notifications.
    #[arg(long, value_name = "ID", value_parser = parse_envid, env = "SMTPCHECK_ENVID")]
    pub envid: Option<String>,

    /// Append a timestamped protocol log of the whole run to this file (AUTH redacted).
    #[arg(long, value_name = "FILE", env = "SMTPCHECK_LOG")]
    pub log: Option<PathBuf>,

    /// Repeat the whole check up to N more times while the outcome is a transient failure
    /// (4xx, connection failure, timeout, temporary DNS failure).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100), env = "SMTPCHECK_RETRY")]
    pub retry: u32,

    /// Wait this long between retry rounds.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, env = "SMTPCHECK_RETRY_DELAY")]
    pub retry_delay: Duration,

    /// After the server accepted the message, log into this mailbox over IMAP and find it:
    /// imap://USER@HOST[:PORT] (STARTTLS when offered, with the --tls, --ca and --tls-pin rules)
    /// or imaps://USER@HOST[:PORT]. The password comes from SMTPCHECK_IMAP_PASSWORD,
    /// --confirm-password-file, or a prompt when stdin is a terminal; never from the command line.
    /// Reports the folder (junk or not), the time to arrival, the receiver's
    /// Authentication-Results, the Received hops and spam headers; exits 16 (junk), 17 (not found
    /// in time) or 18 (mailbox not checked) when the message was accepted.
    #[arg(long, value_name = "URL", value_parser = parse_confirm_url, env = "SMTPCHECK_CONFIRM")]
    pub confirm: Option<crate::confirm::ImapUrl>,

    /// --confirm: read the IMAP password from the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "confirm",
        env = "SMTPCHECK_CONFIRM_PASSWORD_FILE"
    )]
    pub confirm_password_file: Option<PathBuf>,

    /// --confirm: wait this long (from the final 250) for the message to show up.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration, env = "SMTPCHECK_CONFIRM_TIMEOUT")]
    pub confirm_timeout: Duration,

    /// --confirm: look only in these folders, in this order (comma-separated; default: INBOX,
    /// then the \Junk special-use folder, then every other folder).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        requires = "confirm",
        env = "SMTPCHECK_CONFIRM_FOLDERS"
    )]
    pub confirm_folders: Option<Vec<String>>,

    /// --confirm: delete the message from the mailbox once found.
    #[arg(long, requires = "confirm", env = "SMTPCHECK_CONFIRM_DELETE", value_parser = BoolishValueParser::new())]
    pub confirm_delete: bool,

    /// After the session, judge the message and the sending IP as the receiver would (SPF for
    /// MAIL FROM and the announced HELO name, DKIM, DMARC, ARC, reverse DNS, --dnsbl, the
    /// bulk-sender checklist; see `smtpcheck sender`). The IP is --ip, else the address the
    /// server says it sees in its greeting or EHLO reply, else the local address of the
    /// connection (a NAT may change it). Failures are warnings: the exit code stays the
    /// delivery's unless --require-sender-pass.
    #[arg(long, env = "SMTPCHECK_CHECK_SENDER", value_parser = BoolishValueParser::new())]
    pub check_sender: bool,

    /// --check-sender (implied): when the message was delivered but the sender verdict fails,
    /// exit with the sender code: 40 (a receiver enforcing DMARC would reject or quarantine it),
    /// 41 (a sender check fails) or 24 (a DNS lookup failed temporarily).
    #[arg(long, env = "SMTPCHECK_REQUIRE_SENDER_PASS", value_parser = BoolishValueParser::new())]
    pub require_sender_pass: bool,

    /// --check-sender: the IP address the message is sent from, as the receiver sees it.
    #[arg(long, value_name = "IP", env = "SMTPCHECK_IP")]
    pub ip: Option<std::net::IpAddr>,

    /// --check-sender: also look the IP up in this DNS blocklist zone (repeatable, or
    /// comma-separated); `default` stands for zen.spamhaus.org, bl.spamcop.net,
    /// b.barracudacentral.org and psbl.surriel.com.
    #[arg(
        long,
        value_name = "ZONE",
        env = "SMTPCHECK_DNSBL",
        value_delimiter = ','
    )]
    pub dnsbl: Vec<String>,

    /// Connection settings.
    #[command(flatten)]
    pub conn: ConnArgs,

    /// Output settings.
    #[command(flatten)]
    pub out: OutputArgs,

    /// DNS settings (direct mode).
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Flags of `smtpcheck mx`.
#[derive(Debug, Clone, Args)]
pub struct MxArgs {
    /// The domains to look up.
    #[arg(value_name = "DOMAIN", required = true)]
    pub domains: Vec<String>,

    /// Also connect to each address and read its greeting and EHLO capabilities (no mail is sent).
    #[arg(long, env = "SMTPCHECK_PROBE", value_parser = BoolishValueParser::new())]
    pub probe: bool,

    /// Connection settings.
    #[command(flatten)]
    pub conn: ConnArgs,

    /// Output settings.
    #[command(flatten)]
    pub out: OutputArgs,

    /// DNS settings.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `sender --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SenderFormat {
    /// Each check on a line, the bulk-sender checklist, a verdict and the next steps.
    Text,
    /// Exactly one JSON document (schema in README, "smtpcheck sender").
    Json,
}

/// Flags of `smtpcheck sender`.
#[derive(Debug, Clone, Args)]
pub struct SenderArgs {
    /// The saved message (.eml) to judge, as the receiver gets it (at most 64 MiB).
    #[arg(long, value_name = "FILE", required = true, env = "SMTPCHECK_EML")]
    pub eml: PathBuf,

    /// The IP address the message is sent from. Default: the address in the topmost Received
    /// header field.
    #[arg(long, value_name = "IP", env = "SMTPCHECK_IP")]
    pub ip: Option<std::net::IpAddr>,

    /// The name the sending server announces in EHLO/HELO: also checked with SPF, against the
    /// IP's reverse DNS, and used for the null sender. Default: no HELO checks.
    #[arg(long, value_name = "NAME", env = "SMTPCHECK_HELO")]
    pub helo: Option<String>,

    /// The envelope sender (MAIL FROM) whose domain SPF checks; --from '' is the null sender.
    /// Default: the message's Return-Path, else its From address.
    #[arg(long, value_name = "ADDRESS", env = "SMTPCHECK_FROM")]
    pub from: Option<String>,

    /// Also look the IP up in this DNS blocklist zone (repeatable, or comma-separated);
    /// `default` stands for zen.spamhaus.org, bl.spamcop.net, b.barracudacentral.org and
    /// psbl.surriel.com.
    #[arg(
        long,
        value_name = "ZONE",
        env = "SMTPCHECK_DNSBL",
        value_delimiter = ','
    )]
    pub dnsbl: Vec<String>,

    /// Ask this DNS server instead of the system resolver (IP[:PORT], port 53 by default).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_resolver, env = "SMTPCHECK_RESOLVER")]
    pub resolver: Option<std::net::SocketAddr>,

    /// Give up on each DNS lookup after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "SMTPCHECK_DNS_TIMEOUT")]
    pub dns_timeout: Duration,

    /// Report format: text or json, on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SenderFormat::Text, env = "SMTPCHECK_FORMAT")]
    pub format: SenderFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn send_flags_parse() {
        let cli = Cli::try_parse_from([
            "smtpcheck",
            "send",
            "--eml",
            "a.eml",
            "--to",
            "a@b.com,c@d.com",
            "--to",
            "e@f.com",
            "--smart-host",
            "127.0.0.1:2525",
            "--from",
            "",
        ])
        .unwrap();
        let Command::Send(args) = cli.command else {
            panic!("not send")
        };
        assert_eq!(args.to.len(), 2);
        assert_eq!(args.from.as_deref(), Some(""));
        assert_eq!(args.smart_host.unwrap().with_default(25).port, 2525);
        assert_eq!(args.out.format, Format::Text);
        assert_eq!(args.conn.tls, TlsMode::Opportunistic);
        assert_eq!(args.dns.port, 25);
    }

    #[test]
    fn mx_flags_parse() {
        let cli = Cli::try_parse_from([
            "smtpcheck",
            "mx",
            "a.test",
            "b.test",
            "--probe",
            "--resolver",
            "127.0.0.1:5353",
            "-4",
        ])
        .unwrap();
        let Command::Mx(args) = cli.command else {
            panic!("not mx")
        };
        assert_eq!(args.domains, vec!["a.test", "b.test"]);
        assert!(args.probe && args.dns.ipv4);
        assert_eq!(args.dns.resolver.unwrap().port(), 5353);
        assert!(Cli::try_parse_from(["smtpcheck", "mx", "a.test", "-4", "-6"]).is_err());
        assert!(
            Cli::try_parse_from(["smtpcheck", "mx", "a.test", "--resolver", "dns.example"])
                .is_err()
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = Cli::try_parse_from(["smtpcheck", "send", "--eml", "a.eml", "--smart-host", "h:0"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn every_option_has_its_environment_variable() {
        let cmd = Cli::command();
        let mut checked = 0;
        for c in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            for a in c.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                if matches!(long, "help" | "version") {
                    continue;
                }
                let want = format!("SMTPCHECK_{}", long.to_ascii_uppercase().replace('-', "_"));
                assert_eq!(
                    a.get_env().and_then(|e| e.to_str()),
                    Some(want.as_str()),
                    "--{long} of {}",
                    c.get_name()
                );
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked}");
        // SMTPCHECK_PASSWORD stays the AUTH password, SMTPCHECK_IMAP_PASSWORD the IMAP one, never
        // options; so do the OAuth secrets.
        for secret in [
            "SMTPCHECK_PASSWORD",
            "SMTPCHECK_IMAP_PASSWORD",
            "SMTPCHECK_OAUTH2_TOKEN",
            "SMTPCHECK_OAUTH2_CLIENT_SECRET",
        ] {
            assert!(cmd
                .get_subcommands()
                .flat_map(|c| c.get_arguments())
                .all(|a| a.get_env().and_then(|e| e.to_str()) != Some(secret)));
        }
    }

    #[test]
    fn help_lists_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status"));
        assert!(help.contains("EHLO and HELO refused"));
    }
}
