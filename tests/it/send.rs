//! `smtpcheck send` in smart-host mode, end to end: the built binary against the scripted loopback
//! sink. Every test checks both what the binary reported (exit code, JSON, text) and what the server
//! actually received.

use crate::common::*;
use std::time::Duration;

/// A small message with bare-LF line endings.
const LF_MESSAGE: &str =
    "From: Alice <alice@sender.example>\nTo: bob@rcpt.example\nSubject: bare LF\n\nline one\nline two\n";

/// The JSON report of a run in smart-host mode through `relay`: exactly one route, of mode
/// `smart-host`, naming the relay, with no MX hosts, that says the same as the top level.
#[track_caller]
fn smart_host_report(run: &Run, relay: &str) -> JsonReport {
    let report = run.report();
    let route = report.route();
    assert_eq!(route.domain, None);
    assert_eq!(route.mode, "smart-host");
    assert_eq!(route.relay.as_deref(), Some(relay));
    assert!(route.mx.is_empty(), "{route:?}");
    let v = run.json_value();
    let r = &v["routes"][0];
    for key in ROUTE_SUMMARY_KEYS {
        assert_eq!(
            r[key], v[key],
            "the route's {key} differs from the report's"
        );
    }
    for a in &report.attempts {
        assert!(a.tls.is_none(), "TLS info on a clear-text session: {a:?}");
    }
    report
}

/// [`smart_host_report`] for a run against `sink`.
#[track_caller]
fn sink_report(run: &Run, sink: &Sink) -> JsonReport {
    smart_host_report(run, &sink.addr().to_string())
}

/// `delivered` with exit 0 and exactly one message at the sink; returns the session and the
/// message as it was on the wire.
#[track_caller]
fn delivered(sink: &Sink, run: &Run) -> (SessionLog, Vec<u8>) {
    run.assert_exit(0);
    let log = one_session(sink);
    assert_eq!(log.messages.len(), 1, "expected one message: {log:#?}");
    let wire = log.messages[0].clone();
    assert_wire_clean(&wire);
    (log, wire)
}

/// Sends `file` (bytes) to a default sink and checks it arrived exactly as it should.
#[track_caller]
fn assert_arrives_exactly(label: &str, file: &[u8]) -> Vec<u8> {
    let dir = TempDir::new(label);
    let eml = dir.write("m.eml", file);
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, &eml).to("bob@rcpt.example").run();
    let (_, wire) = delivered(&sink, &run);
    let got = unstuff(&wire);
    let want = expected_content(file);
    assert_eq!(
        got,
        want,
        "received {} but expected {}",
        show(&got),
        show(&want)
    );
    wire
}

// ---------------------------------------------------------------------------------------------
// Delivery: the bytes that arrive
// ---------------------------------------------------------------------------------------------

#[test]
fn example_message_arrives_byte_exact() {
    let eml = example_eml();
    let file = std::fs::read(&eml).unwrap();
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, &eml).to("user@domain.com").run();
    let (log, wire) = delivered(&sink, &run);
    assert_eq!(unstuff(&wire), expected_content(&file));
    // The example is CRLF throughout and ends with CRLF: it arrives as it is in the file.
    assert_eq!(unstuff(&wire), file);
    assert_eq!(
        log.verbs(),
        ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
        "{log:#?}"
    );
    assert_eq!(log.commands[0], "EHLO test.example");
    assert_eq!(log.commands[2], "RCPT TO:<user@domain.com>");
}

#[test]
fn lines_starting_with_a_dot_are_stuffed_on_the_wire() {
    let file = b"From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: dots\r\n\r\n\
.leading dot\r\n..two dots\r\n.\r\nmiddle.dot stays\r\n.\r\n...\r\nlast\r\n";
    let wire = assert_arrives_exactly("dots", file);
    let wire_text = String::from_utf8(wire).unwrap();
    for stuffed in [
        "\r\n..leading dot\r\n",
        "\r\n...two dots\r\n",
        "\r\n..\r\nmiddle.dot stays\r\n",
        "\r\n..\r\n....\r\nlast\r\n",
    ] {
        assert!(
            wire_text.contains(stuffed),
            "{stuffed:?} missing from the wire data {wire_text:?}"
        );
    }
    // The example message has dot lines too: they are doubled on the wire.
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .run();
    let (_, wire) = delivered(&sink, &run);
    let text = String::from_utf8(wire).unwrap();
    assert_eq!(
        text.matches("\r\n..Totals are provisional").count(),
        2,
        "{text}"
    );
    assert!(!text.contains("\r\n.Totals"), "{text}");
}

