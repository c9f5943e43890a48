//! Direct mode (issue 3) through the built binary: MX lookup against an in-process DNS server,
//! failover across scripted SMTP servers on distinct loopback addresses, smart-host fallback,
//! several domains in one run, and `smtpcheck mx`.
//!
//! Every test has a loopback network of its own, `127.0.N.0/24` with `N` unique per test, so a
//! "dead" address (nothing bound on it) is dead whatever the other tests running at the same time
//! do. All the servers of a test listen on one port, which is what `--port` gives the binary.

use crate::common::dns::TestDns;
use crate::common::{
    self, example_eml, no_connection, sessions, Action, JsonMxReport, Script, SessionLog, Sink,
    SINK_WAIT,
};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// The envelope sender of every run.
const FROM: &str = "reports@bi.example.com";

// ---------------------------------------------------------------------------------------------
// Running the binary: the shared runner of common, with two conveniences
// ---------------------------------------------------------------------------------------------

type Out = common::Run;

trait OutExt {
    fn json(&self) -> Value;
    fn pos(&self, needle: &str) -> usize;
}

impl OutExt for Out {
    /// stdout as one JSON document.
    #[track_caller]
    fn json(&self) -> Value {
        self.json_value()
    }

    /// The byte offset of `needle` in stdout (fails the test when it is missing).
    #[track_caller]
    fn pos(&self, needle: &str) -> usize {
        self.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("stdout lacks {needle:?}\n{}", self.dump()))
    }
}

/// Runs the built binary with `args` under the shared time guard.
fn smtpcheck(args: &[String]) -> Out {
    common::Cmd::new().args(args).run()
}

/// `smtpcheck send` in direct mode against the test DNS server and port, with short bounds, as
/// JSON; `extra` goes on the end.
fn send_args(dns: SocketAddr, port: u16, to: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "send".into(),
        "--eml".into(),
        example_eml().display().to_string(),
        "--from".into(),
        FROM.into(),
        "--helo".into(),
        "client.test".into(),
        "--resolver".into(),
        dns.to_string(),
        "--dns-timeout".into(),
        "3s".into(),
        "--port".into(),
        port.to_string(),
        "--connect-timeout".into(),
        "2s".into(),
        "--timeout".into(),
        "5s".into(),
        "--format".into(),
        "json".into(),
    ];
    for t in to {
        a.push("--to".into());
        a.push(t.to_string());
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// `smtpcheck mx DOMAINS… --resolver DNS --port PORT` plus `extra`.
fn mx_args(dns: SocketAddr, port: u16, domains: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["mx".into()];
    a.extend(domains.iter().map(|d| d.to_string()));
    a.extend(
        [
            "--resolver",
            &dns.to_string(),
            "--dns-timeout",
            "3s",
            "--port",
            &port.to_string(),
            "--helo",
            "client.test",
            "--connect-timeout",
            "2s",
            "--timeout",
            "5s",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Sets the value of `flag` (already in `args`) to `value`.
fn set(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} not in {args:?}"));
    args[i + 1] = value.into();
    args
}

/// The same arguments with `--format json` turned into `--format text`.
fn as_text(mut args: Vec<String>) -> Vec<String> {
    if let Some(i) = args.iter().position(|a| a == "json") {
        args[i] = "text".into();
    }
    args
}

// ---------------------------------------------------------------------------------------------
// Loopback servers
// ---------------------------------------------------------------------------------------------

/// `127.0.net.host`.
fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

/// Binds one sink per `(host, script)` on `127.0.net.host`, all on the same port: the first on
/// port 0, the others on the port it got (a fresh port is tried when one of them cannot bind).
/// With no script at all, returns a port nothing on the test's network listens on.
fn sinks(net: u8, specs: Vec<(u8, Script)>) -> (u16, Vec<Sink>) {
    if specs.is_empty() {
        let l = TcpListener::bind(SocketAddr::new(ip(net, 1), 0)).expect("bind a probe port");
        return (l.local_addr().unwrap().port(), Vec::new());
    }
    for _ in 0..50 {
        let (first_host, first_script) = &specs[0];
        let first = Sink::bind(
            SocketAddr::new(ip(net, *first_host), 0),
            first_script.clone(),
        )
        .expect("bind the first sink");
        let port = first.addr().port();
        let mut all = vec![first];
        for (host, script) in &specs[1..] {
            match Sink::bind(SocketAddr::new(ip(net, *host), port), script.clone()) {
                Ok(s) => all.push(s),
                Err(_) => break,
            }
        }
        if all.len() == specs.len() {
            return (port, all);
        }
    }
    panic!("could not bind every sink of network 127.0.{net}.0 on one port");
}

/// A sink that delivers, with a queue id naming it.
fn accepting(name: &str) -> Script {
    Script {
        end_of_data: Action::reply(&format!("250 2.0.0 Ok: queued as {name}")),
        ..Script::default()
    }
}

/// A session that carried one full transaction: MAIL, RCPT…, DATA, one message, QUIT.
#[track_caller]
fn assert_delivered_session(log: &SessionLog, rcpts: usize) {
    let v = log.verbs();
    assert_eq!(v[0], "EHLO", "{log:#?}");
    assert_eq!(v.iter().filter(|x| *x == "MAIL").count(), 1, "{log:#?}");
    assert_eq!(v.iter().filter(|x| *x == "RCPT").count(), rcpts, "{log:#?}");
    assert_eq!(v.iter().filter(|x| *x == "DATA").count(), 1, "{log:#?}");
    assert_eq!(v.last().map(String::as_str), Some("QUIT"), "{log:#?}");
    assert_eq!(log.messages.len(), 1, "{log:#?}");
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The stages of an attempt's steps.
fn stages(attempt: &Value) -> Vec<String> {
    arr(&attempt["steps"])
        .iter()
        .map(|st| s(&st["stage"]).to_string())
        .collect()
}

/// The step of `stage` in an attempt.
#[track_caller]
fn step<'a>(attempt: &'a Value, stage: &str) -> &'a Value {
    arr(&attempt["steps"])
        .iter()
        .find(|st| st["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} step in {attempt:#}"))
}

/// Checks the route's shape and returns its attempts.
#[track_caller]
fn route<'a>(report: &'a Value, i: usize, domain: &str) -> &'a Value {
    let r = &arr(&report["routes"])[i];
    assert_eq!(r["domain"], domain, "{r:#}");
    assert_eq!(r["mode"], "direct", "{r:#}");
    for key in common::ROUTE_KEYS {
        assert!(
            r.as_object().unwrap().contains_key(key),
            "route lacks {key}: {r:#}"
        );
    }
    r
}

