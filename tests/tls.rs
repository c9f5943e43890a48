//! TLS (STARTTLS and implicit) and AUTH, through the built binary, against the loopback sink with a
//! CA and leaf certificates generated here with rcgen. Every AUTH test checks that the password
//! appears nowhere in stdout, stderr or the JSON report.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::Value;
use smtpcheck_sink::{Action, AuthLog, Script, SessionLog, Sink, SinkAuth, SinkTls};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smtpcheck");
const GUARD: Duration = Duration::from_secs(30);
const PASSWORD: &str = "S3cr3t-Pa55word!";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A directory of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("smtpcheck-tls-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A test CA.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), valid now unless `expired`.
    fn leaf(&self, names: &[&str], expired: bool) -> SinkTls {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        SinkTls::from_pem(&cert.pem(), &key.serialize_pem()).unwrap()
    }
}

/// What one run of the binary produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn exit(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "expected exit {expected}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON: {e}\n{}\n{}", self.stdout, self.stderr))
    }

    /// Asserts that the password (and its base64 forms) appear nowhere in the output.
    #[track_caller]
    fn no_secret(&self) -> &Run {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let forms = [
            PASSWORD.to_string(),
            b64.encode(PASSWORD),
            b64.encode(format!("\0alice\0{PASSWORD}")),
        ];
        for form in &forms {
            assert!(
                !self.stdout.contains(form.as_str()),
                "secret {form} in stdout:\n{}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(form.as_str()),
                "secret {form} in stderr:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// `smtpcheck send` of a small message to the sink, with `extra` flags and environment.
struct SendCmd {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl SendCmd {
    fn to(sink: &Sink, dir: &TempDir) -> SendCmd {
        let eml = dir.write(
            "message.eml",
            "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: tls test\r\n\
             Date: Sat, 01 Mar 2025 12:00:00 +0000\r\nMessage-ID: <tls-test@example.com>\r\n\r\nHello over TLS.\r\n",
        );
        let args = [
            "send",
            "--eml",
            &eml.display().to_string(),
            "--smart-host",
            &sink.addr().to_string(),
            "--helo",
            "client.test",
            "--timeout",
            "10s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        SendCmd {
            args,
            env: Vec::new(),
        }
    }

    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> SendCmd {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    fn args(self, list: &[&str]) -> SendCmd {
        list.iter().fold(self, |s, a| s.arg(a))
    }

    fn ca(self, path: &Path) -> SendCmd {
        self.arg("--ca").arg(path)
    }

    fn env(mut self, k: &str, v: &str) -> SendCmd {
        self.env.push((k.into(), v.into()));
        self
    }

    fn json(self) -> SendCmd {
        self.args(&["--format", "json"])
    }

    fn run(&self) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .env_remove("SMTPCHECK_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start smtpcheck");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let (out, err) = (read(Box::new(out)), read(Box::new(err)));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > GUARD {
                let _ = child.kill();
                let _ = child.wait();
                panic!("smtpcheck {:?} did not finish within {GUARD:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code: status.code(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }
}

fn sink(script: Script) -> Sink {
    Sink::start(script).expect("cannot start the sink")
}

fn tls_script(tls: SinkTls) -> Script {
    Script {
        tls: Some(tls),
        ..Script::default()
    }
}

/// The one session the sink saw.
#[track_caller]
fn session(sink: &Sink) -> SessionLog {
    let sessions = sink.wait_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions.into_iter().next().unwrap()
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
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .ca(&ca_file)
        .json()
        .run();
    r.exit(0);
    let log = session(&s);
    assert!(log.tls);
    assert_eq!(
        log.verbs(),
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    assert_eq!(log.messages.len(), 1);

    let report = r.json();
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
    assert_eq!(tls["verdict"], "trusted");
    assert_eq!(tls["reason"], Value::Null);
    assert_eq!(tls["name_matched"], true);
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
    let caps = &report["attempts"][0]["capabilities"];
    assert_eq!(
        caps["starttls"], false,
        "capabilities must come from the EHLO over TLS"
    );
    assert!(warnings(&report).is_empty(), "{:?}", warnings(&report));

    // Text: the TLS facts in the live transcript and in the summary.
    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .ca(&ca_file)
        .run();
    r.exit(0);
    assert!(
        r.stdout.contains("*  TLS 1.")
            && r.stdout
                .contains("certificate CN=mail.test issued by CN=smtpcheck test CA, verified: yes"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  TLS:         TLS 1."), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  verified:    yes (name 127.0.0.1 matches)"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_issuer_opportunistic_delivers_with_a_warning() {
    let dir = TempDir::new("unknown-opp");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir).json().run();
    r.exit(0);
    let report = r.json();
    let tls = tls_of(&report);
    assert_eq!(tls["mode"], "opportunistic");
    assert_eq!(tls["verified"], false);
    assert_eq!(tls["verdict"], "unknown-issuer");
    assert!(tls["reason"].as_str().unwrap().contains("unknown issuer"));
    assert_eq!(tls["name_matched"], true);
    let w = warnings(&report);
    assert!(
        w.iter()
            .any(|w| w.contains("not verified") && w.contains("unknown issuer")),
        "{w:?}"
    );
    assert_eq!(session(&s).messages.len(), 1);

    let s = sink(tls_script(ca.leaf(&["mail.test", "127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir).run();
    r.exit(0);
    assert!(r.stdout.contains("verified: no (unknown issuer)"));
    assert!(r
        .stdout
        .contains("Warning: TLS certificate of 127.0.0.1 not verified"));
}

#[test]
fn unknown_issuer_required_exits_6_after_quit_over_tls() {
    let dir = TempDir::new("unknown-req");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .json()
        .run();
    r.exit(6);
    let report = r.json();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown issuer"));
    assert_eq!(tls_of(&report)["verdict"], "unknown-issuer");
    let log = session(&s);
    assert!(log.tls);
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "QUIT"]);
    assert!(log.messages.is_empty());
}

#[test]
fn unknown_issuer_required_insecure_delivers() {
    let dir = TempDir::new("unknown-insecure");
    let ca = Ca::new("Unknown CA");
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required", "--insecure"])
        .json()
        .run();
    r.exit(0);
    let report = r.json();
    assert_eq!(tls_of(&report)["verified"], false);
    assert!(warnings(&report).iter().any(|w| w.contains("--insecure")));
    assert_eq!(session(&s).messages.len(), 1);
}

#[test]
fn wrong_name_is_reported_as_a_name_mismatch() {
    let dir = TempDir::new("wrong-name");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let tls = ca.leaf(&["mx.other.test"], false);
    let s = sink(tls_script(tls.clone()));
    let r = SendCmd::to(&s, &dir).ca(&ca_file).json().run();
    r.exit(0);
    let report = r.json();
    let t = tls_of(&report);
    assert_eq!(t["verdict"], "name-mismatch");
    assert_eq!(t["name_matched"], false);
    assert_eq!(t["verified"], false);
    assert_eq!(
        t["reason"],
        "certificate not valid for 127.0.0.1: it is for mx.other.test"
    );

    // Required: exit 6.
    let s = sink(tls_script(tls.clone()));
    SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .ca(&ca_file)
        .run()
        .exit(6);

    // --tls-name checks the name the certificate is for: verified.
    let s = sink(tls_script(tls));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required", "--tls-name", "mx.other.test"])
        .ca(&ca_file)
        .json()
        .run();
    r.exit(0);
    let report = r.json();
    assert_eq!(tls_of(&report)["verdict"], "trusted");
    assert_eq!(tls_of(&report)["name"], "mx.other.test");
}

#[test]
fn expired_certificate_has_negative_days_left() {
    let dir = TempDir::new("expired");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let tls = ca.leaf(&["127.0.0.1"], true);
    let s = sink(tls_script(tls.clone()));
    let r = SendCmd::to(&s, &dir).ca(&ca_file).json().run();
    r.exit(0);
    let report = r.json();
    let t = tls_of(&report);
    assert_eq!(t["verdict"], "expired");
    assert!(t["days_left"].as_i64().unwrap() < -365, "{t}");
    assert_eq!(t["not_after"], "2021-01-01T00:00:00Z");
    assert!(t["reason"]
        .as_str()
        .unwrap()
        .starts_with("certificate expired on 2021-01-01T00:00:00Z ("));

    let s = sink(tls_script(tls));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .ca(&ca_file)
        .run();
    r.exit(6);
    assert!(r.stdout.contains("(expired "), "{}", r.stdout);
}

#[test]
fn starttls_not_offered() {
    let dir = TempDir::new("not-offered");
    // Required: exit 6, nothing but EHLO and QUIT sent.
    let s = sink(Script::default());
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .json()
        .run();
    r.exit(6);
    let report = r.json();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not offer STARTTLS"));
    assert_eq!(session(&s).verbs(), ["EHLO", "QUIT"]);

    // Opportunistic: delivered in clear, with a note.
    let s = sink(Script::default());
    let r = SendCmd::to(&s, &dir).json().run();
    r.exit(0);
    let report = r.json();
    assert_eq!(tls_of(&report), &Value::Null);
    assert!(warnings(&report)
        .iter()
        .any(|w| w.contains("does not offer STARTTLS") && w.contains("unencrypted")));
    assert_eq!(session(&s).messages.len(), 1);
}

#[test]
fn starttls_refused_with_454() {
    let dir = TempDir::new("refused");
    let ca = Ca::new("smtpcheck test CA");
    let mut tls = ca.leaf(&["127.0.0.1"], false);
    tls.starttls = Action::reply("454 4.7.0 TLS not available due to local problem");
    let s = sink(tls_script(tls.clone()));
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "required"])
        .json()
        .run();
    r.exit(6);
    let report = r.json();
    assert_eq!(report["failure"]["stage"], "starttls");
    assert_eq!(report["failure"]["code"], 454);
    let log = session(&s);
    assert!(!log.tls);
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "QUIT"]);

    // Opportunistic goes on in clear, with a warning.
    let s = sink(tls_script(tls));
    let r = SendCmd::to(&s, &dir).json().run();
    r.exit(0);
    assert!(warnings(&r.json())
        .iter()
        .any(|w| w.contains("refused STARTTLS")));
}

#[test]
fn failed_handshake_exits_6_in_every_mode() {
    let dir = TempDir::new("handshake");
    // STARTTLS offered and answered with 220, but the server then goes on in plain text.
    let script = || Script {
        ehlo: Action::lines(250, &["sink.test", "STARTTLS"]),
        unknown: Action::reply("220 2.0.0 Ready to start TLS"),
        ..Script::default()
    };
    for mode in ["opportunistic", "required"] {
        let s = sink(script());
        let r = SendCmd::to(&s, &dir).args(&["--tls", mode]).json().run();
        r.exit(6);
        let report = r.json();
        assert_eq!(report["failure"]["stage"], "starttls");
        assert!(report["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("TLS handshake failed"));
        assert_eq!(tls_of(&report), &Value::Null);
        let steps = report["attempts"][0]["steps"].as_array().unwrap();
        let last = steps.last().unwrap();
        assert_eq!(last["stage"], "starttls");
        assert_eq!(last["ok"], false);
        // No QUIT: the connection is unusable after a failed handshake.
        assert!(!session(&s).verbs().iter().any(|v| v == "QUIT"));
    }
}

#[test]
fn bytes_pipelined_after_starttls_220_are_a_violation() {
    let dir = TempDir::new("pipelined");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let mut tls = ca.leaf(&["127.0.0.1"], false);
    tls.pipeline_after_starttls = Some(b"250-injected\r\n250 AUTH PLAIN\r\n".to_vec());
    let s = sink(tls_script(tls));
    let r = SendCmd::to(&s, &dir).ca(&ca_file).json().run();
    r.exit(6);
    let report = r.json();
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("CVE-2011-0411"), "{reason}");
    assert!(reason.contains("250-injected"), "{reason}");
    assert_eq!(report["failure"]["kind"], "protocol");
    assert_eq!(tls_of(&report), &Value::Null);
    let log = session(&s);
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
    let r = SendCmd::to(&s, &dir)
        .args(&["--tls", "implicit"])
        .ca(&ca_file)
        .json()
        .run();
    r.exit(0);
    let report = r.json();
    let t = tls_of(&report);
    assert_eq!(t["mode"], "implicit");
    assert_eq!(t["verified"], true);
    let steps = report["attempts"][0]["steps"].as_array().unwrap();
    let stages: Vec<&str> = steps.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(&stages[..4], ["connect", "starttls", "greeting", "ehlo"]);
    let log = session(&s);
    assert!(log.tls);
    assert_eq!(log.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);

    // Without the CA: exit 6, after the greeting, with QUIT over TLS.
    let s = sink(tls_script(tls));
    SendCmd::to(&s, &dir)
        .args(&["--tls", "implicit"])
        .run()
        .exit(6);
    assert_eq!(session(&s).verbs(), ["QUIT"]);
}

#[test]
fn bad_ca_file_is_bad_input() {
    let dir = TempDir::new("bad-ca");
    let s = sink(Script::default());
    let missing = dir.0.join("no-such-ca.pem");
    let r = SendCmd::to(&s, &dir).ca(&missing).run();
    r.exit(3);
    assert!(r.stderr.contains("no-such-ca.pem"), "{}", r.stderr);
    let not_pem = dir.write("junk.pem", "not a certificate");
    SendCmd::to(&s, &dir).ca(&not_pem).run().exit(3);
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
    let send = SendCmd::to(&s, &dir)
        .args(&[
            "--tls",
            "required",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .ca(&ca_file);
    let r = send.arg("--format").arg("json").run();
    r.exit(0).no_secret();
    let log = session(&s);
    assert_eq!(log.auth, accepted("PLAIN"));
    assert_eq!(log.messages.len(), 1);
    let report = r.json();
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
    let r = SendCmd::to(&s, &dir)
        .args(&[
            "--tls",
            "required",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .ca(&ca_file)
        .run();
    r.exit(0).no_secret();
    assert!(r
        .stdout
        .contains("-> AUTH PLAIN <redacted credentials for user alice>"));
}

#[test]
fn auth_login_with_password_from_environment() {
    let dir = TempDir::new("auth-login");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(auth_script(&ca, &["PLAIN", "LOGIN", "CRAM-MD5"]));
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice", "--auth-mech", "login"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.exit(0).no_secret();
    assert_eq!(session(&s).auth, accepted("LOGIN"));
    let report = r.json();
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
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .run();
    r.exit(0).no_secret();
    assert_eq!(session(&s).auth, accepted("CRAM-MD5"));
    assert!(r
        .stdout
        .contains("-> <redacted CRAM-MD5 response for user alice>"));
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
        let r = SendCmd::to(&s, &dir)
            .args(&["--auth-user", "alice", "--auth-mech", mech])
            .ca(&ca_file)
            .env("SMTPCHECK_PASSWORD", PASSWORD)
            .json()
            .run();
        r.exit(7).no_secret();
        let report = r.json();
        assert_eq!(report["failure"]["stage"], "auth");
        assert_eq!(report["failure"]["code"], 535);
        assert_eq!(report["failure"]["enhanced"], "5.7.8");
        let log = session(&s);
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
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice", "--auth-password-file"])
        .arg(&pw)
        .json()
        .run();
    r.exit(7).no_secret();
    let report = r.json();
    assert_eq!(report["failure"]["stage"], "auth");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("--allow-plain-auth"));
    let log = session(&s);
    assert!(log.auth.is_empty());
    assert!(
        !log.verbs().iter().any(|v| v == "AUTH"),
        "no AUTH command may reach the server: {:?}",
        log.commands
    );

    // With --allow-plain-auth it logs in (and the password still appears nowhere).
    let s = sink(clear());
    let r = SendCmd::to(&s, &dir)
        .args(&[
            "--tls",
            "off",
            "--allow-plain-auth",
            "--auth-user",
            "alice",
            "--auth-password-file",
        ])
        .arg(&pw)
        .run();
    r.exit(0).no_secret();
    assert_eq!(session(&s).auth, accepted("CRAM-MD5"));
}

#[test]
fn auth_not_offered_exits_7() {
    let dir = TempDir::new("auth-none");
    let ca = Ca::new("smtpcheck test CA");
    let ca_file = dir.write("ca.pem", ca.pem());
    let s = sink(tls_script(ca.leaf(&["127.0.0.1"], false)));
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice"])
        .ca(&ca_file)
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.exit(7).no_secret();
    let report = r.json();
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not offer AUTH"));
    assert!(session(&s).messages.is_empty());
}

#[test]
fn auth_over_unverified_tls_is_refused() {
    let dir = TempDir::new("auth-unverified");
    let ca = Ca::new("Unknown CA");
    let s = sink(auth_script(&ca, &["PLAIN"]));
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice"])
        .env("SMTPCHECK_PASSWORD", PASSWORD)
        .json()
        .run();
    r.exit(7).no_secret();
    assert!(r.json()["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("not verified"));
    assert!(session(&s).auth.is_empty());
}

#[test]
fn password_problems_stop_before_any_connection() {
    let dir = TempDir::new("auth-nopw");
    let s = sink(Script::default());
    let missing = dir.0.join("no-such-password-file");
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice", "--auth-password-file"])
        .arg(&missing)
        .run();
    r.exit(3);
    assert!(r.stderr.contains("no-such-password-file"), "{}", r.stderr);
    // No file, no environment, stdin not a terminal: no password.
    let r = SendCmd::to(&s, &dir)
        .args(&["--auth-user", "alice"])
        .json()
        .run();
    r.exit(3);
    assert!(r.stderr.contains("SMTPCHECK_PASSWORD"), "{}", r.stderr);
    assert_eq!(r.json()["failure"]["stage"], "input");
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.sessions().is_empty());
}
