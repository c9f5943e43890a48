//! Interop tests: the built `smtpcheck` binary against REAL mail servers on loopback.
//!
//! The servers are started by `scripts/interop.sh up` (a private Postfix instance, an aiosmtpd
//! server that refuses EHLO, and dnsmasq for the `interop.test` zone), which writes their ports
//! and paths to `$SMTPCHECK_INTEROP_DIR/env` (default `/tmp/smtpcheck-interop/env`).
//!
//! When that state file is missing or the servers do not answer, each test prints
//! "skipped: run scripts/interop.sh up" and passes, except under CI (`CI` set and non-empty),
//! where it fails with "interop servers not running: run scripts/interop.sh up".
//!
//! Tests run in parallel against the same servers: each one sends a message carrying its own
//! unique marker (in the Message-ID and Subject) and only ever looks for files with that marker.
//!
//! Also: direct mode, with the MX lookup of `interop.test` through dnsmasq on `DNS_PORT`
//! (MX 10 `mx.interop.test` → 127.0.0.1) delivering to Postfix on `POSTFIX_PORT`; and STARTTLS
//! against Postfix, verifying its certificate with `CA_FILE` (the leaf is valid for `localhost`,
//! `127.0.0.1` and `mx.interop.test`), and failing without that CA.

use crate::common;

mod confirm;
mod sasl;
mod sender;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for a message to show up in a Maildir or the aiosmtpd spool.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep watching for a message that must NOT show up.
const ABSENCE_WINDOW: Duration = Duration::from_millis(1500);
/// Delivered files older than this are from earlier runs and not searched.
const RECENT: Duration = Duration::from_secs(600);

/// What `scripts/interop.sh up` wrote to its state file.
#[derive(Debug)]
struct Servers {
    postfix: SocketAddr,
    aiosmtpd: SocketAddr,
    size_limit: u64,
    /// Maildir of user@interop.test.
    maildir: PathBuf,
    /// Maildir of other@interop.test.
    other_maildir: PathBuf,
    aiosmtpd_spool: PathBuf,
    /// dnsmasq serving the `interop.test` zone.
    dns: SocketAddr,
    /// The CA that signed Postfix's certificate.
    ca_file: PathBuf,
}

impl Servers {
    fn load() -> Result<Servers, String> {
        let dir = std::env::var_os("SMTPCHECK_INTEROP_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/smtpcheck-interop"));
        let path = dir.join("env");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |key: &str| {
            vars.get(key)
                .map(|v| v.to_string())
                .ok_or_else(|| format!("{} has no {key}", path.display()))
        };
        let port = |key: &str| -> Result<u16, String> {
            get(key)?
                .parse()
                .map_err(|e| format!("{key} in {}: {e}", path.display()))
        };
        let host: std::net::IpAddr = get("HOST")?
            .parse()
            .map_err(|e| format!("HOST in {}: {e}", path.display()))?;
        let servers = Servers {
            postfix: SocketAddr::new(host, port("POSTFIX_PORT")?),
            aiosmtpd: SocketAddr::new(host, port("AIOSMTPD_PORT")?),
            size_limit: get("POSTFIX_SIZE_LIMIT")?
                .parse()
                .map_err(|e| format!("POSTFIX_SIZE_LIMIT: {e}"))?,
            maildir: get("MAILDIR")?.into(),
            other_maildir: get("OTHER_MAILDIR")?.into(),
            aiosmtpd_spool: get("AIOSMTPD_SPOOL")?.into(),
            dns: SocketAddr::new(host, port("DNS_PORT")?),
            ca_file: get("CA_FILE")?.into(),
        };
        for addr in [servers.postfix, servers.aiosmtpd] {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("nothing answers on {addr}: {e}"))?;
        }
        Ok(servers)
    }
}

/// The servers, or `None` (after saying so) when the test should be skipped.
fn servers() -> Option<Servers> {
    match Servers::load() {
        Ok(s) => Some(s),
        Err(why) => {
            if crate::common::under_ci() {
                panic!("interop servers not running: run scripts/interop.sh up ({why})");
            }
            eprintln!("skipped: run scripts/interop.sh up ({why})");
            None
        }
    }
}