// ---------------------------------------------------------------------------------------------
// send: failover
// ---------------------------------------------------------------------------------------------

#[test]
fn first_mx_refuses_the_connection_second_delivers() {
    const N: u8 = 11;
    let (port, sinks) = sinks(N, vec![(3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    assert_eq!(report["outcome"], "delivered");
    assert_eq!(report["exit_code"], 0);
    assert!(report["failure"].is_null(), "{report:#}");
    assert_eq!(arr(&report["routes"]).len(), 1);
    let r = route(&report, 0, "d.test");
    assert_eq!(r["outcome"], "delivered");
    assert_eq!(r["exit_code"], 0);
    assert!(r["relay"].is_null());
    let mx = arr(&r["mx"]);
    assert_eq!(mx.len(), 2, "{r:#}");
    assert_eq!(mx[0]["host"], "mx1.test");
    assert_eq!(mx[0]["preference"], 10);
    assert_eq!(
        mx[0]["addresses"],
        serde_json::json!([ip(N, 2).to_string()])
    );
    assert_eq!(mx[1]["host"], "mx2.test");
    assert_eq!(mx[1]["preference"], 20);
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 2, "{r:#}");
    assert_eq!(attempts[0]["host"], "mx1.test");
    assert_eq!(attempts[0]["address"], ip(N, 2).to_string());
    assert_eq!(attempts[0]["port"], port);
    let connect = step(&attempts[0], "connect");
    assert_eq!(connect["ok"], false, "{connect:#}");
    assert_eq!(connect["error_kind"], "connection-refused", "{connect:#}");
    assert!(connect["error"].is_string(), "{connect:#}");
    assert_eq!(stages(&attempts[0]), ["connect"]);
    assert_eq!(attempts[1]["host"], "mx2.test");
    assert_eq!(attempts[1]["address"], ip(N, 3).to_string());
    assert_eq!(step(&attempts[1], "message")["ok"], true);
    // The flat list keeps every attempt too.
    assert_eq!(arr(&report["attempts"]).len(), 2);
    assert!(s(&report["queued_as"]).contains("MX2"), "{report:#}");
    assert_eq!(report["recipients"][0]["address"], "user@d.test");
    assert_eq!(report["recipients"][0]["accepted"], true);

    let log = &sessions(&sinks[0], 1, &out)[0];
    assert_delivered_session(log, 1);
    assert_eq!(log.commands[2], "RCPT TO:<user@d.test>");
}

#[test]
fn first_mx_greets_421_second_delivers() {
    const N: u8 = 12;
    let busy = Script {
        greeting: Action::reply("421 4.3.2 mx1.test busy, try later"),
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, busy), (3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    assert_eq!(r["outcome"], "delivered");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 2, "{r:#}");
    let greeting = step(&attempts[0], "greeting");
    assert_eq!(greeting["ok"], false);
    assert_eq!(greeting["reply"]["code"], 421);
    assert!(!stages(&attempts[0]).contains(&"ehlo".to_string()), "{r:#}");
    assert_eq!(attempts[1]["address"], ip(N, 3).to_string());
    assert!(s(&report["queued_as"]).contains("MX2"));

    let first = &sessions(&sinks[0], 1, &out)[0];
    assert_eq!(
        first.commands,
        ["QUIT"],
        "the 421 server should get QUIT only"
    );
    let second = &sessions(&sinks[1], 1, &out)[0];
    assert_delivered_session(second, 1);
}

#[test]
fn first_mx_refuses_ehlo_and_helo_second_delivers() {
    const N: u8 = 13;
    let picky = Script {
        ehlo: Action::reply("502 5.5.2 EHLO not implemented"),
        helo: Action::reply("550 5.7.1 go away"),
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, picky), (3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 2, "{r:#}");
    assert_eq!(step(&attempts[0], "ehlo")["reply"]["code"], 502);
    assert_eq!(step(&attempts[0], "helo")["reply"]["code"], 550);
    assert_eq!(step(&attempts[0], "helo")["ok"], false);
    assert!(!stages(&attempts[0]).contains(&"mail".to_string()), "{r:#}");
    assert_eq!(attempts[1]["address"], ip(N, 3).to_string());
    assert_eq!(r["outcome"], "delivered");

    let first = &sessions(&sinks[0], 1, &out)[0];
    assert_eq!(first.verbs(), ["EHLO", "HELO", "QUIT"], "{first:#?}");
    assert_delivered_session(&sessions(&sinks[1], 1, &out)[0], 1);
}

#[test]
fn refused_recipient_is_an_answer_not_a_reason_to_fail_over() {
    const N: u8 = 14;
    let refusing = Script {
        rcpt: Action::reply("550 5.1.1 <user@d.test>: Recipient address rejected"),
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, refusing), (3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(13);
    let report = out.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["failure"]["stage"], "rcpt");
    assert_eq!(report["failure"]["class"], "permanent");
    assert_eq!(report["failure"]["code"], 550);
    let r = route(&report, 0, "d.test");
    assert_eq!(r["exit_code"], 13);
    assert_eq!(r["outcome"], "failed");
    assert_eq!(arr(&r["attempts"]).len(), 1, "{r:#}");
    assert_eq!(arr(&report["attempts"]).len(), 1);
    assert_eq!(report["recipients"][0]["accepted"], false);
    assert_eq!(report["recipients"][0]["reply"]["code"], 550);

    let first = &sessions(&sinks[0], 1, &out)[0];
    assert_eq!(
        first.verbs(),
        ["EHLO", "MAIL", "RCPT", "QUIT"],
        "{first:#?}"
    );
    no_connection(&sinks[1], &out);
}

#[test]
fn equal_preferences_are_both_tried_first_across_runs() {
    const N: u8 = 15;
    let (port, sinks) = sinks(N, vec![(2, accepting("A")), (3, accepting("B"))]);
    let zone = format!(
        "d MX 10 mxa\nd MX 10 mxb\nmxa A {}\nmxb A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let mut runs = 0;
    let mut firsts = [0usize; 2];
    while runs < 20 && (firsts[0] == 0 || firsts[1] == 0) {
        let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
        out.assert_exit(0);
        runs += 1;
        let report = out.json();
        let r = route(&report, 0, "d.test");
        let attempts = arr(&r["attempts"]);
        assert_eq!(attempts.len(), 1, "{r:#}");
        // Both hosts are in the plan, at the same preference, whichever comes first.
        let mx = arr(&r["mx"]);
        assert_eq!(mx.len(), 2);
        assert!(mx.iter().all(|m| m["preference"] == 10));
        let which = usize::from(attempts[0]["host"] == "mxb.test");
        assert_eq!(mx[0]["host"], attempts[0]["host"], "{r:#}");
        firsts[which] += 1;
        // Each run's one connection went to the host the report names.
        let deadline = Instant::now() + SINK_WAIT;
        while sinks[0].sessions().len() + sinks[1].sessions().len() < runs
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sinks[0].sessions().len(), firsts[0], "{}", out.dump());
        assert_eq!(sinks[1].sessions().len(), firsts[1], "{}", out.dump());
    }
    assert!(
        firsts[0] > 0 && firsts[1] > 0,
        "in {runs} runs mxa came first {} times and mxb {} times",
        firsts[0],
        firsts[1]
    );
}

#[test]
fn max_attempts_one_with_the_first_mx_dead() {
    const N: u8 = 16;
    let (port, sinks) = sinks(N, vec![(3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["user@d.test"],
        &["--max-attempts", "1"],
    ));
    out.assert_exit(5);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "connect");
    let r = route(&report, 0, "d.test");
    assert_eq!(r["exit_code"], 5);
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 1, "{r:#}");
    assert_eq!(attempts[0]["address"], ip(N, 2).to_string());
    assert_eq!(
        step(&attempts[0], "connect")["error_kind"],
        "connection-refused"
    );
    no_connection(&sinks[0], &out);
}

#[test]
fn fallback_smart_host_after_every_mx_failed() {
    const N: u8 = 17;
    // mx1 and mx2 have nothing listening; the relay is at .9.
    let (port, sinks) = sinks(N, vec![(9, accepting("RELAY"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let relay = format!("{}:{port}", ip(N, 9));
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["user@d.test"],
        &["--fallback-smart-host", &relay],
    ));
    out.assert_exit(0);
    let report = out.json();
    assert_eq!(report["outcome"], "delivered");
    let r = route(&report, 0, "d.test");
    assert_eq!(r["relay"], relay.as_str(), "{r:#}");
    assert_eq!(r["outcome"], "delivered");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 3, "{r:#}");
    for (a, host) in attempts[..2].iter().zip([2, 3]) {
        assert_eq!(a["address"], ip(N, host).to_string());
        assert_eq!(step(a, "connect")["error_kind"], "connection-refused");
    }
    assert_eq!(attempts[2]["address"], ip(N, 9).to_string());
    assert_eq!(attempts[2]["port"], port);
    assert!(s(&report["queued_as"]).contains("RELAY"));
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

// ---------------------------------------------------------------------------------------------
// send: what DNS says
// ---------------------------------------------------------------------------------------------

#[test]
fn no_mx_records_use_the_implicit_mx() {
    const N: u8 = 18;
    let (port, sinks) = sinks(N, vec![(2, accepting("IMPLICIT"))]);
    let zone = format!("d A {}\nd TXT \"no MX here\"\n", ip(N, 2));
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    assert!(
        s(&r["note"]).contains("implicit MX"),
        "the note should mention the implicit MX: {r:#}"
    );
    let mx = arr(&r["mx"]);
    assert_eq!(mx.len(), 1);
    assert_eq!(mx[0]["host"], "d.test");
    assert_eq!(mx[0]["preference"], 0);
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["address"], ip(N, 2).to_string());
    assert_eq!(r["outcome"], "delivered");
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

#[test]
fn null_mx_means_no_mail_and_no_connection() {
    const N: u8 = 19;
    // The domain has an address a wrong implicit-MX reading would connect to.
    let (port, sinks) = sinks(N, vec![(2, accepting("WRONG"))]);
    let zone = format!("d MX 0 .\nd A {}\n", ip(N, 2));
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(4);
    let report = out.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["failure"]["stage"], "dns");
    assert_eq!(report["failure"]["class"], "permanent");
    assert!(
        s(&report["failure"]["reason"]).contains("accepts no mail"),
        "{report:#}"
    );
    let r = route(&report, 0, "d.test");
    assert_eq!(r["exit_code"], 4);
    assert!(arr(&r["attempts"]).is_empty(), "{r:#}");
    assert!(arr(&report["attempts"]).is_empty());
    assert!(s(&r["failure"]["reason"]).contains("accepts no mail"));
    assert_eq!(report["recipients"][0]["accepted"], false);
    no_connection(&sinks[0], &out);
}

#[test]
fn nxdomain_is_exit_4() {
    const N: u8 = 20;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start("other A 127.0.20.2\n");
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@nope.test"], &[]));
    out.assert_exit(4);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "dns");
    assert_eq!(report["failure"]["class"], "permanent");
    assert!(
        s(&report["failure"]["reason"]).contains("does not exist"),
        "{report:#}"
    );
    let r = route(&report, 0, "nope.test");
    assert_eq!(r["exit_code"], 4);
    assert!(arr(&r["attempts"]).is_empty());
}

#[test]
fn dns_server_that_never_answers_is_transient_exit_24_within_the_timeout() {
    const N: u8 = 21;
    let (port, _) = sinks(N, Vec::new());
    let hole = TestDns::black_hole();
    let args = send_args(hole.addr(), port, &["user@d.test"], &[]);
    let out = smtpcheck(&set(args, "--dns-timeout", "1s"));
    out.assert_exit(24);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?} with --dns-timeout 1s\n{}",
        out.elapsed,
        out.dump()
    );
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "dns");
    assert_eq!(report["failure"]["class"], "transient", "{report:#}");
    let r = route(&report, 0, "d.test");
    assert_eq!(r["exit_code"], 24);
    assert!(arr(&r["attempts"]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// send: several domains, many recipients
// ---------------------------------------------------------------------------------------------

#[test]
fn two_domains_one_delivered_one_refused_is_partial() {
    const N: u8 = 22;
    let refusing = Script {
        rcpt: Action::reply("550 5.1.1 no such user"),
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, accepting("GOOD")), (3, refusing)]);
    let zone = format!(
        "good MX 10 mxg\nbad MX 10 mxb\nmxg A {}\nmxb A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    // The refused domain first: the report keeps the order the recipients were given.
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["y@BAD.test", "x@good.test", "z@bad.test"],
        &[],
    ));
    out.assert_exit(1);
    let report = out.json();
    assert_eq!(report["outcome"], "partial");
    let routes = arr(&report["routes"]);
    assert_eq!(routes.len(), 2, "{report:#}");
    let bad = route(&report, 0, "bad.test");
    assert_eq!(bad["outcome"], "failed");
    assert_eq!(bad["exit_code"], 13);
    assert_eq!(bad["failure"]["stage"], "rcpt");
    assert_eq!(arr(&bad["recipients"]).len(), 2, "{bad:#}");
    let good = route(&report, 1, "good.test");
    assert_eq!(good["outcome"], "delivered");
    assert_eq!(good["exit_code"], 0);
    assert!(good["failure"].is_null());
    assert!(s(&good["queued_as"]).contains("GOOD"));
    assert_eq!(arr(&good["recipients"]).len(), 1);
    assert_eq!(arr(&report["attempts"]).len(), 2);
    let accepted: Vec<(String, bool)> = arr(&report["recipients"])
        .iter()
        .map(|r| {
            (
                s(&r["address"]).to_ascii_lowercase(),
                r["accepted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(accepted.len(), 3, "{report:#}");
    assert!(
        accepted.contains(&("x@good.test".into(), true)),
        "{accepted:?}"
    );
    assert!(
        accepted.contains(&("y@bad.test".into(), false)),
        "{accepted:?}"
    );
    assert!(
        accepted.contains(&("z@bad.test".into(), false)),
        "{accepted:?}"
    );

    // One session per domain, with all of the domain's recipients.
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
    let refused = &sessions(&sinks[1], 1, &out)[0];
    assert_eq!(
        refused.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "QUIT"],
        "{refused:#?}"
    );
}

#[test]
fn more_than_100_recipients_are_split_into_transactions() {
    const N: u8 = 23;
    const COUNT: usize = 130;
    let (port, sinks) = sinks(N, vec![(2, accepting("BIG"))]);
    let zone = format!("d MX 10 mx1\nmx1 A {}\n", ip(N, 2));
    let dns = TestDns::start(&zone);
    let to: Vec<String> = (0..COUNT).map(|i| format!("user{i}@d.test")).collect();
    let joined = to.join(",");
    let out = smtpcheck(&send_args(dns.addr(), port, &[&joined], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    assert_eq!(arr(&r["attempts"]).len(), 1);
    let recipients = arr(&report["recipients"]);
    assert_eq!(recipients.len(), COUNT);
    assert!(recipients.iter().all(|r| r["accepted"] == true));

    let log = &sessions(&sinks[0], 1, &out)[0];
    let v = log.verbs();
    let mails: Vec<usize> = v
        .iter()
        .enumerate()
        .filter(|(_, x)| *x == "MAIL")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(mails.len(), 2, "{v:?}");
    let rcpts_between =
        |from: usize, to: usize| v[from..to].iter().filter(|x| *x == "RCPT").count();
    assert_eq!(rcpts_between(mails[0], mails[1]), 100);
    assert_eq!(rcpts_between(mails[1], v.len()), COUNT - 100);
    assert_eq!(v.iter().filter(|x| *x == "DATA").count(), 2);
    assert_eq!(log.messages.len(), 2);
    // Every recipient offered exactly once, in the order given.
    let offered: Vec<&str> = log
        .commands
        .iter()
        .filter(|c| c.starts_with("RCPT"))
        .map(String::as_str)
        .collect();
    let expected: Vec<String> = to.iter().map(|t| format!("RCPT TO:<{t}>")).collect();
    assert_eq!(offered, expected);
}

// ---------------------------------------------------------------------------------------------
// send: the text transcript
// ---------------------------------------------------------------------------------------------

#[test]
fn text_transcript_shows_dns_answers_first_and_why_it_moved_on() {
    const N: u8 = 24;
    let (port, sinks) = sinks(N, vec![(3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&as_text(send_args(dns.addr(), port, &["user@d.test"], &[])));
    out.assert_exit(0);
    let dns_heading = out.pos(";; Mail hosts for d.test");
    let mx1 = out.pos(&format!("mx1.test  {}", ip(N, 2)));
    let mx2 = out.pos(&format!("mx2.test  {}", ip(N, 3)));
    let first = out.pos(&format!("*  Connecting to {}:{port} (mx1.test)", ip(N, 2)));
    let moving_on = out.pos("*  Trying the next address: ");
    let why = out.stdout[moving_on..].lines().next().unwrap_or_default();
    assert!(why.contains("refused"), "the reason is given: {why}");
    let second = out.pos(&format!("*  Connecting to {}:{port} (mx2.test)", ip(N, 3)));
    assert!(
        dns_heading < mx1 && mx1 < mx2 && mx2 < first,
        "the DNS answers come first, in preference order\n{}",
        out.dump()
    );
    assert!(
        first < moving_on && moving_on < second,
        "why the next address was tried is said between the attempts\n{}",
        out.dump()
    );
    assert!(out.stdout.contains("Attempt 1 of 2"), "{}", out.dump());
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("Verdict: delivered"), "{}", out.dump());
    assert!(last.ends_with("(exit 0)"), "{}", out.dump());
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

// ---------------------------------------------------------------------------------------------
// smtpcheck mx
// ---------------------------------------------------------------------------------------------

/// A zone with every case `smtpcheck mx` distinguishes, on network `net`.
fn mx_zone(net: u8) -> String {
    format!(
        "ordered MX 20 mx2\nordered MX 10 mx1\nordered MX 30 mx3\n\
         mx1 A {}\nmx2 A {}\nmx3 A {}\n\
         implicit A {}\n\
         nullmx MX 0 .\n",
        ip(net, 2),
        ip(net, 3),
        ip(net, 4),
        ip(net, 5)
    )
}

/// Runs `smtpcheck mx DOMAIN` as JSON and as text; returns (JSON report, text run).
fn mx_both(dns: SocketAddr, port: u16, domain: &str, expected_exit: i32) -> (JsonMxReport, Out) {
    let args = mx_args(dns, port, &[domain], &["--format", "json"]);
    let json = smtpcheck(&args);
    json.assert_exit(expected_exit);
    let report = json.mx_report();
    assert_eq!(i32::from(report.exit_code), expected_exit);
    let d = report.domain();
    assert_eq!(d.domain, domain);
    assert_eq!(i32::from(d.exit_code), expected_exit);
    assert!(d.probes.is_empty());
    let text = smtpcheck(&as_text(args));
    text.assert_exit(expected_exit);
    text.pos(&format!(";; Mail hosts for {domain}"));
    let last = text.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("Verdict: "), "{}", text.dump());
    assert!(
        last.ends_with(&format!("(exit {expected_exit})")),
        "{}",
        text.dump()
    );
    (report, text)
}

#[test]
fn mx_lists_hosts_in_preference_order() {
    const N: u8 = 31;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&mx_zone(N));
    let (report, text) = mx_both(dns.addr(), port, "ordered.test", 0);
    let d = report.domain();
    let hosts: Vec<(&str, u16)> =
        d.mx.iter()
            .map(|m| (m.host.as_str(), m.preference))
            .collect();
    assert_eq!(
        hosts,
        [("mx1.test", 10), ("mx2.test", 20), ("mx3.test", 30)]
    );
    assert_eq!(d.mx[0].addresses, [ip(N, 2).to_string()]);
    assert!(d.failure.is_none());
    let targets: Vec<(&str, &str, u16)> = d
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.address.as_str(), t.port))
        .collect();
    let (a2, a3, a4) = (
        ip(N, 2).to_string(),
        ip(N, 3).to_string(),
        ip(N, 4).to_string(),
    );
    let p = port;
    assert_eq!(
        targets,
        [
            ("mx1.test", a2.as_str(), p),
            ("mx2.test", a3.as_str(), p),
            ("mx3.test", a4.as_str(), p)
        ]
    );

    let l1 = text.pos(&format!(";;   MX    10 mx1.test  {a2}"));
    let l2 = text.pos(&format!(";;   MX    20 mx2.test  {a3}"));
    let l3 = text.pos(&format!(";;   MX    30 mx3.test  {a4}"));
    assert!(l1 < l2 && l2 < l3, "{}", text.dump());
    text.pos("usable mail host found");
}

#[test]
fn mx_shows_the_implicit_mx() {
    const N: u8 = 32;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&mx_zone(N));
    let (report, text) = mx_both(dns.addr(), port, "implicit.test", 0);
    let d = report.domain();
    assert!(
        d.note
            .as_deref()
            .unwrap_or_default()
            .contains("implicit MX"),
        "{d:#?}"
    );
    assert_eq!(d.mx[0].host, "implicit.test");
    assert_eq!(d.mx[0].preference, 0);
    assert_eq!(d.targets.len(), 1);
    assert_eq!(d.targets[0].address, ip(N, 5).to_string());
    text.pos("implicit MX");
    text.pos(&ip(N, 5).to_string());
    // Shown as what it is, not as a made-up record "MX 0 implicit.test".
    text.pos(";;   no MX record: the domain itself (implicit MX)  implicit.test");
    assert!(!text.stdout.contains("MX     0"), "{}", text.dump());
}

#[test]
fn mx_null_mx_is_exit_4() {
    const N: u8 = 33;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&mx_zone(N));
    let (report, text) = mx_both(dns.addr(), port, "nullmx.test", 4);
    let d = report.domain();
    assert!(d.targets.is_empty());
    assert_eq!(d.failure().stage, "dns");
    assert_eq!(d.failure().class, "permanent");
    assert!(d.failure().reason.contains("accepts no mail"), "{d:#?}");
    text.pos("accepts no mail");
    text.pos("no usable mail host");
}

#[test]
fn mx_nxdomain_is_exit_4() {
    const N: u8 = 34;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&mx_zone(N));
    let (report, text) = mx_both(dns.addr(), port, "nope.test", 4);
    let d = report.domain();
    assert!(d.targets.is_empty());
    assert!(d.mx.is_empty());
    assert!(d.failure().reason.contains("does not exist"), "{d:#?}");
    text.pos("does not exist");
}