#[test]
fn bare_lf_file_is_normalised_to_crlf() {
    let wire = assert_arrives_exactly("bare-lf", LF_MESSAGE.as_bytes());
    assert_eq!(
        unstuff(&wire),
        LF_MESSAGE.replace('\n', "\r\n").into_bytes()
    );
}

#[test]
fn file_without_final_newline_gets_exactly_one_crlf() {
    let file =
        b"From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: no eol\r\n\r\nbody\r\nlast line";
    let wire = assert_arrives_exactly("no-final-newline", file);
    let mut want = file.to_vec();
    want.extend_from_slice(b"\r\n");
    assert_eq!(unstuff(&wire), want);
    assert!(!wire.ends_with(b"\r\n\r\n"), "{}", show(&wire));

    // The same with bare-LF lines.
    let file = b"From: a@sender.example\nTo: b@rcpt.example\n\nbody\nlast line";
    let wire = assert_arrives_exactly("no-final-newline-lf", file);
    assert!(wire.ends_with(b"\r\nlast line\r\n"), "{}", show(&wire));
}

#[test]
fn a_large_file_streamed_from_disk_arrives_exactly() {
    // Over smtpcheck::internals::message::STREAM_ABOVE: sent from the file chunk by chunk, not from memory.
    let mut file = b"From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: big\r\n\r\n".to_vec();
    let mut i = 0;
    while file.len() < 3 * 1024 * 1024 {
        i += 1;
        let line = match i % 5 {
            0 => ".a dot line with a bare LF\n".to_string(),
            1 => "a bare CR\r".to_string(),
            _ => format!("line {i} of the attachment, base64 or text\r\n"),
        };
        file.extend_from_slice(line.as_bytes());
    }
    assert!(file.len() as u64 > smtpcheck::internals::message::STREAM_ABOVE);
    assert_arrives_exactly("streamed", &file);
}

#[test]
fn file_ending_in_crlf_gets_no_extra_blank_line() {
    let file = b"From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: eol\r\n\r\nbody\r\nlast line\r\n";
    let wire = assert_arrives_exactly("crlf-end", file);
    assert_eq!(unstuff(&wire), file.to_vec());
    assert!(wire.ends_with(b"\r\nlast line\r\n"), "{}", show(&wire));
    assert!(!wire.ends_with(b"\r\n\r\n"), "{}", show(&wire));
}

// ---------------------------------------------------------------------------------------------
// SMTP smuggling
// ---------------------------------------------------------------------------------------------

#[test]
fn smuggled_commands_after_bare_lf_dot_stay_inside_the_message() {
    let file = "From: a@sender.example\nTo: b@rcpt.example\nSubject: smuggle\n\nhello\n.\n\
MAIL FROM:<x@evil>\nRCPT TO:<y@evil>\nDATA\nsmuggled body\n.\nQUIT\n";
    let dir = TempDir::new("smuggle");
    let eml = dir.write("m.eml", file);
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, &eml)
        .to("b@rcpt.example")
        .json()
        .run();
    let (log, wire) = delivered(&sink, &run);
    assert_eq!(
        commands_with_verb(&log, "MAIL").len(),
        1,
        "the sink saw more than one MAIL: {log:#?}"
    );
    assert_eq!(
        commands_with_verb(&log, "DATA").len(),
        1,
        "the sink saw more than one DATA: {log:#?}"
    );
    assert!(!log.commands.iter().any(|c| c.contains("evil")), "{log:#?}");
    let content = unstuff(&wire);
    assert_eq!(content, expected_content(file.as_bytes()));
    let text = String::from_utf8(content).unwrap();
    assert!(
        text.contains("hello\r\n.\r\nMAIL FROM:<x@evil>\r\nRCPT TO:<y@evil>\r\nDATA\r\nsmuggled body\r\n.\r\nQUIT\r\n"),
        "{text:?}"
    );
    let report = sink_report(&run, &sink);
    assert_eq!(report.outcome, "delivered");
    assert_eq!(report.recipients.len(), 1);
}

