//! OAuth 2.0 logins (XOAUTH2, OAUTHBEARER) against the scripted sink: the exact exchanges, SASL-IR
//! and the continuation form, the `334 base64(JSON)` failure, where the token comes from, and that
//! no token reaches any output.

use crate::common::certs::Ca;
use crate::common::*;
use base64::Engine as _;
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const TOKEN: &str = "ya29.Tok3n-For-Alice_0123456789";

fn token_script(ca: &Ca, mechanisms: &[&str]) -> Script {
    let mut auth = SinkAuth::with_token("alice@example.com", TOKEN);
    auth.mechanisms = mechanisms.iter().map(|s| s.to_string()).collect();
    Script {
        tls: Some(ca.leaf(&["127.0.0.1"], false)),
        auth: Some(auth),
        ..Script::default()
    }
}

fn send_to(sink: &Sink, dir: &TempDir, ca: &Ca) -> Cmd {
    let ca_file = dir.write("ca.pem", ca.pem());
    Cmd::send_to_sink(sink, example_eml())
        .to("bob@example.net")
        .timeout("5s")
        .ca(ca_file)
        .args(["--tls", "required", "--auth-user", "alice@example.com"])
}

/// Every form of `token` that must never be shown.
fn token_forms(user: &str, token: &str) -> Vec<String> {
    vec![
        token.to_string(),
        B64.encode(token),
        B64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01")),
    ]
}