#[test]
fn mx_several_domains_keep_their_order() {
    const N: u8 = 35;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&mx_zone(N));
    let out = smtpcheck(&mx_args(
        dns.addr(),
        port,
        &["nullmx.test", "ordered.test", "implicit.test"],
        &["--format", "json"],
    ));
    out.assert_exit(4);
    let report = out.mx_report();
    let got: Vec<(&str, u8)> = report
        .domains
        .iter()
        .map(|d| (d.domain.as_str(), d.exit_code))
        .collect();
    assert_eq!(
        got,
        [
            ("nullmx.test", 4),
            ("ordered.test", 0),
            ("implicit.test", 0)
        ]
    );
}

#[test]
fn mx_probe_reads_greeting_and_capabilities() {
    const N: u8 = 36;
    let (port, sinks) = sinks(N, vec![(2, Script::default())]);
    let dns = TestDns::start(&format!("d MX 10 mx1\nmx1 A {}\n", ip(N, 2)));
    let args = mx_args(
        dns.addr(),
        port,
        &["d.test"],
        &["--probe", "--format", "json"],
    );
    let out = smtpcheck(&args);
    out.assert_exit(0);
    let report = out.mx_report();
    let d = report.domain();
    assert_eq!(d.probes.len(), 1, "{d:#?}");
    let probe = &d.probes[0];
    assert_eq!(probe.address, ip(N, 2).to_string());
    assert_eq!(probe.port, port);
    let greeting = probe.step("greeting").reply.as_ref();
    assert_eq!(greeting.map(|r| r.code), Some(220), "{probe:#?}");
    let caps = probe
        .capabilities
        .as_ref()
        .unwrap_or_else(|| panic!("no capabilities: {probe:#?}"));
    assert!(
        caps.keywords.iter().any(|k| k == "PIPELINING"),
        "{:?}",
        caps.keywords
    );
    assert!(
        caps.keywords.iter().any(|k| k == "SIZE 10240000"),
        "{:?}",
        caps.keywords
    );
    assert_eq!(caps.size, Some(10240000));
    assert!(!probe.stages().contains(&"mail"));
    let log = &sessions(&sinks[0], 1, &out)[0];
    assert_eq!(
        log.verbs(),
        ["EHLO", "QUIT"],
        "a probe sends no mail: {log:#?}"
    );

    let text = smtpcheck(&as_text(args));
    text.assert_exit(0);
    text.pos(&format!(
        ";;   probe mx1.test [{}]:{port}  220 sink.test ESMTP smtpcheck test sink",
        ip(N, 2)
    ));
    let caps = text.pos(";;     EHLO: ");
    assert!(text.stdout[caps..]
        .lines()
        .next()
        .unwrap()
        .contains("PIPELINING"));
    text.pos("a mail host answered");
}

