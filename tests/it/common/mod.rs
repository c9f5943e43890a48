//! Shared helpers for the integration tests: run the built `smtpcheck` binary under a time guard,
//! write message files into a per-test temporary directory, parse the JSON report into strict
//! test-side structs, and check what the loopback sink received.
//!
//! Use from a test module with `use crate::common::*;`. The test DNS server is [`dns`], the test
//! certificates [`certs`].
// The Json* structs mirror the whole schema, so some fields are only there to be checked.
#![allow(dead_code)]

pub mod certs;
pub mod sender_json;
pub use sender_json::JsonSenderReport;
pub mod dns;

use serde::Deserialize;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use smtpcheck_sink::{
    unstuff, Action, AuthLog, ScramFinal, Script, SessionLog, Sink, SinkAuth, SinkTls,
};

/// `true` under CI (`CI` set, not empty and not `false`): a tool or server a test needs that is
/// missing then fails the test instead of skipping it.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_smtpcheck");

/// How long any one run of the binary may take before the guard kills it and fails the test.
pub const DEFAULT_GUARD: Duration = Duration::from_secs(30);

/// How long to wait for the sink to record the sessions of a finished run.
pub const SINK_WAIT: Duration = Duration::from_secs(5);

/// The example message shipped with the crate.
pub fn example_eml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/report.eml")
}

// ---------------------------------------------------------------------------------------------
// Temporary files
// ---------------------------------------------------------------------------------------------

