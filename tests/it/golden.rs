//! Golden snapshots of everything `smtpcheck` shows: the exact output of the built binary for a
//! fixed matrix of runs, compared with the snapshot files committed under `tests/golden/`.
//!
//! What is locked, for each run: the command line, the exit code, stdout, stderr (when there is
//! any) and the content of the files the run wrote (`--log FILE`, `--output FILE`), and for the
//! generated message the bytes the server received. The runs cover `send` through a smart host
//! against the scripted loopback sink (delivered, recipient refused, partial, 421 greeting, EHLO
//! refused and HELO fallback, connection closed mid-session, connection refused, `--quit-after
//! rcpt`, STARTTLS with AUTH PLAIN, STARTTLS with an untrusted certificate, a generated message),
//! each in several shapes (text, `-v`, `-q`, `--format json`, `--format junit`, `--log`,
//! `--output`); direct mode through an in-process DNS zone (failover, NXDOMAIN); `smtpcheck mx`
//! with and without `--probe`; the help, man page, completions and version; bad input and a usage
//! error.
//!
//! Only what differs between runs or machines is replaced before the comparison, by a stable
//! placeholder: elapsed times (`<MS>`, `<SECS>`; a time in a right-aligned table column keeps the
//! column's width, so the alignment stays locked), dates and timestamps (`<DATE>`), ports
//! (`<PORT>`, `<DNS_PORT>`), the per-test temporary directory (`<TMP>`), this machine's host name
//! (`<HOST>`), the generated Message-ID's time and random part, the size of the generated message
//! (`<BYTES>`: it contains the host name) and the days a certificate has left. Everything else must
//! match byte for byte (line endings aside: a CR is shown as `<CR>`).
//!
//! Every run uses loopback addresses only, `--color never`, an explicit `--helo`, short timeouts
//! and the time guard of `tests/common`, which also keeps the caller's `SMTPCHECK_*` variables
//! (and `NO_COLOR`, `CLICOLOR_FORCE`) away from the binary.
//!
//! The snapshots are stored with `insta` (`tests/golden/NAME.snap`). A difference, or a missing
//! snapshot, fails the test with a line diff; on a developer machine insta also writes the new
//! output next to the old one as `NAME.snap.new` (ignored by git), under CI (`CI` set) it writes
//! nothing. Nothing is ever accepted automatically. When an output change is intended, update the
//! snapshots deliberately and commit them with the change that caused it:
//!
//! ```text
//! INSTA_UPDATE=always cargo test --test it golden::   # rewrite every snapshot that differs
//! cargo insta test --test golden --review        # or, with cargo-insta: review change by change
//! ```
//!
//! then read the diff of `tests/golden/` before committing: every changed line must be one the
//! change meant to make. (Without cargo-insta, a test stops at its first differing snapshot; run
//! again after updating to see the next.)

use crate::common::dns::TestDns;
use crate::common::*;
use smtpcheck_sink::{SinkAuth, SinkTls};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// The message every `send --eml` run sends (CRLF line endings, one dot line to be stuffed).
const MESSAGE: &str = "From: Reports <reports@sender.test>\r\n\
To: Alice <alice@rcpt.test>\r\n\
Subject: Golden snapshot message\r\n\
Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <golden-1@sender.test>\r\n\
\r\n\
Line one.\r\n\
.a line starting with a dot\r\n\
Last line.\r\n";

/// The AUTH password (given to the binary through SMTPCHECK_PASSWORD only).
const PASSWORD: &str = "golden-Pa55word";

/// A fixed test CA (P-256, valid 2000-01-01 to 9999-12-31), so that the certificate details in the
/// output are the same on every run.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBUDCB96ADAgECAgJgHTAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNzbXRwY2hl
Y2sgZ29sZGVuIENBMCAXDTAwMDEwMTAwMDAwMFoYDzk5OTkxMjMxMjM1OTU5WjAe
MRwwGgYDVQQDDBNzbXRwY2hlY2sgZ29sZGVuIENBMFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAEJ8g0oG8aPBPROiZ58pThiyv3qTHmnRz3k4/+Gu8ZtWxYSRpJSVnH
Vofxhw+2aUNFAjFr3SW2Iya2Ij1v86++VqMjMCEwDwYDVR0TAQH/BAUwAwEB/zAO
BgNVHQ8BAf8EBAMCAYYwCgYIKoZIzj0EAwIDSAAwRQIgFcye20IIVDP78/Usr9aR
7pfn4DBgq6686CUPkPSxIf4CIQDU2k/XetReYRLCxMKpkFvcUjo0QG1L7ucFxEmm
Fj9qFg==
-----END CERTIFICATE-----
";