#[test]
fn mx_probe_with_nothing_listening_is_exit_5() {
    const N: u8 = 37;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    ));
    let args = mx_args(
        dns.addr(),
        port,
        &["d.test"],
        &["--probe", "--format", "json"],
    );
    let out = smtpcheck(&args);
    out.assert_exit(5);
    let report = out.mx_report();
    assert_eq!(report.exit_code, 5);
    let d = report.domain();
    assert_eq!(d.exit_code, 5);
    assert_eq!(d.probes.len(), 2, "{d:#?}");
    for p in &d.probes {
        assert_eq!(
            p.step("connect").error_kind.as_deref(),
            Some("connection-refused"),
            "{p:#?}"
        );
        assert!(p.capabilities.is_none());
    }
    let text = smtpcheck(&as_text(args));
    text.assert_exit(5);
    text.pos("no mail host answered");
}

/// `mx --probe` as a TLS matrix: a host with STARTTLS (its TLS row), one without, one that only
/// speaks HELO (working, and its headline does not say it failed); `--tls required` fails a
/// domain whose hosts offer no STARTTLS.
#[test]
fn mx_probe_is_a_tls_matrix() {
    const N: u8 = 131;
    let ca = common::certs::Ca::new("smtpcheck test CA");
    let tls = ca.leaf(&["mx1.test"], false);
    let helo_only = Script {
        ehlo: Action::reply("502 5.5.2 Error: command not recognized"),
        ..Script::default()
    };
    let (port, _sinks) = sinks(
        N,
        vec![
            (
                2,
                Script {
                    tls: Some(tls),
                    ..Script::default()
                },
            ),
            (3, Script::default()),
            (4, helo_only),
        ],
    );
    let dns = TestDns::start(&format!(
        "tls MX 10 mx1\ntls MX 20 mx2\nplain MX 10 mx2\nold MX 10 mx3\nmx1 A {}\nmx2 A {}\nmx3 A {}\n",
        ip(N, 2),
        ip(N, 3),
        ip(N, 4)
    ));
    let dir = common::TempDir::new("mx-matrix");
    let ca_file = dir.write("ca.pem", ca.pem());
    let ca_arg = ca_file.to_string_lossy().to_string();
    let args = mx_args(
        dns.addr(),
        port,
        &["tls.test", "plain.test", "old.test"],
        &["--probe", "--format", "json", "--ca", &ca_arg],
    );
    let out = smtpcheck(&args);
    out.assert_exit(0);
    let report = out.mx_report();
    let [tls_d, plain_d, old_d] = &report.domains[..] else {
        panic!("three domains: {report:#?}");
    };
    let with = &tls_d.probes[0];
    let t = with
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("no TLS: {with:#?}"));
    assert_eq!(
        (t.verdict.as_str(), t.name.as_str()),
        ("verified", "mx1.test")
    );
    assert!(t.spki_sha256.is_some());
    assert!(with
        .capabilities_before_tls
        .as_ref()
        .is_some_and(|c| c.starttls));
    assert!(with.ok_probe(), "{with:#?}");
    let without = &tls_d.probes[1];
    assert!(
        without.tls.is_none() && without.failure.is_none(),
        "{without:#?}"
    );
    assert!(without
        .warnings
        .iter()
        .any(|w| w.contains("does not offer STARTTLS")));
    assert_eq!(plain_d.exit_code, 0);
    let old = &old_d.probes[0];
    assert!(old.failure.is_none(), "a HELO-only host works: {old:#?}");
    assert_eq!(old_d.exit_code, 0);

    let text = smtpcheck(&as_text(args.clone()));
    text.assert_exit(0);
    text.pos(&format!(
        ";;   probe mx1.test [{}]:{port}  220 sink.test",
        ip(N, 2)
    ));
    text.pos(", EHLO, STARTTLS offered and used");
    text.pos(";;     TLS: TLS 1.");
    text.pos("certificate CN=mx1.test: verified for mx1.test, ");
    text.pos(";;     pin: sha256:");
    text.pos(", EHLO, STARTTLS not offered");
    text.pos(&format!(
        ";;   probe mx3.test [{}]:{port}  220 sink.test",
        ip(N, 4)
    ));
    text.pos(", HELO (EHLO refused), STARTTLS not offered");
    assert!(!text.stdout.contains("failed at ehlo"), "{}", text.stdout);

    // --tls required: the domain whose host offers no STARTTLS fails, exit 6.
    let mut required = args.clone();
    required.extend(["--tls".to_string(), "required".to_string()]);
    let out = smtpcheck(&required);
    out.assert_exit(6);
    let report = out.mx_report();
    assert_eq!(report.domains[0].exit_code, 0, "mx1 works with TLS");
    assert_eq!(report.domains[1].exit_code, 6);
    let f = report.domains[1].probes[0].failure.as_ref().unwrap();
    assert!(f.reason.contains("does not offer STARTTLS"), "{f:?}");
    let text = smtpcheck(&as_text(required));
    text.assert_exit(6);
    text.pos("no mail host answered with TLS as --tls asks");
}