/// A directory of its own for one test under `std::env::temp_dir()`, removed when dropped (kept
/// when the test is panicking, so the files can be inspected).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name contains `label`, the process id and a counter.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path =
            std::env::temp_dir().join(format!("smtpcheck-test-{}-{n}-{safe}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// A command line for the binary, built up and then run under a time guard.
#[derive(Debug, Clone)]
pub struct Cmd {
    args: Vec<OsString>,
    guard: Duration,
    /// Environment variables set for the run (after the caller's `SMTPCHECK_*` are removed).
    envs: Vec<(OsString, OsString)>,
    /// Bytes given on stdin (none: stdin is /dev/null).
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// `smtpcheck` with no arguments yet.
    pub fn new() -> Cmd {
        Cmd {
            args: Vec::new(),
            guard: DEFAULT_GUARD,
            envs: Vec::new(),
            stdin: None,
        }
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// Gives the run these bytes on stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// `smtpcheck send --eml EML --smart-host RELAY`.
    pub fn send(relay: impl ToString, eml: impl AsRef<Path>) -> Cmd {
        Cmd::new()
            .arg("send")
            .arg("--eml")
            .arg(eml.as_ref())
            .arg("--smart-host")
            .arg(relay.to_string())
    }

    /// `smtpcheck send --eml EML --smart-host SINK --helo test.example`.
    pub fn send_to_sink(sink: &Sink, eml: impl AsRef<Path>) -> Cmd {
        Cmd::send(sink.addr(), eml).helo("test.example")
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `--to ADDRESS`.
    pub fn to(self, address: &str) -> Cmd {
        self.arg("--to").arg(address)
    }

    /// `--from ADDRESS` (an empty string for the null sender).
    pub fn from(self, address: &str) -> Cmd {
        self.arg("--from").arg(address)
    }

    /// `--helo NAME`.
    pub fn helo(self, name: &str) -> Cmd {
        self.arg("--helo").arg(name)
    }

    /// `--timeout DURATION`.
    pub fn timeout(self, d: &str) -> Cmd {
        self.arg("--timeout").arg(d)
    }

    /// `--ca PATH` (the CA file that verifies the server's certificate).
    pub fn ca(self, path: impl AsRef<Path>) -> Cmd {
        self.arg("--ca").arg(path.as_ref())
    }

    /// `--format json`.
    pub fn json(self) -> Cmd {
        self.arg("--format").arg("json")
    }

    /// Sets how long the run may take before it is killed and the test fails.
    pub fn guard(mut self, d: Duration) -> Cmd {
        self.guard = d;
        self
    }

    /// Runs the binary to completion (or until the guard kills it, which fails the test).
    ///
    /// The child gets no stdin (unless [`Cmd::stdin`] gave some) and none of the caller's
    /// `SMTPCHECK_*` variables (such as the AUTH password) nor `NO_COLOR`/`CLICOLOR_FORCE`, so a
    /// developer's environment cannot change what a test sees; [`Cmd::env`] sets variables.
    pub fn run(&self) -> Run {
        let started = Instant::now();
        let mut command = Command::new(BIN);
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("SMTPCHECK_") || n == "NO_COLOR" || n == "CLICOLOR_FORCE" {
                command.env_remove(name);
            }
        }
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        if let (Some(bytes), Some(mut input)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                // The program may stop reading early (a size limit): a broken pipe is fine.
                let _ = input.write_all(&bytes);
            });
        }
        // `spawn` returns only once the program has been executed, so from here on /proc shows
        // the binary's own memory, not the test process's.
        let pid = child.id();
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let deadline = started + self.guard;
        let mut peak_rss_kib: Option<u64> = None;
        let status = loop {
            if let Some(hwm) = vm_hwm_kib(pid) {
                peak_rss_kib = Some(peak_rss_kib.map_or(hwm, |p| p.max(hwm)));
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("waiting for {BIN} (pid {pid}) failed: {e}"),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out.join().unwrap_or_default();
                let stderr = err.join().unwrap_or_default();
                panic!(
                    "smtpcheck {:?} did not finish within {:?}; killed.\n--- stdout\n{}\n--- stderr\n{}",
                    self.args,
                    self.guard,
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(POLL);
        };
        let elapsed = started.elapsed();
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Run {
            args: self.args.clone(),
            code: status.code(),
            stdout: String::from_utf8(stdout).expect("stdout is not UTF-8"),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed,
            peak_rss_kib,
        }
    }
}

impl Default for Cmd {
    fn default() -> Self {
        Cmd::new()
    }
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// How often a running child is checked (exit, memory).
const POLL: Duration = Duration::from_millis(1);

/// The peak resident set size (`VmHWM`, KiB) of a running process, on Linux; `None` elsewhere or
/// once it has exited. Unlike `ru_maxrss` from `wait4`, this belongs to the program's own address
/// space only: Linux carries the parent's high-water mark over into `ru_maxrss` at `exec`.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// The arguments it was run with.
    pub args: Vec<OsString>,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// The child's peak resident set size in KiB, sampled from `/proc` every millisecond while it
    /// ran (Linux); `None` when no sample was taken (not Linux, or it exited before the first).
    pub peak_rss_kib: Option<u64>,
}

impl Run {
    /// Asserts the exit code, showing stdout and stderr when it differs.
    #[track_caller]
    pub fn assert_exit(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "smtpcheck {:?}: expected exit {expected}, got {:?}\n{}",
            self.args,
            self.code,
            self.dump()
        );
        self
    }

    /// stdout and stderr, for assertion messages.
    pub fn dump(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// stdout as one JSON document (fails the test if it is anything else).
    #[track_caller]
    pub fn json_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON document: {e}\n{}",
                self.dump()
            )
        })
    }

    /// stdout parsed into the strict test-side report (unknown fields are errors).
    #[track_caller]
    pub fn report(&self) -> JsonReport {
        let report: JsonReport = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout does not match the JSON report schema: {e}\n{}",
                self.dump()
            )
        });
        assert_required_keys(&self.json_value());
        assert_consistent(&report, self);
        report
    }

    /// Asserts that none of `secrets` (see [`secret_forms`]) appears in stdout or stderr.
    #[track_caller]
    pub fn assert_no_secret(&self, secrets: &[String]) -> &Run {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret.as_str()),
                "secret {secret:?} in stdout of smtpcheck {:?}\n{}",
                self.args,
                self.dump()
            );
            assert!(
                !self.stderr.contains(secret.as_str()),
                "secret {secret:?} in stderr of smtpcheck {:?}\n{}",
                self.args,
                self.dump()
            );
        }
        self
    }

    /// stdout parsed into the strict test-side report of `smtpcheck mx` (unknown fields are
    /// errors).
    #[track_caller]
    pub fn mx_report(&self) -> JsonMxReport {
        let report: JsonMxReport = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout does not match the mx JSON report schema: {e}\n{}",
                self.dump()
            )
        });
        assert_required_mx_keys(&self.json_value());
        assert_mx_consistent(&report, self);
        report
    }

    /// The last line of stdout.
    #[track_caller]
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("stdout is empty\n{}", self.dump()))
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON report, test side
// ---------------------------------------------------------------------------------------------