/// The sink's certificate, issued by [`CA_PEM`] for `sink.test` and `127.0.0.1`.
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBZjCCAQygAwIBAgIDYB3iMAoGCCqGSM49BAMCMB4xHDAaBgNVBAMME3NtdHBj
aGVjayBnb2xkZW4gQ0EwIBcNMDAwMTAxMDAwMDAwWhgPOTk5OTEyMzEyMzU5NTla
MBQxEjAQBgNVBAMMCXNpbmsudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
BOCTrC2mOcKQ/8WE8Md3vKBKSYm5u5R2f7yF3TVc6hv7KxuvFIYLSznsfb+i93ky
Edu245N1siZzH9MBmwWqOxSjQTA/MBoGA1UdEQQTMBGCCXNpbmsudGVzdIcEfwAA
ATAMBgNVHRMBAf8EAjAAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMC
A0gAMEUCIBI8ZbEooKo4jJQ1hEflfQsQ1zz71IenckNVantGuKPIAiEA8XwvFYWu
hDJJxNvtGj872ss6VzzRIOBYX2Heuh8QJIk=
-----END CERTIFICATE-----
";

/// The private key of [`LEAF_PEM`] (a test key, used for nothing else).
const LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdjnG1RpakjRM723n
sN+u/9cliUxuvIbtYAIJi5v4HeWhRANCAATgk6wtpjnCkP/FhPDHd7ygSkmJubuU
dn+8hd01XOob+ysbrxSGC0s57H2/ovd5MhHbtuOTdbImcx/TAZsFqjsU
-----END PRIVATE KEY-----
";

/// The loopback networks of the direct-mode and `mx` tests, `127.0.N.0/24`, one per test and
/// used by no other test file, so "nothing listens on 127.0.N.2" holds while other tests run.
const NET_FAILOVER: u8 = 210;
const NET_NXDOMAIN: u8 = 211;
const NET_MX: u8 = 212;
const NET_PROBE: u8 = 213;
const NET_REFUSED: u8 = 214;

/// `127.0.net.host`.
fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

/// One test's snapshot context: its temporary directory and the exact values (ports, paths) to
/// replace by placeholders, on top of the generic replacements of [`settings`].
struct Golden {
    tmp: TempDir,
    /// (number, placeholder): whole numbers to replace (ports, sizes).
    numbers: Vec<(u64, &'static str)>,
}

impl Golden {
    fn new(label: &str) -> Golden {
        let tmp = TempDir::new(&format!("golden-{label}"));
        tmp.write("message.eml", MESSAGE);
        Golden {
            tmp,
            numbers: Vec::new(),
        }
    }

    /// The message file.
    fn eml(&self) -> PathBuf {
        self.tmp.path().join("message.eml")
    }

    /// A path inside the temporary directory (not created).
    fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Replaces the whole number `n` (a port) by `placeholder` in the snapshots.
    fn number(&mut self, n: impl Into<u64>, placeholder: &'static str) {
        self.numbers.push((n.into(), placeholder));
    }

    /// Renders `run` (plus the files it wrote, and `extra` sections) and compares it with the
    /// snapshot `name`.
    #[track_caller]
    fn check(&self, name: &str, run: &Run, files: &[(&str, &Path)], extra: &[(&str, String)]) {
        let mut text = render(run, files, extra);
        text = text.replace(&self.tmp.path().display().to_string(), "<TMP>");
        for (n, placeholder) in &self.numbers {
            text = replace_number(&text, *n, placeholder);
        }
        let text = normalise_times(&text);
        let mut settings = settings();
        for (pattern, replacement) in FILTERS {
            settings.add_filter(pattern, *replacement);
        }
        settings.bind(|| insta::assert_snapshot!(name, text));
    }