#[test]
fn smuggling_with_mixed_line_endings_stays_inside_the_message() {
    // Every end-of-data look-alike a lenient server might accept.
    let file: &[u8] = b"From: a@sender.example\r\nTo: b@rcpt.example\r\n\r\nbody\
\r\n.\nMAIL FROM:<a1@evil>\
\n.\r\nMAIL FROM:<a2@evil>\
\r.\rMAIL FROM:<a3@evil>\
\r.\r\nMAIL FROM:<a4@evil>\
\n.\rMAIL FROM:<a5@evil>\r\nend\r\n";
    let wire = assert_arrives_exactly("smuggle-mixed", file);
    let text = String::from_utf8(unstuff(&wire)).unwrap();
    for n in 1..=5 {
        assert!(
            text.contains(&format!("\r\n.\r\nMAIL FROM:<a{n}@evil>\r\n")),
            "a{n} missing: {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Greeting, EHLO, HELO
// ---------------------------------------------------------------------------------------------

#[test]
fn ehlo_502_falls_back_to_helo_and_delivers() {
    let sink = sink(Script {
        ehlo: Action::reply("502 5.5.2 Error: command not recognized"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    let (log, wire) = delivered(&sink, &run);
    assert_eq!(
        log.verbs(),
        ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"],
        "{log:#?}"
    );
    assert_eq!(log.commands[1], "HELO test.example");
    // Without EHLO there are no extensions: no SIZE parameter.
    assert_eq!(log.commands[2], "MAIL FROM:<reports@bi.example.com>");
    assert_eq!(unstuff(&wire), std::fs::read(example_eml()).unwrap());

    let report = sink_report(&run, &sink);
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.outcome, "delivered");
    assert!(report.failure.is_none());
    let ehlo = report.step("ehlo");
    assert!(!ehlo.ok);
    assert_eq!(ehlo.sent.as_deref(), Some("EHLO test.example"));
    assert_eq!(ehlo.reply.as_ref().unwrap().code, 502);
    let helo = report.step("helo");
    assert!(helo.ok);
    assert_eq!(helo.sent.as_deref(), Some("HELO test.example"));
    assert_eq!(helo.reply.as_ref().unwrap().code, 250);
    assert!(report.attempt().capabilities.is_none());
}

#[test]
fn ehlo_421_sends_no_helo_and_exits_31() {
    let sink = sink(Script {
        ehlo: Action::reply("421 4.3.2 Service shutting down"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(31);
    let log = one_session(&sink);
    assert!(
        commands_with_verb(&log, "HELO").is_empty(),
        "HELO was sent after EHLO 421: {log:#?}"
    );
    assert!(commands_with_verb(&log, "MAIL").is_empty(), "{log:#?}");
    assert!(log.messages.is_empty());
    let report = sink_report(&run, &sink);
    assert_eq!(report.exit_code, 31);
    let f = report.failure();
    assert_eq!((f.stage.as_str(), f.code), ("ehlo", Some(421)));
    assert_eq!(f.class, "transient");
}

#[track_caller]
fn greeting_refused(line: &str, class: &str) {
    let code: u16 = line[..3].parse().unwrap();
    let sink = sink(Script {
        greeting: Action::reply(line),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(if class == "transient" { 30 } else { 10 });
    let log = one_session(&sink);
    assert_eq!(log.verbs(), ["QUIT"], "expected only QUIT: {log:#?}");
    let report = sink_report(&run, &sink);
    assert_eq!(report.outcome, "failed");
    let f = report.failure();
    assert_eq!(f.stage, "greeting");
    assert_eq!(f.code, Some(code));
    assert_eq!(f.class, class);
    assert!(f.reason.contains(line), "{}", f.reason);
    assert_eq!(report.stages(), ["connect", "greeting", "quit"]);
    assert!(!report.step("greeting").ok);
}

#[test]
fn greeting_421_exits_30_and_quits() {
    greeting_refused("421 4.3.2 mx.test too busy, try later", "transient");
}

#[test]
fn greeting_554_exits_10_and_quits() {
    greeting_refused("554 5.7.1 No SMTP service here", "permanent");
}

// ---------------------------------------------------------------------------------------------
// MAIL, RCPT, DATA, end of data
// ---------------------------------------------------------------------------------------------

#[test]
fn mail_550_exits_12() {
    let sink = sink(Script {
        mail: Action::reply("550 5.7.1 Sender rejected"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(12);
    let log = one_session(&sink);
    assert_eq!(log.verbs(), ["EHLO", "MAIL", "QUIT"], "{log:#?}");
    assert!(log.messages.is_empty());
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!(f.stage, "mail");
    assert_eq!(f.code, Some(550));
    assert_eq!(f.enhanced.as_deref(), Some("5.7.1"));
    assert_eq!(f.class, "permanent");
    assert!(f.kind.is_none());
}

#[test]
fn one_of_two_recipients_refused_is_partial() {
    let sink = sink(Script::default().rcpt_for(
        "nobody@",
        Action::reply("550 5.1.1 <nobody@rcpt.example>: Recipient address rejected"),
    ));
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .to("nobody@rcpt.example")
        .json()
        .run();
    run.assert_exit(1);
    let log = one_session(&sink);
    assert_eq!(
        commands_with_verb(&log, "RCPT"),
        ["RCPT TO:<user@domain.com>", "RCPT TO:<nobody@rcpt.example>"]
    );
    assert_eq!(log.messages.len(), 1, "the message was not sent: {log:#?}");
    assert_eq!(
        unstuff(&log.messages[0]),
        std::fs::read(example_eml()).unwrap()
    );

    let report = sink_report(&run, &sink);
    assert_eq!(report.outcome, "partial");
    assert_eq!(report.exit_code, 1);
    assert_eq!(report.recipients.len(), 2);
    let (good, bad) = (&report.recipients[0], &report.recipients[1]);
    assert_eq!(good.address, "user@domain.com");
    assert!(good.accepted);
    assert_eq!(good.reply.as_ref().unwrap().code, 250);
    assert_eq!(bad.address, "nobody@rcpt.example");
    assert!(!bad.accepted);
    let reply = bad.reply.as_ref().unwrap();
    assert_eq!(reply.code, 550);
    assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
    let f = report.failure();
    assert_eq!((f.stage.as_str(), f.code), ("rcpt", Some(550)));
    assert!(f.reason.contains("nobody@rcpt.example"), "{}", f.reason);
    assert_eq!(
        report.queued_as.as_deref(),
        Some("Ok: queued as 4QX7Sink01")
    );
}

#[test]
fn all_recipients_refused_exits_13_without_data() {
    let sink = sink(Script {
        rcpt: Action::reply("550 5.1.1 Recipient address rejected"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("one@rcpt.example,two@rcpt.example")
        .json()
        .run();
    run.assert_exit(13);
    let log = one_session(&sink);
    assert_eq!(
        log.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "QUIT"],
        "{log:#?}"
    );
    assert!(
        commands_with_verb(&log, "DATA").is_empty(),
        "DATA sent although no recipient was accepted: {log:#?}"
    );
    assert!(log.messages.is_empty());
    let report = sink_report(&run, &sink);
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.failure().stage, "rcpt");
    assert_eq!(report.recipients.len(), 2);
    assert!(report.recipients.iter().all(|r| !r.accepted));
}

#[test]
fn data_554_exits_14() {
    let sink = sink(Script {
        data: Action::reply("554 5.5.1 Error: no valid recipients"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(14);
    let log = one_session(&sink);
    assert_eq!(
        log.verbs(),
        ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
        "{log:#?}"
    );
    assert!(log.messages.is_empty(), "{log:#?}");
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!((f.stage.as_str(), f.code), ("data", Some(554)));
    assert!(report.recipients.iter().all(|r| !r.accepted));
    assert!(report.queued_as.is_none());
}

#[test]
fn end_of_data_552_exits_15() {
    let sink = sink(Script {
        end_of_data: Action::reply("552 5.3.4 Message size exceeds fixed limit"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(15);
    let log = one_session(&sink);
    assert_eq!(log.messages.len(), 1, "{log:#?}");
    assert_eq!(log.verbs().last().map(String::as_str), Some("QUIT"));
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!((f.stage.as_str(), f.code), ("message", Some(552)));
    assert_eq!(f.enhanced.as_deref(), Some("5.3.4"));
    assert!(report.recipients.iter().all(|r| !r.accepted));
    assert!(report.queued_as.is_none());
    assert!(!report.step("message").ok);
}

#[test]
fn message_over_the_advertised_size_is_not_sent() {
    let sink = sink(Script {
        ehlo: Action::lines(250, &["sink.test", "SIZE 1000", "8BITMIME"]),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(15);
    let log = one_session(&sink);
    assert_eq!(log.verbs(), ["EHLO", "QUIT"], "{log:#?}");
    assert!(log.messages.is_empty());
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!(f.stage, "mail");
    assert_eq!(f.class, "permanent");
    assert!(f.code.is_none());
    assert!(f.reason.contains("1000"), "{}", f.reason);
    assert_eq!(
        report.attempt().capabilities.as_ref().unwrap().size,
        Some(1000)
    );
}

// ---------------------------------------------------------------------------------------------
// Broken sessions
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn broken_at_mail(action: Action) {
    let sink = sink(Script {
        mail: action,
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .timeout("5s")
        .json()
        .run();
    run.assert_exit(8);
    let log = one_session(&sink);
    assert_eq!(log.verbs(), ["EHLO", "MAIL"], "{log:#?}");
    let report = sink_report(&run, &sink);
    assert_eq!(report.outcome, "failed");
    let f = report.failure();
    assert_eq!(f.stage, "mail");
    assert_eq!(f.kind.as_deref(), Some("closed"), "{f:?}");
    assert_eq!(f.class, "transient");
    assert!(f.code.is_none());
    let mail = report.step("mail");
    assert!(!mail.ok);
    assert!(mail.reply.is_none());
    assert_eq!(mail.error_kind.as_deref(), Some("closed"));
    assert!(mail.error.is_some());
    assert!(
        run.elapsed < Duration::from_secs(4),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn server_closing_mid_session_exits_8() {
    broken_at_mail(Action::Close);
}

#[test]
fn connection_reset_exits_8() {
    broken_at_mail(Action::Reset);
}

#[test]
fn silent_server_times_out_with_exit_8() {
    let sink = sink(Script {
        greeting: Action::Silent,
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .timeout("2s")
        .json()
        .guard(Duration::from_secs(15))
        .run();
    run.assert_exit(8);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?} with --timeout 2s",
        run.elapsed
    );
    assert!(
        run.elapsed >= Duration::from_millis(1900),
        "gave up after {:?}, before the 2 s timeout",
        run.elapsed
    );
    let log = one_session(&sink);
    assert!(log.commands.is_empty(), "{log:#?}");
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!(f.stage, "greeting");
    assert_eq!(f.kind.as_deref(), Some("timeout"));
    assert_eq!(
        report.step("greeting").error_kind.as_deref(),
        Some("timeout")
    );
}

#[test]
fn dripping_server_cannot_stretch_the_timeout() {
    // 41 bytes at 100 ms each take over 4 s; the timeout is a total per reply.
    let sink = sink(Script {
        greeting: Action::Drip(
            b"220 sink.test ESMTP slowly, very slowly\r\n".to_vec(),
            Duration::from_millis(100),
        ),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .timeout("1s")
        .json()
        .guard(Duration::from_secs(15))
        .run();
    run.assert_exit(8);
    assert!(
        run.elapsed < Duration::from_millis(2500),
        "took {:?} with --timeout 1s",
        run.elapsed
    );
    let report = sink_report(&run, &sink);
    let greeting = report.step("greeting");
    assert_eq!(greeting.error_kind.as_deref(), Some("timeout"));
    assert!(
        greeting
            .error
            .as_deref()
            .is_some_and(|e| e.contains("part of a reply")),
        "{greeting:?}"
    );
    one_session(&sink);
}

#[test]
fn endless_multi_line_reply_is_bounded_in_time_and_memory() {
    const MAX_PEAK_KIB: u64 = 64 * 1024;
    let sink = sink(Script {
        ehlo: Action::Endless("250-xxxx".into()),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .timeout("10s")
        .json()
        .guard(Duration::from_secs(20))
        .run();
    run.assert_exit(8);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    let report = sink_report(&run, &sink);
    let f = report.failure();
    assert_eq!(f.stage, "ehlo");
    assert_eq!(f.kind.as_deref(), Some("malformed"), "{f:?}");
    assert_eq!(report.step("ehlo").error_kind.as_deref(), Some("malformed"));
    // Memory is sampled every millisecond while the binary runs. A client that buffered the
    // endless reply would have to live well over 50 ms to get past the limit, so a run that long
    // without a single sample means the measurement is broken, not that memory is fine.
    match run.peak_rss_kib {
        Some(peak) => {
            // A running program always has some resident memory: zero would mean a bad reading.
            assert!(peak > 256, "implausible peak RSS {peak} KiB");
            assert!(
                peak < MAX_PEAK_KIB,
                "peak RSS {peak} KiB is over {MAX_PEAK_KIB} KiB: the reply is not bounded"
            );
        }
        None => assert!(
            !cfg!(target_os = "linux") || run.elapsed < Duration::from_millis(50),
            "no memory sample although the run took {:?}",
            run.elapsed
        ),
    }
    let log = one_session(&sink);
    assert_eq!(log.verbs(), ["EHLO"], "{log:#?}");
}

#[test]
fn malformed_greeting_exits_8() {
    let sink = sink(Script {
        greeting: Action::Raw(b"HTTP/1.1 400 Bad Request\r\n".to_vec()),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .timeout("5s")
        .json()
        .run();
    run.assert_exit(8);
    let report = sink_report(&run, &sink);
    let greeting = report.step("greeting");
    assert_eq!(greeting.error_kind.as_deref(), Some("malformed"));
    assert!(!greeting.ok);
    assert!(greeting.reply.is_none());
    let f = report.failure();
    assert_eq!(f.stage, "greeting");
    assert_eq!(f.kind.as_deref(), Some("malformed"));
    assert!(f.reason.contains("HTTP/1.1"), "{}", f.reason);
    let log = one_session(&sink);
    assert!(
        commands_with_verb(&log, "EHLO").is_empty(),
        "EHLO sent after a malformed greeting: {log:#?}"
    );
}

#[test]
fn connection_refused_exits_5() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = Cmd::send(format!("127.0.0.1:{port}"), example_eml())
        .to("user@domain.com")
        .helo("test.example")
        .arg("--connect-timeout")
        .arg("5s")
        .json()
        .run();
    run.assert_exit(5);
    let report = smart_host_report(&run, &format!("127.0.0.1:{port}"));
    let f = report.failure();
    assert_eq!(f.stage, "connect");
    assert_eq!(f.kind.as_deref(), Some("connection-refused"));
    assert_eq!(report.stages(), ["connect"]);
    assert_eq!(report.attempt().port, port);
    assert_eq!(report.recipients.len(), 1);
    assert!(!report.recipients[0].accepted);
    assert!(report.recipients[0].reply.is_none());
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 3, and never a connection
// ---------------------------------------------------------------------------------------------

/// Runs with `eml` and `to`, expects exit 3 and no connection; returns the run (JSON mode).
#[track_caller]
fn input_error(eml: &std::path::Path, to: &str) -> Run {
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, eml).to(to).json().run();
    run.assert_exit(3);
    assert_no_connection(&sink);
    assert!(
        run.stderr.contains("smtpcheck: error:"),
        "no error on stderr\n{}",
        run.dump()
    );
    let report = run.report();
    assert_eq!(report.exit_code, 3);
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.failure().stage, "input");
    assert!(report.attempts.is_empty());
    assert!(report.routes.is_empty());
    assert!(report.message.is_none() && report.envelope.is_none());
    run
}

#[test]
fn to_with_crlf_injection_is_refused() {
    let run = input_error(&example_eml(), "a@b.com\r\nRCPT TO:<evil@x>");
    assert!(run.report().failure().reason.contains("--to"));
}

#[test]
fn to_that_is_not_an_address_is_refused() {
    let run = input_error(&example_eml(), "not-an-address");
    assert!(run.report().failure().reason.contains("not-an-address"));
}

#[test]
fn missing_eml_file_is_refused() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("does-not-exist.eml");
    let run = input_error(&path, "user@domain.com");
    assert!(run.report().failure().reason.contains("does-not-exist.eml"));
}

#[test]
fn binary_junk_file_is_refused() {
    let dir = TempDir::new("junk");
    let junk: Vec<u8> = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\xff\xfe\x00\x01\n\n\x00\x90"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    let path = dir.write("junk.eml", junk);
    input_error(&path, "user@domain.com");
}

#[test]
fn empty_file_is_refused() {
    let dir = TempDir::new("zero-bytes");
    let path = dir.write("m.eml", b"");
    let run = input_error(&path, "user@domain.com");
    assert!(run.report().failure().reason.contains("empty"));
}

#[test]
fn directory_is_refused() {
    let dir = TempDir::new("folder-as-eml");
    let run = input_error(dir.path(), "user@domain.com");
    assert!(run.report().failure().reason.contains("directory"));
}

#[test]
fn input_error_in_json_mode_is_one_json_document() {
    let run = input_error(&example_eml(), "not-an-address");
    let v = run.json_value();
    assert!(v.is_object());
    let report = run.report();
    assert_eq!(report.schema_version, 1);
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    let f = report.failure();
    assert_eq!(f.stage, "input");
    assert_eq!(f.class, "permanent");
    assert!(f.code.is_none() && f.enhanced.is_none() && f.kind.is_none());
    assert!(report.recipients.is_empty());
    assert!(report.queued_as.is_none());
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_from_sends_the_null_sender() {
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, example_eml())
        .from("")
        .to("user@domain.com")
        .json()
        .run();
    let (log, _) = delivered(&sink, &run);
    let mail = commands_with_verb(&log, "MAIL");
    assert_eq!(mail.len(), 1, "{log:#?}");
    let size = expected_content(&std::fs::read(example_eml()).unwrap()).len();
    assert_eq!(mail[0], format!("MAIL FROM:<> SIZE={size}"));
    let report = sink_report(&run, &sink);
    let env = report.envelope.as_ref().unwrap();
    assert_eq!(env.from, "");
    assert_eq!(env.from_source, "flag");
    assert_eq!(
        report.step("mail").sent.as_deref(),
        Some(mail[0]),
        "the report shows a different MAIL command than was sent"
    );
}

// ---------------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------------

#[test]
fn json_report_of_a_delivery() {
    let eml = example_eml();
    let file = std::fs::read(&eml).unwrap();
    let sink = sink(Script::default());
    // Clear text on purpose (the sink has no STARTTLS): nothing to warn about then.
    let run = Cmd::send_to_sink(&sink, &eml)
        .to("user@domain.com")
        .args(["--tls", "off"])
        .json()
        .run();
    let (log, wire) = delivered(&sink, &run);
    assert!(run.stdout.trim_start().starts_with('{'), "{}", run.dump());
    let report = sink_report(&run, &sink);

    assert_eq!(report.schema_version, 1);
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(report.outcome, "delivered");
    assert_eq!(report.exit_code, 0);
    assert!(report.failure.is_none());

    let m = report.message.as_ref().expect("message");
    assert_eq!(m.path, eml.display().to_string());
    assert_eq!(m.bytes, file.len() as u64);
    assert_eq!(
        m.message_id.as_deref(),
        Some("weekly-sales-47.20261122070000@bi.example.com")
    );
    assert_eq!(m.subject.as_deref(), Some("Weekly Sales Report - week 47"));

    let env = report.envelope.as_ref().expect("envelope");
    assert_eq!(env.from, "reports@bi.example.com");
    assert_eq!(env.from_source, "return-path");
    assert_eq!(env.recipients, ["user@domain.com"]);
    assert_eq!(env.recipients_source, "flag");

    let a = report.attempt();
    assert_eq!(a.host, "127.0.0.1");
    assert_eq!(a.address, "127.0.0.1");
    assert_eq!(a.port, sink.addr().port());
    let caps = a.capabilities.as_ref().expect("capabilities");
    assert_eq!(
        caps.keywords,
        [
            "PIPELINING",
            "SIZE 10240000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8"
        ]
    );
    assert_eq!(caps.size, Some(10_240_000));
    assert!(caps.pipelining && caps.eight_bit_mime && caps.smtputf8 && caps.enhanced_status_codes);
    assert!(!caps.dsn && !caps.starttls && !caps.chunking);
    assert!(caps.auth.is_empty());

    assert_eq!(
        report.stages(),
        ["connect", "greeting", "ehlo", "mail", "rcpt", "data", "message", "quit"]
    );
    let size = expected_content(&file).len();
    let sent: Vec<Option<String>> = a.steps.iter().map(|s| s.sent.clone()).collect();
    assert_eq!(
        sent,
        [
            None,
            None,
            Some("EHLO test.example".to_string()),
            Some(format!("MAIL FROM:<reports@bi.example.com> SIZE={size}")),
            Some("RCPT TO:<user@domain.com>".to_string()),
            Some("DATA".to_string()),
            Some(".".to_string()),
            Some("QUIT".to_string()),
        ]
    );
    // What the report says was sent is what the server received.
    let commands: Vec<&str> = a.steps[2..]
        .iter()
        .filter(|s| s.stage != "message")
        .filter_map(|s| s.sent.as_deref())
        .collect();
    assert_eq!(commands, log.commands);
    let codes: Vec<Option<u16>> = a
        .steps
        .iter()
        .map(|s| s.reply.as_ref().map(|r| r.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(220),
            Some(250),
            Some(250),
            Some(250),
            Some(354),
            Some(250),
            Some(221)
        ]
    );
    for s in &a.steps {
        assert!(s.ok, "step {} not ok: {s:?}", s.stage);
        assert!(s.error.is_none() && s.error_kind.is_none(), "{s:?}");
        assert!(s.elapsed_ms >= 0.0);
        if s.stage == "message" {
            assert_eq!(
                s.octets,
                Some(wire.len() as u64),
                "octets of the message step"
            );
        } else {
            assert!(s.octets.is_none(), "octets on the {} step", s.stage);
        }
    }
    let ehlo = report.step("ehlo").reply.as_ref().unwrap();
    assert_eq!(ehlo.lines.len(), 6);
    assert_eq!(ehlo.lines[0], "250-sink.test greets you");
    assert_eq!(ehlo.lines[5], "250 SMTPUTF8");
    let greeting = report.step("greeting").reply.as_ref().unwrap();
    assert_eq!(greeting.lines, ["220 sink.test ESMTP smtpcheck test sink"]);
    assert_eq!(greeting.enhanced, None);
    let message = report.step("message").reply.as_ref().unwrap();
    assert_eq!(message.enhanced.as_deref(), Some("2.0.0"));

    // The octets key appears on the message step only; error_kind on none.
    let v = run.json_value();
    for s in v["attempts"][0]["steps"].as_array().unwrap() {
        let obj = s.as_object().unwrap();
        assert_eq!(obj.contains_key("octets"), s["stage"] == "message", "{s}");
        assert!(!obj.contains_key("error_kind"), "{s}");
    }

    assert_eq!(report.recipients.len(), 1);
    let r = &report.recipients[0];
    assert_eq!(r.address, "user@domain.com");
    assert!(r.accepted);
    assert_eq!(
        r.reply,
        Some(JsonReply {
            code: 250,
            enhanced: Some("2.1.5".into()),
            lines: vec!["250 2.1.5 Ok".into()],
        })
    );
    assert_eq!(
        report.queued_as.as_deref(),
        Some("Ok: queued as 4QX7Sink01")
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.elapsed_ms > 0.0);
    assert!(report.elapsed_ms < run.elapsed.as_secs_f64() * 1000.0 + 1.0);
}

#[test]
fn json_mode_writes_nothing_but_the_document_on_failure() {
    let sink = sink(Script {
        mail: Action::reply("451 4.3.0 Try again later"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .json()
        .run();
    run.assert_exit(32);
    one_session(&sink);
    let report = sink_report(&run, &sink);
    assert_eq!(report.exit_code, 32);
    let f = report.failure();
    assert_eq!(f.class, "transient");
    assert_eq!(f.code, Some(451));
    assert!(!run.stdout.contains("Verdict:"), "{}", run.dump());
    assert!(!run.stdout.contains("-> "), "{}", run.dump());
}

#[test]
fn text_report_shows_the_transcript_and_ends_with_the_verdict() {
    let sink = sink(Script::default());
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .run();
    delivered(&sink, &run);
    let last = run.last_line();
    assert!(last.starts_with("Verdict:"), "{last}");
    assert!(last.ends_with("(exit 0)"), "{last}");
    assert!(last.contains("delivered"), "{last}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for want in [
        "<- 220 sink.test ESMTP smtpcheck test sink",
        "-> EHLO test.example",
        "<- 250-sink.test greets you",
    ] {
        assert!(lines.contains(&want), "{want:?} missing\n{}", run.dump());
    }
    let mail = lines
        .iter()
        .position(|l| l.starts_with("-> MAIL FROM:<reports@bi.example.com>"))
        .unwrap_or_else(|| panic!("no MAIL line\n{}", run.dump()));
    assert_eq!(lines.get(mail + 1), Some(&"<- 250 2.1.0 Ok"));
    assert!(lines.contains(&"-> RCPT TO:<user@domain.com>"));
    assert!(lines.contains(&"<- 250 2.0.0 Ok: queued as 4QX7Sink01"));
    assert!(run.stderr.is_empty(), "{}", run.dump());
}

#[test]
fn text_report_verdict_names_the_exit_code_on_failure() {
    let sink = sink(Script {
        mail: Action::reply("550 5.7.1 Sender rejected"),
        ..Script::default()
    });
    let run = Cmd::send_to_sink(&sink, example_eml())
        .to("user@domain.com")
        .run();
    run.assert_exit(12);
    one_session(&sink);
    let last = run.last_line();
    assert!(last.starts_with("Verdict: failed at mail"), "{last}");
    assert!(last.contains("550 5.7.1 Sender rejected"), "{last}");
    assert!(last.ends_with("(exit 12)"), "{last}");
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("-> MAIL FROM:<reports@bi.example.com>")));
    assert!(run
        .stdout
        .lines()
        .any(|l| l == "<- 550 5.7.1 Sender rejected"));
}