fn auth_sent(report: &Value) -> Vec<String> {
    report["attempts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] == "auth")
        .map(|s| s["sent"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn xoauth2_as_initial_response_byte_for_byte() {
    let dir = TempDir::new("xoauth2-ir");
    let ca = Ca::new("smtpcheck test CA");
    let s = sink(token_script(&ca, &["PLAIN", "XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args(["--auth-mech", "xoauth2"])
        .env("SMTPCHECK_OAUTH2_TOKEN", TOKEN)
        .json()
        .run();
    r.assert_exit(0)
        .assert_no_secret(&token_forms("alice@example.com", TOKEN));
    let log = one_session(&s);
    assert_eq!(log.auth.len(), 1);
    assert!(log.auth[0].accepted);
    assert_eq!(
        log.auth_responses,
        [format!("user=alice@example.com\x01auth=Bearer {TOKEN}\x01\x01").into_bytes()]
    );
    let auth_line = commands_with_verb(&log, "AUTH");
    assert!(auth_line[0].starts_with("AUTH XOAUTH2 "), "{auth_line:?}");
    assert_eq!(
        auth_sent(&r.json_value()),
        ["AUTH XOAUTH2 <redacted token for user alice@example.com>"]
    );
    assert_eq!(log.messages.len(), 1);
}

#[test]
fn oauthbearer_long_token_after_334_byte_for_byte() {
    let dir = TempDir::new("oauthbearer-334");
    let ca = Ca::new("smtpcheck test CA");
    // A Microsoft-sized token: the AUTH line would pass 512 octets, so no initial response.
    let long = format!("eyJ0eXAiOiJKV1Qi.{}.sig", "A".repeat(1500));
    let mut script = token_script(&ca, &["OAUTHBEARER"]);
    script.auth.as_mut().unwrap().token = Some(long.clone());
    let s = sink(script);
    let file = dir.write("token", format!("{long}\n"));
    let r = send_to(&s, &dir, &ca)
        .arg("--oauth2-token-file")
        .arg(&file)
        .json()
        .run();
    r.assert_exit(0)
        .assert_no_secret(&token_forms("alice@example.com", &long));
    let log = one_session(&s);
    assert!(log.auth[0].accepted);
    assert_eq!(commands_with_verb(&log, "AUTH"), ["AUTH OAUTHBEARER"]);
    let port = s.addr().port();
    assert_eq!(
        log.auth_responses,
        [format!(
            "n,a=alice@example.com,\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {long}\x01\x01"
        )
        .into_bytes()]
    );
    assert_eq!(
        auth_sent(&r.json_value()),
        [
            "AUTH OAUTHBEARER",
            "<redacted token for user alice@example.com>"
        ]
    );
}

#[test]
fn refused_token_gets_the_empty_response_and_the_decoded_error() {
    let dir = TempDir::new("oauth-refused");
    let ca = Ca::new("smtpcheck test CA");
    for mech in ["xoauth2", "oauthbearer"] {
        let s = sink(token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]));
        let wrong = format!("{TOKEN}-expired");
        let r = send_to(&s, &dir, &ca)
            .args(["--auth-mech", mech])
            .env("SMTPCHECK_OAUTH2_TOKEN", &wrong)
            .json()
            .run();
        r.assert_exit(7)
            .assert_no_secret(&token_forms("alice@example.com", &wrong));
        let log = one_session(&s);
        assert!(!log.auth[0].accepted);
        // The error challenge was answered with the empty response, as RFC 7628 requires.
        assert_eq!(log.auth_responses.len(), 2, "{mech}");
        assert_eq!(log.auth_responses[1], b"", "{mech}");
        assert!(log.messages.is_empty());
        let report = r.json_value();
        let reason = report["failure"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(
                "the server's OAuth error: status invalid_token, schemes Bearer, scope https://mail.sink.test/"
            ),
            "{reason}"
        );
        assert_eq!(report["failure"]["code"], 535);
        let sent = auth_sent(&report);
        assert!(
            sent[1].starts_with("(empty response, acknowledging the error: the server's OAuth error: status invalid_token"),
            "{sent:?}"
        );
        // The text verdict carries it too.
        let s = sink(token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]));
        let r = send_to(&s, &dir, &ca)
            .args(["--auth-mech", mech])
            .env("SMTPCHECK_OAUTH2_TOKEN", &wrong)
            .run();
        r.assert_exit(7);
        assert!(r.stdout.contains("status invalid_token"), "{}", r.stdout);
    }
}

#[test]
fn automatic_choice_prefers_the_token_and_needs_an_offer() {
    let dir = TempDir::new("oauth-auto");
    let ca = Ca::new("smtpcheck test CA");
    let mut script = token_script(&ca, &["PLAIN", "LOGIN", "XOAUTH2"]);
    script.auth.as_mut().unwrap().password = "pw-alice".into();
    let s = sink(script.clone());
    let r = send_to(&s, &dir, &ca)
        .env("SMTPCHECK_OAUTH2_TOKEN", TOKEN)
        .env("SMTPCHECK_PASSWORD", "pw-alice")
        .run();
    r.assert_exit(0);
    assert_eq!(one_session(&s).auth[0].mechanism, "XOAUTH2");
    // Only password mechanisms offered: the password is used when at hand...
    script.auth.as_mut().unwrap().mechanisms = vec!["PLAIN".into()];
    let s = sink(script.clone());
    send_to(&s, &dir, &ca)
        .env("SMTPCHECK_OAUTH2_TOKEN", TOKEN)
        .env("SMTPCHECK_PASSWORD", "pw-alice")
        .run()
        .assert_exit(0);
    assert_eq!(one_session(&s).auth[0].mechanism, "PLAIN");
    // ...and without one nothing is sent: the token is not a password.
    let s = sink(script);
    let r = send_to(&s, &dir, &ca)
        .env("SMTPCHECK_OAUTH2_TOKEN", TOKEN)
        .json()
        .run();
    r.assert_exit(7)
        .assert_no_secret(&token_forms("alice@example.com", TOKEN));
    let reason = r.json_value()["failure"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason
            .contains("offers AUTH PLAIN but smtpcheck has an OAuth token (OAUTHBEARER, XOAUTH2)"),
        "{reason}"
    );
    assert!(commands_with_verb(&one_session(&s), "AUTH").is_empty());
}

#[cfg(unix)]
#[test]
fn token_from_a_command() {
    let dir = TempDir::new("oauth-cmd");
    let ca = Ca::new("smtpcheck test CA");
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let script = dir.write(
        "get-token.sh",
        format!("printf '%s\\n' '{TOKEN}'\necho other\n"),
    );
    let r = send_to(&s, &dir, &ca)
        .arg("--oauth2-token-cmd")
        .arg(format!("sh {}", script.display()))
        .run();
    r.assert_exit(0)
        .assert_no_secret(&token_forms("alice@example.com", TOKEN));
    assert!(one_session(&s).auth[0].accepted);
    // A failing command: exit 3 with its error, no connection.
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-token-cmd",
            "echo no credentials cached >&2; exit 4",
        ])
        .run();
    r.assert_exit(3);
    assert!(
        r.stderr.contains("--oauth2-token-cmd failed")
            && r.stderr.contains("no credentials cached"),
        "{}",
        r.stderr
    );
    no_connection(&s, &r);
}

#[test]
fn a_token_mechanism_without_a_token_is_bad_input() {
    let dir = TempDir::new("oauth-none");
    let ca = Ca::new("smtpcheck test CA");
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args(["--auth-mech", "xoauth2"])
        .run();
    r.assert_exit(3);
    assert!(r.stderr.contains("SMTPCHECK_OAUTH2_TOKEN"), "{}", r.stderr);
    no_connection(&s, &r);
}

#[test]
fn echoed_tokens_reach_no_output_format_and_no_log() {
    let dir = TempDir::new("oauth-echo");
    let ca = Ca::new("smtpcheck test CA");
    let user = "alice@example.com";
    let forms = token_forms(user, TOKEN);
    for format in ["text", "json", "junit"] {
        for (token, exit) in [(TOKEN.to_string(), 0), (format!("{TOKEN}-WRONG"), 7)] {
            let mut script = token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]);
            // A server that echoes every form of the token it was sent, in AUTH and MAIL replies.
            let echo = token_forms(user, &token).join(" ");
            script.auth.as_mut().unwrap().oauth_error =
                format!(r#"{{"status":"invalid_token {token}","scope":"{echo}"}}"#);
            script.mail = Action::reply(&format!("250 2.1.0 Ok {echo}"));
            let s = sink(script);
            let log = dir.path().join(format!("{format}-{exit}.log"));
            let out = dir.path().join(format!("{format}-{exit}.out"));
            let r = send_to(&s, &dir, &ca)
                .env("SMTPCHECK_OAUTH2_TOKEN", &token)
                .args(["--format", format])
                .arg("--log")
                .arg(&log)
                .arg("--output")
                .arg(&out)
                .run();
            r.assert_exit(exit);
            let mut all = forms.clone();
            all.extend(token_forms(user, &token));
            r.assert_no_secret(&all);
            for file in [&log, &out] {
                let text = std::fs::read_to_string(file).unwrap();
                assert!(text.contains("AUTH"), "{format} {exit}: {text}");
                for form in &all {
                    assert!(
                        !text.contains(form.as_str()),
                        "{format} {exit}: {form:?} in {}:\n{text}",
                        file.display()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Token flows against a loopback token endpoint
// ---------------------------------------------------------------------------------------------

/// One request the token endpoint received: its path and its form fields.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    form: Vec<(String, String)>,
}

impl Received {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An identity provider on 127.0.0.1, plain HTTP or HTTPS: answers each request with the next
/// scripted (status, JSON) and records what it received. Stops after the script is used up.
struct Idp {
    addr: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    https: bool,
}

/// A stream the provider reads a request from and writes its answer to.
trait Duplex: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Duplex for T {}

impl Idp {
    fn start(answers: Vec<(u16, String)>) -> Idp {
        Idp::serve(answers, None)
    }

    /// The provider over TLS with `tls`'s certificate (e.g. one of the test CA's leaves).
    fn start_https(answers: Vec<(u16, String)>, tls: SinkTls) -> Idp {
        Idp::serve(answers, Some(tls.config))
    }

    fn serve(
        answers: Vec<(u16, String)>,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> Idp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        let https = tls.is_some();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((conn, _)) = listener.accept() else {
                    return;
                };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(10)));
                match &tls {
                    Some(config) => {
                        let Ok(server) = rustls::ServerConnection::new(config.clone()) else {
                            return;
                        };
                        let mut stream = rustls::StreamOwned::new(server, conn);
                        Idp::answer(&mut stream, status, &body, &log);
                        stream.conn.send_close_notify();
                        let _ = std::io::Write::flush(&mut stream);
                    }
                    None => {
                        let mut conn = conn;
                        Idp::answer(&mut conn, status, &body, &log);
                    }
                }
            }
        });
        Idp {
            addr,
            received,
            https,
        }
    }

    /// Reads one request from `stream` (a handshake failure reads nothing and is not recorded)
    /// and answers it.
    fn answer(
        stream: &mut dyn Duplex,
        status: u16,
        body: &str,
        log: &std::sync::Mutex<Vec<Received>>,
    ) {
        use std::io::{BufRead, BufReader, Read};
        let mut reader = BufReader::new(&mut *stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut form = vec![0u8; length];
        let _ = reader.read_exact(&mut form);
        drop(reader);
        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
        log.lock().unwrap().push(Received {
            path,
            form: decode_form(&String::from_utf8_lossy(&form)),
        });
        let reason = if status == 200 { "OK" } else { "Bad Request" };
        let answer = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn decode_form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn token_json(token: &str) -> String {
    format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{token}"}}"#)
}

const CLIENT_SECRET: &str = "cS3cret~Value.From-Entra";

#[test]
fn client_credentials_flow_with_the_microsoft_preset() {
    let dir = TempDir::new("oauth-cc");
    let ca = Ca::new("smtpcheck test CA");
    let idp = Idp::start(vec![(200, token_json(TOKEN))]);
    let s = sink(token_script(&ca, &["LOGIN", "XOAUTH2"]));
    // The documented command line, with the token endpoint pointed at the loopback provider.
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-provider",
            "microsoft",
            "--oauth2-tenant",
            "contoso.onmicrosoft.com",
            "--oauth2-flow",
            "client-credentials",
            "--oauth2-client-id",
            "00000000-app-id",
            "--oauth2-token-url",
        ])
        .arg(idp.url("/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .json()
        .run();
    let mut secrets = token_forms("alice@example.com", TOKEN);
    secrets.push(CLIENT_SECRET.to_string());
    r.assert_exit(0).assert_no_secret(&secrets);
    let got = idp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(got[0].field("grant_type"), Some("client_credentials"));
    assert_eq!(got[0].field("client_id"), Some("00000000-app-id"));
    assert_eq!(got[0].field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        got[0].field("scope"),
        Some("https://outlook.office365.com/.default")
    );
    let log = one_session(&s);
    assert_eq!(log.auth[0].mechanism, "XOAUTH2");
    assert!(log.auth[0].accepted);
}

#[test]
fn device_code_flow_polls_until_authorised() {
    let dir = TempDir::new("oauth-device");
    let ca = Ca::new("smtpcheck test CA");
    let device = r#"{"device_code":"DEV-c0de-secret","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin","expires_in":60,"interval":1}"#;
    let idp = Idp::start(vec![
        (200, device.to_string()),
        (
            400,
            r#"{"error":"authorization_pending","error_description":"AADSTS70016: pending"}"#
                .to_string(),
        ),
        (200, token_json(TOKEN)),
    ]);
    let s = sink(token_script(&ca, &["OAUTHBEARER"]));
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-flow",
            "device-code",
            "--oauth2-client-id",
            "public-app",
        ])
        .args([
            "--oauth2-scope",
            "https://outlook.office.com/SMTP.Send offline_access",
        ])
        .arg("--oauth2-device-url")
        .arg(idp.url("/devicecode"))
        .arg("--oauth2-token-url")
        .arg(idp.url("/token"))
        .run();
    let mut secrets = token_forms("alice@example.com", TOKEN);
    secrets.push("DEV-c0de-secret".into());
    r.assert_exit(0).assert_no_secret(&secrets);
    assert!(
        r.stderr.contains("open https://microsoft.com/devicelogin")
            && r.stderr.contains("enter the code ABCD-EFGH"),
        "{}",
        r.stderr
    );
    let got = idp.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].path, "/devicecode");
    assert_eq!(got[0].field("client_id"), Some("public-app"));
    assert_eq!(
        got[0].field("scope"),
        Some("https://outlook.office.com/SMTP.Send offline_access")
    );
    for poll in &got[1..] {
        assert_eq!(poll.path, "/token");
        assert_eq!(
            poll.field("grant_type"),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        assert_eq!(poll.field("device_code"), Some("DEV-c0de-secret"));
        assert_eq!(poll.field("client_id"), Some("public-app"));
        assert_eq!(poll.field("client_secret"), None);
    }
    assert!(one_session(&s).auth[0].accepted);
}

#[test]
fn refresh_token_flow_with_the_google_preset() {
    let dir = TempDir::new("oauth-refresh");
    let ca = Ca::new("smtpcheck test CA");
    let idp = Idp::start(vec![(200, token_json(TOKEN))]);
    let s = sink(token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]));
    let refresh = dir.write("refresh", "1//0gRefresh-Token-Value\n");
    let secret = dir.write("client-secret", format!("{CLIENT_SECRET}\n"));
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-provider",
            "google",
            "--oauth2-flow",
            "refresh-token",
        ])
        .args(["--oauth2-client-id", "123.apps.googleusercontent.com"])
        .arg("--oauth2-refresh-token-file")
        .arg(&refresh)
        .arg("--oauth2-client-secret-file")
        .arg(&secret)
        .arg("--oauth2-token-url")
        .arg(idp.url("/token"))
        .json()
        .run();
    let mut secrets = token_forms("alice@example.com", TOKEN);
    secrets.extend([CLIENT_SECRET.to_string(), "1//0gRefresh-Token-Value".into()]);
    r.assert_exit(0).assert_no_secret(&secrets);
    let got = idp.received();
    assert_eq!(got[0].field("grant_type"), Some("refresh_token"));
    assert_eq!(
        got[0].field("refresh_token"),
        Some("1//0gRefresh-Token-Value")
    );
    assert_eq!(
        got[0].field("client_id"),
        Some("123.apps.googleusercontent.com")
    );
    assert_eq!(got[0].field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(got[0].field("scope"), Some("https://mail.google.com/"));
    assert_eq!(one_session(&s).auth[0].mechanism, "OAUTHBEARER");
}