/// A marker no other test (or earlier run) uses.
fn marker(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    format!(
        "sc-interop-{test}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A message file for one test, removed when dropped.
struct TempMessage {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl TempMessage {
    fn new(marker: &str, bytes: Vec<u8>) -> TempMessage {
        let dir = std::env::temp_dir().join("smtpcheck-interop-tests");
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        let path = dir.join(format!("{marker}.eml"));
        std::fs::write(&path, &bytes).expect("write the message file");
        TempMessage { path, bytes }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("temporary path is UTF-8")
    }
}

impl Drop for TempMessage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Replaces every `from` in `bytes` with `to`.
fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to.as_bytes());
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `examples/report.eml` with its Message-ID and Subject made unique.
fn report_eml(marker: &str) -> Vec<u8> {
    let raw = fixture("examples/report.eml");
    let raw = replace(
        &raw,
        "<weekly-sales-47.20261122070000@bi.example.com>",
        &format!("<{marker}@bi.example.com>"),
    );
    let raw = replace(
        &raw,
        "Subject: Weekly Sales Report - week 47",
        &format!("Subject: Weekly Sales Report - week 47 {marker}"),
    );
    assert!(contains(&raw, &format!("<{marker}@bi.example.com>")));
    raw
}

/// Runs `smtpcheck send --format json ARGS…` under the shared time guard; returns the exit code
/// and the parsed report.
fn smtpcheck(args: &[&str]) -> (i32, Value) {
    let run = common::Cmd::new()
        .arg("send")
        .args([
            "--format",
            "json",
            "--connect-timeout",
            "5s",
            "--timeout",
            "30s",
        ])
        .args(args)
        .run();
    let code = run.code.expect("smtpcheck was killed by a signal");
    let report = run.json_value();
    assert_eq!(
        report["exit_code"], code,
        "exit_code in the report differs from the process exit code: {report:#}"
    );
    (code, report)
}

/// Sends `msg` to `to` through `server`.
fn send(server: SocketAddr, msg: &TempMessage, to: &str) -> (i32, Value) {
    smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        to,
        "--smart-host",
        &server.to_string(),
        "--helo",
        "interop-client.example",
    ])
}

/// The steps of the (only) attempt.
fn steps(report: &Value) -> &Vec<Value> {
    let attempts = report["attempts"].as_array().expect("attempts is an array");
    assert_eq!(attempts.len(), 1, "expected one attempt: {report:#}");
    attempts[0]["steps"].as_array().expect("steps is an array")
}

fn stages(report: &Value) -> Vec<String> {
    steps(report)
        .iter()
        .map(|s| s["stage"].as_str().expect("stage is a string").to_string())
        .collect()
}

/// The first step of `stage`.
fn step<'a>(report: &'a Value, stage: &str) -> &'a Value {
    steps(report)
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} step: {report:#}"))
}

fn reply_text(step: &Value) -> String {
    step["reply"]["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Files (with their bytes) in the Maildirs' `new/` and `cur/` or a spool directory that contain
/// `needle`. Files whose name starts with `.` (being written) or that are older than
/// [`RECENT`] (earlier runs) are not looked at.
fn files_containing(dirs: &[PathBuf], needle: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let since = SystemTime::now() - RECENT;
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let recent = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if !recent {
                continue;
            }
            let path = entry.path();
            if let Ok(bytes) = std::fs::read(&path) {
                if contains(&bytes, needle) {
                    found.push((path, bytes));
                }
            }
        }
    }
    found
}

fn maildir_dirs(maildirs: &[&Path]) -> Vec<PathBuf> {
    maildirs
        .iter()
        .flat_map(|m| [m.join("new"), m.join("cur")])
        .collect()
}

