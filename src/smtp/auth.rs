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

/// The environment variable an OAuth 2.0 access token is read from.
pub const TOKEN_ENV: &str = "SMTPCHECK_OAUTH2_TOKEN";

/// The longest SMTP command line, CRLF included (RFC 5321 4.5.3.1.4): an AUTH line with its
/// initial response longer than this is sent as `AUTH MECH` and the response after `334`
/// (RFC 4954 section 4).
pub const MAX_COMMAND_LINE: usize = 512;

/// The SASL mechanisms smtpcheck speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677, RFC 5802): the password never crosses the wire, and the server
    /// proves it knows it too.
    ScramSha256,
    /// CRAM-MD5 (RFC 2195): the password itself never crosses the wire.
    CramMd5,
    /// PLAIN (RFC 4616): user and password in one base64 line.
    Plain,
    /// LOGIN: user and password in two base64 lines.
    Login,
    /// OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token with a GS2 header.
    OAuthBearer,
    /// XOAUTH2 (Google, Microsoft): an OAuth 2.0 bearer token.
    XOAuth2,
    /// EXTERNAL (RFC 4422 appendix A): the identity of the TLS client certificate.
    External,
}

/// What a mechanism logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The password.
    Password,
    /// An OAuth 2.0 access token.
    Token,
    /// The TLS client certificate (`--tls-cert`).
    Certificate,
}

impl Mechanism {
    /// Which mechanism is chosen when several are offered and its credential is at hand, best
    /// first: the token mechanisms (OAUTHBEARER, the standard one, then XOAUTH2), then
    /// SCRAM-SHA-256 (mutual proof), CRAM-MD5 (the password is not sent), PLAIN (one round trip),
    /// LOGIN; EXTERNAL last (with a client certificate, when nothing else fits).
    pub const PREFERENCE: [Mechanism; 7] = [
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::ScramSha256,
        Mechanism::CramMd5,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::External,
    ];

    /// The name used on the wire and in EHLO.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// What it logs in with.
    pub fn credential(self) -> Credential {
        match self {
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => Credential::Token,
            Mechanism::External => Credential::Certificate,
            Mechanism::ScramSha256 | Mechanism::CramMd5 | Mechanism::Plain | Mechanism::Login => {
                Credential::Password
            }
        }
    }

