//! Whole sessions over an in-memory pipe against a scripted peer: what the attempt came to, the
//! steps and events recorded, and the exact bytes the peer received.

use super::*;
use crate::message::{from_bytes, Source};
use crate::secret::Secret;
use crate::smtp::auth::AuthOptions;
use crate::tls::TlsOptions;
use crate::transcript::BreakKind;
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// One turn of the scripted peer.
enum Act {
    /// Writes these bytes (in one write).
    Say(String),
    /// Reads one command line, through its LF.
    Hear,
    /// Reads message data, through the terminating CRLF.CRLF.
    Data,
    /// Hangs up.
    Hangup,
}

fn say(text: &str) -> Act {
    Act::Say(text.to_string())
}

/// Plays `script`, then takes whatever else comes until the client hangs up; returns every byte
/// received.
async fn peer(mut io: DuplexStream, script: Vec<Act>) -> Vec<u8> {
    let mut got = Vec::new();
    for act in script {
        let ok = match act {
            Act::Say(text) => io.write_all(text.as_bytes()).await.is_ok(),
            Act::Hear => read_through(&mut io, &mut got, b"\n").await,
            Act::Data => read_through(&mut io, &mut got, b"\r\n.\r\n").await,
            Act::Hangup => return got,
        };
        if !ok {
            return got;
        }
    }
    let _ = io.read_to_end(&mut got).await;
    got
}

/// Reads a byte at a time until `got` ends with `end`; `false` when the client hung up first.
async fn read_through(io: &mut DuplexStream, got: &mut Vec<u8>, end: &[u8]) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match io.read(&mut byte).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => got.push(byte[0]),
        }
        if got.ends_with(end) {
            return true;
        }
    }
}

/// Records every event as a line.
#[derive(Default)]
struct Record(Mutex<Vec<String>>);

impl Events for Record {
    fn on(&self, event: &Event<'_>) {
        let line = match event {
            Event::AttemptStarted(t) => format!("attempt {}", t.host),
            Event::StepStarted { stage, sent, .. } => format!("start {stage} {sent:?}"),
            Event::StepFinished(s) => format!("done {} {}", s.stage, s.ok),
            Event::RoutePlanned(p) => format!("plan {}", p.domain),
            Event::MovingOn(why) => format!("next {why}"),
            Event::TlsEstablished(t) => format!("tls {}", t.version),
            Event::Note(text) => format!("note {text}"),
        };
        if let Ok(mut v) = self.0.lock() {
            v.push(line);
        }
    }
}

fn options() -> SessionOptions {
    SessionOptions {
        helo: Helo::Given(ClientId::Domain("client.test".into())),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        quit_after: None,
        tls: TlsOptions::default(),
        auth: None,
        dsn: Dsn::default(),
    }
}

fn message(body: &str) -> Message {
    let raw = format!("From: a@example.test\nTo: b@example.test\nSubject: test\n\n{body}");
    from_bytes(Path::new("test.eml"), raw.into_bytes()).expect("a valid message")
}

fn envelope(to: &[&str]) -> Envelope {
    let addr = |a: &str| a.parse::<Address>().expect("a valid address");
    Envelope {
        from: Some(addr("a@example.test")),
        from_source: Source::Flag,
        recipients: to.iter().map(|a| addr(a)).collect(),
        recipients_source: Source::Flag,
    }
}

/// What a session over the pipe came to.
struct Run {
    result: AttemptResult,
    /// Every byte the peer received.
    wire: String,
    events: Vec<String>,
}

impl Run {
    fn stages(&self) -> Vec<Stage> {
        self.result.attempt.steps.iter().map(|s| s.stage).collect()
    }

    fn failure(&self) -> &Failure {
        self.result.failure.as_ref().expect("a failure")
    }
}

async fn run(opts: &SessionOptions, msg: &Message, to: &[&str], script: Vec<Act>) -> Run {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let target = Target {
        host: "mx.test".into(),
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 25,
    };
    let events = Record::default();
    let env = envelope(to);
    let session = attempt_on(client, None, &target, opts, msg, &env, &events);
    let (result, got) = tokio::join!(session, peer(server, script));
    let events = events.0.into_inner().unwrap_or_default();
    let wire = String::from_utf8_lossy(&got).into_owned();
    Run {
        result,
        wire,
        events,
    }
}

/// Greeting and EHLO with `ehlo` as the reply.
fn opening(ehlo: &str) -> Vec<Act> {
    vec![say("220 mx.test ESMTP ready\r\n"), Act::Hear, say(ehlo)]
}

