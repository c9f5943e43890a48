//! AUTH against the interop Postfix's submission listener (`SUBMISSION_PORT`), whose logins a
//! private Dovecot checks over its SASL socket: PLAIN, LOGIN and SCRAM-SHA-256 against a
//! passwd-file (the password stored as `{SCRAM-SHA-256}`), XOAUTH2 and OAUTHBEARER through
//! Dovecot's `oauth2` passdb, which asks the loopback introspection endpoint started by
//! `scripts/interop.sh` (`INTROSPECT_PORT`). AUTH is offered only after STARTTLS, and mail is
//! accepted only from authenticated clients, so a delivery proves the login.
//!
//! The tokens are random per `up`: `OAUTH2_TOKEN` is active for `SASL_USER`,
//! `OAUTH2_EXPIRED_TOKEN` is inactive (an expired token), `OAUTH2_OTHER_TOKEN` is active but for
//! another user. Dovecot answers a refused token with `334 base64(JSON)`: XOAUTH2
//! `{"status":"401","schemes":"bearer","scope":"mail"}`, OAUTHBEARER
//! `{"status":"invalid_token"}`.

use super::{maildir_dirs, marker, report_eml, servers, wait_for_one, TempMessage};
use crate::common;
use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The SASL side of the interop state file.
struct Sasl {
    host: String,
    port: u16,
    user: String,
    other_user: String,
    password: String,
    token: String,
    expired_token: String,
    other_token: String,
    ca_file: PathBuf,
    /// Maildir of user@interop.test, where the test messages go.
    maildir: PathBuf,
}

fn sasl() -> Option<Sasl> {
    let s = servers()?;
    let dir = std::env::var_os("SMTPCHECK_INTEROP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/smtpcheck-interop"));
    let text = std::fs::read_to_string(dir.join("env")).expect("read the interop state file");
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        let v = vars.get(k).unwrap_or_else(|| {
            panic!("the interop state file has no {k}: run scripts/interop.sh down and up")
        });
        assert!(!v.is_empty(), "{k} is empty in the interop state file");
        v.to_string()
    };
    let port: u16 = get("SUBMISSION_PORT").parse().expect("SUBMISSION_PORT");
    let addr = std::net::SocketAddr::new(s.postfix.ip(), port);
    if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!("nothing answers on the submission listener {addr} ({e}): run scripts/interop.sh down and up");
    }
    Some(Sasl {
        host: s.postfix.ip().to_string(),
        port,
        user: get("SASL_USER"),
        other_user: get("SASL_OTHER_USER"),
        password: get("SASL_PASSWORD"),
        token: get("OAUTH2_TOKEN"),
        expired_token: get("OAUTH2_EXPIRED_TOKEN"),
        other_token: get("OAUTH2_OTHER_TOKEN"),
        ca_file: s.ca_file,
        maildir: s.maildir,
    })
}