    /// The first line of the exchange as shown in the transcript (the credentials redacted).
    pub fn shown_command(self, user: &str) -> String {
        match self {
            Mechanism::Plain => format!("AUTH PLAIN {}", redacted("credentials", user)),
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => {
                format!("AUTH {} {}", self.as_str(), redacted("token", user))
            }
            Mechanism::Login | Mechanism::CramMd5 | Mechanism::ScramSha256 => {
                format!("AUTH {}", self.as_str())
            }
            Mechanism::External => "AUTH EXTERNAL =".to_string(),
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
    /// The password (never shown), when one was found (not needed with a token).
    pub password: Option<Secret>,
    /// The OAuth 2.0 access token (never shown), when one was given or fetched.
    pub token: Option<Secret>,
    /// The mechanism given with `--auth-mech`; `None` picks the best offered.
    pub mechanism: Option<Mechanism>,
    /// `--allow-plain-auth`: send credentials over a connection that is not encrypted (or whose
    /// certificate did not verify).
    pub allow_unencrypted: bool,
}

/// The mechanism to use: the forced one (even when not advertised: the flag says so), else the
/// best of [`Mechanism::PREFERENCE`] that the server offers and whose credential is at hand
/// (`have` says which are). Returns the mechanism and whether the server advertised it, or why
/// none can be used.
pub fn choose(
    offered: &[String],
    forced: Option<Mechanism>,
    have: &[Credential],
) -> Result<(Mechanism, bool), String> {
    let has = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.as_str()));
    if let Some(m) = forced {
        return Ok((m, has(m)));
    }
    Mechanism::PREFERENCE
        .into_iter()
        .find(|&m| has(m) && have.contains(&m.credential()))
        .map(|m| (m, true))
        .ok_or_else(|| {
            let speaks = |c: Credential| {
                Mechanism::PREFERENCE
                    .into_iter()
                    .filter(|m| m.credential() == c)
                    .map(Mechanism::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let with: Vec<String> = have
                .iter()
                .map(|&c| match c {
                    Credential::Token => format!("an OAuth token ({})", speaks(c)),
                    Credential::Password => format!("a password ({})", speaks(c)),
                    Credential::Certificate => format!("a client certificate ({})", speaks(c)),
                })
                .collect();
            format!(
                "the server offers AUTH {} but smtpcheck has {} to log in with",
                offered.join(" "),
                with.join(" and ")
            )
        })
}

/// The XOAUTH2 initial response, base64: `user=USER^Aauth=Bearer TOKEN^A^A` (Google's and
/// Microsoft's documented format).
pub fn xoauth2_response(user: &str, token: &Secret) -> Secret {
    let raw = Zeroizing::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(B64.encode(raw.as_bytes()))
}

/// The OAUTHBEARER initial response, base64 (RFC 7628 3.1): the GS2 header `n,a=USER,` then
/// `host=`, `port=` and `auth=Bearer TOKEN`, each ended by ^A, and a final ^A. `,` and `=` in the
/// user name are escaped as `=2C` and `=3D` (RFC 5801 saslname).
pub fn oauthbearer_response(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let saslname = user.replace('=', "=3D").replace(',', "=2C");
    let raw = Zeroizing::new(format!(
        "n,a={saslname},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(B64.encode(raw.as_bytes()))
}

/// Whether `AUTH MECH RESPONSE` fits in one command line (CRLF included), so the response can be
/// sent as an initial response (SASL-IR).
pub fn fits_initial_response(mech: Mechanism, response: &Secret) -> bool {
    "AUTH ".len() + mech.as_str().len() + 1 + response.expose().len() + 2 <= MAX_COMMAND_LINE
}

/// The error an OAuth mechanism's server sends as `334 base64(JSON)` (RFC 7628 3.2.2): its
/// `status`, `schemes` and `scope`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthError {
    /// `status`: e.g. `invalid_token` (RFC 7628), `401` or `400` (Google).
    pub status: Option<String>,
    /// `schemes`: e.g. `Bearer`.
    pub schemes: Option<String>,
    /// `scope`: the scope the server wants.
    pub scope: Option<String>,
}

impl OAuthError {
    /// Decodes the base64 JSON text of a `334` reply; `None` when it is not base64 JSON.
    pub fn decode(text: &str) -> Option<OAuthError> {
        let raw = B64.decode(text.trim()).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let object = value.as_object()?;
        let field = |name: &str| {
            object.get(name).map(|v| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text.chars().filter(|c| !c.is_control()).take(300).collect()
            })
        };
        Some(OAuthError {
            status: field("status"),
            schemes: field("schemes"),
            scope: field("scope"),
        })
    }

    /// `status invalid_token, schemes Bearer, scope https://mail.google.com/`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("status", &self.status),
            ("schemes", &self.schemes),
            ("scope", &self.scope),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
        if parts.is_empty() {
            "no status".to_string()
        } else {
            parts.join(", ")
        }
    }
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

/// The most PBKDF2 iterations a SCRAM server may ask for (RFC 7677 recommends at least 4096;
/// far more would make the client spin: a hostile server's denial of service).
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// The client side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677): no channel binding
/// (GS2 header `n,,`); the password is used as given (SASLprep leaves ASCII unchanged).
pub struct Scram {
    bare: String,
    nonce: String,
    /// The server signature expected in `v=` (known once the proof is made).
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// Starts with a client nonce (printable, no comma).
    pub fn new(user: &str, nonce: &str) -> Scram {
        let saslname = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            bare: format!("n={saslname},r={nonce}"),
            nonce: nonce.to_string(),
            server_signature: None,
        }
    }

    /// A random client nonce.
    pub fn random_nonce() -> Result<String, String> {
        let mut bytes = [0u8; 18];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| "no random numbers for the SCRAM nonce".to_string())?;
        Ok(B64.encode(bytes))
    }

