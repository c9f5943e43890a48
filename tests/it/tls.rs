//! TLS (STARTTLS and implicit) and AUTH, through the built binary, against the loopback sink with a
//! CA and leaf certificates generated with rcgen (`common::certs`). Every AUTH test checks that the password
//! appears nowhere in stdout, stderr or the JSON report.

use crate::common::certs::{self, Ca};
use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "S3cr3t-Pa55word!";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `smtpcheck send` of a small message (written into `dir`) to `sink`.
fn send_to(sink: &Sink, dir: &TempDir) -> Cmd {
    let eml = dir.write(
        "message.eml",
        "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: tls test\r\n\
         Date: Sat, 01 Mar 2025 12:00:00 +0000\r\nMessage-ID: <tls-test@example.com>\r\n\r\nHello over TLS.\r\n",
    );
    Cmd::send(sink.addr(), eml)
        .helo("client.test")
        .timeout("10s")
}

trait NoSecret {
    fn no_secret(&self) -> &Run;
}

impl NoSecret for Run {
    /// Asserts that the password (and its encoded forms) appear nowhere in the output.
    #[track_caller]
    fn no_secret(&self) -> &Run {
        self.assert_no_secret(&secret_forms("alice", PASSWORD))
    }
}

fn tls_script(tls: SinkTls) -> Script {
    Script {
        tls: Some(tls),
        ..Script::default()
    }
}

fn tls_of(report: &Value) -> &Value {
    &report["attempts"][0]["tls"]
}

