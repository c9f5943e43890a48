//! Fitting the ecosystem (issue 9), through the built binary: the generated test message and
//! `--eml -`, JUnit output validated against a JUnit schema, `--output`, `-q`/`-v`, colour and the
//! wait ticker on a terminal, profiles and `SMTPCHECK_*` variables, completions and the man page,
//! and the files in `examples/`.
//!
//! Some checks use outside tools: `xmllint` (Debian's libxml2-utils) for the schema, `script`
//! (util-linux) for a pseudo-terminal, `shellcheck`, `jq` and Python's `yaml` for the examples.
//! scripts/test.sh installs them. When one is missing the check is skipped with a note, except
//! under CI (`CI` set), where a missing tool fails the test.

use crate::common::dns;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `true` when `tool` can be run (`tool --version` or `tool -h` starts); otherwise prints a note
/// and returns false, or fails the test under CI.
#[track_caller]
fn have(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            !under_ci(),
            "{tool} is required under CI (scripts/test.sh installs it) but cannot be run"
        );
        note(&format!(
            "{tool} is not installed; skipping this check (scripts/test.sh installs it)"
        ));
    }
    ok
}

/// Prints a note past the test harness's output capture, so a skipped check is seen.
fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// `true` when `tool` can be run; nothing is required of it.
fn runs(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Validates a JUnit XML file against tests/fixtures/junit.xsd with xmllint.
#[track_caller]
fn assert_valid_junit(xml: &Path) {
    if !have("xmllint", &["--version"]) {
        return;
    }
    let xsd = root().join("tests/fixtures/junit.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(xml)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{} does not validate against the JUnit schema:\n{}\n--- the file\n{}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(xml).unwrap_or_default()
    );
}

/// Writes a JUnit document to a file and validates it.
#[track_caller]
fn assert_valid_junit_text(dir: &TempDir, name: &str, xml: &str) {
    let p = dir.write(name, xml);
    assert_valid_junit(&p);
}

/// The value of `name="…"` in the first element `element` of `xml`.
fn attr_of(xml: &str, element: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{element} "))?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

fn header_value<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\r\n\r\n").next()?;
    head.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// `send` through the sink without --eml.
fn generated(sink: &Sink) -> Cmd {
    Cmd::new()
        .arg("send")
        .arg("--smart-host")
        .arg(sink.addr().to_string())
        .helo("test.example")
}

// ---------------------------------------------------------------------------------------------
// 1. The generated test message and --eml -
// ---------------------------------------------------------------------------------------------

#[test]
fn without_eml_a_test_message_is_generated() {
    let s = sink(Script::default());
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ops@rcpt.example,oncall@rcpt.example")
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    let m = report.message.as_ref().unwrap();
    assert_eq!(m.path, "(generated test message)");
    assert!(
        m.subject
            .as_deref()
            .unwrap()
            .starts_with("smtpcheck test 20"),
        "{m:?}"
    );
    assert!(report
        .warnings
        .iter()
        .all(|w| !w.contains("Date") && !w.contains("Message-ID") && !w.contains("differs")));
    let log = one_session(&s);
    let wire = String::from_utf8(unstuff(&log.messages[0])).unwrap();
    let date = header_value(&wire, "Date").unwrap();
    // RFC 5322: "Sun, 22 Nov 2026 07:00:01 +0000"
    let parts: Vec<&str> = date.split(' ').collect();
    assert_eq!(parts.len(), 6, "{date}");
    assert!(["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&parts[0]));
    assert_eq!(parts[1].len(), 2);
    assert_eq!(parts[4].len(), 8);
    assert_eq!(parts[5], "+0000");
    let id = header_value(&wire, "Message-ID").unwrap();
    assert!(
        id.starts_with("<smtpcheck.") && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    assert_eq!(
        header_value(&wire, "From"),
        Some("smtpcheck <ci@sender.example>")
    );
    assert!(header_value(&wire, "To")
        .unwrap()
        .starts_with("ops@rcpt.example,"));
    assert!(wire.contains("oncall@rcpt.example"));
    assert_eq!(
        header_value(&wire, "Subject"),
        m.subject.as_deref(),
        "the report names the subject sent"
    );
    let body = wire.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        body.contains("This is a test message sent by smtpcheck"),
        "{body}"
    );
    assert!(
        body.contains(&format!("via smart host {}", s.addr())),
        "the body names the route: {body}"
    );
    assert!(body.contains(" from "), "the body names the host: {body}");
}

#[test]
fn generated_message_is_shaped_by_subject_body_and_headers() {
    let dir = TempDir::new("shape");
    let s = sink(Script::default());
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ops@rcpt.example")
        .args([
            "--subject",
            "Nightly relay check",
            "--body",
            "hello\n.\nworld",
        ])
        .args([
            "--header",
            "X-Trace: 42",
            "--header",
            "Reply-To: noc@sender.example",
        ])
        .args(["--header", "From: Reports <reports@sender.example>"])
        .run();
    run.assert_exit(0);
    let log = one_session(&s);
    let wire = String::from_utf8(unstuff(&log.messages[0])).unwrap();
    assert_eq!(header_value(&wire, "Subject"), Some("Nightly relay check"));
    assert_eq!(header_value(&wire, "X-Trace"), Some("42"));
    assert_eq!(header_value(&wire, "Reply-To"), Some("noc@sender.example"));
    assert_eq!(
        header_value(&wire, "From"),
        Some("Reports <reports@sender.example>"),
        "a --header replaces the generated field"
    );
    assert_eq!(wire.matches("\r\nFrom: ").count(), 1);
    assert!(
        wire.ends_with("\r\n\r\nhello\r\n.\r\nworld\r\n"),
        "{wire:?}"
    );
    // The dot line went out stuffed.
    assert_wire_clean(&log.messages[0]);
    assert!(log.messages[0].windows(5).any(|w| w == b"\r\n..\r"));

    let body = dir.write("body.txt", "from a file\n");
    let s = sink(Script::default());
    generated(&s)
        .from("ci@sender.example")
        .to("ops@rcpt.example")
        .arg("--body-file")
        .arg(&body)
        .run()
        .assert_exit(0);
    let wire = String::from_utf8(one_session(&s).messages[0].clone()).unwrap();
    assert!(wire.ends_with("\r\n\r\nfrom a file\r\n"), "{wire:?}");
}

#[test]
fn header_injection_and_bad_names_are_bad_input() {
    let s = sink(Script::default());
    for (flag, value) in [
        ("--header", "X-A: b\r\nBcc: evil@example.com"),
        ("--header", "X-A: b\nBcc: evil@example.com"),
        ("--header", "Bad Name: x"),
        ("--header", "no colon here"),
        ("--subject", "hi\r\nBcc: evil@example.com"),
    ] {
        let run = generated(&s)
            .from("ci@sender.example")
            .to("ops@rcpt.example")
            .arg(flag)
            .arg(value)
            .json()
            .run();
        run.assert_exit(3);
        let f = run.report().failure().clone();
        assert_eq!(f.stage, "input");
        assert!(f.reason.contains(flag), "{f:?}");
        assert!(run.stderr.contains(flag), "{}", run.dump());
    }
    assert_no_connection(&s);
}

#[test]
fn without_eml_from_and_to_are_required() {
    let s = sink(Script::default());
    let run = generated(&s).to("ops@rcpt.example").run();
    run.assert_exit(3);
    assert!(run.stderr.contains("give --from ADDRESS"), "{}", run.dump());
    assert!(run.last_line().starts_with("Verdict: failed at input"));
    let run = generated(&s).from("ci@sender.example").run();
    run.assert_exit(3);
    assert!(run.stderr.contains("--to ADDRESS"), "{}", run.dump());
    // The null sender works: From names postmaster at this host.
    let run = generated(&s).from("").to("ops@rcpt.example").run();
    run.assert_exit(0);
    let log = one_session(&s);
    assert!(log.commands[1].starts_with("MAIL FROM:<>"), "{log:?}");
    let wire = String::from_utf8(log.messages[0].clone()).unwrap();
    assert!(
        header_value(&wire, "From")
            .unwrap()
            .contains("<postmaster@"),
        "{wire}"
    );
    // The generated-message flags do not go with --eml.
    Cmd::send_to_sink(&s, example_eml())
        .args(["--subject", "x"])
        .run()
        .assert_exit(2);
}

#[test]
fn eml_dash_reads_the_message_from_stdin() {
    let bytes = std::fs::read(example_eml()).unwrap();
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, "-")
        .to("user@domain.com")
        .stdin(bytes.clone())
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    let m = report.message.as_ref().unwrap();
    assert_eq!(m.path, "(standard input)");
    assert_eq!(m.bytes, bytes.len() as u64);
    assert_eq!(
        report.envelope.as_ref().unwrap().from,
        "reports@bi.example.com"
    );
    let log = one_session(&s);
    assert_eq!(unstuff(&log.messages[0]), expected_content(&bytes));

    // Bounded by --max-size, before any connection.
    let run = Cmd::send_to_sink(&s, "-")
        .to("user@domain.com")
        .args(["--max-size", "100"])
        .stdin(bytes)
        .run();
    run.assert_exit(3);
    assert!(run.stderr.contains("--max-size"), "{}", run.dump());
    let run = Cmd::send_to_sink(&s, "-")
        .to("user@domain.com")
        .stdin("")
        .run();
    run.assert_exit(3);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.sessions().len(), 1, "no connection for bad stdin");
}

// ---------------------------------------------------------------------------------------------
// 2. JUnit, --output, -q, -v
// ---------------------------------------------------------------------------------------------

#[test]
fn junit_has_one_case_per_recipient_and_validates() {
    let dir = TempDir::new("junit");
    // A reply with everything XML must escape: markup, quotes, ampersand, control characters.
    let nasty = "550 5.1.1 <bad&user@rcpt.example> \"quoted\" 'single' \u{1}\u{7f} ]]> done";
    let s = sink(
        Script::default()
            .rcpt_for("bad", Action::reply(nasty))
            .rcpt_for("later", Action::reply("451 4.7.1 greylisted, try later")),
    );
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ok@rcpt.example,bad&user@rcpt.example,later@rcpt.example")
        .args(["--format", "junit"])
        .run();
    run.assert_exit(1);
    let xml = &run.stdout;
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
        "{xml}"
    );
    assert!(
        !xml.contains('\u{1}') && !xml.contains('\u{7f}'),
        "raw control characters"
    );
    assert_valid_junit_text(&dir, "send.xml", xml);
    assert_eq!(attr_of(xml, "testsuites", "tests").as_deref(), Some("3"));
    assert_eq!(attr_of(xml, "testsuites", "failures").as_deref(), Some("2"));
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert!(xml.contains("name=\"ok@rcpt.example\" time=\""), "{xml}");
    assert!(xml.contains("name=\"bad&amp;user@rcpt.example\""), "{xml}");
    // The failure carries the stage, the codes and the server's words.
    assert!(xml.contains("<failure type=\"rcpt\""), "{xml}");
    assert!(xml.contains("code: 550\nenhanced: 5.1.1\n"), "{xml}");
    assert!(
        xml.contains("server: 550 5.1.1 &lt;bad&amp;user@rcpt.example&gt; \"quoted\" 'single' \\x01\\x7f ]]&gt; done"),
        "{xml}"
    );
    assert!(xml.contains("code: 451\nenhanced: 4.7.1\n"), "{xml}");
    assert!(xml.contains("cause: Greylisting"), "{xml}");
    assert!(xml.contains("<system-out>"), "the transcript is kept");

    // Raw control characters from the message itself (its Subject and Message-ID are reported).
    let eml = dir.write(
        "ctl.eml",
        "From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: bell\x07 esc\x1b[31m <tag> & \"q\"\r\nMessage-ID: <id\x01@sender.example>\r\n\r\nhi\r\n",
    );
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, &eml)
        .args(["--format", "junit"])
        .run();
    run.assert_exit(0);
    let xml = &run.stdout;
    assert!(
        !xml.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')),
        "{xml:?}"
    );
    assert_valid_junit_text(&dir, "ctl.xml", xml);
    assert!(
        xml.contains("bell\\u{0007} esc\\u{001b}[31m &lt;tag&gt; &amp; &quot;q&quot;"),
        "{xml}"
    );
}