    /// Like [`Golden::check`] for output that must not vary at all (help, man page, completions,
    /// version): nothing is replaced.
    #[track_caller]
    fn check_exact(&self, name: &str, run: &Run) {
        let text = render(run, &[], &[]);
        settings().bind(|| insta::assert_snapshot!(name, text));
    }
}

/// The insta settings: snapshots in `tests/golden/NAME.snap`, no expression in the header.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("golden");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// Regular expressions for what varies between runs, and their placeholders, applied in order
/// (after [`normalise_times`]). Dates that are part of the fixtures (the certificate's validity)
/// stay as they are.
const FILTERS: &[(&str, &str)] = &[
    // RFC 3339 timestamps with milliseconds: the protocol log.
    (r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z", "<DATE>"),
    // RFC 5322 dates (the generated message's Date header).
    (
        r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}",
        "<DATE>",
    ),
    // The generated Message-ID: milliseconds, a random number, this host.
    (
        r"smtpcheck\.\d+\.[0-9a-f]{16}@[A-Za-z0-9.-]+",
        "smtpcheck.<MILLIS>.<UNIQUE>@<HOST>",
    ),
    // JSON.
    (
        r#""elapsed_ms": -?[0-9][0-9.eE+-]*"#,
        r#""elapsed_ms": <MS>"#,
    ),
    (r#""days_left": -?\d+"#, r#""days_left": <DAYS>"#),
    // JUnit: seconds, when, and this machine's name.
    (r#"\btime="[0-9.]+""#, r#"time="<SECS>""#),
    (r#"\btimestamp="[^"]*""#, r#"timestamp="<DATE>""#),
    (r#"\bhostname="[^"]*""#, r#"hostname="<HOST>""#),
    // Days a certificate has left (text).
    (r"\(\d+ days left\)", "(<DAYS> days left)"),
];

/// Replaces elapsed times in text (`0.4 ms`, `12 ms`, the log's `0.123ms`) by `<MS>`. A time
/// right-aligned in a table column (two or more spaces before it, exactly two after it) keeps the
/// column's width: `<MS>` ends where the time ended, so the snapshots still lock the alignment.
fn normalise_times(text: &str) -> String {
    text.split_inclusive('\n').map(times_in_line).collect()
}

fn times_in_line(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let starts_number = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let unit = if line[j..].starts_with(" ms") {
            j + 1
        } else {
            j
        };
        let end = unit + 2;
        let is_time =
            line[unit..].starts_with("ms") && (end == b.len() || !b[end].is_ascii_alphanumeric());
        if !is_time {
            i = j;
            continue;
        }
        let mut pad = start;
        while pad > 0 && b[pad - 1] == b' ' {
            pad -= 1;
        }
        let aligned =
            start - pad >= 2 && line[end..].starts_with("  ") && !line[end..].starts_with("   ");
        if aligned {
            let width = end - pad;
            out.push_str(&line[copied..pad]);
            out.push_str(&format!("{:>width$}", "<MS>"));
        } else {
            out.push_str(&line[copied..start]);
            out.push_str("<MS>");
        }
        copied = end;
        i = end;
    }
    out.push_str(&line[copied..]);
    out
}

/// `text` with every whole number `n` (not part of a longer run of digits) replaced.
fn replace_number(text: &str, n: u64, placeholder: &str) -> String {
    let needle = n.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = text[i..].find(&needle) {
        let start = i + found;
        let end = start + needle.len();
        let digit_before = start > 0 && bytes[start - 1].is_ascii_digit();
        let digit_after = end < bytes.len() && bytes[end].is_ascii_digit();
        out.push_str(&text[i..start]);
        if digit_before || digit_after {
            out.push_str(&needle);
        } else {
            out.push_str(placeholder);
        }
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

/// The command line, exit code, stdout, stderr, files and extra sections of a run, as one text.
fn render(run: &Run, files: &[(&str, &Path)], extra: &[(&str, String)]) -> String {
    let mut s = String::from("$ smtpcheck");
    for a in &run.args {
        let a = a.to_string_lossy();
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,[]<>".contains(c));
        if plain {
            s.push_str(&format!(" {a}"));
        } else {
            s.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        }
    }
    s.push('\n');
    match run.code {
        Some(code) => s.push_str(&format!("exit: {code}\n")),
        None => s.push_str("exit: killed by a signal\n"),
    }
    section(&mut s, "stdout", &run.stdout);
    if !run.stderr.is_empty() {
        section(&mut s, "stderr", &run.stderr);
    }
    for (label, path) in files {
        match std::fs::read(path) {
            Ok(bytes) => section(
                &mut s,
                &format!("file {label}"),
                &String::from_utf8_lossy(&bytes),
            ),
            Err(e) => s.push_str(&format!("--- file {label}: not readable: {e}\n")),
        }
    }
    for (label, text) in extra {
        section(&mut s, label, text);
    }
    s.push_str("--- end\n");
    s
}

/// Appends `--- label` and `text`, with CRs made visible and a note when the last line break is
/// missing.
fn section(s: &mut String, label: &str, text: &str) {
    s.push_str(&format!("--- {label}\n"));
    s.push_str(&text.replace('\r', "<CR>"));
    if !text.is_empty() && !text.ends_with('\n') {
        s.push_str("\n(no line break at the end)\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------------------------

/// The options every `send`/`mx` run gets: no colour, a fixed HELO name, short bounds.
const COMMON: &[&str] = &[
    "--color",
    "never",
    "--helo",
    "client.test",
    "--connect-timeout",
    "2s",
    "--timeout",
    "5s",
];

/// `smtpcheck send --eml MESSAGE --smart-host RELAY` with the common options, then `extra`.
fn send(g: &Golden, relay: impl ToString, extra: &[&str]) -> Cmd {
    Cmd::new()
        .arg("send")
        .arg("--eml")
        .arg(g.eml())
        .arg("--smart-host")
        .arg(relay.to_string())
        .args(COMMON)
        .args(extra)
}

/// A sink on 127.0.0.1 whose port is replaced by `<PORT>` in the snapshots.
fn golden_sink(g: &mut Golden, script: Script) -> Sink {
    let s = sink(script);
    g.number(s.addr().port(), "<PORT>");
    s
}

/// Waits for the sink to record `n` sessions (so it is done before it is dropped).
fn settle(sink: &Sink, n: usize) -> Vec<SessionLog> {
    sink.wait_sessions(n, SINK_WAIT)
}

// ---------------------------------------------------------------------------------------------
// send through a smart host
// ---------------------------------------------------------------------------------------------

#[test]
fn send_delivered() {
    let mut g = Golden::new("delivered");
    let sink = golden_sink(&mut g, Script::default());
    let addr = sink.addr();
    let shapes: &[(&str, &[&str])] = &[
        ("send_delivered_text", &[]),
        ("send_delivered_verbose", &["-v"]),
        ("send_delivered_quiet", &["-q"]),
        ("send_delivered_json", &["--format", "json"]),
        ("send_delivered_junit", &["--format", "junit"]),
    ];
    for (i, (name, extra)) in shapes.iter().enumerate() {
        let run = send(&g, addr, extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }

    // The same run with --log: stdout (the live transcript) and the log file. The live transcript
    // is the same as without --log (it used to lose its "*  127.0.0.1 does not offer STARTTLS"
    // line: see log_leaves_the_live_transcript_unchanged).
    let log = g.file("delivered.log");
    let run = send(&g, addr, &["--log"]).arg(&log).run();
    settle(&sink, shapes.len() + 1);
    g.check("send_delivered_text_with_log", &run, &[("log", &log)], &[]);

    // --format junit --output FILE: the text report on stdout, JUnit in the file.
    let xml = g.file("report.xml");
    let run = send(&g, addr, &["--format", "junit", "--output"])
        .arg(&xml)
        .run();
    settle(&sink, shapes.len() + 2);
    g.check(
        "send_delivered_junit_output",
        &run,
        &[("output", &xml)],
        &[],
    );
}

#[test]
fn send_recipient_refused() {
    let mut g = Golden::new("refused");
    let sink = golden_sink(
        &mut g,
        Script::default().rcpt_for(
            "nobody",
            Action::reply("550 5.1.1 <nobody@rcpt.test>: Recipient address rejected: User unknown"),
        ),
    );
    let to = ["--to", "nobody@rcpt.test"];
    let log = g.file("refused.log");
    let shapes: Vec<(&str, Cmd)> = vec![
        ("send_rcpt_refused_text", send(&g, sink.addr(), &to)),
        (
            "send_rcpt_refused_verbose",
            send(&g, sink.addr(), &to).arg("-v"),
        ),
        (
            "send_rcpt_refused_quiet",
            send(&g, sink.addr(), &to).arg("-q"),
        ),
        (
            "send_rcpt_refused_json",
            send(&g, sink.addr(), &to).args(["--format", "json"]),
        ),
        (
            "send_rcpt_refused_junit",
            send(&g, sink.addr(), &to).args(["--format", "junit"]),
        ),
    ];
    let n = shapes.len();
    for (i, (name, cmd)) in shapes.into_iter().enumerate() {
        let run = cmd.run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
    let run = send(&g, sink.addr(), &to).arg("--log").arg(&log).run();
    settle(&sink, n + 1);
    g.check(
        "send_rcpt_refused_text_with_log",
        &run,
        &[("log", &log)],
        &[],
    );
}

#[test]
fn send_partial() {
    let mut g = Golden::new("partial");
    let sink = golden_sink(
        &mut g,
        Script::default().rcpt_for(
            "nobody",
            Action::reply("550 5.1.1 <nobody@rcpt.test>: Recipient address rejected: User unknown"),
        ),
    );
    let to = ["--to", "alice@rcpt.test", "--to", "nobody@rcpt.test"];
    for (i, (name, extra)) in [
        ("send_partial_text", &[][..]),
        ("send_partial_json", &["--format", "json"][..]),
        ("send_partial_junit", &["--format", "junit"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

#[test]
fn send_greeting_421() {
    let mut g = Golden::new("greeting-421");
    let sink = golden_sink(
        &mut g,
        Script {
            greeting: Action::reply(
                "421 4.3.2 sink.test Service not available, closing transmission channel",
            ),
            ..Script::default()
        },
    );
    let to = ["--to", "alice@rcpt.test"];
    for (i, (name, extra)) in [
        ("send_greeting_421_text", &[][..]),
        ("send_greeting_421_verbose", &["-v"][..]),
        ("send_greeting_421_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

#[test]
fn send_helo_fallback() {
    let mut g = Golden::new("helo");
    let sink = golden_sink(
        &mut g,
        Script {
            ehlo: Action::reply("502 5.5.2 Error: command not recognized"),
            ..Script::default()
        },
    );
    let to = ["--to", "alice@rcpt.test"];
    for (i, (name, extra)) in [
        ("send_helo_fallback_text", &[][..]),
        ("send_helo_fallback_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

#[test]
fn send_connection_closed() {
    // The sink hangs up (FIN) instead of answering MAIL FROM. The client does not pipeline, so
    // the sink has read everything the client sent when it closes: no RST, always the same error.
    let mut g = Golden::new("closed");
    let sink = golden_sink(
        &mut g,
        Script {
            mail: Action::Close,
            ..Script::default()
        },
    );
    let to = ["--to", "alice@rcpt.test"];
    for (i, (name, extra)) in [
        ("send_connection_closed_text", &[][..]),
        ("send_connection_closed_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
    let log = g.file("closed.log");
    let run = send(&g, sink.addr(), &to).arg("--log").arg(&log).run();
    settle(&sink, 3);
    g.check(
        "send_connection_closed_text_with_log",
        &run,
        &[("log", &log)],
        &[],
    );
}

#[test]
fn send_connection_refused() {
    // A port held by a listener on 127.0.N.1 and nothing on 127.0.N.9: connecting there is refused.
    let mut g = Golden::new("conn-refused");
    let held = TcpListener::bind(SocketAddr::new(ip(NET_REFUSED, 1), 0)).expect("bind");
    let port = held.local_addr().unwrap().port();
    g.number(port, "<PORT>");
    let relay = SocketAddr::new(ip(NET_REFUSED, 9), port);
    let to = ["--to", "alice@rcpt.test"];
    for (name, extra) in [
        ("send_connection_refused_text", &[][..]),
        ("send_connection_refused_json", &["--format", "json"][..]),
        ("send_connection_refused_junit", &["--format", "junit"][..]),
    ] {
        let run = send(&g, relay, &to).args(extra).run();
        g.check(name, &run, &[], &[]);
    }
    drop(held);
}

#[test]
fn send_quit_after_rcpt() {
    let mut g = Golden::new("quit-after");
    let sink = golden_sink(&mut g, Script::default());
    let to = ["--to", "alice@rcpt.test", "--quit-after", "rcpt"];
    for (i, (name, extra)) in [
        ("send_quit_after_rcpt_text", &[][..]),
        ("send_quit_after_rcpt_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

/// STARTTLS with the fixed certificate.
fn tls_script(auth: Option<SinkAuth>) -> Script {
    Script {
        tls: Some(SinkTls::from_pem(LEAF_PEM, LEAF_KEY_PEM).expect("the fixed certificate")),
        auth,
        ..Script::default()
    }
}

#[test]
fn send_starttls_auth_plain() {
    // STARTTLS (verified against the fixed CA), then AUTH PLAIN with the password from the
    // environment; the password must appear nowhere.
    let mut g = Golden::new("auth");
    let sink = golden_sink(&mut g, tls_script(Some(SinkAuth::new("alice", PASSWORD))));
    let ca = g.tmp.write("ca.pem", CA_PEM);
    let ca = ca.display().to_string();
    let args = [
        "--to",
        "alice@rcpt.test",
        "--tls",
        "required",
        "--ca",
        &ca,
        "--auth-user",
        "alice",
        "--auth-mech",
        "plain",
    ];
    for (i, (name, extra)) in [
        ("send_auth_plain_text", &[][..]),
        ("send_auth_plain_verbose", &["-v"][..]),
        ("send_auth_plain_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &args)
            .args(extra)
            .env("SMTPCHECK_PASSWORD", PASSWORD)
            .run();
        let sessions = settle(&sink, i + 1);
        assert!(
            !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
            "the password leaked\n{}",
            run.dump()
        );
        assert!(
            sessions[i].auth.iter().any(|a| a.accepted),
            "no accepted AUTH: {sessions:#?}"
        );
        g.check(name, &run, &[], &[]);
    }
}

#[test]
fn send_starttls_untrusted_certificate() {
    // Opportunistic TLS (the default) with a certificate whose CA is not trusted: reported, and the
    // message still goes.
    let mut g = Golden::new("tls-untrusted");
    let sink = golden_sink(&mut g, tls_script(None));
    let to = ["--to", "alice@rcpt.test"];
    for (i, (name, extra)) in [
        ("send_starttls_untrusted_text", &[][..]),
        ("send_starttls_untrusted_verbose", &["-v"][..]),
        ("send_starttls_untrusted_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = send(&g, sink.addr(), &to).args(extra).run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

#[test]
fn log_leaves_the_live_transcript_unchanged() {
    // Every kind of live line (steps, a TLS line, notes and warnings, a move to the next address is
    // in direct_failover) must be on stdout whether or not --log also records the run.
    let g = Golden::new("log-tee");
    let plain = sink(Script::default());
    let tls = sink(tls_script(None));
    let to = ["--to", "alice@rcpt.test"];
    for (i, (what, relay)) in [("no STARTTLS", &plain), ("untrusted STARTTLS", &tls)]
        .into_iter()
        .enumerate()
    {
        let without = send(&g, relay.addr(), &to).run();
        let log = g.file(&format!("tee-{i}.log"));
        let with = send(&g, relay.addr(), &to).arg("--log").arg(&log).run();
        settle(relay, 2);
        without.assert_exit(0);
        with.assert_exit(0);
        assert!(
            without.stdout.contains("\n*  "),
            "{what}: the run has no note line to compare\n{}",
            without.dump()
        );
        assert_eq!(
            normalise_times(&with.stdout),
            normalise_times(&without.stdout),
            "{what}: --log changed the live transcript"
        );
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            logged.contains(" VERDICT "),
            "{what}: no log written: {logged}"
        );
    }
}

#[test]
fn send_generated_message() {
    let mut g = Golden::new("generated");
    let sink = golden_sink(&mut g, Script::default());
    let generated = |extra: &[&str]| {
        Cmd::new()
            .arg("send")
            .arg("--smart-host")
            .arg(sink.addr().to_string())
            .args(COMMON)
            .args([
                "--from",
                "sender@sender.test",
                "--to",
                "alice@rcpt.test",
                "--subject",
                "Golden generated message",
                "--body",
                "Hello from the golden snapshots.",
            ])
            .args(extra)
            .run()
    };
    let text = generated(&["-v"]);
    let json = generated(&["--format", "json"]);
    let sessions = settle(&sink, 2);
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let received: Vec<Vec<u8>> = sessions
        .iter()
        .map(|s| unstuff(s.messages.first().expect("a message")))
        .collect();
    // The size contains this machine's name (in the Message-ID): a placeholder on every line.
    let size = received[0].len();
    assert_eq!(size, received[1].len());
    let reported = json.json_value()["message"]["bytes"].as_u64();
    assert_eq!(reported, Some(size as u64), "{}", json.dump());
    g.number(size as u64, "<BYTES>");
    let message = String::from_utf8_lossy(&received[0]).into_owned();
    g.check(
        "send_generated_verbose",
        &text,
        &[],
        &[("message received by the server", message)],
    );
    g.check("send_generated_json", &json, &[], &[]);
}

#[test]
fn send_bad_input() {
    // A message file that does not exist: exit 3 before any connection.
    let mut g = Golden::new("bad-input");
    let held = TcpListener::bind(SocketAddr::new(ip(NET_REFUSED, 1), 0)).expect("bind");
    let port = held.local_addr().unwrap().port();
    g.number(port, "<PORT>");
    let missing = g.file("missing.eml");
    for (name, extra) in [
        ("send_bad_input_text", &[][..]),
        ("send_bad_input_json", &["--format", "json"][..]),
    ] {
        let run = Cmd::new()
            .arg("send")
            .arg("--eml")
            .arg(&missing)
            .arg("--smart-host")
            .arg(SocketAddr::new(ip(NET_REFUSED, 9), port).to_string())
            .args(COMMON)
            .args(["--to", "alice@rcpt.test"])
            .args(extra)
            .run();
        g.check(name, &run, &[], &[]);
    }
    drop(held);
}

#[test]
fn usage_error() {
    let g = Golden::new("usage");
    let run = Cmd::new()
        .args(["send", "--no-such-flag", "--color", "never"])
        .run();
    g.check("usage_error", &run, &[], &[]);
}

// ---------------------------------------------------------------------------------------------
// Direct mode and `smtpcheck mx` through the in-process DNS server
// ---------------------------------------------------------------------------------------------

/// `--resolver DNS --dns-timeout 3s --port PORT` plus the common options.
fn direct_opts(dns: &TestDns, port: u16) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--resolver".into(),
        dns.addr().to_string(),
        "--dns-timeout".into(),
        "3s".into(),
        "--port".into(),
        port.to_string(),
    ];
    a.extend(COMMON.iter().map(|s| s.to_string()));
    a
}

/// Binds a sink on `127.0.net.host`, port 0; its port is `<PORT>` in the snapshots.
fn sink_on(g: &mut Golden, net: u8, host: u8, script: Script) -> Sink {
    let s = Sink::bind(SocketAddr::new(ip(net, host), 0), script).expect("bind a sink");
    g.number(s.addr().port(), "<PORT>");
    s
}

/// A DNS server for `zone`; its port is `<DNS_PORT>` in the snapshots.
fn golden_dns(g: &mut Golden, zone: &str) -> TestDns {
    let dns = TestDns::start(zone);
    g.number(dns.addr().port(), "<DNS_PORT>");
    dns
}

#[test]
fn direct_failover() {
    // mx1 (preference 10) on 127.0.N.2 refuses the connection (nothing listens there), mx2
    // (preference 20) on 127.0.N.3 delivers. Both on the sink's port, given with --port.
    const N: u8 = NET_FAILOVER;
    let mut g = Golden::new("direct-failover");
    let sink = sink_on(
        &mut g,
        N,
        3,
        Script {
            greeting: Action::reply("220 mx2.test ESMTP smtpcheck test sink"),
            end_of_data: Action::reply("250 2.0.0 Ok: queued as MX2Golden01"),
            ..Script::default()
        },
    );
    let dns = golden_dns(
        &mut g,
        &format!(
            "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
            ip(N, 2),
            ip(N, 3)
        ),
    );
    let opts = direct_opts(&dns, sink.addr().port());
    let log = g.file("direct.log");
    for (i, (name, extra)) in [
        ("direct_failover_text", &[][..]),
        ("direct_failover_verbose", &["-v"][..]),
        ("direct_failover_json", &["--format", "json"][..]),
        ("direct_failover_junit", &["--format", "junit"][..]),
        ("direct_failover_text_with_log", &["--log"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cmd = Cmd::new()
            .arg("send")
            .arg("--eml")
            .arg(g.eml())
            .args(&opts)
            .args(["--to", "user@d.test"])
            .args(extra);
        let mut files: Vec<(&str, &Path)> = Vec::new();
        if extra == ["--log"] {
            cmd = cmd.arg(&log);
            files.push(("log", &log));
        }
        let run = cmd.run();
        settle(&sink, i + 1);
        g.check(name, &run, &files, &[]);
    }
}

#[test]
fn direct_nxdomain() {
    const N: u8 = NET_NXDOMAIN;
    let mut g = Golden::new("direct-nxdomain");
    let held = TcpListener::bind(SocketAddr::new(ip(N, 1), 0)).expect("bind");
    let port = held.local_addr().unwrap().port();
    g.number(port, "<PORT>");
    let dns = golden_dns(&mut g, &format!("other A {}\n", ip(N, 2)));
    let opts = direct_opts(&dns, port);
    for (name, extra) in [
        ("direct_nxdomain_text", &[][..]),
        ("direct_nxdomain_json", &["--format", "json"][..]),
    ] {
        let run = Cmd::new()
            .arg("send")
            .arg("--eml")
            .arg(g.eml())
            .args(&opts)
            .args(["--to", "user@nope.test"])
            .args(extra)
            .run();
        g.check(name, &run, &[], &[]);
    }
    drop(held);
}

#[test]
fn mx_lookup() {
    const N: u8 = NET_MX;
    let mut g = Golden::new("mx");
    let held = TcpListener::bind(SocketAddr::new(ip(N, 1), 0)).expect("bind");
    let port = held.local_addr().unwrap().port();
    g.number(port, "<PORT>");
    let dns = golden_dns(
        &mut g,
        &format!(
            "ordered MX 20 mx2\nordered MX 10 mx1\nordered MX 30 mx3\n\
             mx1 A {}\nmx2 A {}\nmx3 A {}\n",
            ip(N, 2),
            ip(N, 3),
            ip(N, 4)
        ),
    );
    let opts = direct_opts(&dns, port);
    for (name, extra) in [("mx_text", &[][..]), ("mx_json", &["--format", "json"][..])] {
        let run = Cmd::new()
            .args(["mx", "ordered.test"])
            .args(&opts)
            .args(extra)
            .run();
        g.check(name, &run, &[], &[]);
    }
    drop(held);
}

#[test]
fn mx_probe() {
    const N: u8 = NET_PROBE;
    let mut g = Golden::new("mx-probe");
    let sink = sink_on(&mut g, N, 2, Script::default());
    let dns = golden_dns(&mut g, &format!("d MX 10 mx1\nmx1 A {}\n", ip(N, 2)));
    let opts = direct_opts(&dns, sink.addr().port());
    for (i, (name, extra)) in [
        ("mx_probe_text", &[][..]),
        ("mx_probe_json", &["--format", "json"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let run = Cmd::new()
            .args(["mx", "d.test", "--probe"])
            .args(&opts)
            .args(extra)
            .run();
        settle(&sink, i + 1);
        g.check(name, &run, &[], &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// Help, man page, completions, version
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_and_help() {
    let g = Golden::new("help");
    for (name, args) in [
        ("help", &["--help"][..]),
        ("help_short", &["-h"][..]),
        ("help_send", &["help", "send"][..]),
        ("help_mx", &["help", "mx"][..]),
        ("send_help", &["send", "--help"][..]),
        ("no_arguments", &[][..]),
        ("man", &["man"][..]),
        ("completions_bash", &["completions", "bash"][..]),
        ("completions_zsh", &["completions", "zsh"][..]),
        ("completions_fish", &["completions", "fish"][..]),
        ("version", &["--version"][..]),
    ] {
        let run = Cmd::new().args(args).guard(Duration::from_secs(30)).run();
        g.check_exact(name, &run);
    }
}