fn warnings(report: &Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// STARTTLS and the certificate verdict
// ---------------------------------------------------------------------------------------------

#[test]
fn starttls_with_private_ca_verifies_and_delivers() {
    let dir = TempDir::new("verified");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = send_to(&s, &dir)
        .args(["--tls", "required"])
        .ca(&ca_file)
        .json()
        .run();
    r.assert_exit(0);
    let log = one_session(&s);
    assert!(log.tls);
    assert_eq!(
        log.verbs(),
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    assert_eq!(log.messages.len(), 1);

    let report = r.json_value();
    let tls = tls_of(&report);
    assert_eq!(tls["mode"], "required");
    assert!(tls["version"].as_str().unwrap().starts_with("TLSv1."));
    assert!(tls["cipher_suite"].as_str().unwrap().starts_with("TLS"));
    assert_eq!(tls["name"], "127.0.0.1");
    assert_eq!(tls["subject"], "CN=mail.test");
    assert_eq!(tls["issuer"], "CN=smtpcheck test CA");
    assert_eq!(tls["san"], serde_json::json!(["mail.test", "127.0.0.1"]));
    assert!(tls["not_before"].as_str().unwrap().ends_with('Z'));
    assert!(tls["not_after"].as_str().unwrap().ends_with('Z'));
    assert!(tls["days_left"].as_i64().unwrap() > 300);
    assert_eq!(tls["chain_length"], 1);
    assert_eq!(tls["verified"], true);
    assert_eq!(tls["verdict"], "verified");
    assert_eq!(tls["reason"], Value::Null);
    assert_eq!(tls["advice"], Value::Null);
    assert_eq!(tls["name_matched"], true);
    assert_eq!(tls["spki_sha256"].as_str().unwrap().len(), 44);
    // The STARTTLS command, then the handshake, then EHLO again; only the new capabilities kept.
    let steps = report["attempts"][0]["steps"].as_array().unwrap();
    let stages: Vec<&str> = steps.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(
        &stages[..6],
        ["connect", "greeting", "ehlo", "starttls", "starttls", "ehlo"]
    );
    assert_eq!(steps[3]["sent"], "STARTTLS");
    assert_eq!(steps[3]["reply"]["code"], 220);
    assert_eq!(steps[4]["sent"], Value::Null);
    assert_eq!(steps[4]["ok"], true);
    // The capabilities are those of the EHLO over TLS, but STARTTLS was offered (before TLS).
    let caps = &report["attempts"][0]["capabilities"];
    assert_eq!(caps["starttls"], true, "STARTTLS was offered: {caps}");
    assert!(!caps["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "STARTTLS"));
    let before = &report["attempts"][0]["capabilities_before_tls"];
    assert_eq!(before["starttls"], true, "{before}");
    assert!(before["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "STARTTLS"));
    assert!(warnings(&report).is_empty(), "{:?}", warnings(&report));

    // Text: the TLS facts in the live transcript and in the summary.
    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = send_to(&s, &dir)
        .args(["--tls", "required"])
        .ca(&ca_file)
        .run();
    r.assert_exit(0);
    assert!(
        r.stdout.contains("*  TLS 1.")
            && r.stdout.contains(
                "certificate CN=mail.test issued by CN=smtpcheck test CA, verdict: verified for 127.0.0.1"
            ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  TLS:         TLS 1."), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  verdict:     verified (name 127.0.0.1 matches)"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_issuer_opportunistic_delivers_with_a_warning() {
    let dir = TempDir::new("unknown-opp");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = send_to(&s, &dir).json().run();
    r.assert_exit(0);
    let report = r.json_value();
    let tls = tls_of(&report);
    assert_eq!(tls["mode"], "opportunistic");
    assert_eq!(tls["verified"], false);
    assert_eq!(tls["verdict"], "unknown-issuer");
    assert_eq!(
        tls["reason"],
        "CN=Unknown CA is not a trusted CA, or the server does not send the intermediate certificate(s) (it sent 1)"
    );
    assert!(tls["advice"].as_str().unwrap().contains("--ca CA.pem"));
    assert_eq!(tls["name_matched"], true);
    let w = warnings(&report);
    assert!(
        w.iter()
            .any(|w| w.contains("not verified (unknown-issuer)") && w.contains("--tls-pin sha256:")),
        "{w:?}"
    );
    assert_eq!(one_session(&s).messages.len(), 1);

    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = send_to(&s, &dir).run();
    r.assert_exit(0);
    assert!(r.stdout.contains("verdict: unknown-issuer for 127.0.0.1"));
    assert!(r
        .stdout
        .contains("Warning: TLS certificate of 127.0.0.1 not verified"));
}

#[test]
fn unknown_issuer_required_exits_6_after_quit_over_tls() {
    let dir = TempDir::new("unknown-req");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = send_to(&s, &dir).args(["--tls", "required"]).json().run();
    r.assert_exit(6);
    let report = r.json_value();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert!(report["failure"]["reason"].as_str().unwrap().starts_with(
        "TLS certificate of 127.0.0.1 not accepted (--tls required): unknown-issuer: "
    ));
    assert_eq!(tls_of(&report)["verdict"], "unknown-issuer");
    let log = one_session(&s);
    assert!(log.tls);
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "QUIT"]);
    assert!(log.messages.is_empty());
}

#[test]
fn unknown_issuer_required_insecure_delivers() {
    let dir = TempDir::new("unknown-insecure");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = send_to(&s, &dir)
        .args(["--tls", "required", "--insecure"])
        .json()
        .run();
    r.assert_exit(0);
    let report = r.json_value();
    assert_eq!(tls_of(&report)["verified"], false);
    assert!(warnings(&report).iter().any(|w| w.contains("--insecure")));
    assert_eq!(one_session(&s).messages.len(), 1);
}

#[test]
fn wrong_name_is_reported_as_a_name_mismatch() {
    let dir = TempDir::new("wrong-name");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let tls = ca.leaf(&["mx.other.test"], false);
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir).ca(&ca_file).json().run();
    r.assert_exit(0);
    let report = r.json_value();
    let t = tls_of(&report);
    assert_eq!(t["verdict"], "name-mismatch");
    assert_eq!(t["name_matched"], false);
    assert_eq!(t["verified"], false);
    assert_eq!(
        t["reason"],
        "the certificate is not valid for 127.0.0.1: it is for mx.other.test"
    );
    assert!(t["advice"].as_str().unwrap().contains("--tls-name"));

    // Required: exit 6.
    let s = sink(tls_script(tls.clone()));
    send_to(&s, &dir)
        .args(["--tls", "required"])
        .ca(&ca_file)
        .run()
        .assert_exit(6);

    // --tls-name checks the name the certificate is for: verified.
    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir)
        .args(["--tls", "required", "--tls-name", "mx.other.test"])
        .ca(&ca_file)
        .json()
        .run();
    r.assert_exit(0);
    let report = r.json_value();
    assert_eq!(tls_of(&report)["verdict"], "verified");
    assert_eq!(tls_of(&report)["name"], "mx.other.test");
}

#[test]
fn expired_certificate_has_negative_days_left() {
    let dir = TempDir::new("expired");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let tls = ca.leaf(&["127.0.0.1"], true);
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir).ca(&ca_file).json().run();
    r.assert_exit(0);
    let report = r.json_value();
    let t = tls_of(&report);
    assert_eq!(t["verdict"], "expired");
    assert!(t["days_left"].as_i64().unwrap() < -365, "{t}");
    assert_eq!(t["not_after"], "2021-01-01T00:00:00Z");
    assert!(t["reason"]
        .as_str()
        .unwrap()
        .starts_with("the certificate (or one in its chain) expired on 2021-01-01T00:00:00Z ("));
    assert_eq!(t["advice"], "renew the certificate on the server");

    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir)
        .args(["--tls", "required"])
        .ca(&ca_file)
        .run();
    r.assert_exit(6);
    assert!(r.stdout.contains("(expired "), "{}", r.stdout);
}

#[test]
fn starttls_not_offered() {
    let dir = TempDir::new("not-offered");
    // Required: exit 6, nothing but EHLO and QUIT sent.
    let s = sink(Script::default());
    let r = send_to(&s, &dir).args(["--tls", "required"]).json().run();
    r.assert_exit(6);
    let report = r.json_value();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not offer STARTTLS"));
    assert_eq!(one_session(&s).verbs(), ["EHLO", "QUIT"]);

    // Opportunistic: delivered in clear, with a note.
    let s = sink(Script::default());
    let r = send_to(&s, &dir).json().run();
    r.assert_exit(0);
    let report = r.json_value();
    assert_eq!(tls_of(&report), &Value::Null);
    assert!(warnings(&report)
        .iter()
        .any(|w| w.contains("does not offer STARTTLS") && w.contains("unencrypted")));
    assert_eq!(one_session(&s).messages.len(), 1);
}

#[test]
fn starttls_refused_with_454() {
    let dir = TempDir::new("refused");
    let ca = Ca::new("smtpcheck test CA");
    let mut tls = ca.leaf(&["127.0.0.1"], false);
    tls.starttls = Action::reply("454 4.7.0 TLS not available due to local problem");
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir).args(["--tls", "required"]).json().run();
    r.assert_exit(26);
    let report = r.json_value();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert_eq!(report["failure"]["code"], 454);
    let log = one_session(&s);
    assert!(!log.tls);
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "QUIT"]);

    // Opportunistic goes on in clear, with a warning.
    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir).json().run();
    r.assert_exit(0);
    assert!(warnings(&r.json_value())
        .iter()
        .any(|w| w.contains("refused STARTTLS")));
}