// ---------------------------------------------------------------------------------------------
// Beyond the list: the rest of the failover rules, fallback limits, exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn session_breaking_before_mail_moves_on() {
    const N: u8 = 41;
    let hangs_up = Script {
        ehlo: Action::Close,
        ..Script::default()
    };
    let mute = Script {
        greeting: Action::Silent,
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, hangs_up), (3, mute), (4, accepting("MX3"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nd MX 30 mx3\nmx1 A {}\nmx2 A {}\nmx3 A {}\n",
        ip(N, 2),
        ip(N, 3),
        ip(N, 4)
    );
    let dns = TestDns::start(&zone);
    let args = send_args(dns.addr(), port, &["user@d.test"], &[]);
    let out = smtpcheck(&set(args, "--timeout", "1s"));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 3, "{r:#}");
    assert_eq!(step(&attempts[0], "ehlo")["error_kind"], "closed", "{r:#}");
    assert_eq!(
        step(&attempts[1], "greeting")["error_kind"],
        "timeout",
        "{r:#}"
    );
    assert_eq!(attempts[2]["address"], ip(N, 4).to_string());
    assert_eq!(r["outcome"], "delivered");
    assert_eq!(sessions(&sinks[0], 1, &out)[0].verbs(), ["EHLO"]);
    assert_delivered_session(&sessions(&sinks[2], 1, &out)[0], 1);
}