    /// The client-first message (`n,,n=USER,r=NONCE`), not secret.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// The client-final message for the server-first message `server_first` (decoded), base64,
    /// and the proof inside it (base64, to scrub); or why the server's message cannot be used.
    pub fn client_final(
        &mut self,
        password: &Secret,
        server_first: &str,
    ) -> Result<(Secret, Secret), String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = B64.decode(v).ok();
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse::<u32>().ok();
            } else if attr.starts_with("m=") {
                return Err(
                    "the server asks for a SCRAM extension (m=) smtpcheck does not know".into(),
                );
            } else if let Some(e) = attr.strip_prefix("e=") {
                return Err(format!("the server's SCRAM error: {e}"));
            }
        }
        let nonce = nonce.ok_or("the server's SCRAM message has no nonce (r=)")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend smtpcheck's".into());
        }
        let salt = salt
            .filter(|s| !s.is_empty())
            .ok_or("the server's SCRAM salt (s=) is missing or not base64")?;
        let iterations = iterations
            .and_then(std::num::NonZeroU32::new)
            .ok_or("the server's SCRAM iteration count (i=) is missing or zero")?;
        if iterations.get() > MAX_SCRAM_ITERATIONS {
            return Err(format!(
                "the server asks for {iterations} PBKDF2 iterations, more than the {MAX_SCRAM_ITERATIONS} smtpcheck allows"
            ));
        }
        let mut salted = Zeroizing::new([0u8; 32]);
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.expose().as_bytes(),
            &mut *salted,
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &*salted);
        let client_key = Zeroizing::new(ring::hmac::sign(&key, b"Client Key").as_ref().to_vec());
        let stored_key = ring::digest::digest(&ring::digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let stored = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, stored_key.as_ref());
        let signature = ring::hmac::sign(&stored, auth_message.as_bytes());
        let proof: Zeroizing<Vec<u8>> = Zeroizing::new(
            client_key
                .iter()
                .zip(signature.as_ref())
                .map(|(a, b)| a ^ b)
                .collect(),
        );
        let server_key = ring::hmac::sign(&key, b"Server Key");
        let server_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, server_key.as_ref());
        self.server_signature = Some(
            ring::hmac::sign(&server_key, auth_message.as_bytes())
                .as_ref()
                .to_vec(),
        );
        let proof = Secret::new(B64.encode(&*proof));
        let message = Zeroizing::new(format!("{without_proof},p={}", proof.expose()));
        Ok((Secret::new(B64.encode(message.as_bytes())), proof))
    }

    /// Checks the server-final message (decoded): `Ok` only when it carries the server signature
    /// that proves the server knows the password.
    pub fn verify(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("the server's SCRAM error: {e}"));
        }
        let v = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or("the server's final SCRAM message has no signature (v=)")?;
        match &self.server_signature {
            // Not secret: the server's claim, checked on the client.
            Some(expected) if *expected == v => Ok(()),
            _ => Err("the server's SCRAM signature is wrong: it cannot prove it knows the password (it may not be the server it claims)".into()),
        }
    }
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
        let pw = &[Credential::Password][..];
        let both = &[Credential::Token, Credential::Password][..];
        let token = &[Credential::Token][..];
        assert_eq!(
            choose(&offered(&["LOGIN", "PLAIN", "CRAM-MD5"]), None, pw).unwrap(),
            (Mechanism::CramMd5, true)
        );
        assert_eq!(
            choose(&offered(&["LOGIN", "PLAIN"]), None, pw).unwrap(),
            (Mechanism::Plain, true)
        );
        assert_eq!(
            choose(&offered(&["login"]), None, pw).unwrap(),
            (Mechanism::Login, true)
        );
        assert_eq!(
            choose(&offered(&["PLAIN"]), Some(Mechanism::Login), pw).unwrap(),
            (Mechanism::Login, false)
        );
        let err = choose(&offered(&["GSSAPI", "NTLM"]), None, pw).unwrap_err();
        assert!(err.contains("GSSAPI NTLM"), "{err}");
        // A token is preferred when offered; the standard OAUTHBEARER before XOAUTH2.
        let google = offered(&["LOGIN", "PLAIN", "XOAUTH2", "OAUTHBEARER"]);
        assert_eq!(
            choose(&google, None, both).unwrap(),
            (Mechanism::OAuthBearer, true)
        );
        let microsoft = offered(&["LOGIN", "XOAUTH2"]);
        assert_eq!(
            choose(&microsoft, None, token).unwrap(),
            (Mechanism::XOAuth2, true)
        );
        // A token is not a password: no PLAIN with it.
        let err = choose(&offered(&["PLAIN", "LOGIN"]), None, token).unwrap_err();
        assert!(
            err.contains("an OAuth token (OAUTHBEARER, XOAUTH2)"),
            "{err}"
        );
        // Without a token, the token mechanisms are passed over.
        assert_eq!(choose(&google, None, pw).unwrap(), (Mechanism::Plain, true));
    }

    #[test]
    fn token_encodings_byte_for_byte() {
        let token = Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg".into());
        let x = xoauth2_response("someuser@example.com", &token);
        assert_eq!(
            B64.decode(x.expose()).unwrap(),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // Google's documented example, byte for byte.
        assert_eq!(
            x.expose(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        // RFC 7628 section 4.1, with the user's "," and "=" escaped.
        let o = oauthbearer_response("u,s=r@example.com", "server.example.com", 587, &token);
        assert_eq!(
            String::from_utf8(B64.decode(o.expose()).unwrap()).unwrap(),
            "n,a=u=2Cs=3Dr@example.com,\x01host=server.example.com\x01port=587\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        assert!(fits_initial_response(Mechanism::XOAuth2, &x));
        let long = Secret::new("t".repeat(2000));
        assert!(!fits_initial_response(
            Mechanism::XOAuth2,
            &xoauth2_response("u", &long)
        ));
        assert_eq!(
            Mechanism::XOAuth2.shown_command("alice"),
            "AUTH XOAUTH2 <redacted token for user alice>"
        );
    }

    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        // RFC 7677 section 3.
        let mut scram = Scram::new("user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (last, proof) = scram
            .client_final(&Secret::new("pencil".into()), server_first)
            .unwrap();
        assert_eq!(
            String::from_utf8(B64.decode(last.expose()).unwrap()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            proof.expose(),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(scram
            .verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_ok());
        let e = scram
            .verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("cannot prove"), "{e}");
        assert!(scram.verify("").is_err());
        assert!(scram
            .verify("e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
        // A nonce that does not extend the client's, and a hostile iteration count.
        let mut s = Scram::new("user", "abc");
        assert!(s
            .client_final(&Secret::new("p".into()), "r=xyz1,s=AAAA,i=4096")
            .is_err());
        assert!(s
            .client_final(&Secret::new("p".into()), "r=abc1,s=AAAA,i=4000000000")
            .is_err());
        assert!(s
            .client_final(&Secret::new("p".into()), "r=abc1,s=AAAA,i=0")
            .is_err());
        assert!(Scram::random_nonce().unwrap().len() >= 24);
    }

    #[test]
    fn oauth_errors_are_decoded() {
        let json = B64.encode(r#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#);
        let e = OAuthError::decode(&json).unwrap();
        assert_eq!(e.status.as_deref(), Some("invalid_token"));
        assert_eq!(e.schemes, None);
        assert_eq!(e.describe(), "status invalid_token, scope example_scope");
        // Google: numbers as strings; a number is taken too.
        let json =
            B64.encode(r#"{"status":401,"schemes":"Bearer","scope":"https://mail.google.com/"}"#);
        assert_eq!(
            OAuthError::decode(&json).unwrap().describe(),
            "status 401, schemes Bearer, scope https://mail.google.com/"
        );
        assert_eq!(OAuthError::decode("not base64!"), None);
        assert_eq!(OAuthError::decode(&B64.encode("[1]")), None);
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
