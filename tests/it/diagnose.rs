//! Diagnosis features through the built binary: hints, pre-flight checks, --quit-after, DSN,
//! the protocol log and retries.

use crate::common::*;
use smtpcheck_sink::{Action, Script};

fn ehlo_with(extra: &[&str]) -> Action {
    let mut lines = vec![
        "sink.test greets you",
        "PIPELINING",
        "SIZE 10240000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ];
    lines.extend_from_slice(extra);
    Action::lines(250, &lines)
}

#[test]
fn refused_recipient_comes_with_cause_and_next_step() {
    let s = sink(Script::default().rcpt_for(
        "nobody@",
        Action::reply("550 5.1.1 <nobody@example.com>: Recipient address rejected"),
    ));
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("nobody@example.com")
        .json()
        .run();
    run.assert_exit(13);
    let report = run.report();
    assert_consistent(&report, &run);
    let f = report.failure();
    assert!(f.hint.cause.contains("mailbox does not exist"), "{f:?}");
    assert!(
        f.hint.next_step.contains("Check the recipient address"),
        "{f:?}"
    );

    let text = Cmd::send_to_sink(&s, example_eml())
        .to("nobody@example.com")
        .run();
    assert!(
        text.stdout
            .contains("Cause:     The mailbox does not exist"),
        "{}",
        text.dump()
    );
    assert!(text
        .stdout
        .contains("Next step: Check the recipient address"));
    assert!(text.last_line().starts_with("Verdict: failed at rcpt"));
}

#[test]
fn relay_denied_and_connect_refused_hints() {
    let s = sink(Script::default().rcpt_for(
        "far@",
        Action::reply("554 5.7.1 <far@other.example>: Relay access denied"),
    ));
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("far@other.example")
        .json()
        .run();
    run.assert_exit(13);
    assert!(run
        .report()
        .failure()
        .hint
        .cause
        .contains("Relaying denied"));

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = Cmd::send(format!("127.0.0.1:{port}"), example_eml())
        .to("a@b.example")
        .json()
        .run();
    run.assert_exit(5);
    let f = run.report().failure().clone();
    assert_eq!(f.kind.as_deref(), Some("connection-refused"));
    assert!(
        f.hint.cause.contains("Nothing accepts connections"),
        "{f:?}"
    );
}

#[test]
fn preflight_warnings_reach_the_report() {
    let dir = TempDir::new("preflight");
    let long = "x".repeat(1500);
    let eml = dir.write(
        "m.eml",
        format!("From: a@sender.example\r\nTo: r@example.com\r\nBcc: hidden@example.com\r\nSubject: t\r\n\r\n{long}\r\n"),
    );
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, &eml)
        .to("r@example.com")
        .from("bounce@other.example")
        .json()
        .run();
    run.assert_exit(0);
    let w = run.report().warnings.join("\n");
    for expected in [
        "longer than 998",
        "Bcc header",
        "no Date header",
        "no Message-ID header",
        "differs from the envelope sender",
    ] {
        assert!(
            w.contains(expected),
            "missing {expected:?} in warnings:\n{w}"
        );
    }
}

#[test]
fn quit_after_rcpt_tests_recipients_without_sending() {
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("user@example.com")
        .arg("--quit-after")
        .arg("rcpt")
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    assert_consistent(&report, &run);
    assert_eq!(report.outcome, "probed");
    assert_eq!(report.recipients[0].status, "rcpt-accepted");
    assert!(!report.recipients[0].accepted, "nothing was delivered");
    assert!(report.queued_as.is_none());
    let log = one_session(&s);
    assert_eq!(log.verbs(), ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]);
    assert!(log.messages.is_empty(), "no message may be sent");
}