#[test]
fn session_breaking_after_mail_was_accepted_does_not_move_on() {
    const N: u8 = 42;
    let hangs_up = Script {
        rcpt: Action::Close,
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, hangs_up), (3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(8);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "rcpt", "{report:#}");
    assert_eq!(report["failure"]["kind"], "closed", "{report:#}");
    let r = route(&report, 0, "d.test");
    assert_eq!(arr(&r["attempts"]).len(), 1, "{r:#}");
    assert_eq!(
        sessions(&sinks[0], 1, &out)[0].verbs(),
        ["EHLO", "MAIL", "RCPT"]
    );
    no_connection(&sinks[1], &out);
}

#[test]
fn refused_mail_from_is_an_answer_not_a_reason_to_fail_over() {
    const N: u8 = 43;
    let refusing = Script {
        mail: Action::reply("550 5.7.1 sender rejected"),
        ..Script::default()
    };
    let (port, sinks) = sinks(N, vec![(2, refusing), (3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(12);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "mail");
    assert_eq!(arr(&route(&report, 0, "d.test")["attempts"]).len(), 1);
    assert_eq!(
        sessions(&sinks[0], 1, &out)[0].verbs(),
        ["EHLO", "MAIL", "QUIT"]
    );
    no_connection(&sinks[1], &out);
}

#[test]
fn every_mx_failed_the_attempt_that_got_furthest_gives_the_code() {
    const N: u8 = 44;
    let picky = Script {
        ehlo: Action::reply("500 5.5.1 unrecognized"),
        helo: Action::reply("501 5.5.4 bad HELO"),
        ..Script::default()
    };
    // mx1 refuses EHLO and HELO (exit 11); mx2 has nothing listening (exit 5).
    let (port, _sinks) = sinks(N, vec![(2, picky)]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(11);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "helo", "{report:#}");
    let r = route(&report, 0, "d.test");
    assert_eq!(r["exit_code"], 11);
    assert_eq!(arr(&r["attempts"]).len(), 2, "{r:#}");
}

#[test]
fn mx_host_without_address_is_noted_and_skipped() {
    const N: u8 = 45;
    let (port, sinks) = sinks(N, vec![(3, accepting("MX2"))]);
    let zone = format!(
        "d MX 10 ghost\nd MX 20 mx2\nghost TXT \"no address\"\nmx2 A {}\n",
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    let mx = arr(&r["mx"]);
    assert_eq!(mx.len(), 2, "{r:#}");
    assert_eq!(mx[0]["host"], "ghost.test");
    assert!(arr(&mx[0]["addresses"]).is_empty());
    assert!(s(&mx[0]["note"]).contains("skipped"), "{r:#}");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 1, "{r:#}");
    assert_eq!(attempts[0]["host"], "mx2.test");
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

#[test]
fn each_address_of_an_mx_host_is_tried() {
    const N: u8 = 46;
    // mx1 has two addresses, only .3 listens; whatever order they come in, mail gets there.
    let (port, sinks) = sinks(N, vec![(3, accepting("MX1B"))]);
    let zone = format!("d MX 10 mx1\nmx1 A {}\nmx1 A {}\n", ip(N, 2), ip(N, 3));
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    let mut addresses: Vec<&str> = arr(&r["mx"][0]["addresses"]).iter().map(s).collect();
    addresses.sort();
    let (a2, a3) = (ip(N, 2).to_string(), ip(N, 3).to_string());
    assert_eq!(addresses, [a2.as_str(), a3.as_str()]);
    let attempts = arr(&r["attempts"]);
    assert!(attempts.iter().all(|a| a["host"] == "mx1.test"), "{r:#}");
    assert_eq!(attempts.last().unwrap()["address"], a3.as_str());
    assert_eq!(
        attempts.len(),
        if r["mx"][0]["addresses"][0] == a2.as_str() {
            2
        } else {
            1
        },
        "{r:#}"
    );
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

#[test]
fn several_domains_all_failing_take_the_first_domains_code() {
    const N: u8 = 47;
    let refusing = Script {
        rcpt: Action::reply("550 5.1.1 no such user"),
        ..Script::default()
    };
    let (port, _sinks) = sinks(N, vec![(2, refusing)]);
    let dns = TestDns::start(&format!("bad MX 10 mx1\nmx1 A {}\n", ip(N, 2)));
    // The first domain's code (13), neither the lowest nor the DNS one (4).
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["a@bad.test", "b@nope.test"],
        &[],
    ));
    out.assert_exit(13);
    let report = out.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(route(&report, 0, "bad.test")["exit_code"], 13);
    assert_eq!(route(&report, 1, "nope.test")["exit_code"], 4);
    // And the other way round.
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["b@nope.test", "a@bad.test"],
        &[],
    ));
    out.assert_exit(4);
    let report = out.json();
    assert_eq!(route(&report, 0, "nope.test")["exit_code"], 4);
    assert_eq!(route(&report, 1, "bad.test")["exit_code"], 13);
}