/// The whole JSON report (schema_version 1). Every struct denies unknown fields, so a field added
/// or renamed in the program without updating the tests fails them: when the schema grows, add the
/// field here (and to [`assert_required_keys`] when it is always present).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonReport {
    pub schema_version: u32,
    pub version: String,
    pub outcome: String,
    pub exit_code: u8,
    pub failure: Option<JsonFailure>,
    /// Every distinct failure, with the domain and recipients it concerns.
    pub failures: Vec<JsonFailureGroup>,
    pub message: Option<JsonMessage>,
    pub envelope: Option<JsonEnvelope>,
    /// One per recipient domain (direct mode), or the one smart-host route.
    pub routes: Vec<JsonRoute>,
    pub attempts: Vec<JsonAttempt>,
    pub recipients: Vec<JsonRecipient>,
    pub queued_as: Option<String>,
    pub queue_id: Option<String>,
    pub warnings: Vec<String>,
    /// One per round of the check (`--retry`); absent in builds without retries.
    #[serde(default)]
    pub rounds: Vec<JsonRound>,
    pub elapsed_ms: f64,
    /// `--confirm`: what the IMAP check found; null without it.
    pub arrival: Option<JsonArrival>,
    /// `--check-sender`: the sender report (the `sender` command's shape); null without it.
    pub sender: Option<JsonSenderReport>,
}

/// `arrival` (`send --confirm`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonArrival {
    pub mailbox: String,
    pub found: bool,
    pub folder: Option<String>,
    pub special_use: Option<String>,
    pub after_ms: Option<f64>,
    pub matched_by: String,
    pub watch: Option<String>,
    pub folders: Vec<String>,
    pub authentication_results: Vec<serde_json::Value>,
    pub hops: Vec<JsonHop>,
    pub spam: serde_json::Value,
    pub deleted: bool,
    pub tls: Option<JsonTls>,
    pub error: Option<String>,
    pub notes: Vec<String>,
}