/// STARTTLS offered and answered with 220, but the server then goes on in plain text: its TLS is
/// broken.
fn broken_tls_script() -> Script {
    Script {
        ehlo: Action::lines(250, &["sink.test", "STARTTLS"]),
        unknown: Action::reply("220 2.0.0 Ready to start TLS"),
        ..Script::default()
    }
}

#[test]
fn failed_handshake_required_exits_6_with_one_attempt() {
    let dir = TempDir::new("handshake");
    let s = sink(broken_tls_script());
    let r = send_to(&s, &dir).args(["--tls", "required"]).json().run();
    r.assert_exit(6);
    let report = r.json_value();
    assert_eq!(report["failure"]["stage"], "starttls");
    // The same failure every time: not worth retrying.
    assert_eq!(report["failure"]["class"], "permanent");
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("TLS handshake failed"), "{reason}");
    assert!(!reason.contains("use --tls required"), "{reason}");
    let hint = report["failure"]["hint"]["next_step"].as_str().unwrap();
    assert!(!hint.contains("--tls required"), "{hint}");
    assert_eq!(report["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(tls_of(&report), &Value::Null);
    let steps = report["attempts"][0]["steps"].as_array().unwrap();
    let last = steps.last().unwrap();
    assert_eq!(last["stage"], "starttls");
    assert_eq!(last["ok"], false);
    // No QUIT: the connection is unusable after a failed handshake; no second connection.
    let sessions = wait_for(&s, 1, || r.stdout.clone());
    assert!(!sessions[0].verbs().iter().any(|v| v == "QUIT"));
}

#[test]
fn failed_handshake_opportunistic_falls_back_to_clear() {
    let dir = TempDir::new("fallback");
    let s = sink(broken_tls_script());
    let r = send_to(&s, &dir).json().run();
    r.assert_exit(0);
    let report = r.json_value();
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{report}");
    // The first attempt: the TLS failure; the second, in clear, to the same address.
    let first = attempts[0]["steps"].as_array().unwrap();
    let last = first.last().unwrap();
    assert_eq!(
        (last["stage"].as_str(), last["ok"].as_bool()),
        (Some("starttls"), Some(false))
    );
    assert!(last["error"]
        .as_str()
        .unwrap()
        .contains("TLS handshake failed"));
    assert_eq!(attempts[0]["address"], attempts[1]["address"]);
    assert_eq!(attempts[0]["port"], attempts[1]["port"]);
    assert_eq!(attempts[1]["tls"], Value::Null);
    let stages: Vec<&str> = attempts[1]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert!(!stages.contains(&"starttls"), "{stages:?}");
    let w = warnings(&report);
    assert!(
        w.iter().any(
            |w| w.starts_with("the TLS of 127.0.0.1 is broken (TLS handshake failed")
                && w.contains("went on in clear")
        ),
        "{w:?}"
    );
    let sessions = wait_for(&s, 2, || r.stdout.clone());
    assert_eq!(
        sessions[1].verbs(),
        ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    assert_eq!(sessions[1].messages.len(), 1);

    // Text: both attempts and the warning.
    let s = sink(broken_tls_script());
    let r = send_to(&s, &dir).run();
    r.assert_exit(0);
    assert_eq!(
        r.stdout.matches("*  Connecting to").count(),
        2,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Warning: the TLS of 127.0.0.1 is broken"),
        "{}",
        r.stdout
    );
}

#[test]
fn bytes_pipelined_after_starttls_220_are_a_violation() {
    let dir = TempDir::new("pipelined");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let mut tls = ca.leaf(&["127.0.0.1"], false);
    tls.pipeline_after_starttls = Some(b"250-injected\r\n250 AUTH PLAIN\r\n".to_vec());
    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir).ca(&ca_file).json().run();
    r.assert_exit(6);
    let report = r.json_value();
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("CVE-2011-0411"), "{reason}");
    assert!(reason.contains("250-injected"), "{reason}");
    assert_eq!(report["failure"]["kind"], "protocol");
    assert_eq!(tls_of(&report), &Value::Null);
    let log = one_session(&s);
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS"]);
    assert!(log.messages.is_empty());
}