/// Waits (bounded) until exactly one file in `dirs` contains `needle`, and returns it.
fn wait_for_one(dirs: &[PathBuf], needle: &str) -> (PathBuf, Vec<u8>) {
    let started = Instant::now();
    loop {
        let mut found = files_containing(dirs, needle);
        match found.len() {
            1 => return found.remove(0),
            0 => {}
            n => panic!(
                "{n} files contain {needle:?}: {:?}",
                found.iter().map(|f| &f.0).collect::<Vec<_>>()
            ),
        }
        if started.elapsed() > DELIVERY_TIMEOUT {
            let unreadable: Vec<String> = dirs
                .iter()
                .filter_map(|d| {
                    std::fs::read_dir(d)
                        .err()
                        .map(|e| format!("{}: {e}", d.display()))
                })
                .collect();
            panic!(
                "no file containing {needle:?} appeared in {dirs:?} within {DELIVERY_TIMEOUT:?} \
                 (unreadable: {unreadable:?})"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that no file in `dirs` contains `needle`, watching for a while.
fn assert_none_for_a_while(dirs: &[PathBuf], needle: &str) {
    let started = Instant::now();
    while started.elapsed() < ABSENCE_WINDOW {
        let found = files_containing(dirs, needle);
        assert!(
            found.is_empty(),
            "unexpected file(s) containing {needle:?}: {:?}",
            found.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The message as Postfix stores it in a Maildir: smtpcheck turns every CRLF, bare LF and bare CR
/// into CRLF on the wire, Postfix stores LF, and a final line ending is added when missing.
fn as_stored_by_postfix(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len() + 1);
    let mut i = 0;
    while i < sent.len() {
        match sent[i] {
            b'\r' => {
                out.push(b'\n');
                if sent.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

/// The message as the SMTP server received it (after dot-unstuffing): CRLF line endings.
fn as_received_on_the_wire(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len() + sent.len() / 16 + 2);
    for &b in &as_stored_by_postfix(sent) {
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b);
        }
    }
    out
}

/// The header fields Postfix prepends on delivery (and nothing else may be added).
const TRACE_FIELDS: [&str; 4] = ["Return-Path", "X-Original-To", "Delivered-To", "Received"];

/// Checks that `delivered` is exactly `sent` (as Postfix stores it) preceded only by the trace
/// header fields Postfix prepends; returns those prepended fields' names.
fn assert_same_but_trace_headers(delivered: &[u8], sent: &[u8], rcpt: &str) -> Vec<String> {
    let expected = as_stored_by_postfix(sent);
    assert!(
        delivered.ends_with(&expected),
        "the delivered message is not the sent one plus prepended trace headers\n\
         --- delivered ---\n{}\n--- expected to end with ---\n{}",
        String::from_utf8_lossy(delivered),
        String::from_utf8_lossy(&expected)
    );
    let prefix = std::str::from_utf8(&delivered[..delivered.len() - expected.len()])
        .expect("prepended headers are UTF-8");
    let mut names = Vec::new();
    for line in prefix.lines() {
        if line.starts_with([' ', '\t']) && !names.is_empty() {
            continue; // folded continuation of the previous field
        }
        let name = line.split_once(':').map(|(n, _)| n).unwrap_or(line);
        assert!(
            TRACE_FIELDS.contains(&name),
            "Postfix prepended a line that is not a trace header field: {line:?}\n{prefix}"
        );
        names.push(name.to_string());
    }
    assert!(
        prefix.contains(&format!("Delivered-To: {rcpt}\n")),
        "no Delivered-To: {rcpt} in {prefix}"
    );
    assert!(
        names.iter().any(|n| n == "Received"),
        "no Received: field prepended: {prefix}"
    );
    names
}

#[test]
fn delivers_to_the_maildir_byte_for_byte() {
    let Some(s) = servers() else { return };
    let m = marker("deliver");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = send(s.postfix, &msg, "user@interop.test");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "delivered");
    assert!(report["failure"].is_null());
    assert_eq!(
        stages(&report),
        [
            "connect", "greeting", "ehlo", "starttls", "starttls", "ehlo", "mail", "rcpt", "data",
            "message", "quit"
        ]
    );
    let caps = &report["attempts"][0]["capabilities"];
    assert_eq!(caps["size"], s.size_limit, "{caps:#}");
    // Postfix offered STARTTLS and the session upgraded; the capabilities are those of the EHLO
    // after the handshake (which no longer lists STARTTLS), and still say STARTTLS was offered;
    // the first EHLO's are in capabilities_before_tls.
    assert_eq!(caps["starttls"], true, "{caps:#}");
    assert!(
        !caps["keywords"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "STARTTLS"),
        "{caps:#}"
    );
    let before = &report["attempts"][0]["capabilities_before_tls"];
    assert!(
        before["keywords"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "STARTTLS"),
        "{before:#}"
    );
    let tls = &report["attempts"][0]["tls"];
    assert!(
        tls["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{tls:#}"
    );
    assert!(
        reply_text(step(&report, "greeting")).contains("ESMTP Postfix"),
        "{report:#}"
    );
    let queued = report["queued_as"].as_str().expect("queued_as is set");
    assert!(queued.starts_with("Ok: queued as "), "{queued}");
    assert_eq!(report["recipients"][0]["address"], "user@interop.test");
    assert_eq!(report["recipients"][0]["accepted"], true);

    let (path, delivered) = wait_for_one(
        &maildir_dirs(&[&s.maildir]),
        &format!("<{m}@bi.example.com>"),
    );
    let names = assert_same_but_trace_headers(&delivered, &msg.bytes, "user@interop.test");
    eprintln!("delivered to {} with {names:?} prepended", path.display());
    let _ = std::fs::remove_file(&path);
    // The queue id in the reply is the one in the Received: field.
    let id = queued.trim_start_matches("Ok: queued as ");
    assert!(
        // "with ESMTPS id …" since the session used STARTTLS.
        contains(&delivered, &format!("with ESMTPS id {id}")),
        "queue id {id} not in the Received: field"
    );
}

#[test]
fn dot_stuffed_lines_arrive_intact() {
    let Some(s) = servers() else { return };
    let m = marker("dots");
    let raw = replace(
        &fixture("tests/fixtures/interop/dot-stuffing.eml"),
        "@@MARKER@@",
        &m,
    );
    let msg = TempMessage::new(&m, raw);
    let (code, report) = send(s.postfix, &msg, "user@interop.test");
    assert_eq!(code, 0, "{report:#}");
    let (path, delivered) = wait_for_one(
        &maildir_dirs(&[&s.maildir]),
        &format!("<{m}@sender.example>"),
    );
    assert_same_but_trace_headers(&delivered, &msg.bytes, "user@interop.test");
    // Spelled out, for the lines that matter most.
    let text = String::from_utf8_lossy(&delivered);
    for line in [
        "\n.\n..two dots\n",
        "\n...three dots\n",
        "\n..\nA line ending in a dot.\n",
        "\n.the last line starts with a dot and has no line ending\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(!text.contains("\n...two dots"), "a dot was stuffed twice");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bare_lf_dot_cannot_smuggle_a_second_message() {
    let Some(s) = servers() else { return };
    let m = marker("smuggle");
    let smuggled = format!("smuggled-{}", m.trim_start_matches("sc-interop-"));
    let raw = fixture("tests/fixtures/interop/bare-lf-smuggling.eml");
    let raw = replace(&raw, "@@SMUGGLED@@", &smuggled);
    let raw = replace(&raw, "@@MARKER@@", &m);
    assert!(contains(&raw, "\n.\nMAIL FROM:<smuggler@evil.example>\n"));
    let msg = TempMessage::new(&m, raw);
    let (code, report) = send(s.postfix, &msg, "user@interop.test");
    assert_eq!(code, 0, "{report:#}");
    // One transaction: one MAIL, one DATA, one final reply, and no reply left over.
    assert_eq!(
        stages(&report),
        [
            "connect", "greeting", "ehlo", "starttls", "starttls", "ehlo", "mail", "rcpt", "data",
            "message", "quit"
        ]
    );
    assert_eq!(step(&report, "quit")["reply"]["code"], 221, "{report:#}");

    let dirs = maildir_dirs(&[&s.maildir, &s.other_maildir]);
    let (path, delivered) = wait_for_one(&dirs, &format!("<{m}@sender.example>"));
    assert_same_but_trace_headers(&delivered, &msg.bytes, "user@interop.test");
    let text = String::from_utf8_lossy(&delivered);
    for inside in [
        "first variant: LF . LF follows\n.\nMAIL FROM:<smuggler@evil.example>\nRCPT TO:<other@interop.test>\nDATA\n",
        "second variant: CRLF . LF follows\n.\nMAIL FROM:<smuggler@evil.example>\n",
        "\nEnd of the one and only message.\n",
    ] {
        assert!(
            text.contains(inside),
            "{inside:?} not inside the message:\n{text}"
        );
    }
    // No second message: the smuggled text is in that one file only, in either Maildir.
    assert_none_for_a_while(
        &maildir_dirs(&[&s.other_maildir]),
        &format!("<{smuggled}@evil.example>"),
    );
    let holders = files_containing(&dirs, &smuggled);
    assert_eq!(
        holders.iter().map(|f| &f.0).collect::<Vec<_>>(),
        [&path],
        "the smuggled text must be only inside the one message"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn unknown_user_is_refused_at_rcpt() {
    let Some(s) = servers() else { return };
    let m = marker("unknown");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = send(s.postfix, &msg, "nosuchuser@interop.test");
    assert_eq!(code, 13, "{report:#}");
    assert_eq!(report["outcome"], "failed");
    let f = &report["failure"];
    assert_eq!(f["stage"], "rcpt", "{f:#}");
    assert_eq!(f["class"], "permanent", "{f:#}");
    assert_eq!(f["code"], 550, "{f:#}");
    assert_eq!(f["enhanced"], "5.1.1", "{f:#}");
    let rcpt = reply_text(step(&report, "rcpt"));
    assert_eq!(
        rcpt,
        "550 5.1.1 <nosuchuser@interop.test>: Recipient address rejected: User unknown in virtual mailbox table"
    );
    assert!(f["reason"].as_str().unwrap_or("").contains("User unknown"));
    assert_eq!(report["recipients"][0]["accepted"], false);
    assert!(!stages(&report).contains(&"data".to_string()));
}

#[test]
fn relay_to_another_domain_is_denied() {
    let Some(s) = servers() else { return };
    let m = marker("relay");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = send(s.postfix, &msg, "someone@other.example");
    assert_eq!(code, 13, "{report:#}");
    let f = &report["failure"];
    assert_eq!(f["stage"], "rcpt", "{f:#}");
    assert_eq!(f["code"], 554, "{f:#}");
    assert_eq!(f["enhanced"], "5.7.1", "{f:#}");
    assert_eq!(
        reply_text(step(&report, "rcpt")),
        "554 5.7.1 <someone@other.example>: Relay access denied"
    );
    assert!(f["reason"]
        .as_str()
        .unwrap_or("")
        .contains("Relay access denied"));
}

#[test]
fn some_recipients_refused_is_partial() {
    let Some(s) = servers() else { return };
    let m = marker("partial");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = send(
        s.postfix,
        &msg,
        "user@interop.test,nosuchuser@interop.test,someone@other.example",
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["outcome"], "partial");
    let accepted: Vec<(String, bool)> = report["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or("").to_string(),
                r["accepted"] == true,
            )
        })
        .collect();
    assert_eq!(
        accepted,
        [
            ("user@interop.test".to_string(), true),
            ("nosuchuser@interop.test".to_string(), false),
            ("someone@other.example".to_string(), false),
        ]
    );
    let (path, delivered) = wait_for_one(
        &maildir_dirs(&[&s.maildir]),
        &format!("<{m}@bi.example.com>"),
    );
    assert_same_but_trace_headers(&delivered, &msg.bytes, "user@interop.test");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn message_over_the_size_limit_is_not_sent() {
    let Some(s) = servers() else { return };
    let m = marker("size");
    let mut raw = report_eml(&m);
    // Grow the body past the server's SIZE with plain 76-character lines.
    let line = format!("{}\r\n", "x".repeat(76));
    while (raw.len() as u64) <= s.size_limit + 10_000 {
        raw.extend_from_slice(line.as_bytes());
    }
    let msg = TempMessage::new(&m, raw);
    let (code, report) = send(s.postfix, &msg, "user@interop.test");
    assert_eq!(code, 15, "{report:#}");
    let f = &report["failure"];
    assert_eq!(f["stage"], "mail", "{f:#}");
    assert_eq!(f["class"], "permanent", "{f:#}");
    assert!(f["code"].is_null(), "no server reply decided this: {f:#}");
    let reason = f["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!("SIZE {}", s.size_limit)),
        "{reason}"
    );
    // Refused before MAIL FROM: nothing of the transaction was sent, and the mail step where
    // smtpcheck stopped is a failed step with nothing sent.
    assert_eq!(
        stages(&report),
        ["connect", "greeting", "ehlo", "starttls", "starttls", "ehlo", "mail", "quit"]
    );
    let mail = step(&report, "mail");
    assert_eq!(mail["ok"], false, "{mail:#}");
    assert!(mail["sent"].is_null(), "{mail:#}");
    assert_eq!(
        report["attempts"][0]["capabilities"]["size"], s.size_limit,
        "{report:#}"
    );
    assert_none_for_a_while(
        &maildir_dirs(&[&s.maildir]),
        &format!("<{m}@bi.example.com>"),
    );
}

#[test]
fn helo_fallback_when_ehlo_is_not_implemented() {
    let Some(s) = servers() else { return };
    let m = marker("helo");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = send(s.aiosmtpd, &msg, "user@interop.test");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        stages(&report),
        ["connect", "greeting", "ehlo", "helo", "mail", "rcpt", "data", "message", "quit"]
    );
    let ehlo = step(&report, "ehlo");
    assert_eq!(ehlo["reply"]["code"], 502, "{ehlo:#}");
    assert_eq!(ehlo["ok"], false, "{ehlo:#}");
    assert_eq!(ehlo["sent"], "EHLO interop-client.example");
    let helo = step(&report, "helo");
    assert_eq!(helo["sent"], "HELO interop-client.example");
    assert_eq!(helo["reply"]["code"], 250, "{helo:#}");
    assert_eq!(helo["ok"], true, "{helo:#}");
    // No EHLO, so no capabilities and no MAIL parameters.
    assert!(
        report["attempts"][0]["capabilities"].is_null(),
        "{report:#}"
    );
    assert_eq!(
        step(&report, "mail")["sent"],
        "MAIL FROM:<reports@bi.example.com>"
    );

    let (path, received) = wait_for_one(std::slice::from_ref(&s.aiosmtpd_spool), &format!("<{m}@"));
    assert_eq!(
        received,
        as_received_on_the_wire(&msg.bytes),
        "aiosmtpd received other bytes than were sent"
    );
    let meta: Value = serde_json::from_slice(
        &std::fs::read(path.with_extension("json")).expect("the spool's envelope file"),
    )
    .expect("envelope JSON");
    assert_eq!(meta["helo"], "interop-client.example", "{meta:#}");
    assert_eq!(meta["extended_smtp"], false, "{meta:#}");
    assert_eq!(meta["mail_from"], "reports@bi.example.com", "{meta:#}");
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["user@interop.test"]));
    let _ = std::fs::remove_file(path.with_extension("json"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn starttls_required_verifies_postfix_with_the_ca() {
    let Some(s) = servers() else { return };
    let m = marker("tls");
    let msg = TempMessage::new(&m, report_eml(&m));
    let ca = s.ca_file.to_string_lossy().to_string();
    let (code, report) = smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--smart-host",
        &s.postfix.to_string(),
        "--helo",
        "interop-client.example",
        "--tls",
        "required",
        "--ca",
        &ca,
    ]);
    assert_eq!(code, 0, "{report:#}");
    let tls = &report["attempts"][0]["tls"];
    assert_eq!(tls["verified"], true, "{tls:#}");
    assert_eq!(tls["verdict"], "verified", "{tls:#}");
    assert_eq!(tls["name_matched"], true, "{tls:#}");
    assert!(
        tls["issuer"]
            .as_str()
            .unwrap_or("")
            .contains("interop test CA"),
        "{tls:#}"
    );
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap_or("").contains("TLS")),
        "{report:#}"
    );
    let (path, delivered) = wait_for_one(&maildir_dirs(&[&s.maildir]), &m);
    let _ = std::fs::remove_file(&path);
    // Postfix records the encrypted session in its trace header.
    assert!(
        contains(&delivered, "with ESMTPS id"),
        "{}",
        String::from_utf8_lossy(&delivered)
    );
}

#[test]
fn starttls_required_without_the_ca_fails_before_mail() {
    let Some(s) = servers() else { return };
    let m = marker("tlsfail");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--smart-host",
        &s.postfix.to_string(),
        "--helo",
        "interop-client.example",
        "--tls",
        "required",
    ]);
    assert_eq!(code, 6, "{report:#}");
    assert_eq!(report["failure"]["stage"], "starttls", "{report:#}");
    assert_eq!(
        report["attempts"][0]["tls"]["verdict"], "unknown-issuer",
        "{report:#}"
    );
    assert!(!stages(&report).contains(&"mail".to_string()), "{report:#}");
    assert_none_for_a_while(&maildir_dirs(&[&s.maildir]), &m);
}

#[test]
fn direct_mode_finds_postfix_through_dns() {
    let Some(s) = servers() else { return };
    let m = marker("direct");
    let msg = TempMessage::new(&m, report_eml(&m));
    let ca = s.ca_file.to_string_lossy().to_string();
    let (code, report) = smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--resolver",
        &s.dns.to_string(),
        "--port",
        &s.postfix.port().to_string(),
        "--helo",
        "interop-client.example",
        "--ca",
        &ca,
    ]);
    assert_eq!(code, 0, "{report:#}");
    let route = &report["routes"][0];
    assert_eq!(route["mode"], "direct", "{route:#}");
    assert_eq!(route["domain"], "interop.test");
    assert_eq!(route["mx"][0]["host"], "mx.interop.test", "{route:#}");
    assert_eq!(route["mx"][0]["preference"], 10);
    assert_eq!(route["mx"][0]["addresses"][0], s.postfix.ip().to_string());
    let attempt = &report["attempts"][0];
    assert_eq!(attempt["host"], "mx.interop.test");
    // The certificate is checked against the MX name, for which it is valid.
    assert_eq!(attempt["tls"]["name"], "mx.interop.test", "{attempt:#}");
    assert_eq!(attempt["tls"]["verified"], true, "{attempt:#}");
    assert_eq!(attempt["greeting_name"], "mx.interop.test");
    let (path, _) = wait_for_one(&maildir_dirs(&[&s.maildir]), &m);
    let _ = std::fs::remove_file(&path);

    // `smtpcheck mx` shows the same plan.
    let run = common::Cmd::new()
        .args(["mx", "interop.test", "--resolver", &s.dns.to_string()])
        .args([
            "--port",
            &s.postfix.port().to_string(),
            "--probe",
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(0);
    let mx = run.mx_report();
    let domain = mx.domain();
    assert_eq!(domain.mx[0].host, "mx.interop.test", "{domain:#?}");
    let probe = &domain.probes[0];
    // The probe upgrades as --tls asks: the first EHLO offered STARTTLS, the TLS row is there.
    let keywords = probe.capabilities_before_tls.as_ref().map(|c| &c.keywords);
    assert!(
        keywords.is_some_and(|k| k.iter().any(|k| k == "STARTTLS")),
        "{mx:#?}"
    );
    let tls = probe
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("no TLS row: {mx:#?}"));
    assert_eq!(tls.name, "mx.interop.test");
    assert!(tls.spki_sha256.is_some(), "{mx:#?}");
}

/// The second Postfix listener, whose certificate is made the usual way (`openssl req -x509`:
/// self-signed, basicConstraints CA:TRUE): its address, the certificate file and its name.
fn x509_relay() -> Option<(SocketAddr, String, String)> {
    let s = servers()?;
    let dir = std::env::var_os("SMTPCHECK_INTEROP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/smtpcheck-interop"));
    let text = std::fs::read_to_string(dir.join("env")).ok()?;
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let (Some(port), Some(cert), Some(name)) =
        (get("POSTFIX_X509_PORT"), get("X509_CERT"), get("X509_NAME"))
    else {
        panic!("the interop state predates the openssl req -x509 relay: run scripts/interop.sh down, then up");
    };
    let addr = SocketAddr::new(s.postfix.ip(), port.parse().expect("POSTFIX_X509_PORT"));
    Some((addr, cert, name))
}

/// `smtpcheck send` of a fresh message to user@interop.test through the `openssl req -x509`
/// relay, with `extra` flags; returns the exit code, the JSON report and the marker.
fn via_x509_relay(relay: SocketAddr, test: &str, extra: &[&str]) -> (i32, Value, String) {
    let m = marker(test);
    let msg = TempMessage::new(&m, report_eml(&m));
    let relay = relay.to_string();
    let mut args = vec![
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--smart-host",
        &relay,
        "--helo",
        "interop-client.example",
    ];
    args.extend_from_slice(extra);
    let (code, report) = smtpcheck(&args);
    (code, report, m)
}

#[test]
fn openssl_req_x509_relay_gets_a_verdict_in_words_and_ca_makes_required_pass() {
    let Some((relay, cert, name)) = x509_relay() else {
        return;
    };
    let Some(s) = servers() else { return };
    // A default run: delivered encrypted, the verdict in words, the pin to copy.
    let (code, report, m) = via_x509_relay(relay, "x509-default", &[]);
    assert_eq!(code, 0, "{report:#}");
    let tls = &report["attempts"][0]["tls"];
    assert_eq!(tls["verdict"], "ca-certificate-as-server", "{tls:#}");
    assert!(
        tls["advice"].as_str().unwrap().contains("CA:FALSE"),
        "{tls:#}"
    );
    let pin = tls["spki_sha256"].as_str().unwrap().to_string();
    let text = report.to_string();
    for library in ["Other(", "OtherError", "CaUsedAsEndEntity"] {
        assert!(!text.contains(library), "{library} in {report:#}");
    }
    let (path, _) = wait_for_one(&maildir_dirs(&[&s.maildir]), &m);
    let _ = std::fs::remove_file(&path);

    // The fix the advice gives: --ca with that very certificate (and the name it is for) makes
    // --tls required pass, reported as pinned.
    let (code, report, m) = via_x509_relay(
        relay,
        "x509-ca",
        &["--tls", "required", "--ca", &cert, "--tls-name", &name],
    );
    assert_eq!(code, 0, "{report:#}");
    let tls = &report["attempts"][0]["tls"];
    assert_eq!(
        (tls["verdict"].as_str(), tls["verified"].as_bool()),
        (Some("pinned"), Some(true)),
        "{tls:#}"
    );
    let (path, delivered) = wait_for_one(&maildir_dirs(&[&s.maildir]), &m);
    let _ = std::fs::remove_file(&path);
    assert!(
        contains(&delivered, "with ESMTPS id"),
        "{}",
        String::from_utf8_lossy(&delivered)
    );

    // --tls-pin with the reported value delivers; a wrong one exits 6 before MAIL.
    let good = format!("sha256:{pin}");
    let (code, report, m) = via_x509_relay(
        relay,
        "x509-pin",
        &["--tls", "required", "--tls-pin", &good],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["attempts"][0]["tls"]["verdict"], "pinned",
        "{report:#}"
    );
    let (path, _) = wait_for_one(&maildir_dirs(&[&s.maildir]), &m);
    let _ = std::fs::remove_file(&path);
    let wrong = format!("sha256:{}=", "A".repeat(43));
    let (code, report, _) = via_x509_relay(
        relay,
        "x509-wrong-pin",
        &["--tls", "required", "--tls-pin", &wrong],
    );
    assert_eq!(code, 6, "{report:#}");
    assert_eq!(
        report["attempts"][0]["tls"]["verdict"], "pin-mismatch",
        "{report:#}"
    );
    assert!(!report["attempts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["stage"] == "mail"));
}

// ---------------------------------------------------------------------------------------------
// Verdicts (issue 14): Postfix's STARTTLS-required and recipient-limit listeners
// ---------------------------------------------------------------------------------------------

/// One more port from the state file (the extra smtpd listeners of the Postfix instance).
fn extra_port(key: &str) -> Option<SocketAddr> {
    let dir = std::env::var_os("SMTPCHECK_INTEROP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/smtpcheck-interop"));
    let text = std::fs::read_to_string(dir.join("env")).ok()?;
    let value = |k: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    };
    let host: std::net::IpAddr = value("HOST")?.parse().ok()?;
    let port: u16 = value(key)?.parse().ok()?;
    Some(SocketAddr::new(host, port))
}

#[test]
fn postfix_requiring_starttls_gets_the_starttls_hint_not_auth() {
    let Some(_) = servers() else { return };
    let addr =
        extra_port("POSTFIX_STARTTLS_PORT").expect("POSTFIX_STARTTLS_PORT in the state file");
    let m = marker("starttls-required");
    let msg = TempMessage::new(&m, report_eml(&m));
    let (code, report) = smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--smart-host",
        &addr.to_string(),
        "--helo",
        "interop-client.example",
        "--tls",
        "off",
    ]);
    assert_eq!(code, 12, "{report:#}");
    let f = &report["failure"];
    assert_eq!(f["code"], 530, "{f:#}");
    assert!(
        f["reason"].as_str().unwrap_or("").contains("STARTTLS"),
        "{f:#}"
    );
    let hint = f["hint"]["cause"].as_str().unwrap_or("");
    assert!(hint.contains("requires STARTTLS"), "{hint}");
    assert!(!hint.contains("authentication"), "{hint}");
    assert_eq!(report["recipients"][0]["status"], "not-tried", "{report:#}");
}