/// One `Received` hop of `arrival.hops`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonHop {
    pub from: Option<String>,
    pub by: Option<String>,
    pub with: Option<String>,
    pub at: Option<String>,
    pub delay_ms: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRoute {
    pub domain: Option<String>,
    pub mode: String,
    pub relay: Option<String>,
    pub mx: Vec<JsonMx>,
    pub note: Option<String>,
    pub attempts: Vec<JsonAttempt>,
    pub outcome: String,
    pub exit_code: u8,
    pub failure: Option<JsonFailure>,
    pub recipients: Vec<JsonRecipient>,
    pub queued_as: Option<String>,
    pub queue_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMx {
    pub preference: u16,
    pub host: String,
    pub addresses: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRound {
    pub round: u32,
    pub outcome: String,
    pub exit_code: u8,
    pub failure: Option<JsonFailure>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFailure {
    pub stage: String,
    pub class: String,
    pub reason: String,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub kind: Option<String>,
    /// The likely cause and what to try next.
    pub hint: JsonHint,
}

/// One entry of `failures`: a failure's fields, its hint, its domain and recipients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFailureGroup {
    pub domain: Option<String>,
    pub stage: String,
    pub class: String,
    pub reason: String,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub kind: Option<String>,
    pub hint: JsonHint,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonHint {
    pub cause: String,
    pub next_step: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMessage {
    pub path: String,
    pub bytes: u64,
    pub message_id: Option<String>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonEnvelope {
    pub from: String,
    pub from_source: String,
    pub recipients: Vec<String>,
    pub recipients_source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAttempt {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub capabilities: Option<JsonCapabilities>,
    /// After STARTTLS: the first EHLO's capabilities (null without an upgrade).
    pub capabilities_before_tls: Option<JsonCapabilities>,
    /// Null when the session stayed in clear text.
    pub tls: Option<JsonTls>,
    pub steps: Vec<JsonStep>,
    /// The name the server greets with (first word after 220).
    pub greeting_name: Option<String>,
    /// The address's PTR names (direct mode only).
    pub ptr: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonTls {
    pub mode: String,
    pub version: String,
    pub cipher_suite: String,
    pub name: String,
    pub subject: Option<String>,
    pub san: Vec<String>,
    pub issuer: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    pub chain_length: usize,
    pub verified: bool,
    pub verdict: String,
    pub reason: Option<String>,
    pub advice: Option<String>,
    pub name_matched: bool,
    pub spki_sha256: Option<String>,
    pub client_certificate: Option<String>,
}

/// The documented `tls.verdict` vocabulary.
pub const VERDICTS: [&str; 14] = [
    "verified",
    "pinned",
    "self-signed",
    "ca-certificate-as-server",
    "unknown-issuer",
    "name-mismatch",
    "expired",
    "not-yet-valid",
    "bad-signature",
    "unsupported-algorithm",
    "revoked",
    "pin-mismatch",
    "invalid-certificate",
    "not-checked",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCapabilities {
    pub keywords: Vec<String>,
    pub size: Option<u64>,
    pub pipelining: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub enhanced_status_codes: bool,
    pub chunking: bool,
    pub auth: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonStep {
    pub stage: String,
    pub sent: Option<String>,
    #[serde(default)]
    pub octets: Option<u64>,
    pub reply: Option<JsonReply>,
    pub elapsed_ms: f64,
    pub ok: bool,
    pub error: Option<String>,
    #[serde(default)]
    pub error_kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JsonReply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRecipient {
    pub address: String,
    /// `delivered`, `refused`, `deferred`, `not-tried` or `rcpt-accepted`.
    pub status: String,
    pub accepted: bool,
    pub reply: Option<JsonReply>,
    pub reason: Option<String>,
}

impl JsonReport {
    /// The only attempt (fails the test when there is not exactly one).
    #[track_caller]
    pub fn attempt(&self) -> &JsonAttempt {
        assert_eq!(self.attempts.len(), 1, "expected one attempt: {self:#?}");
        &self.attempts[0]
    }

    /// The stage names of the only attempt's steps, in order.
    #[track_caller]
    pub fn stages(&self) -> Vec<&str> {
        self.attempt()
            .steps
            .iter()
            .map(|s| s.stage.as_str())
            .collect()
    }

    /// The only attempt's first step at `stage`.
    #[track_caller]
    pub fn step(&self, stage: &str) -> &JsonStep {
        self.attempt()
            .steps
            .iter()
            .find(|s| s.stage == stage)
            .unwrap_or_else(|| panic!("no {stage} step in {:?}", self.stages()))
    }

    /// The only route (fails the test when there is not exactly one).
    #[track_caller]
    pub fn route(&self) -> &JsonRoute {
        assert_eq!(self.routes.len(), 1, "expected one route: {self:#?}");
        &self.routes[0]
    }

    /// The failure (fails the test when there is none).
    #[track_caller]
    pub fn failure(&self) -> &JsonFailure {
        self.failure
            .as_ref()
            .unwrap_or_else(|| panic!("expected a failure: {self:#?}"))
    }
}

/// Invariants of every report: its exit code is the process's, the outcome matches the exit code,
/// there is a failure exactly when not delivered, and every failure carries a non-empty hint.
#[track_caller]
pub fn assert_consistent(report: &JsonReport, run: &Run) {
    assert_eq!(report.schema_version, 1);
    assert_eq!(
        Some(i32::from(report.exit_code)),
        run.code,
        "JSON exit_code differs from the process exit code"
    );
    #[track_caller]
    fn outcome_matches(outcome: &str, exit_code: u8, failure: Option<&JsonFailure>, what: &str) {
        match outcome {
            "delivered" => assert_eq!(exit_code, 0, "{what}: delivered with exit {exit_code}"),
            "partial" => assert_eq!(exit_code, 1, "{what}: partial with exit {exit_code}"),
            "failed" => assert!(exit_code >= 2, "{what}: failed with exit {exit_code}"),
            "probed" => assert!(
                matches!(exit_code, 0 | 1 | 13 | 33),
                "{what}: probed with exit {exit_code}"
            ),
            other => panic!("{what}: unknown outcome {other:?}"),
        }
        assert_eq!(
            failure.is_some(),
            matches!(outcome, "partial" | "failed") || (outcome == "probed" && exit_code != 0),
            "{what}: outcome {outcome} with failure {failure:?}"
        );
        if let Some(f) = failure {
            assert!(
                !f.hint.cause.trim().is_empty() && !f.hint.next_step.trim().is_empty(),
                "{what}: empty hint in {f:?}"
            );
        }
    }
    // `--confirm` turns the 0 of a delivered message into 16, 17 or 18, and
    // `--require-sender-pass` into the sender's 40, 41 or 24 (the outcome stays).
    let smtp_exit = match (&report.arrival, &report.sender, report.exit_code) {
        (Some(_), _, 16..=18) => 0,
        (_, Some(s), code)
            if report.outcome == "delivered" && code == s.exit && matches!(code, 24 | 40 | 41) =>
        {
            0
        }
        (_, _, code) => code,
    };
    outcome_matches(
        &report.outcome,
        smtp_exit,
        report.failure.as_ref(),
        "the report",
    );
    // Every failure is listed, and each recipient's status agrees with `accepted`.
    assert_eq!(
        report.failure.is_some(),
        !report.failures.is_empty(),
        "failure and failures disagree"
    );
    for r in &report.recipients {
        assert_eq!(r.accepted, r.status == "delivered", "{r:?}");
        assert!(
            matches!(
                r.status.as_str(),
                "delivered" | "refused" | "deferred" | "not-tried" | "rcpt-accepted"
            ),
            "{r:?}"
        );
    }
    // The stage of the verdict is the stage of a failed step (when a session got that far).
    if let Some(f) = &report.failure {
        let steps: Vec<&JsonStep> = report.attempts.iter().flat_map(|a| &a.steps).collect();
        if !steps.is_empty() && !matches!(f.stage.as_str(), "dns" | "input" | "usage") {
            assert!(
                steps.iter().any(|s| !s.ok && s.stage == f.stage),
                "no failed {} step for the verdict {f:?}",
                f.stage
            );
        }
    }
    for (i, r) in report.routes.iter().enumerate() {
        outcome_matches(
            &r.outcome,
            r.exit_code,
            r.failure.as_ref(),
            &format!("route {i}"),
        );
    }
    for r in &report.rounds {
        outcome_matches(
            &r.outcome,
            r.exit_code,
            r.failure.as_ref(),
            &format!("round {}", r.round),
        );
    }
}

/// The keys every route of the JSON report has (even when null), in the order it writes them.
pub const ROUTE_KEYS: [&str; 12] = [
    "domain",
    "mode",
    "relay",
    "mx",
    "note",
    "attempts",
    "outcome",
    "exit_code",
    "failure",
    "recipients",
    "queued_as",
    "queue_id",
];

/// The route keys the report also has at the top level (`attempts` to `queued_as`): for a single
/// smart-host route both say the same.
pub const ROUTE_SUMMARY_KEYS: &[&str] = ROUTE_KEYS.split_at(5).1;

/// The keys of a failure (the send report's also have `hint`).
const FAILURE_KEYS: [&str; 6] = ["stage", "class", "reason", "code", "enhanced", "kind"];
/// The keys of an attempt (of the send report, and a probe of the mx report).
const ATTEMPT_KEYS: [&str; 9] = [
    "host",
    "address",
    "port",
    "capabilities",
    "capabilities_before_tls",
    "tls",
    "steps",
    "greeting_name",
    "ptr",
];
/// The keys every step has (`octets` and `error_kind` only when they apply).
const STEP_KEYS: [&str; 6] = ["stage", "sent", "reply", "elapsed_ms", "ok", "error"];
/// The keys of a reply.
const REPLY_KEYS: [&str; 3] = ["code", "enhanced", "lines"];

/// Asserts that the object `v` has every one of `keys`.
#[track_caller]
fn has(v: &serde_json::Value, what: &str, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for k in keys {
        assert!(obj.contains_key(*k), "{what} lacks the key {k:?}: {v}");
    }
}

/// [`has`] for each of the attempts `attempts` and their steps and replies.
#[track_caller]
fn attempts_have_keys<'a>(attempts: impl Iterator<Item = &'a serde_json::Value>) {
    for a in attempts {
        has(a, "an attempt", &ATTEMPT_KEYS);
        for s in a["steps"].as_array().into_iter().flatten() {
            has(s, "a step", &STEP_KEYS);
            if !s["reply"].is_null() {
                has(&s["reply"], "a reply", &REPLY_KEYS);
            }
        }
    }
}

/// Checks that keys which must always be present (even when null) are there: serde accepts a
/// missing `Option` field as `None`, the schema does not.
#[track_caller]
pub fn assert_required_keys(v: &serde_json::Value) {
    has(
        v,
        "the report",
        &[
            "schema_version",
            "version",
            "outcome",
            "exit_code",
            "failure",
            "failures",
            "message",
            "envelope",
            "routes",
            "attempts",
            "recipients",
            "queued_as",
            "queue_id",
            "warnings",
            "elapsed_ms",
            "sender",
        ],
    );
    if !v["failure"].is_null() {
        has(&v["failure"], "failure", &FAILURE_KEYS);
        has(&v["failure"], "failure", &["hint"]);
        has(
            &v["failure"]["hint"],
            "failure.hint",
            &["cause", "next_step"],
        );
    }
    if !v["message"].is_null() {
        has(
            &v["message"],
            "message",
            &["path", "bytes", "message_id", "subject"],
        );
    }
    for r in v["routes"].as_array().into_iter().flatten() {
        has(r, "a route", &ROUTE_KEYS);
        if !r["failure"].is_null() {
            has(&r["failure"], "a route's failure", &FAILURE_KEYS);
        }
    }
    let attempts = v["attempts"]
        .as_array()
        .into_iter()
        .chain(
            v["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["attempts"].as_array()),
        )
        .flatten();
    attempts_have_keys(attempts);
    for r in v["recipients"].as_array().into_iter().flatten() {
        has(
            r,
            "a recipient",
            &["address", "status", "accepted", "reply", "reason"],
        );
        if !r["reply"].is_null() {
            has(&r["reply"], "a reply", &REPLY_KEYS);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON report of `smtpcheck mx`, test side
// ---------------------------------------------------------------------------------------------

/// The whole `smtpcheck mx` report (schema_version 1), as strict as [`JsonReport`]: every struct
/// denies unknown fields, and [`assert_required_mx_keys`] checks the keys that must be present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMxReport {
    pub schema_version: u32,
    pub version: String,
    pub exit_code: u8,
    /// One per domain, in the order given.
    pub domains: Vec<JsonMxDomain>,
}

/// The plan (and with `--probe`, the probes) for one domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMxDomain {
    pub domain: String,
    pub mx: Vec<JsonMx>,
    pub note: Option<String>,
    /// Why there is no usable mail host, with its hint (as the send report's failures).
    pub failure: Option<JsonMxFailure>,
    pub targets: Vec<JsonTarget>,
    /// With `--probe`: one probe per target (greeting, EHLO, STARTTLS as --tls asks, QUIT).
    pub probes: Vec<JsonProbe>,
    pub exit_code: u8,
}

/// One probe: the attempt's fields plus what it came to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonProbe {
    #[serde(flatten)]
    pub attempt: JsonAttempt,
    pub failure: Option<JsonMxFailure>,
    pub warnings: Vec<String>,
    pub exit_code: u8,
}

impl JsonProbe {
    /// The probe succeeded (as `--tls` asks).
    pub fn ok_probe(&self) -> bool {
        self.failure.is_none() && self.exit_code == 0
    }
}

impl std::ops::Deref for JsonProbe {
    type Target = JsonAttempt;
    fn deref(&self) -> &JsonAttempt {
        &self.attempt
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMxFailure {
    pub stage: String,
    pub class: String,
    pub reason: String,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub kind: Option<String>,
    pub hint: JsonHint,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JsonTarget {
    pub host: String,
    pub address: String,
    pub port: u16,
}

impl JsonMxReport {
    /// The only domain (fails the test when there is not exactly one).
    #[track_caller]
    pub fn domain(&self) -> &JsonMxDomain {
        assert_eq!(self.domains.len(), 1, "expected one domain: {self:#?}");
        &self.domains[0]
    }
}

impl JsonMxDomain {
    /// The failure (fails the test when there is none).
    #[track_caller]
    pub fn failure(&self) -> &JsonMxFailure {
        self.failure
            .as_ref()
            .unwrap_or_else(|| panic!("expected a failure: {self:#?}"))
    }
}

impl JsonAttempt {
    /// The stage names of the attempt's steps, in order.
    pub fn stages(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.stage.as_str()).collect()
    }

    /// The attempt's first step at `stage`.
    #[track_caller]
    pub fn step(&self, stage: &str) -> &JsonStep {
        self.steps
            .iter()
            .find(|s| s.stage == stage)
            .unwrap_or_else(|| panic!("no {stage} step in {:?}", self.stages()))
    }
}

/// The keys of the mx report that must be present even when null.
#[track_caller]
pub fn assert_required_mx_keys(v: &serde_json::Value) {
    has(
        v,
        "the mx report",
        &["schema_version", "exit_code", "domains"],
    );
    for d in v["domains"].as_array().into_iter().flatten() {
        has(
            d,
            "a domain",
            &[
                "domain",
                "mx",
                "note",
                "failure",
                "targets",
                "probes",
                "exit_code",
            ],
        );
        for m in d["mx"].as_array().into_iter().flatten() {
            has(
                m,
                "an MX host",
                &["preference", "host", "addresses", "note"],
            );
        }
        if !d["failure"].is_null() {
            has(&d["failure"], "a domain's failure", &FAILURE_KEYS);
        }
        attempts_have_keys(d["probes"].as_array().into_iter().flatten());
    }
}

/// Invariants of every mx report: its exit code is the process's and the worst of the domains'
/// (4 before 5), a domain without targets is exit 4, and the probes are of the targets.
#[track_caller]
pub fn assert_mx_consistent(report: &JsonMxReport, run: &Run) {
    assert_eq!(report.schema_version, 1);
    assert_eq!(
        Some(i32::from(report.exit_code)),
        run.code,
        "JSON exit_code differs from the process exit code"
    );
    let worst = if report.domains.iter().any(|d| d.exit_code == 4) {
        4
    } else if report.domains.iter().any(|d| d.exit_code == 5) {
        5
    } else if report.domains.iter().any(|d| d.exit_code == 6) {
        6
    } else {
        0
    };
    assert_eq!(report.exit_code, worst, "{report:#?}");
    for d in &report.domains {
        assert!(matches!(d.exit_code, 0 | 4 | 5 | 6), "{d:#?}");
        assert_eq!(d.targets.is_empty(), d.exit_code == 4, "{d:#?}");
        if !d.probes.is_empty() {
            let probed: Vec<JsonTarget> = d
                .probes
                .iter()
                .map(|p| JsonTarget {
                    host: p.host.clone(),
                    address: p.address.clone(),
                    port: p.port,
                })
                .collect();
            assert_eq!(probed, d.targets, "one probe per target, in order: {d:#?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sink helpers and wire checks
// ---------------------------------------------------------------------------------------------

/// Starts a loopback sink (127.0.0.1, ephemeral port).
pub fn sink(script: Script) -> Sink {
    Sink::start(script).expect("cannot start the loopback sink")
}

/// How long a connection gets to show up before "no connection" is concluded.
pub const QUIET: Duration = Duration::from_millis(300);

/// Waits for exactly one finished session and returns it.
#[track_caller]
pub fn one_session(sink: &Sink) -> SessionLog {
    wait_for(sink, 1, String::new).into_iter().next().unwrap()
}

/// Waits for exactly `n` finished sessions on `sink` after `run` (whose output a failure shows).
#[track_caller]
pub fn sessions(sink: &Sink, n: usize, run: &Run) -> Vec<SessionLog> {
    wait_for(sink, n, || format!("\n{}", run.dump()))
}

#[track_caller]
pub fn wait_for(sink: &Sink, n: usize, context: impl Fn() -> String) -> Vec<SessionLog> {
    let sessions = sink.wait_sessions(n, SINK_WAIT);
    assert_eq!(
        sessions.len(),
        n,
        "sink {} expected exactly {n} connection(s): {sessions:#?}{}",
        sink.addr(),
        context()
    );
    sessions
}

/// Asserts that the sink never saw a connection (after giving one [`QUIET`] to show up).
#[track_caller]
pub fn assert_no_connection(sink: &Sink) {
    quiet_for(sink, String::new)
}

/// [`assert_no_connection`] after `run`, whose output a failure shows.
#[track_caller]
pub fn no_connection(sink: &Sink, run: &Run) {
    quiet_for(sink, || format!("\n{}", run.dump()))
}

#[track_caller]
fn quiet_for(sink: &Sink, context: impl Fn() -> String) {
    std::thread::sleep(QUIET);
    let sessions = sink.sessions();
    assert!(
        sessions.is_empty(),
        "sink {} expected no connection: {sessions:#?}{}",
        sink.addr(),
        context()
    );
}

/// The commands of a session whose verb is `verb` (upper case).
pub fn commands_with_verb<'a>(log: &'a SessionLog, verb: &str) -> Vec<&'a str> {
    log.commands
        .iter()
        .zip(log.verbs())
        .filter(|(_, v)| v == verb)
        .map(|(c, _)| c.as_str())
        .collect()
}

/// Every bare CR, bare LF and CRLF in `bytes` turned into CRLF (what SMTP DATA must carry).
pub fn crlf_normalize(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The message content a server must end up with for a file: CRLF-normalised, plus one CRLF when
/// the file does not end with a line break.
pub fn expected_content(file: &[u8]) -> Vec<u8> {
    let mut v = crlf_normalize(file);
    if !v.is_empty() && !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Checks DATA as it was on the wire: only CRLF line endings (no bare CR or LF a lenient server
/// could take for a line end), every line starting with `.` dot-stuffed, no line that is just `.`.
#[track_caller]
pub fn assert_wire_clean(wire: &[u8]) {
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(
                wire.get(i + 1),
                Some(&b'\n'),
                "bare CR at offset {i} of the DATA on the wire"
            ),
            b'\n' => assert!(
                i > 0 && wire[i - 1] == b'\r',
                "bare LF at offset {i} of the DATA on the wire"
            ),
            _ => {}
        }
    }
    assert!(
        wire.ends_with(b"\r\n"),
        "the DATA on the wire does not end with CRLF"
    );
    for line in wire.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            assert!(
                line.starts_with(b".."),
                "line {:?} starts with a single unstuffed dot",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// An AUTH password and every encoded form of it that goes on the wire (base64 alone, and the
/// PLAIN initial responses with and without an authorization identity): none may appear in any
/// output.
pub fn secret_forms(user: &str, password: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        password.to_string(),
        b64.encode(password),
        b64.encode(format!("\0{user}\0{password}")),
        b64.encode(format!("{user}\0{user}\0{password}")),
    ]
}

/// Shows bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}