#[test]
fn implicit_tls_delivers() {
    let dir = TempDir::new("implicit");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let tls = ca.leaf(&["127.0.0.1"], false).implicit();
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir)
        .args(["--tls", "implicit"])
        .ca(&ca_file)
        .json()
        .run();
    r.assert_exit(0);
    let report = r.json_value();
    let t = tls_of(&report);
    assert_eq!(t["mode"], "implicit");
    assert_eq!(t["verified"], true);
    let steps = report["attempts"][0]["steps"].as_array().unwrap();
    let stages: Vec<&str> = steps.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(&stages[..4], ["connect", "tls", "greeting", "ehlo"]);
    assert_eq!(
        report["attempts"][0]["capabilities_before_tls"],
        Value::Null
    );
    let log = one_session(&s);
    assert!(log.tls);
    assert_eq!(log.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);

    // Without the CA: exit 6, after the greeting, with QUIT over TLS.
    let s = sink(tls_script(tls));
    send_to(&s, &dir)
        .args(["--tls", "implicit"])
        .run()
        .assert_exit(6);
    assert_eq!(one_session(&s).verbs(), ["QUIT"]);
}

#[test]
fn bad_ca_file_is_bad_input() {
    let dir = TempDir::new("bad-ca");
    let s = sink(Script::default());
    let missing = dir.path().join("no-such-ca.pem");
    let r = send_to(&s, &dir).ca(&missing).run();
    r.assert_exit(3);
    assert!(r.stderr.contains("no-such-ca.pem"), "{}", r.stderr);
    let not_pem = dir.write("junk.pem", "not a certificate");
    send_to(&s, &dir).ca(&not_pem).run().assert_exit(3);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        s.sessions().is_empty(),
        "no connection before the flags are valid"
    );
}