#[test]
fn several_domains_in_text_mode_prefix_each_live_line() {
    const N: u8 = 48;
    let (port, _sinks) = sinks(N, vec![(2, accepting("ONE")), (3, accepting("TWO"))]);
    let zone = format!(
        "one MX 10 mx1\ntwo MX 10 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&as_text(send_args(
        dns.addr(),
        port,
        &["a@one.test", "b@two.test"],
        &[],
    )));
    out.assert_exit(0);
    out.pos("[one.test] ;; Mail hosts for one.test");
    out.pos("[two.test] ;; Mail hosts for two.test");
    out.pos(&format!("[one.test] *  Connecting to {}:{port}", ip(N, 2)));
    out.pos(&format!("[two.test] *  Connecting to {}:{port}", ip(N, 3)));
    let one = out.pos("Route for one.test");
    let two = out.pos("Route for two.test");
    assert!(one < two, "routes in the order given\n{}", out.dump());
}

#[test]
fn no_fallback_for_a_null_mx() {
    const N: u8 = 49;
    let (port, sinks) = sinks(N, vec![(9, accepting("RELAY"))]);
    let dns = TestDns::start("d MX 0 .\n");
    let relay = format!("{}:{port}", ip(N, 9));
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["user@d.test"],
        &["--fallback-smart-host", &relay],
    ));
    out.assert_exit(4);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    assert!(r["relay"].is_null(), "{r:#}");
    assert!(arr(&r["attempts"]).is_empty());
    no_connection(&sinks[0], &out);
}