/// MAIL, each RCPT with its reply, DATA, the message and QUIT, all accepted but the RCPTs.
fn transaction(rcpts: &[&str]) -> Vec<Act> {
    let mut acts = vec![Act::Hear, say("250 2.1.0 ok\r\n")];
    for reply in rcpts {
        acts.extend([Act::Hear, say(reply)]);
    }
    acts.extend([
        Act::Hear,
        say("354 go ahead\r\n"),
        Act::Data,
        say("250 2.0.0 Ok: queued as 4F2A\r\n"),
    ]);
    acts.extend(quit());
    acts
}

fn quit() -> [Act; 2] {
    [Act::Hear, say("221 2.0.0 bye\r\n")]
}

#[tokio::test]
async fn a_delivered_session() {
    let msg = message("Hello.\n");
    let mut script = opening("250-mx.test\r\n250-SIZE 10000\r\n250 8BITMIME\r\n");
    script.extend(transaction(&["250 2.1.5 ok\r\n"]));
    let r = run(&options(), &msg, &["b@example.test"], script).await;

    assert_eq!((r.result.exit, &r.result.failure), (Exit::Delivered, &None));
    let size = msg.normalized_len();
    let data = "From: a@example.test\r\nTo: b@example.test\r\nSubject: test\r\n\r\nHello.\r\n.\r\n";
    let want = format!(
        "EHLO client.test\r\nMAIL FROM:<a@example.test> SIZE={size}\r\nRCPT TO:<b@example.test>\r\nDATA\r\n{data}QUIT\r\n"
    );
    assert_eq!(r.wire, want);
    use Stage::*;
    assert_eq!(
        r.stages(),
        [Greeting, Ehlo, Mail, Rcpt, Data, Message, Quit]
    );
    assert!(r.result.attempt.steps.iter().all(|s| s.ok));
    assert_eq!(r.result.queued_as.as_deref(), Some("Ok: queued as 4F2A"));
    assert!(r.result.mail_accepted);
    assert_eq!(r.result.attempt.greeting_name.as_deref(), Some("mx.test"));
    let caps = r
        .result
        .attempt
        .capabilities
        .as_ref()
        .expect("capabilities");
    assert_eq!((caps.size, caps.eight_bit_mime), (Some(10000), true));
    assert_eq!(r.result.recipients.len(), 1);
    assert!(r.result.recipients[0].accepted);
    assert_eq!(
        r.events[..5],
        [
            "attempt mx.test",
            "start greeting None",
            "done greeting true",
            "start ehlo Some(\"EHLO client.test\")",
            "done ehlo true",
        ]
    );
    assert_eq!(r.events.len(), 1 + 2 * 7, "{:?}", r.events);
    assert_eq!(r.events[11], "start message Some(\".\")");
}

#[tokio::test]
async fn ehlo_refused_as_not_implemented_falls_back_to_helo() {
    let msg = message("Hello.\n");
    let mut script = opening("502 5.5.2 EHLO not implemented\r\n");
    script.extend([Act::Hear, say("250 mx.test\r\n")]);
    script.extend(transaction(&["250 ok\r\n"]));
    let r = run(&options(), &msg, &["b@example.test"], script).await;

    assert_eq!((r.result.exit, &r.result.failure), (Exit::Delivered, &None));
    assert!(r
        .wire
        .starts_with("EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<a@example.test>\r\nRCPT"));
    use Stage::*;
    let stages = r.stages();
    assert_eq!(stages[..4], [Greeting, Ehlo, Helo, Mail]);
    assert!(!r.result.attempt.steps[1].ok && r.result.attempt.steps[2].ok);
    assert!(r.result.attempt.capabilities.is_none());
}

#[tokio::test]
async fn ehlo_refused_with_421_ends_the_session_without_helo() {
    let mut script = opening("421 4.3.2 shutting down\r\n");
    script.extend(quit());
    let r = run(&options(), &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::HelloLater, "a 421 is temporary");
    assert_eq!(
        r.failure().reason,
        "the server refused EHLO: 421 4.3.2 shutting down"
    );
    assert_eq!(r.wire, "EHLO client.test\r\nQUIT\r\n");
    assert!(!r.result.mail_accepted);
}

#[tokio::test]
async fn one_recipient_refused_of_two_is_a_partial_delivery() {
    let msg = message("Hello.\n");
    let mut script = opening("250 mx.test\r\n");
    let no = "550 5.1.1 <c@example.test>: no such user\r\n";
    script.extend(transaction(&["250 2.1.5 ok\r\n", no]));
    let r = run(
        &options(),
        &msg,
        &["b@example.test", "c@example.test"],
        script,
    )
    .await;

    assert_eq!(r.result.exit, Exit::Partial);
    let f = r.failure();
    assert_eq!(
        f.reason,
        "recipient c@example.test refused: 550 5.1.1 <c@example.test>: no such user"
    );
    assert_eq!((f.stage, f.code), (Stage::Rcpt, Some(550)));
    let accepted: Vec<bool> = r.result.recipients.iter().map(|r| r.accepted).collect();
    assert_eq!(accepted, [true, false]);
    assert!(r
        .wire
        .contains("RCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n"));
    assert!(r.wire.ends_with(".\r\nQUIT\r\n"));
    assert_eq!(r.result.queued_as.as_deref(), Some("Ok: queued as 4F2A"));
}