#[test]
fn identity_provider_errors_are_explained_and_exit_7() {
    let dir = TempDir::new("oauth-idp-error");
    let ca = Ca::new("smtpcheck test CA");
    // The provider echoes the client secret: it must not reach any output.
    let error = format!(
        r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided ({CLIENT_SECRET}). Trace ID: 1","error_codes":[7000215]}}"#
    );
    for format in ["text", "json", "junit"] {
        let idp = Idp::start(vec![(401, error.clone())]);
        let s = sink(token_script(&ca, &["XOAUTH2"]));
        let r = send_to(&s, &dir, &ca)
            .args([
                "--oauth2-flow",
                "client-credentials",
                "--oauth2-client-id",
                "app",
            ])
            .arg("--oauth2-token-url")
            .arg(idp.url("/token"))
            .args(["--format", format])
            .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
            .run();
        r.assert_exit(7)
            .assert_no_secret(&[CLIENT_SECRET.to_string()]);
        for text in [&r.stderr, &r.stdout] {
            assert!(
                text.contains("invalid_client") && text.contains("AADSTS7000215"),
                "{format}: {text}"
            );
        }
        assert!(
            r.stderr
                .contains("secret's ID was given instead of its value"),
            "{}",
            r.stderr
        );
        no_connection(&s, &r);
    }
}

