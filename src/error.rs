//! "Could not run the check": bad files, bad addresses, bad flag values found before any connection.
//!
//! A server's refusal is never one of these: it is a result in the report.

use crate::exit::Exit;
use std::path::PathBuf;

/// An error that stops smtpcheck before (or instead of) talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message file could not be opened or read.
    #[error("cannot read message file {path}: {}; check the path given to --eml", words(.source))]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The message file is not a regular file (a directory, a FIFO, a device).
    #[error(
        "message file {path} is not a regular file ({kind}); {}",
        not_a_file_fix(kind, path)
    )]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The message file is empty.
    #[error("message file {path} is empty; give --eml a saved e-mail message (.eml)")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The message file is larger than `--max-size`.
    #[error("message file {path} is {size} bytes, over the --max-size limit of {limit} bytes; raise --max-size if this is intended")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not an RFC 5322 message.
    #[error("message file {path} is not an e-mail message: {why}; give --eml a saved RFC 5322 message (.eml)")]
    NotAMessage {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// An address (from a flag or a header) is not a valid envelope address.
    #[error("invalid address {value} in {origin}: {why}")]
    BadAddress {
        /// The value, shown escaped (control characters as `\r`, `\n`, `\0`).
        value: String,
        /// Where it came from (`--to`, `--from`, `the To header`…).
        origin: String,
        /// What is wrong with it.
        why: String,
    },
    /// No envelope sender could be found.
    #[error("no envelope sender: the message has no Return-Path, Sender or From address; give one with --from ADDRESS (or --from '' for the null sender)")]
    NoSender,
    /// No recipient could be found.
    #[error(
        "no recipients: the message has no To, Cc or Bcc address; give them with --to ADDRESS"
    )]
    NoRecipients,
    /// The `--helo` value is not a domain or an address literal.
    #[error("invalid --helo {value}: {why}; give a fully qualified domain name (mail.example.com) or an address literal ([192.0.2.1])")]
    BadHelo {
        /// The value, shown escaped.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The `--ca` file could not be used.
    #[error("cannot use --ca {path}: {why}; give a PEM file with one or more CA certificates")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The `--tls-name` value is not a DNS name or an IP address.
    #[error("invalid --tls-name {value}: give the DNS name (or IP address) the server's certificate should be valid for")]
    BadTlsName {
        /// The value, shown escaped.
        value: String,
    },
    /// A `--tls-pin` value cannot be used.
    #[error("invalid --tls-pin {value}: {why}; give sha256: and the base64 SHA-256 of the server's public key (the spki_sha256 smtpcheck reports)")]
    BadTlsPin {
        /// The value, shown escaped.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The `--auth-user` value cannot be used.
    #[error("invalid --auth-user {value}: {why}")]
    BadAuthUser {
        /// The value, shown escaped.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The `--auth-password-file` could not be read.
    #[error("cannot read the password file {path} ({flag}): {why}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The flag that named it.
        flag: &'static str,
        /// What went wrong (never the file's content).
        why: String,
    },
    /// No password source was available.
    #[error("no password for {user_flag} {user}: set {env}, give {file_flag} FILE, or run from a terminal to be asked")]
    NoPassword {
        /// The user, shown escaped.
        user: String,
        /// The flag that gave the user.
        user_flag: &'static str,
        /// The environment variable the password may come from.
        env: &'static str,
        /// The flag naming a password file.
        file_flag: &'static str,
    },
    /// The password prompt failed.
    #[error("cannot read the password from the terminal: {why}; set {env} or give {file_flag} FILE instead")]
    PasswordPrompt {
        /// What went wrong.
        why: String,
        /// The environment variable the password may come from.
        env: &'static str,
        /// The flag naming a password file.
        file_flag: &'static str,
    },
    /// The OAuth token could not be found or used, or a token flow could not be run (no token,
    /// secret or refresh token is ever part of the text).
    #[error("{why}")]
    OAuth {
        /// What went wrong, with the next step.
        why: String,
    },
    /// The identity provider refused to issue a token (exit 7, like a refused AUTH).
    #[error("{why}")]
    OAuthDenied {
        /// Its error, explained, with the next step.
        why: String,
    },
    /// The identity provider could not be reached or gave no usable answer (exit 27, temporary).
    #[error("{why}")]
    OAuthUnavailable {
        /// What went wrong, with the next step.
        why: String,
    },
    /// `--tls-cert` or `--tls-key` cannot be used (the key is never shown).
    #[error("{why}")]
    ClientCert {
        /// Which file and what is wrong.
        why: String,
    },
    /// The password found cannot be used (its content is never shown).
    #[error("unusable {what} password: {why}")]
    BadPassword {
        /// Whose password: `AUTH` or `IMAP`.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The --log file could not be opened.
    #[error("cannot open log file {path}: {}; check the path given to --log", words(.source))]
    LogFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `--header` is not a valid `Name: value` header field.
    #[error("invalid --header {value}: {why}; write it as \"Name: value\" on one line")]
    BadHeader {
        /// The value, shown escaped.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// `--subject` cannot be put in a header.
    #[error("invalid --subject {value}: {why}; give the subject on one line")]
    BadSubject {
        /// The value, shown escaped.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// `--body-file` could not be used.
    #[error("cannot use --body-file {path}: {why}")]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// `--eml -`: stdin could not be read.
    #[error("cannot read the message from standard input (--eml -): {}", words(.0))]
    ReadStdin(std::io::Error),
    /// `--eml -`: stdin holds more than `--max-size`.
    #[error("the message on standard input (--eml -) is larger than the --max-size limit of {limit} bytes; raise --max-size if this is intended")]
    StdinTooLarge {
        /// The limit.
        limit: u64,
    },
    /// No `--from` for the generated test message.
    #[error("no envelope sender for the generated test message: give --from ADDRESS (or --from '' for the null sender), or send a saved message with --eml FILE")]
    GeneratedNoSender,
    /// No `--to` for the generated test message.
    #[error("no recipients for the generated test message: give them with --to ADDRESS, or send a saved message with --eml FILE")]
    GeneratedNoRecipients,
    /// The `--output` file could not be created.
    #[error("cannot create --output file {path}: {}; check the path and that its directory exists", words(.source))]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file or the profile cannot be used.
    #[error("config file {path}: {why}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, and how to fix it.
        why: String,
    },
    /// `--dnsbl` names something that is not a DNS zone (`send --check-sender`).
    #[error("{why}")]
    BadDnsbl {
        /// What is wrong.
        why: String,
    },
    /// The async runtime could not be started.
    #[error("cannot start the network runtime: {}", words(.0))]
    Runtime(std::io::Error),
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Runtime(_) => Exit::Broken,
            Error::OAuthDenied { .. } => Exit::Auth,
            Error::OAuthUnavailable { .. } => Exit::AuthLater,
            _ => Exit::BadInput,
        }
    }
}

/// What to do when `--eml` names something that is not a regular file: a directory needs a file
/// in it; a pipe (or a device) is read with `--eml -` from standard input.
fn not_a_file_fix(kind: &str, path: &std::path::Path) -> String {
    if kind == "a directory" {
        return "give --eml the path of a saved .eml file".into();
    }
    format!(
        "to read a message from a pipe, give --eml - and feed it on standard input (--eml - < {}, \
         or: producer | smtpcheck send --eml -)",
        path.display()
    )
}

/// An I/O error in words, without the raw `(os error N)` suffix: "no such file or directory",
/// "permission denied", "connection reset by peer".
pub fn words(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

/// Shows a user-supplied value in an error message: quoted, with control characters escaped so a
/// CR or LF is visible instead of breaking the line.
pub fn show(value: &str) -> String {
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_in_words() {
        use std::io::Error as E;
        assert_eq!(words(&E::from_raw_os_error(2)), "no such file or directory");
        assert_eq!(words(&E::from_raw_os_error(13)), "permission denied");
        assert_eq!(words(&E::other("Odd thing")), "odd thing");
        let e = Error::ReadFile {
            path: "/nope".into(),
            source: E::from_raw_os_error(2),
        };
        assert!(!e.to_string().contains("os error"), "{e}");
    }
}