#[test]
fn quit_after_rcpt_reports_refused_recipients() {
    let s = sink(Script::default().rcpt_for("bad@", Action::reply("550 5.1.1 no such user")));
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("good@example.com,bad@example.com")
        .arg("--quit-after")
        .arg("rcpt")
        .json()
        .run();
    run.assert_exit(1);
    let report = run.report();
    assert_consistent(&report, &run);
    assert_eq!(report.outcome, "probed");
    let statuses: Vec<&str> = report
        .recipients
        .iter()
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(statuses, ["rcpt-accepted", "refused"]);
    let log = one_session(&s);
    assert!(!log.verbs().contains(&"DATA".to_string()));

    let all_bad = Cmd::send_to_sink(&s, example_eml())
        .to("bad@example.com")
        .arg("--quit-after")
        .arg("rcpt")
        .run();
    all_bad.assert_exit(13);
    assert!(
        all_bad.stdout.contains("smtpcheck: probing"),
        "{}",
        all_bad.dump()
    );
    assert!(
        all_bad.last_line().contains("nothing was sent"),
        "{}",
        all_bad.dump()
    );
}

#[test]
fn quit_after_earlier_stages() {
    for (stage, verbs) in [
        ("greeting", vec!["QUIT"]),
        ("ehlo", vec!["EHLO", "QUIT"]),
        ("mail", vec!["EHLO", "MAIL", "RSET", "QUIT"]),
    ] {
        let s = sink(Script::default());
        let run = Cmd::send_to_sink(&s, example_eml())
            .to("u@example.com")
            .arg("--quit-after")
            .arg(stage)
            .json()
            .run();
        run.assert_exit(0);
        assert_eq!(run.report().outcome, "probed");
        assert_eq!(one_session(&s).verbs(), verbs, "--quit-after {stage}");
    }
}

#[test]
fn dsn_parameters_only_when_advertised() {
    let with_dsn = sink(Script {
        ehlo: ehlo_with(&["DSN"]),
        ..Script::default()
    });
    let args = [
        "--notify",
        "success,failure",
        "--ret",
        "hdrs",
        "--envid",
        "report-47",
    ];
    let run = Cmd::send_to_sink(&with_dsn, example_eml())
        .to("u@example.com")
        .args(args)
        .json()
        .run();
    run.assert_exit(0);
    let log = one_session(&with_dsn);
    let mail = commands_with_verb(&log, "MAIL")[0].to_string();
    assert!(
        mail.contains(" RET=HDRS") && mail.contains(" ENVID=report-47"),
        "{mail}"
    );
    let rcpt = commands_with_verb(&log, "RCPT")[0].to_string();
    assert!(rcpt.ends_with(" NOTIFY=SUCCESS,FAILURE"), "{rcpt}");

    let without = sink(Script::default());
    let run = Cmd::send_to_sink(&without, example_eml())
        .to("u@example.com")
        .args(args)
        .json()
        .run();
    run.assert_exit(0);
    let log = one_session(&without);
    assert!(!commands_with_verb(&log, "RCPT")[0].contains("NOTIFY"));
    assert!(!commands_with_verb(&log, "MAIL")[0].contains("RET="));
    assert!(run
        .report()
        .warnings
        .iter()
        .any(|w| w.contains("does not advertise DSN")));
}

#[test]
fn bad_dsn_flags_are_usage_errors() {
    for args in [
        ["--notify", "sometimes"],
        ["--notify", "never,success"],
        ["--envid", "has space"],
    ] {
        let run = Cmd::send("127.0.0.1:9", example_eml())
            .to("u@example.com")
            .args(args)
            .run();
        run.assert_exit(2);
    }
}