#[test]
fn token_endpoints_must_be_https() {
    let dir = TempDir::new("oauth-https");
    let ca = Ca::new("smtpcheck test CA");
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-flow",
            "client-credentials",
            "--oauth2-client-id",
            "app",
        ])
        .args(["--oauth2-token-url", "http://login.example/token"])
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .run();
    r.assert_exit(3);
    assert!(r.stderr.contains("must use https://"), "{}", r.stderr);
    no_connection(&s, &r);
    // A provider that does not answer is temporary (exit 27), found within the bound.
    let r = send_to(&s, &dir, &ca)
        .args([
            "--oauth2-flow",
            "client-credentials",
            "--oauth2-client-id",
            "app",
        ])
        .args(["--oauth2-token-url", "http://127.0.0.1:9/token"])
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .run();
    r.assert_exit(27);
    assert!(
        r.stderr.contains("cannot get an OAuth token"),
        "{}",
        r.stderr
    );
}

/// A private identity provider: an `https://` token endpoint whose certificate chains to the
/// `--ca` the SMTP session trusts is trusted too (also with `--tls off`, where the session itself
/// has no use for `--ca`); one from a CA that is neither built in nor given fails before any SMTP
/// connection, saying so.
#[test]
fn token_endpoint_over_https_is_trusted_by_ca() {
    let dir = TempDir::new("oauth-https-ca");
    let ca = Ca::new("smtpcheck test CA");
    let flow = [
        "--oauth2-flow",
        "client-credentials",
        "--oauth2-client-id",
        "private-app",
        "--oauth2-scope",
        "smtp",
        "--oauth2-token-url",
    ];
    let mut secrets = token_forms("alice@example.com", TOKEN);
    secrets.push(CLIENT_SECRET.to_string());

    // STARTTLS to the sink and HTTPS to the provider, both by the test CA given with --ca.
    let idp = Idp::start_https(
        vec![(200, token_json(TOKEN))],
        ca.leaf(&["127.0.0.1"], false),
    );
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args(flow)
        .arg(idp.url("/private/token"))
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .json()
        .run();
    r.assert_exit(0).assert_no_secret(&secrets);
    let got = idp.received();
    assert_eq!(got.len(), 1, "{}", r.dump());
    assert_eq!(got[0].path, "/private/token");
    assert_eq!(got[0].field("grant_type"), Some("client_credentials"));
    assert_eq!(got[0].field("client_secret"), Some(CLIENT_SECRET));
    let log = one_session(&s);
    assert_eq!(log.auth[0].mechanism, "XOAUTH2");
    assert!(log.auth[0].accepted);

    // --tls off: --ca still trusts the provider.
    let idp = Idp::start_https(
        vec![(200, token_json(TOKEN))],
        ca.leaf(&["127.0.0.1"], false),
    );
    let mut clear = token_script(&ca, &["XOAUTH2"]);
    clear.tls = None;
    clear.auth.as_mut().unwrap().offer_in_clear = true;
    let s = sink(clear);
    let ca_file = dir.write("ca.pem", ca.pem());
    let r = Cmd::send_to_sink(&s, example_eml())
        .to("bob@example.net")
        .timeout("5s")
        .ca(&ca_file)
        .args(["--tls", "off", "--allow-plain-auth"])
        .args(["--auth-user", "alice@example.com"])
        .args(flow)
        .arg(idp.url("/private/token"))
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .json()
        .run();
    r.assert_exit(0).assert_no_secret(&secrets);
    assert_eq!(idp.received().len(), 1, "{}", r.dump());
    assert!(one_session(&s).auth[0].accepted);

    // A provider whose CA is not trusted: no token, no SMTP connection, and the reason.
    let other = Ca::new("another private CA");
    let idp = Idp::start_https(
        vec![(200, token_json(TOKEN))],
        other.leaf(&["127.0.0.1"], false),
    );
    let s = sink(token_script(&ca, &["XOAUTH2"]));
    let r = send_to(&s, &dir, &ca)
        .args(flow)
        .arg(idp.url("/private/token"))
        .env("SMTPCHECK_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
        .run();
    r.assert_exit(27).assert_no_secret(&secrets);
    assert!(
        r.stderr.contains("cannot get an OAuth token")
            && r.stderr.contains("invalid peer certificate")
            && r.stderr.contains("--ca FILE"),
        "{}",
        r.stderr
    );
    assert!(idp.received().is_empty(), "the form was sent: {}", r.dump());
    no_connection(&s, &r);
}

// ---------------------------------------------------------------------------------------------
// SCRAM-SHA-256
// ---------------------------------------------------------------------------------------------

const SCRAM_PASSWORD: &str = "Scr4m-Pa55word!";

fn scram_script(ca: &Ca, end: ScramFinal) -> Script {
    let mut auth = SinkAuth::new("alice@example.com", SCRAM_PASSWORD);
    auth.mechanisms = vec!["PLAIN".into(), "CRAM-MD5".into(), "SCRAM-SHA-256".into()];
    auth.scram_final = end;
    Script {
        tls: Some(ca.leaf(&["127.0.0.1"], false)),
        auth: Some(auth),
        ..Script::default()
    }
}

#[test]
fn scram_sha_256_is_preferred_and_verifies_the_server() {
    let dir = TempDir::new("scram");
    let ca = Ca::new("smtpcheck test CA");
    let s = sink(scram_script(&ca, ScramFinal::Signature));
    let r = send_to(&s, &dir, &ca)
        .env("SMTPCHECK_PASSWORD", SCRAM_PASSWORD)
        .json()
        .run();
    r.assert_exit(0)
        .assert_no_secret(&secret_forms("alice@example.com", SCRAM_PASSWORD));
    let log = one_session(&s);
    assert_eq!(log.auth[0].mechanism, "SCRAM-SHA-256");
    assert!(log.auth[0].accepted);
    // The exchange byte for byte: client-first, client-final with the proof, empty response.
    assert_eq!(log.auth_responses.len(), 3, "{:?}", log.auth_responses);
    let first = String::from_utf8(log.auth_responses[0].clone()).unwrap();
    let nonce = first.strip_prefix("n,,n=alice@example.com,r=").unwrap();
    assert!(nonce.len() >= 24 && !nonce.contains(','), "{first}");
    let last = String::from_utf8(log.auth_responses[1].clone()).unwrap();
    assert!(last.starts_with(&format!("c=biws,r={nonce}")), "{last}");
    let proof = last.rsplit_once(",p=").unwrap().1;
    assert_eq!(log.auth_responses[2], b"");
    r.assert_no_secret(&[proof.to_string(), B64.encode(&last)]);
    let sent = auth_sent(&r.json_value());
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0],
        format!("AUTH SCRAM-SHA-256 <client-first {first}, base64>")
    );
    assert_eq!(sent[1], "<redacted SCRAM proof for user alice@example.com>");
    assert!(sent[2].contains("signature is verified"), "{sent:?}");
}