#[test]
fn fallback_after_a_dns_timeout() {
    const N: u8 = 50;
    let (port, sinks) = sinks(N, vec![(9, accepting("RELAY"))]);
    let hole = TestDns::black_hole();
    let relay = format!("{}:{port}", ip(N, 9));
    let args = send_args(
        hole.addr(),
        port,
        &["user@d.test"],
        &["--fallback-smart-host", &relay],
    );
    let out = smtpcheck(&set(args, "--dns-timeout", "1s"));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    assert_eq!(r["relay"], relay.as_str(), "{r:#}");
    assert_eq!(arr(&r["attempts"]).len(), 1);
    assert_delivered_session(&sessions(&sinks[0], 1, &out)[0], 1);
}

#[test]
fn max_attempts_does_not_count_the_fallback() {
    const N: u8 = 51;
    let (port, sinks) = sinks(N, vec![(3, accepting("MX2")), (9, accepting("RELAY"))]);
    let zone = format!(
        "d MX 10 mx1\nd MX 20 mx2\nmx1 A {}\nmx2 A {}\n",
        ip(N, 2),
        ip(N, 3)
    );
    let dns = TestDns::start(&zone);
    let relay = format!("{}:{port}", ip(N, 9));
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["user@d.test"],
        &["--max-attempts", "1", "--fallback-smart-host", &relay],
    ));
    out.assert_exit(0);
    let report = out.json();
    let r = route(&report, 0, "d.test");
    let attempts = arr(&r["attempts"]);
    assert_eq!(attempts.len(), 2, "{r:#}");
    assert_eq!(attempts[0]["address"], ip(N, 2).to_string());
    assert_eq!(attempts[1]["address"], ip(N, 9).to_string());
    assert_eq!(r["relay"], relay.as_str());
    no_connection(&sinks[0], &out);
    assert_delivered_session(&sessions(&sinks[1], 1, &out)[0], 1);
}

#[test]
fn address_literal_domain_goes_straight_to_the_address() {
    const N: u8 = 52;
    let (port, sinks) = sinks(N, vec![(2, accepting("LITERAL"))]);
    // A DNS server that would not answer: an address literal needs no lookup.
    let hole = TestDns::black_hole();
    let to = format!("user@[{}]", ip(N, 2));
    let out = smtpcheck(&send_args(hole.addr(), port, &[&to], &[]));
    out.assert_exit(0);
    assert!(out.elapsed < Duration::from_secs(2), "{}", out.dump());
    let report = out.json();
    let attempts = arr(&report["routes"][0]["attempts"]);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["address"], ip(N, 2).to_string());
    let log = &sessions(&sinks[0], 1, &out)[0];
    assert_delivered_session(log, 1);
    assert_eq!(log.commands[2], format!("RCPT TO:<{to}>"));
}

#[test]
fn mx_family_flags_restrict_the_addresses() {
    const N: u8 = 53;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start(&format!("d MX 10 mx1\nmx1 A {}\nmx1 AAAA ::1\n", ip(N, 2)));
    let addresses = |flag: &[&str]| -> Vec<String> {
        let mut extra = vec!["--format", "json"];
        extra.extend_from_slice(flag);
        let out = smtpcheck(&mx_args(dns.addr(), port, &["d.test"], &extra));
        out.assert_exit(0);
        out.mx_report()
            .domain()
            .targets
            .iter()
            .map(|t| t.address.clone())
            .collect()
    };
    assert_eq!(addresses(&[]), [ip(N, 2).to_string(), "::1".to_string()]);
    assert_eq!(addresses(&["-4"]), [ip(N, 2).to_string()]);
    assert_eq!(addresses(&["-6"]), ["::1".to_string()]);
}

#[test]
fn route_note_names_a_null_mx_and_an_nxdomain() {
    // README, JSON report: "`note` says implicit MX, null MX, NXDOMAIN…" (issue 3: `note
    // (implicit MX / null MX / NXDOMAIN…)`).
    const N: u8 = 54;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start("nullmx MX 0 .\n");
    let out = smtpcheck(&send_args(
        dns.addr(),
        port,
        &["a@nullmx.test", "b@nope.test"],
        &[],
    ));
    out.assert_exit(4);
    let report = out.json();
    let null = route(&report, 0, "nullmx.test");
    assert!(
        null["note"].as_str().is_some_and(|n| n.contains("null MX")),
        "the route's note should say null MX: {null:#}"
    );
    let nx = route(&report, 1, "nope.test");
    assert!(
        nx["note"].as_str().is_some_and(|n| n.contains("NXDOMAIN")),
        "the route's note should say NXDOMAIN: {nx:#}"
    );
}

#[test]
fn no_mx_host_with_an_address_is_exit_4() {
    const N: u8 = 55;
    let (port, _) = sinks(N, Vec::new());
    let dns = TestDns::start("d MX 10 ghost\nd MX 20 nowhere\nghost TXT \"no address\"\n");
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(4);
    let report = out.json();
    assert_eq!(report["failure"]["stage"], "dns");
    assert_eq!(report["failure"]["class"], "permanent", "{report:#}");
    let r = route(&report, 0, "d.test");
    assert!(arr(&r["attempts"]).is_empty());
    let mx = arr(&r["mx"]);
    assert_eq!(mx.len(), 2, "{r:#}");
    assert!(
        mx.iter().all(|m| s(&m["note"]).contains("skipped")),
        "{r:#}"
    );
}

#[test]
fn greeting_name_differing_from_the_mx_name_is_noted() {
    const N: u8 = 201;
    let (port, _sinks) = sinks(N, vec![(2, accepting("MX1"))]);
    let zone = format!("d MX 10 mx1\nmx1 A {}\n", ip(N, 2));
    let dns = TestDns::start(&zone);
    let out = smtpcheck(&send_args(dns.addr(), port, &["user@d.test"], &[]));
    out.assert_exit(0);
    let report = out.json();
    let attempt = &report["attempts"][0];
    assert_eq!(attempt["greeting_name"], "sink.test", "{attempt:#}");
    let warnings: Vec<&str> = arr(&report["warnings"]).iter().map(s).collect();
    let expected = format!(
        "note: the server at {} greets as sink.test but it was reached as mx1.test",
        ip(N, 2)
    );
    assert!(
        warnings.iter().any(|w| w.starts_with(&expected)),
        "{warnings:#?}"
    );
}