#[test]
fn postfix_recipient_limit_delivers_everyone_in_further_transactions() {
    let Some(s) = servers() else { return };
    let addr = extra_port("POSTFIX_LIMIT_PORT").expect("POSTFIX_LIMIT_PORT in the state file");
    let m = marker("rcpt-limit");
    let msg = TempMessage::new(&m, report_eml(&m));
    let to: Vec<String> = (1..=5).map(|i| format!("user+{i}@interop.test")).collect();
    let to = to.join(",");
    let ca = s.ca_file.to_string_lossy().to_string();
    let (code, report) = smtpcheck(&[
        "--eml",
        msg.path(),
        "--to",
        &to,
        "--smart-host",
        &addr.to_string(),
        "--helo",
        "interop-client.example",
        "--ca",
        &ca,
        "--tls-name",
        "mx.interop.test",
    ]);
    assert_eq!(code, 0, "{report:#}");
    let statuses: Vec<&str> = report["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["delivered"; 5], "{report:#}");
    // Postfix takes 3, answers the 4th "452 4.5.3 Error: too many recipients"; the 4th and 5th go
    // in a second transaction: 6 RCPT, 2 messages, no recipient accepted twice.
    let rcpts: Vec<&Value> = steps(&report)
        .iter()
        .filter(|s| s["stage"] == "rcpt")
        .collect();
    assert_eq!(rcpts.len(), 6, "{report:#}");
    assert_eq!(rcpts.iter().filter(|s| s["ok"] == false).count(), 1);
    let messages = steps(&report)
        .iter()
        .filter(|s| s["stage"] == "message")
        .count();
    assert_eq!(messages, 2, "{report:#}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains("4.5.3")),
        "{report:#}"
    );
    assert!(
        report["queue_id"].is_string(),
        "Postfix's queue id: {report:#}"
    );
    // Each recipient (user+N, one mailbox) gets its own copy: five, none twice.
    let dirs = maildir_dirs(&[&s.maildir]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut found = files_containing(&dirs, &m);
    while found.len() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        found = files_containing(&dirs, &m);
    }
    assert_eq!(found.len(), 5, "{found:?}");
    for (path, _) in found {
        let _ = std::fs::remove_file(path);
    }
}
