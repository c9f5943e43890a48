//! SMTP AUTH (RFC 4954): finding the password before any connection, choosing a mechanism, and
//! encoding the credentials.
//!
//! No I/O on sockets here: the session sends what this module builds. Everything that carries the
//! password is a [`Secret`]; the transcript only ever gets the redacted lines made by
//! [`Mechanism::shown_command`] and [`redacted`].

use crate::error::Error;
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// The environment variable the password is read from.
pub const PASSWORD_ENV: &str = "SMTPCHECK_PASSWORD";

/// The longest password file line read (a password file is one short line).
const MAX_PASSWORD_LINE: u64 = 64 * 1024;

/// The SASL mechanisms smtpcheck speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// CRAM-MD5 (RFC 2195): the password itself never crosses the wire.
    CramMd5,
    /// PLAIN (RFC 4616): user and password in one base64 line.
    Plain,
    /// LOGIN: user and password in two base64 lines.
    Login,
}

impl Mechanism {
    /// Which mechanism is chosen when several are offered, best first: CRAM-MD5 (the password is
    /// not sent), then PLAIN (one round trip), then LOGIN.
    pub const PREFERENCE: [Mechanism; 3] = [Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login];

    /// The name used on the wire and in EHLO.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// The first line of the exchange as shown in the transcript (the credentials redacted).
    pub fn shown_command(self, user: &str) -> String {
        match self {
            Mechanism::Plain => format!("AUTH PLAIN {}", redacted("credentials", user)),
            Mechanism::Login | Mechanism::CramMd5 => format!("AUTH {}", self.as_str()),
        }
    }
}

/// The placeholder shown instead of a credential line: `<redacted password for user alice>`.
pub fn redacted(what: &str, user: &str) -> String {
    format!("<redacted {what} for user {user}>")
}

/// How to log in, settled before any connection.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The user name (shown in the transcript).
    pub user: String,
    /// The password (never shown).
    pub password: Secret,
    /// The mechanism given with `--auth-mech`; `None` picks the best offered.
    pub mechanism: Option<Mechanism>,
    /// `--allow-plain-auth`: send credentials over a connection that is not encrypted (or whose
    /// certificate did not verify).
    pub allow_unencrypted: bool,
}

/// The mechanism to use: the forced one (even when not advertised: the flag says so), else the
/// best of [`Mechanism::PREFERENCE`] that the server offers. Returns the mechanism and whether the
/// server advertised it, or why none can be used.
pub fn choose(offered: &[String], forced: Option<Mechanism>) -> Result<(Mechanism, bool), String> {
    let has = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.as_str()));
    if let Some(m) = forced {
        return Ok((m, has(m)));
    }
    Mechanism::PREFERENCE
        .into_iter()
        .find(|&m| has(m))
        .map(|m| (m, true))
        .ok_or_else(|| {
            format!(
                "the server offers AUTH {} but smtpcheck speaks only CRAM-MD5, PLAIN and LOGIN",
                offered.join(" ")
            )
        })
}

/// The AUTH PLAIN command line (without CRLF): `AUTH PLAIN base64(\0user\0password)`.
pub fn plain_command(user: &str, password: &Secret) -> Secret {
    let mut raw = Zeroizing::new(Vec::with_capacity(user.len() + password.expose().len() + 2));
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.expose().as_bytes());
    Secret::new(format!("AUTH PLAIN {}", B64.encode(&*raw)))
}

/// The user name line of AUTH LOGIN.
pub fn login_user(user: &str) -> String {
    B64.encode(user.as_bytes())
}

/// The password line of AUTH LOGIN.
pub fn login_password(password: &Secret) -> Secret {
    Secret::new(B64.encode(password.expose().as_bytes()))
}

/// The CRAM-MD5 answer to the server's base64 `challenge`: base64(`user` SP hex(HMAC-MD5)).
pub fn cram_md5_response(user: &str, password: &Secret, challenge: &str) -> Result<Secret, String> {
    let challenge = B64
        .decode(challenge.trim())
        .map_err(|_| "the server's CRAM-MD5 challenge is not valid base64".to_string())?;
    let mut mac = Hmac::<md5::Md5>::new_from_slice(password.expose().as_bytes())
        .map_err(|_| "cannot key HMAC-MD5".to_string())?;
    mac.update(&challenge);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let answer = Zeroizing::new(format!("{user} {hex}"));
    Ok(Secret::new(B64.encode(answer.as_bytes())))
}