#[tokio::test]
async fn a_server_closing_in_the_middle_of_a_reply_breaks_the_session() {
    let mut script = opening("250 mx.test\r\n");
    script.extend([Act::Hear, say("250 ok\r\n"), Act::Hear]);
    script.extend([say("451-4.3.0 temporary\r\n"), Act::Hangup]);
    let r = run(&options(), &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Broken);
    let f = r.failure();
    assert_eq!((f.stage, f.kind), (Stage::Rcpt, Some(BreakKind::Closed)));
    assert_eq!(
        f.reason,
        "rcpt: the server closed the connection in the middle of a reply"
    );
    let last = r.result.attempt.steps.last().expect("steps");
    assert_eq!(last.sent.as_deref(), Some("RCPT TO:<b@example.test>"));
    assert_eq!(
        last.error.as_deref(),
        Some("the server closed the connection in the middle of a reply")
    );
    assert!(r.result.mail_accepted && r.result.recipients.is_empty());
    assert!(!r.wire.contains("QUIT"), "no QUIT on a broken session");
}

#[tokio::test]
async fn a_reply_before_its_command_is_a_protocol_violation() {
    let script = opening("250 mx.test\r\n354 go ahead\r\n");
    let r = run(&options(), &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Broken);
    let f = r.failure();
    assert_eq!((f.stage, f.kind), (Stage::Mail, Some(BreakKind::Protocol)));
    assert_eq!(
        f.reason,
        r#"mail: the server sent data before it was asked ("354 go ahead\\x0d\\x0a"): a protocol violation"#
    );
    assert_eq!(r.wire, "EHLO client.test\r\n", "MAIL was never written");
}

#[tokio::test]
async fn the_message_is_sent_dot_stuffed_with_crlf_line_endings() {
    let msg = message(".starts with a dot\nmiddle\n.\n..two\rend");
    let mut script = opening("250 mx.test\r\n");
    script.extend(transaction(&["250 ok\r\n"]));
    let r = run(&options(), &msg, &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Delivered);
    let data = "From: a@example.test\r\nTo: b@example.test\r\nSubject: test\r\n\r\n..starts with a dot\r\nmiddle\r\n..\r\n...two\r\nend\r\n.\r\n";
    let sent = r.wire.split_once("DATA\r\n").map(|(_, rest)| rest);
    assert_eq!(sent, Some(format!("{data}QUIT\r\n").as_str()));
    let step = &r.result.attempt.steps[5];
    assert_eq!(step.stage, Stage::Message);
    assert_eq!(step.octets, Some(data.len() as u64 - 3));
    assert_eq!(step.sent.as_deref(), Some("."));
}

#[tokio::test]
async fn no_reply_within_the_timeout_breaks_the_session() {
    let opts = SessionOptions {
        timeout: Duration::from_millis(150),
        ..options()
    };
    let script = vec![say("220 mx.test\r\n"), Act::Hear];
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Broken);
    let f = r.failure();
    assert_eq!((f.stage, f.kind), (Stage::Ehlo, Some(BreakKind::Timeout)));
    assert_eq!(f.reason, "ehlo: no complete reply within 150 ms");

    let script = vec![say("220 mx.test\r\n"), Act::Hear, say("250-mx.test\r\n")];
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;
    assert_eq!(
        r.failure().reason,
        "ehlo: no complete reply within 150 ms (only part of a reply arrived)"
    );
}

#[tokio::test]
async fn a_command_with_a_line_break_is_never_written() {
    let opts = SessionOptions {
        helo: Helo::Given(ClientId::Domain("client.test\r\nRSET".into())),
        ..options()
    };
    let script = vec![say("220 mx.test\r\n")];
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Broken);
    let f = r.failure();
    assert_eq!((f.stage, f.kind), (Stage::Ehlo, Some(BreakKind::Protocol)));
    assert_eq!(
        f.reason,
        "ehlo: refusing to send a command line containing CR, LF or NUL"
    );
    assert_eq!(r.wire, "");
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_with_quit() {
    let opts = SessionOptions {
        tls: TlsOptions {
            policy: Policy::Required,
            ..TlsOptions::default()
        },
        ..options()
    };
    let mut script = opening("250 mx.test\r\n");
    script.extend(quit());
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Tls);
    assert_eq!(
        r.failure().reason,
        "TLS is required (--tls required) but mx.test does not offer STARTTLS in its EHLO reply"
    );
    assert_eq!(r.wire, "EHLO client.test\r\nQUIT\r\n");
}