#[test]
fn junit_for_a_session_failure_and_for_bad_input() {
    let dir = TempDir::new("junit-fail");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = Cmd::new()
        .args(["send", "--smart-host", &format!("127.0.0.1:{port}")])
        .from("ci@sender.example")
        .to("a@rcpt.example,b@rcpt.example")
        .args(["--format", "junit"])
        .run();
    run.assert_exit(5);
    assert_valid_junit_text(&dir, "connect.xml", &run.stdout);
    assert_eq!(
        attr_of(&run.stdout, "testsuites", "failures").as_deref(),
        Some("2")
    );
    assert!(
        run.stdout.contains("<failure type=\"connect\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("kind: connection-refused"),
        "{}",
        run.stdout
    );

    // Bad input: one test case with an <error>.
    let run = Cmd::new()
        .args(["send", "--smart-host", "127.0.0.1:1", "--format", "junit"])
        .from("ci@sender.example")
        .to("a@rcpt.example")
        .args(["--header", "X-A: 1\r\nBcc: x@y.example"])
        .run();
    run.assert_exit(3);
    assert_valid_junit_text(&dir, "input.xml", &run.stdout);
    assert_eq!(
        attr_of(&run.stdout, "testsuites", "errors").as_deref(),
        Some("1")
    );
    assert!(
        run.stdout.contains("<error type=\"input\""),
        "{}",
        run.stdout
    );

    // A --quit-after probe that stops before RCPT: the recipients are skipped, not failed.
    let s = sink(Script::default());
    let run = generated(&s)
        .from("ci@sender.example")
        .to("a@rcpt.example")
        .args(["--quit-after", "ehlo", "--format", "junit"])
        .run();
    run.assert_exit(0);
    assert_valid_junit_text(&dir, "probe.xml", &run.stdout);
    assert_eq!(
        attr_of(&run.stdout, "testsuite", "skipped").as_deref(),
        Some("1")
    );
    assert!(
        run.stdout.contains("<skipped message=\"not offered"),
        "{}",
        run.stdout
    );
}

#[test]
fn mx_junit_validates() {
    let dir = TempDir::new("mx-junit");
    // Nothing answers DNS on this port: the domain's test case fails at dns.
    let port = {
        let l = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = Cmd::new()
        .args([
            "mx",
            "nomail.test",
            "--resolver",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--dns-timeout", "500ms", "--format", "junit"])
        .run();
    run.assert_exit(4);
    assert_valid_junit_text(&dir, "mx.xml", &run.stdout);
    assert!(run
        .stdout
        .contains("classname=\"smtpcheck.mx\" name=\"nomail.test\""));
    assert!(
        run.stdout.contains("<failure type=\"dns\""),
        "{}",
        run.stdout
    );
}

#[test]
fn mx_probe_verbose_text_and_junit_file() {
    let dir = TempDir::new("mx-verbose");
    let s = sink(Script::default());
    let zone = dns::TestDns::start("@ MX 10 mx1\nmx1 A 127.0.0.1\n");
    let xml = dir.path().join("mx.xml");
    let run = Cmd::new()
        .args([
            "mx", "test", "--probe", "-v", "--format", "junit", "--output",
        ])
        .arg(&xml)
        .args(["--resolver", &zone.addr().to_string()])
        .args([
            "--port",
            &s.addr().port().to_string(),
            "--helo",
            "test.example",
        ])
        .run();
    run.assert_exit(0);
    let out = &run.stdout;
    assert!(out.contains(";;   MX    10 mx1.test  127.0.0.1"), "{out}");
    assert!(
        out.contains(";;     greeting  220"),
        "probe steps with -v: {out}"
    );
    assert!(out.contains(";;     ehlo      250"), "{out}");
    assert!(run
        .last_line()
        .starts_with("Verdict: 1 of 1 domain(s) usable"));
    assert_valid_junit(&xml);
    let file = std::fs::read_to_string(&xml).unwrap();
    assert!(
        file.contains("<testcase classname=\"smtpcheck.mx\" name=\"test\""),
        "{file}"
    );
    assert_eq!(
        attr_of(&file, "testsuites", "failures").as_deref(),
        Some("0")
    );
}

#[test]
fn output_file_gets_the_format_and_the_terminal_the_text() {
    let dir = TempDir::new("output");
    let s = sink(Script::default().rcpt_for("nobody", Action::reply("550 5.1.1 no such user")));
    let to = "ok@rcpt.example,nobody@rcpt.example";
    // JSON in the file, text on stdout.
    let json = dir.path().join("report.json");
    let run = generated(&s)
        .from("ci@sender.example")
        .to(to)
        .json()
        .arg("--output")
        .arg(&json)
        .run();
    run.assert_exit(1);
    assert!(
        run.stdout.contains("-> MAIL FROM:<ci@sender.example>"),
        "{}",
        run.dump()
    );
    assert!(
        run.last_line().starts_with("Verdict: partial"),
        "{}",
        run.dump()
    );
    let file = std::fs::read_to_string(&json).unwrap();
    let report: JsonReport = serde_json::from_str(&file).expect("the file is the JSON report");
    assert_eq!(report.exit_code, 1);
    assert_eq!(report.recipients.len(), 2);
    // JUnit in the file (-o), quiet terminal.
    let xml = dir.path().join("report.xml");
    let run = generated(&s)
        .from("ci@sender.example")
        .to(to)
        .args(["--format", "junit", "-q", "-o"])
        .arg(&xml)
        .run();
    run.assert_exit(1);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.dump());
    assert_valid_junit(&xml);
    // Text in the file: the whole report, without colour even with --color always.
    let txt = dir.path().join("report.txt");
    let run = generated(&s)
        .from("ci@sender.example")
        .to(to)
        .args(["--format", "text", "--color", "always", "--output"])
        .arg(&txt)
        .run();
    run.assert_exit(1);
    let text = std::fs::read_to_string(&txt).unwrap();
    assert!(
        text.starts_with("smtpcheck: sending (generated test message)"),
        "{text}"
    );
    assert!(text.contains("<- 550 5.1.1 no such user"), "{text}");
    assert!(text
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("Verdict: partial"));
    assert!(!text.contains('\x1b'), "colour codes in the file: {text:?}");
    assert!(
        run.stdout.contains('\x1b'),
        "--color always colours the terminal"
    );
    // An --output that cannot be created is bad input, before any connection.
    let s2 = sink(Script::default());
    let run = generated(&s2)
        .from("ci@sender.example")
        .to("a@rcpt.example")
        .arg("--output")
        .arg(dir.path().join("no/such/dir/r.json"))
        .run();
    run.assert_exit(3);
    assert!(run.stderr.contains("--output"), "{}", run.dump());
    assert_no_connection(&s2);
}

#[test]
fn quiet_prints_only_the_verdict_and_verbose_adds_detail() {
    let s = sink(Script::default());
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ok@rcpt.example")
        .arg("-q")
        .run();
    run.assert_exit(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.dump());
    assert!(
        run.stdout.starts_with("Verdict: delivered"),
        "{}",
        run.dump()
    );

    let run = generated(&s)
        .from("ci@sender.example")
        .to("ok@rcpt.example")
        .arg("--verbose")
        .run();
    run.assert_exit(0);
    let out = &run.stdout;
    assert!(out.contains("<- 250 2.1.0 Ok  (mail "), "{out}");
    assert!(
        out.contains("  capabilities: PIPELINING, SIZE 10240000"),
        "{out}"
    );
    assert!(
        out.contains("SIZE:       10240000 bytes (10.2 MB)"),
        "{out}"
    );
    assert!(out.contains("\nElapsed: "), "{out}");
    assert!(run.last_line().starts_with("Verdict: delivered"));

    // -q and -v together are a usage error.
    generated(&s).arg("-q").arg("-v").run().assert_exit(2);

    // mx: the verdict line alone.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = Cmd::new()
        .args(["mx", "nomail.test", "-q", "--dns-timeout", "500ms"])
        .args(["--resolver", &format!("127.0.0.1:{port}")])
        .run();
    run.assert_exit(4);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.dump());
    assert!(run.stdout.starts_with("Verdict: 0 of 1 domain(s) usable"));
}

// ---------------------------------------------------------------------------------------------
// 3. Profiles and SMTPCHECK_* variables
// ---------------------------------------------------------------------------------------------

fn profile_file(dir: &TempDir, sink: &Sink) -> PathBuf {
    dir.write("config.toml", profile_text(sink))
}

fn profile_text(sink: &Sink) -> String {
    format!(
        r#"# smtpcheck profiles
[profile.sink]
smart_host = "{}"
helo = "profile.example"
from = "profile@sender.example"
to = ["one@rcpt.example", "two@rcpt.example"]
timeout = "20s"
tls = "off"

[profile.other]
helo = "other.example"
"#,
        sink.addr()
    )
}

#[test]
fn a_profile_supplies_options_and_the_command_line_wins() {
    let dir = TempDir::new("profile");
    let s = sink(Script::default());
    let cfg = profile_file(&dir, &s);
    let run = Cmd::new()
        .args(["send", "--profile", "sink", "--config"])
        .arg(&cfg)
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    assert_eq!(
        report.envelope.as_ref().unwrap().from,
        "profile@sender.example"
    );
    assert_eq!(report.recipients.len(), 2);
    let log = one_session(&s);
    assert_eq!(log.commands[0], "EHLO profile.example");

    // A flag on the command line wins over the profile.
    let s2 = sink(Script::default());
    let cfg2 = profile_file(&dir, &s2);
    let run = Cmd::new()
        .args(["send", "--profile", "sink", "--helo", "cli.example"])
        .args(["--to", "three@rcpt.example", "--config"])
        .arg(&cfg2)
        .json()
        .run();
    run.assert_exit(0);
    assert_eq!(run.report().recipients.len(), 1);
    assert_eq!(one_session(&s2).commands[0], "EHLO cli.example");
}

#[test]
fn precedence_command_line_then_profile_then_environment() {
    let dir = TempDir::new("precedence");
    let s = sink(Script::default());
    // The environment alone is enough for a whole check.
    let run = Cmd::new()
        .arg("send")
        .env("SMTPCHECK_SMART_HOST", s.addr().to_string())
        .env("SMTPCHECK_FROM", "env@sender.example")
        .env("SMTPCHECK_TO", "env@rcpt.example")
        .env("SMTPCHECK_HELO", "env.example")
        .env("SMTPCHECK_FORMAT", "json")
        .env("SMTPCHECK_QUIET", "1")
        .run();
    run.assert_exit(0);
    assert_eq!(
        run.report().envelope.as_ref().unwrap().from,
        "env@sender.example"
    );
    assert_eq!(one_session(&s).commands[0], "EHLO env.example");

    // The profile (chosen through the environment, found through XDG_CONFIG_HOME) wins over the
    // environment; the command line wins over both.
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("smtpcheck")).unwrap();
    let s = sink(Script::default());
    std::fs::write(xdg.join("smtpcheck/config.toml"), profile_text(&s)).unwrap();
    let run = Cmd::new()
        .args(["send", "--from", "cli@sender.example"])
        .env("XDG_CONFIG_HOME", &xdg)
        .env("SMTPCHECK_PROFILE", "sink")
        .env("SMTPCHECK_HELO", "env.example")
        .env("SMTPCHECK_FROM", "env@sender.example")
        .json()
        .run();
    run.assert_exit(0);
    assert_eq!(
        run.report().envelope.as_ref().unwrap().from,
        "cli@sender.example"
    );
    assert_eq!(one_session(&s).commands[0], "EHLO profile.example");

    // An empty variable counts as unset (CI systems pass undefined variables as empty).
    let s = sink(Script::default());
    generated(&s)
        .from("a@sender.example")
        .to("b@rcpt.example")
        .env("SMTPCHECK_AUTH_USER", "")
        .run()
        .assert_exit(0);
}

#[test]
fn profile_errors_are_bad_input_naming_the_file() {
    let dir = TempDir::new("profile-errors");
    let s = sink(Script::default());
    let cfg = profile_file(&dir, &s);
    let run = Cmd::new()
        .args(["send", "--profile", "nope", "--config"])
        .arg(&cfg)
        .json()
        .run();
    run.assert_exit(3);
    let f = run.report().failure().clone();
    assert_eq!(f.stage, "input");
    assert!(f.reason.contains(&cfg.display().to_string()), "{f:?}");
    assert!(
        f.reason
            .contains("there is no profile \"nope\" (it defines: other, sink)"),
        "{f:?}"
    );
    assert!(f.reason.contains("add a [profile.nope] section"), "{f:?}");

    let bad = dir.write("bad.toml", "[profile.sink\nsmart_host = 1\n");
    let run = Cmd::new()
        .args(["send", "--profile", "sink", "--config"])
        .arg(&bad)
        .run();
    run.assert_exit(3);
    assert!(
        run.stderr.contains("bad.toml") && run.stderr.contains("not valid TOML"),
        "{}",
        run.dump()
    );
    assert!(run.last_line().starts_with("Verdict: failed at input"));

    let bad = dir.write("badvalue.toml", "[profile.p]\nport = \"x\"\n");
    let run = Cmd::new()
        .args(["send", "--profile", "p", "--config"])
        .arg(&bad)
        .run();
    run.assert_exit(3);
    assert!(
        run.stderr.contains("profile \"p\"") && run.stderr.contains("--port"),
        "{}",
        run.dump()
    );

    let run = Cmd::new()
        .args(["send", "--profile", "p", "--config"])
        .arg(dir.path().join("missing.toml"))
        .run();
    run.assert_exit(3);
    assert!(
        run.stderr.contains("missing.toml") && run.stderr.contains("[profile.p]"),
        "{}",
        run.dump()
    );
    assert_no_connection(&s);
}

#[test]
fn help_shows_the_environment_variables() {
    let run = Cmd::new().args(["send", "--help"]).run();
    run.assert_exit(0);
    for var in [
        "SMTPCHECK_SMART_HOST",
        "SMTPCHECK_FROM",
        "SMTPCHECK_TO",
        "SMTPCHECK_TLS",
        "SMTPCHECK_FORMAT",
        "SMTPCHECK_PROFILE",
        "SMTPCHECK_AUTH_PASSWORD_FILE",
    ] {
        assert!(
            run.stdout.contains(&format!("[env: {var}")),
            "{var} missing"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Colour and the terminal
// ---------------------------------------------------------------------------------------------

#[test]
fn no_colour_when_piped_unless_asked() {
    let s = sink(Script::default().rcpt_for("nobody", Action::reply("550 5.1.1 no")));
    let base = || {
        generated(&s)
            .from("ci@sender.example")
            .to("nobody@rcpt.example")
    };
    let run = base().run();
    run.assert_exit(13);
    assert!(!run.stdout.contains('\x1b'), "escape codes in a pipe");
    let run = base().env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1").run();
    assert!(
        !run.stdout.contains('\x1b'),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    let run = base().args(["--color", "always"]).run();
    run.assert_exit(13);
    let out = &run.stdout;
    assert!(
        out.contains("\x1b[36m-> MAIL FROM:"),
        "sent lines are cyan: {out:?}"
    );
    assert!(
        out.contains("\x1b[31m<- 550 5.1.1 no"),
        "5xx replies are red: {out:?}"
    );
    let last = run.last_line();
    assert!(last.starts_with("\x1b[1m\x1b[31mVerdict: failed") || last.contains("Verdict: failed"));
    assert!(
        last.starts_with('\x1b') && last.ends_with("\x1b[0m"),
        "{last:?}"
    );
    let run = base()
        .args(["--color", "never"])
        .env("CLICOLOR_FORCE", "1")
        .run();
    assert!(!run.stdout.contains('\x1b'));
}

/// Runs the binary on a pseudo-terminal through `script`, returning what the terminal showed.
fn on_terminal(args: &[String], envs: &[(&str, &str)]) -> Option<String> {
    if !have("script", &["--version"]) {
        return None;
    }
    let quoted: Vec<String> = std::iter::once(BIN.to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTPCHECK_") {
            cmd.env_remove(name);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script runs");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_colour_and_a_ticker_for_slow_replies() {
    // The greeting drips in over about 1.6 s: long enough for the ticker.
    let slow = Script {
        greeting: Action::Drip(
            b"220 slow.test ESMTP\r\n".to_vec(),
            Duration::from_millis(80),
        ),
        ..Script::default()
    };
    let s = sink(slow);
    let args: Vec<String> = [
        "send",
        "--smart-host",
        &s.addr().to_string(),
        "--from",
        "ci@sender.example",
        "--to",
        "ok@rcpt.example",
        "--helo",
        "test.example",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let Some(screen) = on_terminal(&args, &[]) else {
        return;
    };
    assert!(
        screen.contains("waiting for the greeting: 1."),
        "{screen:?}"
    );
    assert!(
        screen.contains("\r\x1b[2K"),
        "the status line is erased: {screen:?}"
    );
    assert!(
        screen.contains("\x1b[36m-> EHLO test.example"),
        "colour on a terminal: {screen:?}"
    );
    let last = screen.trim_end().lines().last().unwrap_or("");
    assert!(
        last.contains("Verdict: delivered") && last.contains("(exit 0)"),
        "{last:?}"
    );

    // NO_COLOR on a terminal: no colour, the ticker still shows.
    let s = sink(Script {
        greeting: Action::Drip(
            b"220 slow.test ESMTP\r\n".to_vec(),
            Duration::from_millis(80),
        ),
        ..Script::default()
    });
    let mut args2 = args.clone();
    args2[2] = s.addr().to_string();
    let screen = on_terminal(&args2, &[("NO_COLOR", "1")]).unwrap();
    assert!(!screen.contains("\x1b[36m"), "{screen:?}");
    assert!(screen.contains("waiting for the greeting"), "{screen:?}");

    // Piped: no ticker at all.
    let s = sink(Script {
        greeting: Action::Drip(
            b"220 slow.test ESMTP\r\n".to_vec(),
            Duration::from_millis(80),
        ),
        ..Script::default()
    });
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ok@rcpt.example")
        .run();
    run.assert_exit(0);
    assert!(
        !run.stdout.contains("waiting for") && !run.stdout.contains('\r'),
        "{}",
        run.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Completions and the man page
// ---------------------------------------------------------------------------------------------

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = Cmd::new().args(["completions", shell]).run();
        run.assert_exit(0);
        assert!(run.stdout.len() > 1000, "{shell}: {}", run.dump());
        assert!(run.stdout.contains("send"), "{shell}");
        assert!(run.stdout.contains("smart-host"), "{shell}");
        assert!(run.stdout.contains("junit"), "{shell}: format values");
    }
    Cmd::new()
        .args(["completions", "tcsh"])
        .run()
        .assert_exit(2);
    if have("bash", &["--version"]) {
        let dir = TempDir::new("bash-completion");
        let script = dir.write(
            "smtpcheck.bash",
            Cmd::new().args(["completions", "bash"]).run().stdout,
        );
        let st = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .status()
            .unwrap();
        assert!(st.success(), "bash -n rejects the completion script");
    }
}

#[test]
fn man_page_is_generated() {
    let run = Cmd::new().arg("man").run();
    run.assert_exit(0);
    let page = &run.stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH smtpcheck 1"),
        "{page}"
    );
    assert!(
        page.contains(".TH smtpcheck 1"),
        "{}",
        &page[..page.len().min(500)]
    );
    assert!(page.contains("send"));
    assert!(
        page.contains("smart\\-host"),
        "options of send are on the page"
    );
    assert!(
        page.contains("SMTPCHECK_SMART_HOST"),
        "with their variables"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""));
    assert!(page.contains("EHLO and HELO refused"));
    assert!(page.contains(".SH ENVIRONMENT") && page.contains("SMTPCHECK_PASSWORD"));
    // An extra check where groff is installed (it comes with man-db); not required.
    if runs("groff", &["--version"]) {
        let dir = TempDir::new("man");
        let p = dir.write("smtpcheck.1", page);
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The examples
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_codes_script_is_shellcheck_clean_and_branches_on_the_code() {
    let script = root().join("examples/exit-codes.sh");
    if have("shellcheck", &["--version"]) {
        let out = Command::new("shellcheck").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    if !have("bash", &["--version"]) {
        return;
    }
    let s = sink(Script::default().rcpt_for("nobody", Action::reply("550 5.1.1 no such user")));
    let run_script = |rcpt: &str| {
        Command::new("bash")
            .arg(&script)
            .arg(rcpt)
            .args(["--helo", "test.example"])
            .env("SMTPCHECK", BIN)
            .env("SMTPCHECK_SMART_HOST", s.addr().to_string())
            .env("SMTPCHECK_FROM", "ci@sender.example")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = run_script("ok@rcpt.example");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Verdict: delivered") && text.contains("OK: the server accepted"),
        "{text}"
    );
    let refused = run_script("nobody@rcpt.example");
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(13), "{text}");
    assert!(
        text.contains("REFUSED: the server said no (exit 13)"),
        "{text}"
    );
    let usage = Command::new("bash").arg(&script).output().unwrap();
    assert_eq!(usage.status.code(), Some(64));
}

#[test]
fn jq_example_reads_the_json_report() {
    if !have("jq", &["--version"]) {
        return;
    }
    let s = sink(Script::default().rcpt_for("nobody", Action::reply("550 5.1.1 no such user")));
    let run = generated(&s)
        .from("ci@sender.example")
        .to("ok@rcpt.example,nobody@rcpt.example")
        .json()
        .run();
    run.assert_exit(1);
    let mut jq = Command::new("jq")
        .args(["-r", "-f"])
        .arg(root().join("examples/recipients.jq"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        jq.stdin
            .take()
            .unwrap()
            .write_all(run.stdout.as_bytes())
            .unwrap();
    }
    let out = jq.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "accepted  ok@rcpt.example  250 2.1.5 Ok",
            "REFUSED   nobody@rcpt.example  550 5.1.1 no such user",
            "partial, exit 1 at rcpt: Check the recipient address for typos; ask the recipient for the right address.",
        ]
    );
}

#[test]
fn ci_examples_are_valid_yaml_that_publish_junit() {
    let gh = std::fs::read_to_string(root().join("examples/ci/github-actions.yml")).unwrap();
    let gl = std::fs::read_to_string(root().join("examples/ci/gitlab-ci.yml")).unwrap();
    for text in [&gh, &gl] {
        assert!(text.contains("--format junit --output smtpcheck-junit.xml"));
        assert!(text.contains("cargo install --locked"));
        assert!(!text.contains('\t'), "YAML has no tabs");
    }
    assert!(gh.contains("report_paths: smtpcheck-junit.xml"));
    assert!(gl.contains("junit: smtpcheck-junit.xml"));
    if !have("python3", &["--version"]) {
        return;
    }
    let check = r#"
import sys
try:
    import yaml
except ImportError:
    print("no-yaml")
    sys.exit(0)
gh = yaml.safe_load(open(sys.argv[1]))
gl = yaml.safe_load(open(sys.argv[2]))
on = gh.get("on", gh.get(True))
assert "workflow_dispatch" in on, on
steps = gh["jobs"]["smtp"]["steps"]
assert any("smtpcheck send" in s.get("run", "") for s in steps), steps
job = gl["mail-smoke-test"]
assert job["artifacts"]["reports"]["junit"] == "smtpcheck-junit.xml", job
assert any("smtpcheck send" in line for line in job["script"]), job
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .arg(root().join("examples/ci/github-actions.yml"))
        .arg(root().join("examples/ci/gitlab-ci.yml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if said.trim() == "no-yaml" {
        assert!(
            !under_ci(),
            "python3-yaml is required under CI (scripts/test.sh installs it)"
        );
        note("Python's yaml module is missing; the YAML was not parsed");
    }
}

#[test]
fn readme_references_every_example() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for f in [
        "examples/ci/github-actions.yml",
        "examples/ci/gitlab-ci.yml",
        "examples/exit-codes.sh",
        "examples/recipients.jq",
    ] {
        assert!(readme.contains(f), "README does not mention {f}");
        assert!(root().join(f).is_file(), "{f} is missing");
    }
}