#[test]
fn a_scram_server_that_cannot_prove_the_password_is_a_failure() {
    let dir = TempDir::new("scram-bad");
    let ca = Ca::new("smtpcheck test CA");
    for (end, says) in [
        (
            ScramFinal::WrongSignature,
            "cannot prove it knows the password",
        ),
        (
            ScramFinal::NoSignature,
            "did not prove it knows the password",
        ),
    ] {
        let s = sink(scram_script(&ca, end));
        let r = send_to(&s, &dir, &ca)
            .args(["--auth-mech", "scram-sha-256"])
            .env("SMTPCHECK_PASSWORD", SCRAM_PASSWORD)
            .json()
            .run();
        r.assert_exit(7)
            .assert_no_secret(&secret_forms("alice@example.com", SCRAM_PASSWORD));
        let reason = r.json_value()["failure"]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains(says), "{end:?}: {reason}");
        let log = one_session(&s);
        assert!(
            log.messages.is_empty(),
            "no message after an unproven login"
        );
        assert!(commands_with_verb(&log, "MAIL").is_empty());
    }
    // A wrong password: the server refuses the proof.
    let s = sink(scram_script(&ca, ScramFinal::Signature));
    let r = send_to(&s, &dir, &ca)
        .args(["--auth-mech", "scram-sha-256"])
        .env("SMTPCHECK_PASSWORD", "not-the-password")
        .json()
        .run();
    r.assert_exit(7);
    assert_eq!(r.json_value()["failure"]["code"], 535);
}