/// What a login may carry: the password or token and every encoding of it that crosses the wire.
enum Secret<'a> {
    Password(&'a str),
    Token(&'a str),
}

impl Sasl {
    fn relay(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Every form of the secret that must never be shown.
    fn forms(&self, secret: &Secret<'_>) -> Vec<String> {
        let user = &self.user;
        match secret {
            Secret::Password(p) => vec![
                p.to_string(),
                B64.encode(p),
                B64.encode(format!("\0{user}\0{p}")),
            ],
            Secret::Token(t) => vec![
                t.to_string(),
                B64.encode(t),
                B64.encode(format!("user={user}\x01auth=Bearer {t}\x01\x01")),
                B64.encode(format!(
                    "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {t}\x01\x01",
                    self.host, self.port
                )),
            ],
        }
    }

    /// `smtpcheck send` of `eml` to user@interop.test through the submission listener, logging in
    /// as SASL_USER with `mech` (automatic when `None`) and `secret`; JSON unless `text`.
    fn send(
        &self,
        eml: &TempMessage,
        mech: Option<&str>,
        secret: &Secret<'_>,
        text: bool,
    ) -> common::Run {
        let mut cmd = common::Cmd::send(self.relay(), eml.path())
            .to("user@interop.test")
            .ca(&self.ca_file)
            .args(["--connect-timeout", "5s", "--timeout", "20s"])
            .args(["--tls", "required", "--auth-user", &self.user]);
        if !text {
            cmd = cmd.json();
        }
        if let Some(mech) = mech {
            cmd = cmd.args(["--auth-mech", mech]);
        }
        cmd = match secret {
            Secret::Password(p) => cmd.env("SMTPCHECK_PASSWORD", p),
            Secret::Token(t) => cmd.env("SMTPCHECK_OAUTH2_TOKEN", t),
        };
        let run = cmd.guard(Duration::from_secs(60)).run();
        run.assert_no_secret(&self.forms(secret));
        run
    }

    /// Sends a fresh message with `mech` and `secret` and checks that it arrived in the Maildir,
    /// that the AUTH step used `expected_mech` and was accepted with 235.
    fn delivers(&self, test: &str, mech: Option<&str>, secret: &Secret<'_>, expected_mech: &str) {
        let m = marker(test);
        let eml = TempMessage::new(&m, report_eml(&m));
        let run = self.send(&eml, mech, secret, false);
        run.assert_exit(0);
        let report = run.json_value();
        assert_eq!(report["outcome"], "delivered", "{}", run.dump());
        let auth = auth_steps(&report);
        let first = auth[0]["sent"].as_str().unwrap_or_default();
        assert!(
            first.starts_with(&format!("AUTH {expected_mech}")),
            "AUTH sent as {first:?}: {}",
            run.dump()
        );
        let last = auth.last().expect("an auth step");
        assert_eq!(last["reply"]["code"], 235, "{}", run.dump());
        assert_eq!(last["ok"], true, "{}", run.dump());
        let (_, bytes) = wait_for_one(&maildir_dirs(&[self.maildir.as_path()]), &m);
        let stored = String::from_utf8_lossy(&bytes);
        // Postfix records the login in its Received header ("with ESMTPSA": SMTP, TLS, AUTH).
        assert!(stored.contains("with ESMTPSA"), "{stored}");
    }

    /// Sends with a refused token and checks exit 7, the empty response to the error challenge
    /// and the decoded JSON in the step, the failure and the text verdict.
    fn refused_token(&self, test: &str, mech: &str, token: &str, decoded: &str) {
        let m = marker(test);
        let eml = TempMessage::new(&m, report_eml(&m));
        let secret = Secret::Token(token);
        let run = self.send(&eml, Some(mech), &secret, false);
        run.assert_exit(7);
        let report = run.json_value();
        let failure = &report["failure"];
        assert_eq!(failure["stage"], "auth", "{}", run.dump());
        assert_eq!(failure["code"], 535, "{}", run.dump());
        let reason = failure["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("the server's OAuth error: {decoded}")),
            "{reason}"
        );
        let auth = auth_steps(&report);
        assert_eq!(auth.len(), 2, "{}", run.dump());
        assert_eq!(auth[0]["reply"]["code"], 334, "{}", run.dump());
        let ack = auth[1]["sent"].as_str().unwrap_or_default();
        assert!(
            ack.starts_with("(empty response, acknowledging the error: the server's OAuth error: ")
                && ack.contains(decoded),
            "{ack:?}"
        );
        // Nothing was sent: no MAIL after the failed login.
        assert!(
            !report["attempts"][0]["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .any(|s| s["stage"] == "mail"),
            "{}",
            run.dump()
        );
        // The text verdict carries the decoded reason too.
        let text = self.send(&eml, Some(mech), &secret, true);
        text.assert_exit(7);
        let verdict = text.last_line();
        assert!(
            verdict.contains(decoded) && verdict.contains("(exit 7)"),
            "{verdict}"
        );
    }
}

fn auth_steps(report: &Value) -> Vec<&Value> {
    report["attempts"][0]["steps"]
        .as_array()
        .expect("steps is an array")
        .iter()
        .filter(|s| s["stage"] == "auth")
        .collect()
}

#[test]
fn plain_delivers_through_dovecot_sasl() {
    let Some(s) = sasl() else { return };
    s.delivers(
        "sasl-plain",
        Some("plain"),
        &Secret::Password(&s.password),
        "PLAIN",
    );
}

#[test]
fn login_delivers_through_dovecot_sasl() {
    let Some(s) = sasl() else { return };
    s.delivers(
        "sasl-login",
        Some("login"),
        &Secret::Password(&s.password),
        "LOGIN",
    );
}

#[test]
fn scram_sha_256_delivers_and_dovecot_proves_the_password() {
    let Some(s) = sasl() else { return };
    s.delivers(
        "sasl-scram",
        Some("scram-sha-256"),
        &Secret::Password(&s.password),
        "SCRAM-SHA-256",
    );
    // Chosen by itself when only a password is at hand: the strongest offered.
    s.delivers(
        "sasl-scram-auto",
        None,
        &Secret::Password(&s.password),
        "SCRAM-SHA-256",
    );
}

#[test]
fn scram_sha_256_with_a_wrong_password_exits_7() {
    let Some(s) = sasl() else { return };
    let m = marker("sasl-scram-wrong");
    let eml = TempMessage::new(&m, report_eml(&m));
    let wrong = format!("{}-wrong", s.password);
    let run = s.send(
        &eml,
        Some("scram-sha-256"),
        &Secret::Password(&wrong),
        false,
    );
    run.assert_exit(7);
    let report = run.json_value();
    assert_eq!(report["failure"]["stage"], "auth", "{}", run.dump());
    assert_eq!(report["failure"]["code"], 535, "{}", run.dump());
}

#[test]
fn valid_token_via_xoauth2_delivers() {
    let Some(s) = sasl() else { return };
    s.delivers(
        "sasl-xoauth2",
        Some("xoauth2"),
        &Secret::Token(&s.token),
        "XOAUTH2",
    );
}

#[test]
fn valid_token_via_oauthbearer_delivers() {
    let Some(s) = sasl() else { return };
    s.delivers(
        "sasl-oauthbearer",
        Some("oauthbearer"),
        &Secret::Token(&s.token),
        "OAUTHBEARER",
    );
    // Chosen by itself when a token is at hand: OAUTHBEARER first.
    s.delivers(
        "sasl-oauthbearer-auto",
        None,
        &Secret::Token(&s.token),
        "OAUTHBEARER",
    );
}

#[test]
fn expired_token_exits_7_with_the_decoded_reason() {
    let Some(s) = sasl() else { return };
    s.refused_token(
        "sasl-expired-xoauth2",
        "xoauth2",
        &s.expired_token,
        "status 401, schemes bearer, scope mail",
    );
    s.refused_token(
        "sasl-expired-oauthbearer",
        "oauthbearer",
        &s.expired_token,
        "status invalid_token",
    );
}

#[test]
fn token_of_another_user_exits_7_with_the_decoded_reason() {
    let Some(s) = sasl() else { return };
    assert_ne!(s.user, s.other_user);
    s.refused_token(
        "sasl-other-xoauth2",
        "xoauth2",
        &s.other_token,
        "status 401, schemes bearer, scope mail",
    );
    s.refused_token(
        "sasl-other-oauthbearer",
        "oauthbearer",
        &s.other_token,
        "status invalid_token",
    );
}

#[test]
fn submission_refuses_mail_without_a_login() {
    let Some(s) = sasl() else { return };
    let m = marker("sasl-anonymous");
    let eml = TempMessage::new(&m, report_eml(&m));
    let run = common::Cmd::send(s.relay(), eml.path())
        .to("user@interop.test")
        .ca(&s.ca_file)
        .json()
        .args(["--connect-timeout", "5s", "--timeout", "20s"])
        .guard(Duration::from_secs(60))
        .run();
    assert_ne!(run.code, Some(0), "{}", run.dump());
    let report = run.json_value();
    // Postfix's "Client host rejected: Access denied" for the recipient.
    assert_eq!(report["failure"]["stage"], "rcpt", "{}", run.dump());
    assert_eq!(report["failure"]["code"], 554, "{}", run.dump());
    // AUTH is offered after STARTTLS only (smtpd_tls_auth_only).
    let attempt = &report["attempts"][0];
    let before = attempt["capabilities_before_tls"].to_string();
    let after = attempt["capabilities"].to_string();
    assert!(!before.contains("XOAUTH2"), "{before}");
    assert!(
        after.contains("XOAUTH2") && after.contains("SCRAM-SHA-256"),
        "{after}"
    );
}