// ---------------------------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------------------------

fn auth_script(ca: &Ca, mechanisms: &[&str]) -> Script {
    let mut auth = SinkAuth::new("alice", PASSWORD);
    auth.mechanisms = mechanisms.iter().map(|s| s.to_string()).collect();
    Script {
        tls: Some(ca.leaf(&["127.0.0.1"], false)),
        auth: Some(auth),
        ..Script::default()
    }
}

fn accepted(mechanism: &str) -> Vec<AuthLog> {
    vec![AuthLog {
        mechanism: mechanism.into(),
        user: "alice".into(),
        accepted: true,
    }]
}

#[test]
fn auth_plain_over_starttls() {
    let dir = TempDir::new("auth-plain");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let pw = dir.write("password", format!("{PASSWORD}\nignored second line\n"));
    let s = sink(auth_script(&ca, &["PLAIN", "LOGIN"]));
    let send = send_to(&s, &dir)
        .args([
            "--tls",
            "required",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .ca(&ca_file);
    let r = send.arg("--format").arg("json").run();
    r.assert_exit(0).no_secret();
    let log = one_session(&s);
    assert_eq!(log.auth, accepted("PLAIN"));
    assert_eq!(log.messages.len(), 1);
    let report = r.json_value();
    let steps = report["attempts"][0]["steps"].as_array().unwrap();
    let auth: Vec<&Value> = steps.iter().filter(|s| s["stage"] == "auth").collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(
        auth[0]["sent"],
        "AUTH PLAIN <redacted credentials for user alice>"
    );
    assert_eq!(auth[0]["reply"]["code"], 235);

    // Text mode too.
    let s = sink(auth_script(&ca, &["PLAIN", "LOGIN"]));
    let r = send_to(&s, &dir)
        .args([
            "--tls",
            "required",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .ca(&ca_file)
        .run();
    r.assert_exit(0).no_secret();
    assert!(r
        .stdout
        .contains("~> AUTH PLAIN <redacted credentials for user alice>"));
}

#[test]
fn auth_login_with_password_from_environment() {
    let dir = TempDir::new("auth-login");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(auth_script(&ca, &["PLAIN", "LOGIN", "CRAM-MD5"]));
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice", "--auth-mech", "login"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.assert_exit(0).no_secret();
    assert_eq!(one_session(&s).auth, accepted("LOGIN"));
    let report = r.json_value();
    let sent: Vec<&str> = report["attempts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] == "auth")
        .map(|s| s["sent"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            "AUTH LOGIN",
            "<user name alice, base64>",
            "<redacted password for user alice>"
        ]
    );
}

#[test]
fn auth_picks_cram_md5_when_offered() {
    let dir = TempDir::new("auth-cram");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(auth_script(&ca, &["LOGIN", "PLAIN", "CRAM-MD5"]));
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .run();
    r.assert_exit(0).no_secret();
    assert_eq!(one_session(&s).auth, accepted("CRAM-MD5"));
    assert!(r
        .stdout
        .contains("~> <redacted CRAM-MD5 response for user alice>"));
}

#[test]
fn wrong_password_exits_7() {
    let dir = TempDir::new("auth-wrong");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    for mech in ["plain", "login", "cram-md5"] {
        let mut script = auth_script(&ca, &["PLAIN", "LOGIN", "CRAM-MD5"]);
        script.auth.as_mut().unwrap().password = format!("not-{PASSWORD}");
        let s = sink(script);
        let r = send_to(&s, &dir)
            .args(["--auth-user", "alice", "--auth-mech", mech])
            .ca(&ca_file)
            .env("SMTPCHECK_PASSWORD", PASSWORD)
            .json()
            .run();
        r.assert_exit(7).no_secret();
        let report = r.json_value();
        assert_eq!(report["failure"]["stage"], "auth");
        assert_eq!(report["failure"]["code"], 535);
        assert_eq!(report["failure"]["enhanced"], "5.7.8");
        let log = one_session(&s);
        assert_eq!(log.auth.len(), 1);
        assert!(!log.auth[0].accepted);
        assert!(log.messages.is_empty());
        assert_eq!(log.verbs().last().map(String::as_str), Some("QUIT"));
    }
}

#[test]
fn auth_in_clear_is_refused_before_sending_credentials() {
    let dir = TempDir::new("auth-clear");
    let pw = dir.write("password", PASSWORD);
    let clear = || {
        let mut auth = SinkAuth::new("alice", PASSWORD);
        auth.offer_in_clear = true;
        Script {
            auth: Some(auth),
            ..Script::default()
        }
    };
    let s = sink(clear());
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice", "--auth-password-file"])
        .arg(&pw)
        .json()
        .run();
    r.assert_exit(7).no_secret();
    let report = r.json_value();
    assert_eq!(report["failure"]["stage"], "auth");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("--allow-plain-auth"));
    let log = one_session(&s);
    assert!(log.auth.is_empty());
    assert!(
        !log.verbs().iter().any(|v| v == "AUTH"),
        "no AUTH command may reach the server: {:?}",
        log.commands
    );

    // With --allow-plain-auth it logs in (and the password still appears nowhere).
    let s = sink(clear());
    let r = send_to(&s, &dir)
        .args([
            "--tls",
            "off",
            "--allow-plain-auth",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .run();
    r.assert_exit(0).no_secret();
    assert_eq!(one_session(&s).auth, accepted("CRAM-MD5"));
}

#[test]
fn auth_not_offered_exits_7() {
    let dir = TempDir::new("auth-none");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.assert_exit(7).no_secret();
    let report = r.json_value();
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not offer AUTH"));
    assert!(one_session(&s).messages.is_empty());
}

#[test]
fn auth_over_unverified_tls_is_refused() {
    let dir = TempDir::new("auth-unverified");
    let ca = Ca::new("Unknown CA");
    let s = sink(auth_script(&ca, &["PLAIN"]));
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice"])
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.assert_exit(7).no_secret();
    assert!(r.json_value()["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("not verified"));
    assert!(one_session(&s).auth.is_empty());
}

#[test]
fn password_problems_stop_before_any_connection() {
    let dir = TempDir::new("auth-nopw");
    let s = sink(Script::default());
    let missing = dir.path().join("no-such-password-file");
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice", "--auth-password-file"])
        .arg(&missing)
        .run();
    r.assert_exit(3);
    assert!(r.stderr.contains("no-such-password-file"), "{}", r.stderr);
    // No file, no environment, stdin not a terminal: no password.
    let r = send_to(&s, &dir)
        .args(["--auth-user", "alice"])
        .json()
        .run();
    r.assert_exit(3);
    assert!(r.stderr.contains("SMTPCHECK_PASSWORD"), "{}", r.stderr);
    assert_eq!(r.json_value()["failure"]["stage"], "input");
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.sessions().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Pins, the verdict vocabulary, and no library text in any output
// ---------------------------------------------------------------------------------------------

/// The library renderings no output may contain.
const LIBRARY_TEXT: [&str; 8] = [
    "Other(",
    "OtherError",
    "InvalidContentType",
    "CaUsedAsEndEntity",
    "InvalidCertificate",
    "UnknownIssuer",
    "AlertReceived",
    "Context {",
];

/// The verdict of a JSON run, checked against the vocabulary, with its sentences.
#[track_caller]
fn verdict_of(r: &Run) -> (String, String, Option<String>) {
    let report = r.json_value();
    let t = tls_of(&report);
    let v = t["verdict"].as_str().unwrap().to_string();
    assert!(
        VERDICTS.contains(&v.as_str()),
        "{v} is not in the vocabulary"
    );
    let reason = t["reason"].as_str().unwrap_or("").to_string();
    (v, reason, t["advice"].as_str().map(str::to_string))
}

#[test]
fn openssl_style_ca_certificate_gets_words_and_a_pin_that_works() {
    let dir = TempDir::new("ca-as-server");
    let (tls, pem) = certs::self_signed_pem("relay.test", true);
    // Default run: a verdict in words, a warning, delivered encrypted.
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir).json().run();
    r.assert_exit(0);
    let (v, reason, advice) = verdict_of(&r);
    assert_eq!(v, "ca-certificate-as-server");
    assert!(reason.contains("basicConstraints CA:TRUE"), "{reason}");
    let advice = advice.unwrap();
    assert!(
        advice.contains("CA:FALSE")
            && advice.contains("--ca FILE")
            && advice.contains("--tls-pin sha256:"),
        "{advice}"
    );
    // --ca with that very certificate: pinned, --tls required passes without --insecure; the name
    // checked is the --tls-name value.
    let ca = dir.write("relay.pem", &pem);
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir)
        .args(["--tls", "required", "--tls-name", "relay.test"])
        .ca(&ca)
        .json()
        .run();
    r.assert_exit(0);
    let (v, reason, advice) = verdict_of(&r);
    assert_eq!((v.as_str(), advice), ("pinned", None));
    assert!(
        reason.contains("byte for byte the one given with --ca"),
        "{reason}"
    );
    let report = r.json_value();
    assert_eq!(tls_of(&report)["verified"], true);
    assert_eq!(tls_of(&report)["name"], "relay.test");
    assert_eq!(one_session(&s).messages.len(), 1);
    // The pin the report shows, given back with --tls-pin: pinned too, whatever the name.
    let pin = tls_of(&report)["spki_sha256"].as_str().unwrap().to_string();
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir)
        .args(["--tls", "required", "--tls-pin", &format!("sha256:{pin}")])
        .json()
        .run();
    r.assert_exit(0);
    assert_eq!(verdict_of(&r).0, "pinned");
    // A wrong pin: exit 6, pin-mismatch.
    let wrong = format!("sha256:{}", "A".repeat(43) + "=");
    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir)
        .args(["--tls", "required", "--tls-pin", &wrong])
        .json()
        .run();
    r.assert_exit(6);
    assert_eq!(verdict_of(&r).0, "pin-mismatch");
    // A malformed pin is bad input, before any connection.
    let s = sink(Script::default());
    let r = send_to(&s, &dir).args(["--tls-pin", "sha1:abc"]).run();
    r.assert_exit(3);
    assert!(r.stderr.contains("invalid --tls-pin"), "{}", r.stderr);
}

#[test]
fn every_verdict_the_sink_can_show() {
    let dir = TempDir::new("vocabulary");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let (own, _) = certs::self_signed_pem("127.0.0.1", false);
    // Same name as the trusted CA, another key: the leaf's signature does not verify.
    let impostor = Ca::new("smtpcheck test CA");
    let cases: Vec<(SinkTls, Vec<&str>, &str, &str)> = vec![
        (ca.leaf(&["127.0.0.1"], false), vec![], "verified", ""),
        (own.clone(), vec![], "self-signed", "self-signed"),
        (
            own,
            vec!["--tls", "required", "--insecure"],
            "not-checked",
            "not checked because of --insecure",
        ),
        (
            Ca::new("Other CA").leaf(&["127.0.0.1"], false),
            vec![],
            "unknown-issuer",
            "CN=Other CA is not a trusted CA",
        ),
        (
            ca.leaf(&["mx.other.test"], false),
            vec![],
            "name-mismatch",
            "not valid for 127.0.0.1",
        ),
        (
            ca.leaf(&["127.0.0.1"], true),
            vec![],
            "expired",
            "expired on 2021-01-01",
        ),
        (
            ca.leaf_valid(&["127.0.0.1"], (2090, 1, 1), (2091, 1, 1)),
            vec![],
            "not-yet-valid",
            "not valid yet: not before 2090-01-01",
        ),
        (
            impostor.leaf(&["127.0.0.1"], false),
            vec![],
            "bad-signature",
            "does not verify",
        ),
    ];
    for (tls, args, verdict, words) in cases {
        let s = sink(tls_script(tls));
        let r = send_to(&s, &dir).args(args).ca(&ca_file).json().run();
        r.assert_exit(0);
        let (v, reason, advice) = verdict_of(&r);
        assert_eq!(v, verdict, "{reason}");
        assert!(reason.contains(words), "{verdict}: {reason}");
        assert_eq!(
            advice.is_none(),
            verdict == "verified",
            "{verdict}: {advice:?}"
        );
    }
}

#[test]
fn certificate_expiring_soon_is_a_warning() {
    let dir = TempDir::new("expiring");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let soon = std::time::SystemTime::now() + Duration::from_secs(5 * 86_400);
    let days = soon
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // Civil date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    let tls = ca.leaf_valid(&["127.0.0.1"], (2020, 1, 1), (y, m, d));
    let s = sink(tls_script(tls.clone()));
    let r = send_to(&s, &dir).ca(&ca_file).json().run();
    r.assert_exit(0);
    let w = warnings(&r.json_value());
    assert!(
        w.iter().any(
            |w| w.starts_with("the TLS certificate of 127.0.0.1 expires in ")
                && w.contains("--cert-warn-days 14")
        ),
        "{w:?}"
    );
    let s = sink(tls_script(tls));
    let r = send_to(&s, &dir)
        .args(["--cert-warn-days", "2"])
        .ca(&ca_file)
        .json()
        .run();
    r.assert_exit(0);
    assert!(!warnings(&r.json_value())
        .iter()
        .any(|w| w.contains("expires")));
}

#[test]
fn tls_save_chain_writes_what_the_server_presented() {
    let dir = TempDir::new("save-chain");
    let (tls, pem) = certs::self_signed_pem("127.0.0.1", true);
    let s = sink(tls_script(tls.clone()));
    let saved = dir.path().join("chain.pem");
    let r = send_to(&s, &dir).arg("--tls-save-chain").arg(&saved).run();
    r.assert_exit(0);
    let written = std::fs::read_to_string(&saved).unwrap();
    let der = |p: &str| -> Vec<Vec<u8>> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(p.as_bytes())
            .map(|c| c.unwrap().as_ref().to_vec())
            .collect()
    };
    assert_eq!(der(&written), der(&pem));
    // The saved chain given back with --ca: pinned, --tls required passes.
    let s = sink(tls_script(tls));
    send_to(&s, &dir)
        .args(["--tls", "required"])
        .ca(&saved)
        .run()
        .assert_exit(0);
}

#[test]
fn implicit_tls_to_a_plain_port_says_so() {
    let dir = TempDir::new("implicit-plain");
    let s = sink(Script::default());
    let r = send_to(&s, &dir).args(["--tls", "implicit"]).json().run();
    r.assert_exit(6);
    let report = r.json_value();
    let f = &report["failure"];
    assert_eq!(f["stage"], "tls");
    assert_eq!(f["class"], "permanent");
    let reason = f["reason"].as_str().unwrap();
    assert!(reason.contains("this port speaks plain SMTP"), "{reason}");
    assert!(
        reason.contains("use --tls opportunistic or --tls required"),
        "{reason}"
    );
    assert!(!reason.contains("use --tls implicit"), "{reason}");
    assert_eq!(report["attempts"].as_array().unwrap().len(), 1);
}

#[test]
fn verbose_summary_remembers_starttls_after_the_upgrade() {
    let dir = TempDir::new("verbose-caps");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = send_to(&s, &dir).ca(&ca_file).arg("-v").run();
    r.assert_exit(0);
    assert!(r.stdout.contains("STARTTLS yes"), "{}", r.stdout);
    assert!(!r.stdout.contains("STARTTLS no"), "{}", r.stdout);
    assert!(r
        .stdout
        .contains("*  TLS established: from here on ~> is sent and <~ received encrypted"));
    assert!(r.stdout.contains("-> STARTTLS\n"), "{}", r.stdout);
    assert!(r.stdout.contains("~> MAIL FROM:"), "{}", r.stdout);
}

#[test]
fn no_output_format_shows_library_text() {
    let dir = TempDir::new("no-library-text");
    let (ca_tls, _) = certs::self_signed_pem("relay.test", true);
    let scenarios: Vec<(Script, Vec<&str>)> = vec![
        (tls_script(ca_tls.clone()), vec![]),
        (tls_script(ca_tls), vec!["--tls", "required"]),
        (Script::default(), vec!["--tls", "implicit"]),
        (broken_tls_script(), vec!["--tls", "required"]),
        (broken_tls_script(), vec![]),
    ];
    for (script, args) in scenarios {
        for format in ["text", "json", "junit"] {
            let s = sink(script.clone());
            let log = dir.path().join("protocol.log");
            let r = send_to(&s, &dir)
                .args(args.clone())
                .args(["--format", format, "-v"])
                .arg("--log")
                .arg(&log)
                .run();
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            let all = format!("{}{}{logged}", r.stdout, r.stderr);
            for library in LIBRARY_TEXT {
                assert!(
                    !all.contains(library),
                    "{args:?} --format {format}: {library} in\n{all}"
                );
            }
        }
    }
}