// ---------------------------------------------------------------------------------------------
// Client certificates and AUTH EXTERNAL
// ---------------------------------------------------------------------------------------------

fn external_script(ca: &Ca, mechanisms: &[&str]) -> Script {
    let mut auth = SinkAuth::new("reports.example.com", "unused-password");
    auth.mechanisms = mechanisms.iter().map(|s| s.to_string()).collect();
    Script {
        tls: Some(ca.leaf_asking_for_client_cert(&["127.0.0.1"])),
        auth: Some(auth),
        ..Script::default()
    }
}

/// The base64 lines of a PEM key (none of them may be shown).
fn key_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

#[test]
fn client_certificate_and_auth_external() {
    let dir = TempDir::new("external");
    let ca = Ca::new("smtpcheck test CA");
    let (cert, key) = ca.client_cert("reports.example.com");
    let cert_file = dir.write("client.pem", &cert);
    let key_file = dir.write("client.key", &key);
    let ca_file = dir.write("ca.pem", ca.pem());
    let base = |s: &Sink| {
        Cmd::send_to_sink(s, example_eml())
            .to("bob@example.net")
            .timeout("5s")
            .ca(&ca_file)
            .args(["--tls", "required", "--auth-user", "reports.example.com"])
            .arg("--tls-cert")
            .arg(&cert_file)
            .arg("--tls-key")
            .arg(&key_file)
    };
    // Forced, and chosen by itself when it is what the server offers and no password is at hand.
    for forced in [true, false] {
        let s = sink(external_script(&ca, &["EXTERNAL"]));
        let mut cmd = base(&s).json();
        if forced {
            cmd = cmd.args(["--auth-mech", "external"]);
        }
        let r = cmd.run();
        r.assert_exit(0).assert_no_secret(&key_lines(&key));
        let log = one_session(&s);
        assert!(
            log.client_certificate.is_some(),
            "no client certificate presented"
        );
        assert_eq!(log.auth[0].mechanism, "EXTERNAL");
        assert!(log.auth[0].accepted);
        assert_eq!(commands_with_verb(&log, "AUTH"), ["AUTH EXTERNAL ="]);
        let report = r.json_value();
        assert_eq!(
            report["attempts"][0]["tls"]["client_certificate"],
            "CN=reports.example.com"
        );
        r.report();
    }
    // The text report names the subject offered.
    let s = sink(external_script(&ca, &["EXTERNAL"]));
    let r = base(&s).run();
    r.assert_exit(0).assert_no_secret(&key_lines(&key));
    assert!(
        r.stdout.contains("client cert: CN=reports.example.com"),
        "{}",
        r.stdout
    );
}

