//! OAuth 2.0 access tokens for XOAUTH2 and OAUTHBEARER, found before any SMTP connection: from
//! `SMTPCHECK_OAUTH2_TOKEN`, the first line of a file, the first line a command prints, or a token
//! flow against the identity provider's endpoints (`flow`).
//!
//! Every token, client secret and refresh token is a [`Secret`]; errors name the source and what
//! is wrong, never the value. Every wait is bounded: the command by [`COMMAND_TIMEOUT`], the HTTP
//! requests and the device-code polling by their own bounds (`flow`).

pub mod flow;
pub mod http;

use crate::error::Error;
use crate::secret::Secret;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub use crate::smtp::auth::TOKEN_ENV;

/// The longest a `--oauth2-token-cmd` may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The most read from a token file or a token command's stdout (tokens are a few KiB).
const MAX_TOKEN: u64 = 64 * 1024;

/// The most of a token command's stderr kept, to quote its last line in an error.
const MAX_STDERR: usize = 16 * 1024;

/// Where the access token comes from (at most one of file and command; the environment variable
/// is the fallback).
#[derive(Debug, Clone, Default)]
pub struct TokenSources<'a> {
    /// `--oauth2-token-file`.
    pub file: Option<&'a Path>,
    /// `--oauth2-token-cmd`.
    pub command: Option<&'a str>,
    /// The value of `SMTPCHECK_OAUTH2_TOKEN`, when set.
    pub env: Option<Secret>,
}

/// The token given by the user, if any: the file, else the command, else the environment.
pub fn given_token(sources: TokenSources<'_>) -> Result<Option<Secret>, Error> {
    let (token, origin) = if let Some(path) = sources.file {
        let fail = |why: String| Error::OAuth {
            why: format!(
                "cannot read the token file {} (--oauth2-token-file): {why}",
                path.display()
            ),
        };
        let raw =
            Zeroizing::new(crate::files::read_prefix(path, MAX_TOKEN, Some(b'\n')).map_err(fail)?);
        (
            first_line(&raw).map_err(fail)?,
            format!("the first line of {}", path.display()),
        )
    } else if let Some(command) = sources.command {
        (
            run_command(command, COMMAND_TIMEOUT)?,
            "the first line of --oauth2-token-cmd's output".to_string(),
        )
    } else if let Some(env) = sources.env.filter(|t| !t.is_empty()) {
        (env, TOKEN_ENV.to_string())
    } else {
        return Ok(None);
    };
    check_token(&token).map_err(|why| Error::OAuth {
        why: format!("unusable OAuth token from {origin}: {why}"),
    })?;
    Ok(Some(token))
}

/// Checks a bearer token's characters (RFC 6750 b64token, leniently: any visible ASCII but the
/// separators the SASL encodings use); its content is never shown.
pub fn check_token(token: &Secret) -> Result<(), String> {
    let t = token.expose();
    if t.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = t.chars().find(|c| !c.is_ascii_graphic()) {
        let what = if c.is_whitespace() {
            "white space"
        } else {
            "a control or non-ASCII character"
        };
        return Err(format!("it contains {what}, which a bearer token cannot"));
    }
    Ok(())
}

/// The first line of `raw`, without its line ending, as a secret.
fn first_line(raw: &[u8]) -> Result<Secret, String> {
    let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let mut line = &raw[..end];
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let text = std::str::from_utf8(line).map_err(|_| "the first line is not UTF-8".to_string())?;
    if text.is_empty() {
        return Err("the first line is empty".into());
    }
    Ok(Secret::new(text.to_string()))
}

/// Runs `command` through the shell (like msmtp's `passwordeval`): stdin empty, the token read
/// from the first line of stdout, at most `timeout`; the child is killed when it takes longer.
/// Its stderr is kept (bounded) to quote its last line when it fails.
pub fn run_command(command: &str, timeout: Duration) -> Result<Secret, Error> {
    let fail = |why: String| Error::OAuth {
        why: format!("--oauth2-token-cmd failed: {why}"),
    };
    #[cfg(unix)]
    let mut cmd = {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(command);
        c
    };
    #[cfg(not(unix))]
    let mut cmd = {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(command);
        c
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start it: {e}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        if let Some(s) = stdout {
            let _ = s.take(MAX_TOKEN).read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(MAX_STDERR as u64).read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "it did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    };
    // The pipes close when the command and its children exit; a child left holding them is not
    // waited for beyond a short grace.
    let out = join_within(out, Duration::from_secs(2)).unwrap_or_default();
    let err = join_within(err, Duration::from_secs(2)).unwrap_or_default();
    let token = first_line(&out).ok();
    if !status.success() || token.is_none() {
        let mut last = String::from_utf8_lossy(&err)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>();
        if let Some(t) = token.as_ref().filter(|t| t.expose().len() >= 3) {
            last = last.replace(t.expose(), "<redacted>");
        }
        let said = if last.is_empty() {
            String::new()
        } else {
            format!(" (its last error line: {last})")
        };
        let what = if status.success() {
            "it printed no token on its first line".to_string()
        } else {
            format!("it exited with {status}")
        };
        return Err(fail(format!("{what}{said}")));
    }
    token.ok_or_else(|| fail("it printed no token".into()))
}

/// The thread's result when it ends within `wait`.
fn join_within<T>(handle: std::thread::JoinHandle<T>, wait: Duration) -> Option<T> {
    let started = Instant::now();
    while !handle.is_finished() {
        if started.elapsed() >= wait {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert!(check_token(&Secret::new("ya29.a0AfB_by-x~+/=".into())).is_ok());
        assert!(check_token(&Secret::new(String::new())).is_err());
        assert!(check_token(&Secret::new("a b".into())).is_err());
        assert!(check_token(&Secret::new("a\u{1}b".into())).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn token_command_first_line_bounded_time() {
        let t = run_command("printf 'tok-123\\nsecond\\n'", COMMAND_TIMEOUT).unwrap();
        assert_eq!(t.expose(), "tok-123");
        let e = run_command("echo oops >&2; exit 3", COMMAND_TIMEOUT).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("exit status: 3") && e.contains("oops"), "{e}");
        let e = run_command("true", COMMAND_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no token"), "{e}");
        let started = Instant::now();
        let e = run_command("sleep 20", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A failing command that printed a token never shows it.
        let e = run_command(
            "echo sekrit-tok; echo bad sekrit-tok >&2; exit 1",
            COMMAND_TIMEOUT,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("sekrit-tok") && e.contains("<redacted>"), "{e}");
    }

    #[test]
    fn sources_in_order() {
        let dir = std::env::temp_dir().join(format!("smtpcheck-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tok");
        std::fs::write(&file, "from-file\r\nnext\n").unwrap();
        let env = || Some(Secret::new("from-env".into()));
        let got = given_token(TokenSources {
            file: Some(&file),
            command: None,
            env: env(),
        });
        assert_eq!(got.unwrap().unwrap().expose(), "from-file");
        let got = given_token(TokenSources {
            file: None,
            command: None,
            env: env(),
        });
        assert_eq!(got.unwrap().unwrap().expose(), "from-env");
        assert!(given_token(TokenSources::default()).unwrap().is_none());
        std::fs::write(&file, "two words\n").unwrap();
        let e = given_token(TokenSources {
            file: Some(&file),
            command: None,
            env: None,
        });
        let e = e.unwrap_err().to_string();
        assert!(e.contains("white space") && !e.contains("two words"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