/// Checks the `--auth-user` value (it goes into a command line and into base64 credentials).
pub fn check_user(user: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::BadAuthUser {
        value: crate::error::show(user),
        why: why.to_string(),
    };
    if user.is_empty() {
        return Err(bad("it is empty"));
    }
    if user.contains(['\r', '\n', '\0']) {
        return Err(bad("it contains CR, LF or NUL"));
    }
    if user.len() > 512 {
        return Err(bad("it is longer than 512 bytes"));
    }
    Ok(())
}

/// Where a password comes from: its environment variable and the flags around it (for the
/// messages that say how to give it).
#[derive(Debug, Clone, Copy)]
pub struct PasswordSource {
    /// Whose password, in messages: `AUTH` or `IMAP`.
    pub what: &'static str,
    /// The environment variable holding it.
    pub env: &'static str,
    /// The flag that gives the user.
    pub user_flag: &'static str,
    /// The flag naming a file whose first line is the password.
    pub file_flag: &'static str,
}

/// The AUTH password of `--auth-user`.
pub const AUTH_PASSWORD: PasswordSource = PasswordSource {
    what: "AUTH",
    env: PASSWORD_ENV,
    user_flag: "--auth-user",
    file_flag: "--auth-password-file",
};

/// Finds the password for `user`, before any connection: the first line of `file` when given, else
/// the `SMTPCHECK_PASSWORD` environment variable, else a prompt (no echo) when stdin is a terminal.
pub fn resolve_password(user: &str, file: Option<&Path>) -> Result<Secret, Error> {
    resolve_password_of(&AUTH_PASSWORD, user, file)
}

/// [`resolve_password`] for any password `source` (the IMAP password of `--confirm` too).
pub fn resolve_password_of(
    source: &PasswordSource,
    user: &str,
    file: Option<&Path>,
) -> Result<Secret, Error> {
    let env = std::env::var(source.env).ok().map(Secret::new);
    let interactive = std::io::stdin().is_terminal();
    resolve_from(source, user, file, env, interactive, prompt)
}

/// [`resolve_password`] with its sources given (for tests).
#[cfg(test)]
pub fn resolve_password_from(
    user: &str,
    file: Option<&Path>,
    env: Option<Secret>,
    interactive: bool,
    prompt: impl FnOnce(&str) -> std::io::Result<Secret>,
) -> Result<Secret, Error> {
    resolve_from(&AUTH_PASSWORD, user, file, env, interactive, prompt)
}

fn resolve_from(
    source: &PasswordSource,
    user: &str,
    file: Option<&Path>,
    env: Option<Secret>,
    interactive: bool,
    prompt: impl FnOnce(&str) -> std::io::Result<Secret>,
) -> Result<Secret, Error> {
    let password = if let Some(path) = file {
        read_password_file(path, source.file_flag)?
    } else if let Some(p) = env.filter(|p| !p.is_empty()) {
        p
    } else if interactive {
        prompt(user).map_err(|e| Error::PasswordPrompt {
            why: crate::error::words(&e),
            env: source.env,
            file_flag: source.file_flag,
        })?
    } else {
        return Err(Error::NoPassword {
            user: crate::error::show(user),
            user_flag: source.user_flag,
            env: source.env,
            file_flag: source.file_flag,
        });
    };
    if password.is_empty() {
        let origin = match file {
            Some(p) => format!("the first line of {} is empty", p.display()),
            None => "it is empty".to_string(),
        };
        return Err(Error::BadPassword {
            what: source.what,
            why: origin,
        });
    }
    if password.expose().contains('\0') {
        return Err(Error::BadPassword {
            what: source.what,
            why: format!(
                "it contains a NUL character, which {} cannot carry",
                source.what
            ),
        });
    }
    Ok(password)
}

/// The first line of a password file, without its line ending.
fn read_password_file(path: &Path, flag: &'static str) -> Result<Secret, Error> {
    let fail = |why: String| Error::PasswordFile {
        path: path.to_path_buf(),
        flag,
        why,
    };
    let mut line = Zeroizing::new(
        crate::files::read_prefix(path, MAX_PASSWORD_LINE, Some(b'\n')).map_err(fail)?,
    );
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    let text =
        std::str::from_utf8(&line).map_err(|_| fail("the first line is not UTF-8".into()))?;
    Ok(Secret::new(text.to_string()))
}