#[test]
fn client_certificate_problems_are_bad_input() {
    let dir = TempDir::new("external-bad");
    let ca = Ca::new("smtpcheck test CA");
    let (cert, _) = ca.client_cert("reports.example.com");
    let (_, other_key) = ca.client_cert("other.example.com");
    let cert_file = dir.write("client.pem", &cert);
    let wrong_key = dir.write("other.key", &other_key);
    let s = sink(external_script(&ca, &["EXTERNAL"]));
    let r = Cmd::send_to_sink(&s, example_eml())
        .to("bob@example.net")
        .args(["--tls", "required", "--auth-user", "reports.example.com"])
        .arg("--tls-cert")
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&wrong_key)
        .run();
    r.assert_exit(3).assert_no_secret(&key_lines(&other_key));
    assert!(
        r.stderr.contains("does not belong to the certificate"),
        "{}",
        r.stderr
    );
    let r = Cmd::send_to_sink(&s, example_eml())
        .to("bob@example.net")
        .args([
            "--tls",
            "required",
            "--auth-user",
            "u",
            "--auth-mech",
            "external",
        ])
        .run();
    r.assert_exit(3);
    assert!(
        r.stderr.contains("--tls-cert FILE and --tls-key FILE"),
        "{}",
        r.stderr
    );
    no_connection(&s, &r);
}