#[tokio::test]
async fn starttls_opportunistic_not_offered_goes_on_in_clear_with_a_note() {
    let opts = SessionOptions {
        tls: TlsOptions {
            policy: Policy::Opportunistic,
            ..TlsOptions::default()
        },
        quit_after: Some(Stage::Mail),
        ..options()
    };
    let mut script = opening("250 mx.test\r\n");
    script.extend([
        Act::Hear,
        say("250 ok\r\n"),
        Act::Hear,
        say("250 reset\r\n"),
    ]);
    script.extend(quit());
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!((r.result.exit, &r.result.failure), (Exit::Delivered, &None));
    let note =
        "mx.test does not offer STARTTLS: the session continued unencrypted (--tls opportunistic)";
    assert_eq!(r.result.warnings, [note]);
    assert!(r.events.contains(&format!("note {note}")));
    use Stage::*;
    assert_eq!(r.stages(), [Greeting, Ehlo, Mail, Rset, Quit]);
    assert!(r.wire.ends_with("RSET\r\nQUIT\r\n"));
}

#[tokio::test]
async fn bytes_after_the_starttls_go_ahead_abandon_the_session() {
    let opts = SessionOptions {
        tls: TlsOptions {
            policy: Policy::Opportunistic,
            ..TlsOptions::default()
        },
        ..options()
    };
    let mut script = opening("250-mx.test\r\n250 STARTTLS\r\n");
    script.extend([Act::Hear, say("220 go ahead\r\n250 injected\r\n")]);
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Tls);
    let f = r.failure();
    assert_eq!(
        (f.stage, f.kind),
        (Stage::Starttls, Some(BreakKind::Protocol))
    );
    assert!(
        f.reason.starts_with("starttls: protocol violation: the server sent 14 byte(s) after its 220 reply to STARTTLS, before the TLS handshake (250 injected\\x0d\\x0a)"),
        "{}",
        f.reason
    );
    assert_eq!(r.wire, "EHLO client.test\r\nSTARTTLS\r\n", "no QUIT");
}

fn auth(allow_plain: bool) -> Option<AuthOptions> {
    Some(AuthOptions {
        user: "bob".into(),
        password: Some(Secret::new("hunter2".into())),
        token: None,
        mechanism: None,
        allow_unencrypted: allow_plain,
    })
}

#[tokio::test]
async fn auth_over_a_clear_connection_is_refused_before_anything_is_sent() {
    let opts = SessionOptions {
        auth: auth(false),
        ..options()
    };
    let mut script = opening("250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
    script.extend(quit());
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Auth);
    assert!(r.failure().reason.starts_with(
        "refusing to send the password of bob over an unencrypted connection (nothing was sent)"
    ));
    assert_eq!(r.wire, "EHLO client.test\r\nQUIT\r\n");
}

#[tokio::test]
async fn a_password_echoed_by_the_server_is_scrubbed() {
    let opts = SessionOptions {
        auth: auth(true),
        ..options()
    };
    let mut script = opening("250-mx.test\r\n250 AUTH PLAIN\r\n");
    script.extend([Act::Hear, say("535 5.7.8 bad password hunter2\r\n")]);
    script.extend(quit());
    let r = run(&opts, &message("x\n"), &["b@example.test"], script).await;

    assert_eq!(r.result.exit, Exit::Auth);
    assert!(r.wire.contains("AUTH PLAIN AGJvYgBodW50ZXIy\r\n"));
    let step = &r.result.attempt.steps[2];
    assert_eq!(step.stage, Stage::Auth);
    assert!(!step
        .sent
        .as_deref()
        .unwrap_or("")
        .contains("AGJvYgBodW50ZXIy"));
    let reply = step.reply.as_ref().expect("a reply");
    assert_eq!(reply.lines, ["535 5.7.8 bad password <redacted>"]);
    assert!(!r.failure().reason.contains("hunter2"));
}

#[tokio::test]
async fn more_than_a_hundred_recipients_take_two_transactions() {
    let to: Vec<String> = (0..101).map(|i| format!("r{i}@example.test")).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let mut script = opening("250 mx.test\r\n");
    let mut first = transaction(&["250 ok\r\n"; 100]);
    first.truncate(first.len() - 2); // no QUIT yet
    script.extend(first);
    script.extend(transaction(&["250 ok\r\n"]));
    let r = run(&options(), &message("x\n"), &to, script).await;

    assert_eq!((r.result.exit, &r.result.failure), (Exit::Delivered, &None));
    assert_eq!(r.wire.matches("MAIL FROM:").count(), 2);
    assert_eq!(r.wire.matches("RCPT TO:").count(), 101);
    assert_eq!(r.wire.matches("\r\nDATA\r\n").count(), 2);
    assert_eq!(r.result.recipients.len(), 101);
}