#[test]
fn log_file_has_every_transcript_line() {
    let dir = TempDir::new("log");
    let log_path = dir.path().join("run.log");
    let s = sink(Script::default().rcpt_for("bad@", Action::reply("550 5.1.1 no such user")));
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("good@example.com,bad@example.com")
        .arg("--log")
        .arg(&log_path)
        .run();
    run.assert_exit(1);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let mut checked = 0;
    for line in run.stdout.lines() {
        let (event, text) = match line.split_at(line.len().min(3)) {
            ("-> ", t) if !t.starts_with("[message data") => ("SEND", t),
            ("<- ", t) => ("RECV", t),
            _ => continue,
        };
        let wanted = format!("] {event} {text}");
        assert!(
            log.lines().any(|l| l.ends_with(&wanted)),
            "log lacks {wanted:?}:\n{log}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "too few transcript lines checked: {checked}");
    let first = log.lines().next().unwrap();
    assert!(first.contains(" [-] START smtpcheck "), "{first}");
    let last = log.lines().last().unwrap();
    assert!(last.contains(" [-] VERDICT Verdict: partial"), "{last}");
    assert!(last.ends_with("(exit 1)"));
    // Every line starts with an RFC 3339 UTC timestamp with milliseconds.
    for l in log.lines() {
        let ts = l.split(' ').next().unwrap();
        assert_eq!(ts.len(), 24, "{l}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{l}");
    }
}

#[test]
fn unopenable_log_file_is_bad_input() {
    let dir = TempDir::new("badlog");
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("u@example.com")
        .arg("--log")
        .arg(dir.path().join("no/such/dir/run.log"))
        .run();
    run.assert_exit(3);
    assert!(run.stderr.contains("--log"), "{}", run.dump());
    assert_no_connection(&s);
}

#[test]
fn retry_repeats_transient_failures_only() {
    // A permanent failure is not retried.
    let s = sink(Script::default().rcpt_for("bad@", Action::reply("550 5.1.1 no such user")));
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("bad@example.com")
        .args(["--retry", "2", "--retry-delay", "10ms"])
        .json()
        .run();
    run.assert_exit(13);
    assert_eq!(run.report().rounds.len(), 1);
    assert_eq!(s.wait_sessions(1, SINK_WAIT).len(), 1);

    // A transient one is, up to --retry more times, and every round is reported.
    let busy = sink(Script {
        greeting: Action::reply("421 4.3.2 busy, try later"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&busy, example_eml())
        .to("u@example.com")
        .args(["--retry", "2", "--retry-delay", "10ms"])
        .json()
        .run();
    run.assert_exit(30);
    let report = run.report();
    assert_consistent(&report, &run);
    let rounds: Vec<(u32, u8)> = report
        .rounds
        .iter()
        .map(|r| (r.round, r.exit_code))
        .collect();
    assert_eq!(rounds, [(1, 30), (2, 30), (3, 30)]);
    assert_eq!(busy.wait_sessions(3, SINK_WAIT).len(), 3);
}

#[test]
fn retry_delivers_once_the_server_comes_up() {
    // 421 twice, then a normal 220: delivered on the third round.
    let s = sink(Script {
        greetings: vec![
            Action::reply("421 4.3.2 not yet"),
            Action::reply("421 4.3.2 not yet"),
        ],
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("u@example.com")
        .args(["--retry", "3", "--retry-delay", "10ms"])
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    assert_consistent(&report, &run);
    let rounds: Vec<(u32, &str, u8)> = report
        .rounds
        .iter()
        .map(|r| (r.round, r.outcome.as_str(), r.exit_code))
        .collect();
    assert_eq!(
        rounds,
        [(1, "failed", 30), (2, "failed", 30), (3, "delivered", 0)]
    );
    let sessions = s.wait_sessions(3, SINK_WAIT);
    assert_eq!(sessions.len(), 3);
    assert_eq!(
        sessions.iter().filter(|l| !l.messages.is_empty()).count(),
        1
    );

    // The text report says why each new round started.
    let s = sink(Script {
        greetings: vec![Action::reply("421 4.3.2 not yet")],
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("u@example.com")
        .args(["--retry", "1", "--retry-delay", "10ms"])
        .run();
    run.assert_exit(0);
    assert!(
        run.stdout
            .contains("round 1 ended in a transient failure; waiting 10 ms before round 2"),
        "{}",
        run.dump()
    );
}