/// The AUTH gate names the token, not a password, when it withholds one: over clear text, and
/// to a server whose certificate did not verify. Nothing reaches the server.
#[test]
fn withheld_token_is_called_a_token() {
    let ca = Ca::new("smtpcheck test CA");
    let mut clear = token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]);
    clear.tls = None;
    let cases = [
        (
            clear,
            "off",
            "refusing to send the OAuth token of alice@example.com over an unencrypted connection (nothing was sent)",
        ),
        (
            token_script(&ca, &["XOAUTH2", "OAUTHBEARER"]),
            "opportunistic",
            "refusing to send the OAuth token of alice@example.com: the TLS certificate was not verified",
        ),
    ];
    for (script, tls, want) in cases {
        let s = sink(script);
        // No --ca: the sink's certificate is not trusted.
        let r = Cmd::send_to_sink(&s, example_eml())
            .to("bob@example.net")
            .timeout("5s")
            .args(["--tls", tls, "--auth-user", "alice@example.com"])
            .env("SMTPCHECK_OAUTH2_TOKEN", TOKEN)
            .json()
            .run();
        r.assert_exit(7)
            .assert_no_secret(&token_forms("alice@example.com", TOKEN));
        let report = r.json_value();
        let reason = report["failure"]["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with(want), "{reason}");
        assert!(!reason.contains("password"), "{reason}");
        assert_eq!(report["failure"]["kind"], "withheld", "{}", r.dump());
        let log = one_session(&s);
        assert!(
            log.auth.is_empty(),
            "AUTH reached the server: {:?}",
            log.auth
        );
        assert!(log.auth_responses.is_empty());
    }
}