/// Asks for the password on the terminal without echo; the prompt goes to stderr.
fn prompt(user: &str) -> std::io::Result<Secret> {
    let config = rpassword::ConfigBuilder::new()
        .output_writer(std::io::stderr())
        .build();
    rpassword::prompt_password_with_config(format!("Password for {user}: "), config)
        .map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_best_offered() {
        let offered = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose(&offered(&["LOGIN", "PLAIN", "CRAM-MD5"]), None).unwrap(),
            (Mechanism::CramMd5, true)
        );
        assert_eq!(
            choose(&offered(&["LOGIN", "PLAIN"]), None).unwrap(),
            (Mechanism::Plain, true)
        );
        assert_eq!(
            choose(&offered(&["login"]), None).unwrap(),
            (Mechanism::Login, true)
        );
        assert_eq!(
            choose(&offered(&["PLAIN"]), Some(Mechanism::Login)).unwrap(),
            (Mechanism::Login, false)
        );
        let err = choose(&offered(&["XOAUTH2", "GSSAPI"]), None).unwrap_err();
        assert!(err.contains("XOAUTH2 GSSAPI"), "{err}");
    }

    #[test]
    fn plain_and_login_encodings() {
        let pw = Secret::new("tanstaaftanstaaf".into());
        assert_eq!(
            plain_command("tim", &pw).expose(),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
        assert_eq!(login_user("tim"), "dGlt");
        assert_eq!(login_password(&pw).expose(), "dGFuc3RhYWZ0YW5zdGFhZg==");
    }

    #[test]
    fn cram_md5_matches_rfc_2195() {
        // The example of RFC 2195 section 2.
        let challenge = B64.encode("<1896.697170952@postoffice.reston.mci.net>");
        let answer =
            cram_md5_response("tim", &Secret::new("tanstaaftanstaaf".into()), &challenge).unwrap();
        let decoded = String::from_utf8(B64.decode(answer.expose()).unwrap()).unwrap();
        assert_eq!(decoded, "tim b913a602c7eda7a495b4e6e7334d3890");
        assert!(cram_md5_response("tim", &Secret::new("x".into()), "!!").is_err());
    }

    #[test]
    fn shown_lines_never_hold_credentials() {
        assert_eq!(
            Mechanism::Plain.shown_command("alice"),
            "AUTH PLAIN <redacted credentials for user alice>"
        );
        assert_eq!(Mechanism::Login.shown_command("alice"), "AUTH LOGIN");
        assert_eq!(Mechanism::CramMd5.shown_command("alice"), "AUTH CRAM-MD5");
    }

    #[test]
    fn password_sources_in_order() {
        let dir = std::env::temp_dir().join(format!("smtpcheck-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\r\nsecond line\n").unwrap();
        let never = |_: &str| -> std::io::Result<Secret> { panic!("no prompt expected") };
        let env = || Some(Secret::new("from-env".into()));
        let got = resolve_password_from("u", Some(&file), env(), true, never).unwrap();
        assert_eq!(got.expose(), "from-file");
        let got = resolve_password_from("u", None, env(), true, never).unwrap();
        assert_eq!(got.expose(), "from-env");
        let got = resolve_password_from("u", None, None, true, |_| Ok(Secret::new("typed".into())))
            .unwrap();
        assert_eq!(got.expose(), "typed");
        let err = resolve_password_from("u", None, None, false, never).unwrap_err();
        assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
        let missing = dir.join("missing");
        let err = resolve_password_from("u", Some(&missing), env(), true, never).unwrap_err();
        assert!(err.to_string().contains(&missing.display().to_string()));
        assert_eq!(err.exit(), crate::exit::Exit::BadInput);
        std::fs::write(&file, "\n").unwrap();
        assert!(resolve_password_from("u", Some(&file), None, false, never).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_names_are_checked() {
        assert!(check_user("alice@example.com").is_ok());
        assert!(check_user("").is_err());
        assert!(check_user("a\r\nMAIL FROM:<x>").is_err());
    }
}
