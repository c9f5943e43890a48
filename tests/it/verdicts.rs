//! Verdicts that never mislead (issue 14), through the built binary against the scripted sink and
//! the in-process DNS: recipient statuses, every failure listed, the step where smtpcheck stopped,
//! recipient limits, hints by the server's words, probes, usage errors as JSON, temporary exit
//! codes, bad MX data and `--helo`, queue ids.

use crate::common::dns::TestDns;
use crate::common::{
    example_eml, one_session, sink, under_ci, Action, Cmd, JsonReport, Run, Script, Sink,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `smtpcheck send` to the sink, `--to` each of `to`, as JSON.
fn send_json(s: &Sink, to: &[&str], extra: &[&str]) -> (Run, JsonReport) {
    let run = Cmd::send_to_sink(s, example_eml())
        .to(&to.join(","))
        .args(extra)
        .json()
        .run();
    let report = run.report();
    (run, report)
}

/// A reply as the provider sends it: Gmail's `550-5.7.26 …` is the first line of a multi-line
/// reply, whose last line repeats the codes.
fn provider(line: &str) -> Action {
    match line.as_bytes().get(3) {
        Some(b'-') => Action::Reply(vec![
            line.to_string(),
            format!(
                "{} {} https://support.google.com/mail/?p=x - gsmtp",
                &line[..3],
                &line[4..].split(' ').next().unwrap_or("")
            ),
        ]),
        _ => Action::reply(line),
    }
}

/// The statuses of the report's recipients, in order.
fn statuses(r: &JsonReport) -> Vec<&str> {
    r.recipients.iter().map(|x| x.status.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Recipient status
// ---------------------------------------------------------------------------------------------

#[test]
fn recipients_never_tried_are_not_tried_not_refused() {
    // Nothing listens: connection refused, the recipient was never offered.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = Cmd::send(format!("127.0.0.1:{port}"), example_eml())
        .helo("test.example")
        .to("alice@example.com")
        .json()
        .run();
    run.assert_exit(5);
    let report = run.report();
    let r = &report.recipients[0];
    assert_eq!((r.status.as_str(), r.accepted), ("not-tried", false));
    assert!(
        r.reason.as_deref().is_some_and(|w| w.contains("refused")),
        "{r:?}"
    );
    let text = Cmd::send(format!("127.0.0.1:{port}"), example_eml())
        .helo("test.example")
        .to("alice@example.com")
        .run();
    assert!(text.stdout.contains("not-tried"), "{}", text.dump());
    assert!(!text.stdout.contains("refused   alice"), "{}", text.dump());
}

#[test]
fn a_probe_before_rcpt_leaves_recipients_not_tried_with_its_reason() {
    let s = sink(Script::default());
    let (run, report) = send_json(&s, &["alice@example.com"], &["--quit-after", "ehlo"]);
    run.assert_exit(0);
    assert_eq!(report.outcome, "probed");
    assert_eq!(statuses(&report), ["not-tried"]);
    let why = report.recipients[0].reason.as_deref().unwrap_or("");
    assert!(why.contains("--quit-after ehlo"), "{why}");
    assert!(report.failures.is_empty());
}

#[test]
fn refused_deferred_and_delivered_are_told_apart() {
    let s = sink(
        Script::default()
            .rcpt_for(
                "gone@",
                Action::reply("550 5.1.1 <gone@example.com>: User unknown"),
            )
            .rcpt_for(
                "grey@",
                Action::reply("451 4.7.1 Greylisted, try again later"),
            ),
    );
    let (run, report) = send_json(
        &s,
        &["ok@example.com", "gone@example.com", "grey@example.com"],
        &[],
    );
    run.assert_exit(1);
    assert_eq!(statuses(&report), ["delivered", "refused", "deferred"]);
    assert!(report.recipients[0].accepted);
}

// ---------------------------------------------------------------------------------------------
// 2. Every failure in the verdict
// ---------------------------------------------------------------------------------------------

#[test]
fn two_recipients_refused_for_different_reasons_are_both_listed() {
    let s = sink(
        Script::default()
            .rcpt_for(
                "a@",
                Action::reply("550 5.1.1 <a@example.com>: User unknown"),
            )
            .rcpt_for(
                "b@",
                Action::reply("554 5.7.1 <b@example.com>: Relay access denied"),
            ),
    );
    let (run, report) = send_json(&s, &["a@example.com", "b@example.com"], &[]);
    run.assert_exit(13);
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    assert_eq!(report.failures[0].recipients, ["a@example.com"]);
    assert_eq!(report.failures[0].enhanced.as_deref(), Some("5.1.1"));
    assert_eq!(report.failures[1].recipients, ["b@example.com"]);
    assert!(report.failures[1].hint.cause.contains("Relaying denied"));
    let text = Cmd::send_to_sink(&s, example_eml())
        .to("a@example.com,b@example.com")
        .run();
    assert!(text.stdout.contains("Failures:"), "{}", text.dump());
    assert!(text.stdout.contains("User unknown"), "{}", text.dump());
    assert!(
        text.stdout.contains("Relay access denied"),
        "{}",
        text.dump()
    );
    assert!(
        text.last_line().contains("and 1 other failure(s)"),
        "{}",
        text.dump()
    );
}

#[test]
fn two_domains_failing_differently_are_both_listed() {
    // b.test's server says 421; nope.test does not exist.
    let busy = Script {
        greeting: Action::reply("421 4.3.2 busy"),
        ..Script::default()
    };
    let s = smtpcheck_sink::Sink::bind(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 241, 2)), 0),
        busy,
    )
    .expect("bind");
    let dns = TestDns::start("b MX 10 mx\nmx A 127.0.241.2\n");
    let run = Cmd::new()
        .args([
            "send",
            "--eml",
            &example_eml().display().to_string(),
            "--from",
            "ci@example.com",
            "--helo",
            "client.test",
            "--resolver",
            &dns.addr().to_string(),
            "--port",
            &s.addr().port().to_string(),
            "--to",
            "x@nope.test,y@b.test",
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(4);
    let report = run.report();
    let got: Vec<(Option<&str>, &str, &str)> = report
        .failures
        .iter()
        .map(|f| (f.domain.as_deref(), f.stage.as_str(), f.class.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("nope.test"), "dns", "permanent"),
            (Some("b.test"), "greeting", "transient")
        ]
    );
    assert_eq!(report.failures[1].recipients, ["y@b.test"]);
}

// ---------------------------------------------------------------------------------------------
// 3. The step where smtpcheck stopped is a failed step
// ---------------------------------------------------------------------------------------------

#[test]
fn a_message_over_size_is_a_failed_mail_step() {
    let s = sink(Script {
        ehlo: Action::lines(250, &["sink.test", "SIZE 100"]),
        ..Script::default()
    });
    let (run, report) = send_json(&s, &["a@example.com"], &[]);
    run.assert_exit(15);
    let step = report.step("mail");
    assert!(!step.ok);
    assert!(step.sent.is_none(), "nothing was sent: {step:?}");
    assert!(
        step.error
            .as_deref()
            .is_some_and(|e| e.contains("not sent")),
        "{step:?}"
    );
    assert_eq!(step.error_kind.as_deref(), Some("too-large"));
    assert_eq!(one_session(&s).verbs(), ["EHLO", "QUIT"]);
}

#[test]
fn auth_not_offered_is_a_failed_auth_step_pointing_to_587() {
    let s = sink(Script::default());
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("a@example.com")
        .args(["--auth-user", "bob", "--allow-plain-auth"])
        .env("SMTPCHECK_PASSWORD", "secret-pw-1")
        .json()
        .run();
    run.assert_exit(7);
    let report = run.report();
    let f = report.failure();
    assert_eq!(f.kind.as_deref(), Some("no-auth"));
    assert!(f.hint.next_step.contains("587"), "{:?}", f.hint);
    assert!(!f.hint.cause.contains("did not succeed"), "{:?}", f.hint);
    assert!(!report.step("auth").ok);
}

// ---------------------------------------------------------------------------------------------
// 4. Recipient limits (RFC 5321 4.5.3.1.10)
// ---------------------------------------------------------------------------------------------

fn limited(n: usize, line: &str) -> Sink {
    sink(Script {
        rcpt_limit: Some((n, Action::reply(line))),
        ..Script::default()
    })
}

#[test]
fn recipients_over_the_limit_go_in_further_transactions_once_each() {
    for line in [
        "452 4.5.3 Too many recipients",
        "451 4.5.3 Too many recipients",
    ] {
        let s = limited(3, line);
        let to: Vec<String> = (1..=7).map(|i| format!("r{i}@example.com")).collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let (run, report) = send_json(&s, &to, &[]);
        run.assert_exit(0);
        assert_eq!(report.outcome, "delivered");
        assert!(report.recipients.iter().all(|r| r.status == "delivered"));
        assert_eq!(report.recipients.len(), 7);
        let log = one_session(&s);
        assert_eq!(log.messages.len(), 3, "3 + 3 + 1 recipients: {log:#?}");
        // Every recipient accepted exactly once: no duplicates.
        let accepted_rcpts: Vec<&String> = log
            .commands
            .iter()
            .filter(|c| c.starts_with("RCPT"))
            .collect();
        for r in &to {
            let n = accepted_rcpts.iter().filter(|c| c.contains(r)).count();
            assert!(n <= 2, "{r} offered {n} times: {log:#?}");
        }
        assert_eq!(accepted_rcpts.len(), 7 + 2, "two limit replies: {log:#?}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("not greylisting")),
            "{:?}",
            report.warnings
        );
    }
}

#[test]
fn a_limit_on_the_first_recipient_stops_and_is_temporary() {
    let s = limited(0, "452 4.5.3 Too many recipients");
    let (run, report) = send_json(&s, &["a@example.com", "b@example.com"], &[]);
    run.assert_exit(33);
    assert_eq!(statuses(&report), ["deferred", "not-tried"]);
    assert!(report.failure().hint.cause.contains("not greylisting"));
    assert_eq!(report.failure().class, "transient");
}

// ---------------------------------------------------------------------------------------------
// 5. Hints by the server's words and 2026 provider codes
// ---------------------------------------------------------------------------------------------

/// Each case: where the reply comes, the provider's wording, and a phrase of the expected hint.
#[test]
fn provider_replies_get_their_own_hint() {
    enum At {
        Greeting,
        Mail,
        Rcpt,
        Message,
    }
    let cases: &[(At, &str, &str)] = &[
        (At::Mail, "530 5.7.0 Must issue a STARTTLS command first", "requires STARTTLS"),
        (At::Mail, "530 5.5.1 Invalid command: Must issue a STARTTLS command first", "requires STARTTLS"),
        (At::Mail, "530 5.7.0 Authentication required", "requires authentication"),
        (At::Mail, "530 5.7.57 Client not authenticated to send mail during MAIL FROM", "not authenticated"),
        (At::Message, "550 5.7.60 SMTP; Client does not have permissions to send as this sender", "SendAs"),
        (At::Message, "550 5.7.515 Access denied, sending domain example.com doesn't meet the required authentication level", "high-volume"),
        (At::Message, "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy", "DMARC"),
        (At::Message, "550-5.7.27 SPF check for example.com does not pass with ip 192.0.2.1", "failed SPF"),
        (At::Mail, "550 5.7.27 Sender address has null MX", "null MX"),
        (At::Mail, "550-5.7.25 The IP address sending this message does not have a PTR record setup", "PTR"),
        (At::Greeting, "421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address", "rate-limiting"),
        (At::Message, "550-5.7.28 There's an unusual rate of unsolicited mail originating from your IP address", "reputation"),
        (At::Greeting, "421 4.7.0 Try again later, closing connection.", "Try again later"),
        (At::Rcpt, "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "DNS blocklist"),
        (At::Greeting, "554 5.7.1 Your address 192.0.2.1 is listed at bl.example.org", "blocklist"),
        (At::Rcpt, "452 4.5.3 Too many recipients", "not greylisting"),
    ];
    for (at, line, phrase) in cases {
        let action = provider(line);
        let script = match at {
            At::Greeting => Script {
                greeting: action,
                ..Script::default()
            },
            At::Mail => Script {
                mail: action,
                ..Script::default()
            },
            At::Rcpt => Script {
                rcpt: action,
                ..Script::default()
            },
            At::Message => Script {
                end_of_data: action,
                ..Script::default()
            },
        };
        let s = sink(script);
        let (_, report) = send_json(&s, &["a@example.com"], &[]);
        let hint = &report.failure().hint;
        assert!(
            hint.cause.contains(phrase) || hint.next_step.contains(phrase),
            "{line}: {hint:?}"
        );
    }
}

#[test]
fn provider_auth_replies_get_their_own_hint() {
    let cases = [
        ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", "SMTP AUTH is disabled"),
        ("535 5.7.3 Authentication unsuccessful", "user name or password"),
        ("550 5.7.30 Basic authentication is not supported for Client Submission.", "OAuth"),
        ("534-5.7.9 Application-specific password required.", "app password"),
        ("535-5.7.8 Username and Password not accepted.", "user name or password"),
    ];
    for (line, phrase) in cases {
        // The sink has no AUTH of its own: the AUTH command gets the "unknown command" answer.
        let s = sink(Script {
            ehlo: Action::lines(250, &["sink.test", "AUTH PLAIN LOGIN"]),
            unknown: provider(line),
            ..Script::default()
        });
        let run = Cmd::send_to_sink(&s, example_eml())
            .to("a@example.com")
            .args(["--auth-user", "bob", "--allow-plain-auth"])
            .env("SMTPCHECK_PASSWORD", "secret-pw-2")
            .json()
            .run();
        let report = run.report();
        let hint = &report.failure().hint;
        assert!(
            hint.cause.contains(phrase) || hint.next_step.contains(phrase),
            "{line}: {hint:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Probes read as probes
// ---------------------------------------------------------------------------------------------

#[test]
fn quit_after_rcpt_is_a_probe_with_exit_0_1_13() {
    let s = sink(Script::default().rcpt_for("bad@", Action::reply("550 5.1.1 no such user")));
    for (to, code, status) in [
        (&["good@example.com"][..], 0, &["rcpt-accepted"][..]),
        (
            &["good@example.com", "bad@example.com"][..],
            1,
            &["rcpt-accepted", "refused"][..],
        ),
        (&["bad@example.com"][..], 13, &["refused"][..]),
    ] {
        let (run, report) = send_json(&s, to, &["--quit-after", "rcpt"]);
        run.assert_exit(code);
        assert_eq!(report.outcome, "probed", "{}", run.dump());
        assert_eq!(statuses(&report), status);
        assert!(report.queued_as.is_none());
    }
    let text = Cmd::send_to_sink(&s, example_eml())
        .to("good@example.com,bad@example.com")
        .args(["--quit-after", "rcpt"])
        .run();
    assert!(
        text.stdout.starts_with("smtpcheck: probing"),
        "{}",
        text.dump()
    );
    assert!(!text.stdout.contains("partial"), "{}", text.dump());
    assert!(
        text.last_line().contains("nothing was sent"),
        "{}",
        text.dump()
    );
    assert!(text.last_line().contains("(exit 1)"), "{}", text.dump());
}

// ---------------------------------------------------------------------------------------------
// 7. One JSON document for usage errors
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_are_one_json_document_when_json_was_asked_for() {
    let check = |run: &Run| {
        run.assert_exit(2);
        let report = run.report();
        assert_eq!(report.failure().stage, "usage", "{}", run.dump());
        assert_eq!(report.exit_code, 2);
        assert!(
            report.failure().reason.contains("--timeout"),
            "{}",
            run.dump()
        );
    };
    let args = ["send", "--to", "a@example.com", "--timeout", "abc"];
    check(&Cmd::new().args(args).args(["--format", "json"]).run());
    check(&Cmd::new().args(args).args(["--format=json"]).run());
    check(&Cmd::new().args(args).env("SMTPCHECK_FORMAT", "json").run());
    let dir = crate::common::TempDir::new("usage-json");
    let config = dir.write("config.toml", "[profile.ci]\nformat = \"json\"\n");
    check(
        &Cmd::new()
            .args(args)
            .arg("--config")
            .arg(&config)
            .args(["--profile", "ci"])
            .run(),
    );
    // A port over 65535.
    let run = Cmd::new()
        .args([
            "send",
            "--to",
            "a@example.com",
            "--port",
            "70000",
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(2);
    assert_eq!(run.report().failure().stage, "usage");
    // Text stays text: nothing on stdout.
    let run = Cmd::new().args(args).run();
    run.assert_exit(2);
    assert!(run.stdout.is_empty(), "{}", run.dump());
}

// ---------------------------------------------------------------------------------------------
// 8. Temporary vs permanent by the exit status
// ---------------------------------------------------------------------------------------------

#[test]
fn a_greylisting_deferral_exits_33_and_a_refusal_13() {
    let grey = sink(Script {
        rcpt: Action::reply("451 4.7.1 Greylisted, please try again later"),
        ..Script::default()
    });
    let (run, report) = send_json(&grey, &["a@example.com"], &[]);
    run.assert_exit(33);
    assert_eq!(report.failure().class, "transient");
    assert_eq!(statuses(&report), ["deferred"]);
    let refused = sink(Script {
        rcpt: Action::reply("550 5.1.1 User unknown"),
        ..Script::default()
    });
    let (run, _) = send_json(&refused, &["a@example.com"], &[]);
    run.assert_exit(13);
    let help = Cmd::new().args(["send", "--help"]).run();
    assert!(help.stdout.contains("33  temporary"), "{}", help.dump());
    assert!(
        help.stdout.contains("Temporary failures (retry later)"),
        "{}",
        help.dump()
    );
}

#[test]
fn a_deferred_message_exits_35_and_a_deferred_mail_32() {
    let s = sink(Script {
        end_of_data: Action::reply("451 4.3.0 Error: queue file write error"),
        ..Script::default()
    });
    let (run, report) = send_json(&s, &["a@example.com"], &[]);
    run.assert_exit(35);
    assert_eq!(statuses(&report), ["deferred"]);
    let s = sink(Script {
        mail: Action::reply("452 4.3.1 Insufficient system storage"),
        ..Script::default()
    });
    send_json(&s, &["a@example.com"], &[]).0.assert_exit(32);
}

// ---------------------------------------------------------------------------------------------
// 9. Bad MX data and --helo
// ---------------------------------------------------------------------------------------------

#[test]
fn an_mx_naming_an_ip_address_is_a_dns_misconfiguration() {
    let s = smtpcheck_sink::Sink::bind(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 242, 2)), 0),
        Script::default(),
    )
    .expect("bind");
    let dns = TestDns::start("ipmx MX 10 127.0.242.2.\n");
    let run = Cmd::new()
        .args([
            "send",
            "--eml",
            &example_eml().display().to_string(),
            "--from",
            "ci@example.com",
            "--helo",
            "client.test",
            "--resolver",
            &dns.addr().to_string(),
            "--port",
            &s.addr().port().to_string(),
            "--to",
            "x@ipmx.test",
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(4);
    let report = run.report();
    let f = report.failure();
    assert_eq!(f.kind.as_deref(), Some("mx-is-address"));
    assert!(f.reason.contains("DNS misconfiguration"), "{f:?}");
    assert!(f.hint.next_step.contains("host name"), "{f:?}");
    assert!(s.sessions().is_empty(), "the address must not be used");
}

#[test]
fn helo_with_a_trailing_dot_or_a_bare_ip_is_refused_with_the_right_form() {
    for (helo, right) in [
        ("client.example.org.", "--helo client.example.org"),
        ("192.0.2.1", "--helo [192.0.2.1]"),
        ("2001:db8::1", "--helo [IPv6:2001:db8::1]"),
    ] {
        let run = Cmd::send("127.0.0.1:9", example_eml())
            .helo(helo)
            .to("a@example.com")
            .json()
            .run();
        run.assert_exit(3);
        let report = run.report();
        assert!(report.failure().reason.contains(right), "{}", run.dump());
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Queue id
// ---------------------------------------------------------------------------------------------

#[test]
fn queue_ids_are_extracted_for_common_mtas() {
    let cases = [
        ("250 2.0.0 Ok: queued as 4QX7Sink01", Some("4QX7Sink01")),
        ("250 OK id=1tXyZa-000Abc-Q1", Some("1tXyZa-000Abc-Q1")),
        ("250 2.0.0 54DKq8Xb012345 Message accepted for delivery", Some("54DKq8Xb012345")),
        (
            "250 2.6.0 <x@example.com> [InternalId=12345678901, Hostname=AM0PR01MB1234.eurprd01.prod.outlook.com] 10244 bytes in 0.120, 83.184 KB/sec Queued mail for delivery",
            Some("12345678901"),
        ),
        (
            "250 2.0.0 OK  1712345678 d9443c01a7336-1e8f2b0c8a5si12345plf.123 - gsmtp",
            Some("d9443c01a7336-1e8f2b0c8a5si12345plf.123"),
        ),
        ("250 Message Queued (A2C7B0E1-8A3B-4C1D-9E2F-3A4B5C6D7E8F.1)", Some("A2C7B0E1-8A3B-4C1D-9E2F-3A4B5C6D7E8F.1")),
        ("250 2.0.0 Ok", None),
    ];
    for (line, want) in cases {
        let s = sink(Script {
            end_of_data: Action::reply(line),
            ..Script::default()
        });
        let (run, report) = send_json(&s, &["a@example.com"], &[]);
        run.assert_exit(0);
        assert_eq!(report.queue_id.as_deref(), want, "{line}");
        assert_eq!(report.routes[0].queue_id.as_deref(), want, "{line}");
        assert!(report.queued_as.is_some());
    }
}

#[test]
fn the_example_script_tells_temporary_from_permanent() {
    let grey = sink(Script {
        rcpt: Action::reply("451 4.7.1 Greylisted, please try again later"),
        ..Script::default()
    });
    let out = std::process::Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/exit-codes.sh"))
        .arg("a@example.com")
        .args(["--helo", "test.example"])
        .env("SMTPCHECK", env!("CARGO_BIN_EXE_smtpcheck"))
        .env("SMTPCHECK_SMART_HOST", grey.addr().to_string())
        .env("SMTPCHECK_FROM", "ci@sender.example")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(33), "{text}");
    assert!(text.contains("TEMPORARY"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 11. The smaller items
// ---------------------------------------------------------------------------------------------

#[test]
fn a_send_flag_without_the_send_command_suggests_it() {
    let run = Cmd::new()
        .args(["--eml", "x.eml", "--to", "a@example.com"])
        .run();
    run.assert_exit(2);
    assert!(
        run.stderr
            .contains("smtpcheck send --eml x.eml --to a@example.com"),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("'--help'"), "{}", run.dump());
}

#[test]
fn recipients_separated_by_spaces_get_the_comma_form() {
    let run = Cmd::new()
        .args(["send", "--to", "a@x.example", "b@y.example"])
        .run();
    run.assert_exit(2);
    assert!(
        run.stderr.contains("--to a@x.example,b@y.example")
            && run.stderr.contains("--to a@x.example --to b@y.example"),
        "{}",
        run.dump()
    );
}

#[test]
fn mx_takes_the_domain_of_an_address() {
    let dns = TestDns::start("d MX 10 mx1\nmx1 A 127.0.0.1\n");
    let resolver = dns.addr().to_string();
    let run = Cmd::new()
        .args([
            "mx",
            "user@d.test",
            "--resolver",
            &resolver,
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(0);
    let report = run.mx_report();
    assert_eq!(report.domain().domain, "d.test");
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    let run = Cmd::new().args(["mx", "user@"]).run();
    run.assert_exit(3);
    assert!(run.stdout.contains("nothing after the @"), "{}", run.dump());
}

#[test]
fn mx_failures_have_a_hint() {
    let dns = TestDns::start("d MX 10 mx1\nmx1 A 127.0.0.1\n");
    let resolver = dns.addr().to_string();
    let run = Cmd::new()
        .args([
            "mx",
            "nope.test",
            "--resolver",
            &resolver,
            "--format",
            "json",
        ])
        .run();
    run.assert_exit(4);
    let report = run.mx_report();
    let f = report.domain().failure();
    assert!(
        !f.hint.cause.is_empty() && !f.hint.next_step.is_empty(),
        "{f:?}"
    );
}

#[test]
fn mx_help_lists_the_exit_codes_of_mx() {
    let run = Cmd::new().args(["mx", "--help"]).run();
    run.assert_exit(0);
    assert!(
        run.stdout.contains("a domain has no usable mail host"),
        "{}",
        run.dump()
    );
    assert!(!run.stdout.contains("MAIL FROM refused"), "{}", run.dump());
    assert!(
        !run.stdout.contains("no recipient accepted"),
        "{}",
        run.dump()
    );
}

#[test]
fn durations_take_hours_up_to_a_day() {
    let s = sink(Script::default());
    let (run, _) = send_json(&s, &["a@example.com"], &["--timeout", "1h"]);
    run.assert_exit(0);
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("a@example.com")
        .timeout("25h")
        .run();
    run.assert_exit(2);
    assert!(run.stderr.contains("at most 24h"), "{}", run.dump());
}

#[test]
fn io_errors_are_said_in_words() {
    let run = Cmd::send("127.0.0.1:9", "/nonexistent/message.eml")
        .to("a@example.com")
        .run();
    run.assert_exit(3);
    assert!(!run.stdout.contains("os error"), "{}", run.dump());
    assert!(!run.stderr.contains("os error"), "{}", run.dump());
    assert!(
        run.stdout.contains("no such file or directory"),
        "{}",
        run.dump()
    );
}

#[test]
fn an_mbox_line_or_a_bom_is_named_with_the_fix() {
    let dir = crate::common::TempDir::new("mbox-bom");
    let mbox = dir.write(
        "mbox.eml",
        "From sender@example.com Mon Jan  1 00:00:00 2026\nFrom: a@example.com\nSubject: x\n\nbody\n",
    );
    let bom = dir.write(
        "bom.eml",
        b"\xEF\xBB\xBFFrom: a@example.com\nSubject: x\n\nbody\n",
    );
    for (file, says) in [(mbox, "mbox separator line"), (bom, "byte order mark")] {
        let run = Cmd::send("127.0.0.1:9", &file)
            .to("a@example.com")
            .json()
            .run();
        run.assert_exit(3);
        let reason = run.report().failure().reason.clone();
        assert!(reason.contains(says), "{reason}");
        assert!(reason.contains("message.eml"), "{reason}");
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_given_to_eml_points_to_eml_dash() {
    let dir = crate::common::TempDir::new("fifo");
    let fifo = dir.path().join("pipe.eml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return;
    }
    let run = Cmd::send("127.0.0.1:9", &fifo)
        .to("a@example.com")
        .json()
        .run();
    run.assert_exit(3);
    let reason = run.report().failure().reason.clone();
    assert!(reason.contains("--eml - <"), "{reason}");
}

#[test]
fn notes_are_labelled_once() {
    let s = sink(Script::default());
    // The From header's domain (bi.example.com) differs from --from's: a note, not a warning.
    let run = Cmd::send_to_sink(&s, example_eml())
        .from("ci@other.example")
        .to("a@example.com")
        .run();
    run.assert_exit(0);
    assert!(
        run.stdout.contains("Note: the From header's domain"),
        "{}",
        run.dump()
    );
    assert!(!run.stdout.contains("Warning: note:"), "{}", run.dump());
}

#[test]
fn a_step_that_timed_out_is_not_also_slow() {
    let s = sink(Script {
        mail: Action::Silent,
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&s, example_eml())
        .to("a@example.com")
        .timeout("5.2s")
        .json()
        .run();
    run.assert_exit(8);
    let report = run.report();
    assert!(
        !report.warnings.iter().any(|w| w.starts_with("slow:")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn after_retries_the_hint_does_not_say_retry_with_retry() {
    let grey = || {
        sink(Script {
            rcpt: Action::reply("451 4.7.1 Greylisted, please try again later"),
            ..Script::default()
        })
    };
    let s = grey();
    let (run, once) = send_json(&s, &["a@example.com"], &[]);
    run.assert_exit(33);
    assert!(once.failure().hint.next_step.contains("--retry"));
    let s = grey();
    let (run, report) = send_json(
        &s,
        &["a@example.com"],
        &["--retry", "1", "--retry-delay", "10ms"],
    );
    run.assert_exit(33);
    assert_eq!(report.rounds.len(), 2);
    let next = &report.failure().hint.next_step;
    assert!(next.starts_with("Already retried: 2 rounds"), "{next}");
    assert!(!next.contains("--retry 3"), "{next}");
}

#[test]
fn a_message_without_from_gets_a_warning() {
    let dir = crate::common::TempDir::new("no-from");
    let eml = dir.write(
        "no-from.eml",
        "To: a@example.com\nSubject: x\nDate: Sun, 22 Nov 2026 07:00:00 +0000\nMessage-ID: <x@y>\n\nbody\n",
    );
    let s = sink(Script::default());
    let (run, report) = {
        let run = Cmd::send_to_sink(&s, &eml)
            .from("ci@example.com")
            .json()
            .run();
        let report = run.report();
        (run, report)
    };
    run.assert_exit(0);
    assert!(
        report.warnings.iter().any(|w| w.contains("no From header")),
        "{:?}",
        report.warnings
    );
}

/// Runs `smtpcheck ARGS` through `sh`, sending it SIGINT after `after` (as Ctrl-C would); on a
/// terminal (`script`) when `terminal`. Returns the exit code and what stdout (the terminal) got,
/// or `None` when the tools are missing.
#[cfg(unix)]
fn interrupted(args: &[String], after: &str, terminal: bool) -> Option<(Option<i32>, String)> {
    use std::process::{Command, Stdio};
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(crate::common::BIN)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect();
    let shell = format!("(sleep {after}; kill -INT $$) & exec {}", line.join(" "));
    let mut cmd = if terminal {
        let mut c = Command::new("script");
        c.args(["-qec", &format!("sh -c {}", quote(&shell)), "/dev/null"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &shell]);
        c
    };
    cmd.stdin(Stdio::null()).env("TERM", "xterm-256color");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTPCHECK_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().ok()?;
    Some((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[cfg(unix)]
#[test]
fn ctrl_c_erases_the_ticker_and_gives_an_interrupted_verdict() {
    let s = sink(Script {
        greeting: Action::Silent,
        ..Script::default()
    });
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
        "--timeout",
        "20s",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let Some((code, stdout)) = interrupted(&args, "0.5", false) else {
        return;
    };
    assert_eq!(code, Some(130), "{stdout}");
    let last = stdout.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with("Verdict: interrupted"), "{stdout}");
    assert!(last.ends_with("(exit 130)"), "{stdout}");

    let mut json = args.clone();
    json.extend(["--format".to_string(), "json".to_string()]);
    let (code, stdout) = interrupted(&json, "0.5", false).unwrap_or_default();
    assert_eq!(code, Some(130), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(v["failure"]["stage"], "interrupted", "{stdout}");
    assert_eq!(v["exit_code"], 130, "{stdout}");

    // On a terminal: the ticker has shown, and is erased before the verdict.
    let Some((code, screen)) = interrupted(&args, "2", true) else {
        assert!(!under_ci(), "`script` (a terminal) is required under CI");
        return;
    };
    if code.is_none() || !screen.contains("waiting for the greeting") {
        assert!(
            !under_ci(),
            "`script` (a terminal) is required under CI: {screen:?}"
        );
        return; // no usable `script` here
    }
    assert_eq!(code, Some(130), "{screen:?}");
    let tail = &screen[screen.rfind("waiting for the greeting").unwrap_or(0)..];
    assert!(
        tail.contains("\r\x1b[2K"),
        "the ticker is erased: {screen:?}"
    );
    let last = screen.trim_end().lines().last().unwrap_or("");
    assert!(last.contains("Verdict: interrupted"), "{screen:?}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_confirm_waits_keeps_the_smtp_verdict_and_exits_130() {
    // The message is delivered; the IMAP server accepts the connection and never greets, so
    // --confirm waits until Ctrl-C comes.
    let s = sink(Script::default());
    let imap = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let imap_port = imap.local_addr().expect("its address").port();
    let dir = crate::common::TempDir::new("confirm-ctrl-c");
    let password = dir.write("imap-password", "not-used\n");
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
        "--confirm",
        &format!("imap://me@127.0.0.1:{imap_port}"),
        "--confirm-password-file",
        &password.display().to_string(),
        "--confirm-timeout",
        "60s",
        "--timeout",
        "30s",
        "--format",
        "json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let (code, stdout) = interrupted(&args, "2", false).unwrap_or_default();
    drop(imap);
    assert_eq!(code, Some(130), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(v["outcome"], "delivered", "{stdout}");
    assert_eq!(v["exit_code"], 130, "{stdout}");
    assert_eq!(v["recipients"][0]["status"], "delivered", "{stdout}");
    assert_eq!(v["arrival"]["found"], false, "{stdout}");
    let error = v["arrival"]["error"].as_str().unwrap_or("");
    assert!(error.contains("interrupted (Ctrl-C)"), "{stdout}");
}

#[cfg(unix)]
#[test]
fn an_input_error_is_shown_once_on_a_terminal() {
    let args = [
        "send",
        "--eml",
        "/nonexistent/message.eml",
        "--to",
        "a@example.com",
        "--smart-host",
        "127.0.0.1:9",
    ];
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(crate::common::BIN)
        .chain(args)
        .map(quote)
        .collect();
    let Ok(out) = std::process::Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
    else {
        assert!(!under_ci(), "`script` (a terminal) is required under CI");
        return;
    };
    let screen = String::from_utf8_lossy(&out.stdout);
    if !screen.contains("Verdict") {
        assert!(
            !under_ci(),
            "`script` (a terminal) is required under CI: {screen:?}"
        );
        return; // no usable `script` here
    }
    assert_eq!(
        screen.matches("no such file or directory").count(),
        1,
        "{screen:?}"
    );
    let last = screen.trim_end().lines().last().unwrap_or("");
    assert!(last.contains("Verdict: failed at input"), "{screen:?}");
    // Not a terminal: stderr has the error, stdout ends with the verdict (scripts rely on both).
    let run = Cmd::send("127.0.0.1:9", "/nonexistent/message.eml")
        .to("a@example.com")
        .run();
    assert!(run.stderr.contains("no such file or directory"));
    assert!(run.last_line().starts_with("Verdict: failed at input"));
}

#[test]
fn quit_after_connect_closes_without_a_reset() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(b"220 server.test ESMTP\r\n");
        // A client that closed with unread data has reset the connection by now, and a
        // further write fails; one that shut down cleanly still takes it.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let later = s.write_all(b"220 still here\r\n");
        let mut rest = Vec::new();
        let end = s.read_to_end(&mut rest);
        (later.is_ok(), end.is_ok())
    });
    let run = Cmd::send(addr, example_eml())
        .helo("test.example")
        .to("a@example.com")
        .args(["--quit-after", "connect"])
        .run();
    run.assert_exit(0);
    let (later, end) = server.join().unwrap();
    assert!(later && end, "the connection was reset: {}", run.dump());
}
