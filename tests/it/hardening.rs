//! Hardening, second round, end to end through the built binary: a reply that arrives before the
//! data is finished, secrets a server echoes after AUTH, hostile DNS answer sizes, quadratic input,
//! file flags naming endless devices and FIFOs, streaming `--eml -`, and outputs that cannot be
//! written. Every run is bounded in wall time and in peak memory, like `hostile`.

use crate::common::dns::TestDns;
use crate::common::*;
use crate::hostile::{assert_peak_rss, hostile, GOOD_MESSAGE, HOSTILE_PEAK_KIB};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `smtpcheck send` of the generated test message to `sink`.
fn generated_to(sink: &Sink) -> Cmd {
    Cmd::new()
        .args(["send", "--smart-host"])
        .arg(sink.addr().to_string())
        .args(["--from", "alice@sender.example", "--to", "bob@rcpt.example"])
        .helo("test.example")
        .timeout("5s")
}

/// Asserts a run that refused its input: exit 3, within `max_wall`, in bounded memory, and
/// stderr containing every one of `named`.
#[track_caller]
fn assert_refused(run: &Run, max_wall: Duration, named: &[&str]) {
    run.assert_exit(3);
    assert!(
        run.elapsed < max_wall,
        "took {:?}, over {max_wall:?}\n{}",
        run.elapsed,
        run.dump()
    );
    assert_peak_rss(run, HOSTILE_PEAK_KIB);
    for n in named {
        assert!(run.stderr.contains(n), "no {n:?} in stderr\n{}", run.dump());
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
}

// ---------------------------------------------------------------------------------------------
// 1. A reply before the end of the data is never the verdict
// ---------------------------------------------------------------------------------------------

#[test]
fn a_reply_before_the_end_of_the_data_is_a_protocol_violation() {
    let (sink, run, report) = hostile(
        Script {
            data: Action::Raw(b"354 go ahead\r\n250 2.0.0 Ok: queued as EARLY\r\n".to_vec()),
            end_of_data: Action::reply("550 5.7.1 message content rejected"),
            ..Script::default()
        },
        "5s",
        Duration::from_secs(5),
        8,
        "message",
        Some("protocol"),
    );
    assert!(
        report.failure().reason.contains("queued as EARLY")
            && report.failure().reason.contains("before it was asked"),
        "{:?}",
        report.failure()
    );
    assert!(report.attempt().step("message").reply.is_none());
    assert_ne!(report.outcome, "delivered");
    assert!(
        !run.stdout.contains("\"queued_as\":\"250"),
        "{}",
        run.stdout
    );
    // The terminator was never sent: the server cannot have taken the message.
    let log = one_session(&sink);
    assert!(log.messages.is_empty(), "{log:#?}");
    assert!(!log.verbs().contains(&"QUIT".to_string()), "{log:#?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Secrets a server echoes later reach no output
// ---------------------------------------------------------------------------------------------

#[test]
fn secrets_echoed_after_auth_reach_no_output() {
    let user = "alice";
    let secret = format!("Echo-{}-pAsS", std::process::id());
    let forms = secret_forms(user, &secret);
    let echo = forms.join(" ");
    let mut auth = SinkAuth::new(user, &secret);
    auth.offer_in_clear = true;
    let sink = sink(Script {
        auth: Some(auth),
        mail: Action::reply(&format!("250 2.1.0 sender ok {echo}")),
        rcpt: Action::reply(&format!("250 2.1.5 {echo}")),
        end_of_data: Action::reply(&format!("250 2.0.0 queued as {echo}")),
        quit: Action::reply(&format!("221 2.0.0 bye {echo}")),
        ..Script::default()
    });
    let dir = TempDir::new("echoed-secrets");
    for mech in ["plain", "login"] {
        let log = dir.path().join(format!("{mech}.log"));
        let json = dir.path().join(format!("{mech}.json"));
        let run = generated_to(&sink)
            .args([
                "--auth-user",
                user,
                "--auth-mech",
                mech,
                "--allow-plain-auth",
            ])
            .args(["--verbose", "--format", "json", "--output"])
            .arg(&json)
            .arg("--log")
            .arg(&log)
            .env("SMTPCHECK_PASSWORD", secret.as_str())
            .run();
        run.assert_exit(0);
        assert_peak_rss(&run, HOSTILE_PEAK_KIB);
        run.assert_no_secret(&forms);
        let logged = std::fs::read_to_string(&log).unwrap();
        let reported = std::fs::read_to_string(&json).unwrap();
        for (name, text) in [("log", &logged), ("json", &reported)] {
            for form in &forms {
                assert!(
                    !text.contains(form.as_str()),
                    "{mech}: {form:?} in {name}:\n{text}"
                );
            }
            assert!(
                text.contains("<redacted>"),
                "{mech}: nothing redacted in {name}"
            );
        }
        assert!(
            run.stdout.contains("sender ok <redacted>"),
            "{}",
            run.dump()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5 and 6. File flags: bounded in size, and never hanging on a FIFO
// ---------------------------------------------------------------------------------------------

/// A command line whose only problem is the file given to `flag` (`path`).
fn with_file(flag: &str, path: &Path) -> Cmd {
    let base = Cmd::new();
    let base = if flag == "--config" {
        base.arg("--config").arg(path).args(["--profile", "x"])
    } else {
        base
    };
    let base = base
        .args(["send", "--smart-host", "127.0.0.1:9"])
        .args(["--from", "alice@sender.example", "--to", "bob@rcpt.example"])
        .guard(Duration::from_secs(30));
    match flag {
        "--config" => base,
        "--auth-password-file" => base
            .args(["--auth-user", "alice", "--auth-password-file"])
            .arg(path),
        _ => base.arg(flag).arg(path),
    }
}

const FILE_FLAGS: [&str; 4] = ["--config", "--ca", "--auth-password-file", "--body-file"];

#[test]
fn file_flags_naming_an_endless_device_are_refused_within_their_bound() {
    let zero = Path::new("/dev/zero");
    for (flag, named) in [
        ("--config", "larger than the limit of 1 MiB"),
        ("--ca", "larger than the limit of 8 MiB"),
        ("--auth-password-file", "NUL"),
    ] {
        let run = with_file(flag, zero).run();
        assert_refused(&run, Duration::from_secs(10), &[named]);
    }
    // --max-size bounds --body-file, whatever the device.
    for device in ["/dev/zero", "/dev/urandom"] {
        let run = with_file("--body-file", Path::new(device))
            .args(["--max-size", "4MiB"])
            .run();
        assert_refused(
            &run,
            Duration::from_secs(10),
            &["--max-size limit of 4194304 bytes"],
        );
    }
}

#[test]
fn file_flags_naming_a_fifo_nobody_writes_do_not_hang() {
    let dir = TempDir::new("fifo-flags");
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("cannot run mkfifo");
    assert!(made.success(), "mkfifo failed");
    // All four at once: each waits at most 5 s for a writer.
    let runs: Vec<(&str, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = FILE_FLAGS
            .iter()
            .map(|flag| {
                let cmd = with_file(flag, &fifo);
                (*flag, s.spawn(move || cmd.run()))
            })
            .collect();
        handles
            .into_iter()
            .map(|(f, h)| (f, h.join().expect("run thread")))
            .collect()
    });
    for (flag, run) in runs {
        eprintln!("{flag}: {:?}", run.elapsed);
        assert_refused(
            &run,
            Duration::from_secs(15),
            &["FIFO or device nobody writes"],
        );
    }
}

#[test]
fn a_password_from_a_pipe_is_still_read() {
    let dir = TempDir::new("fifo-password");
    let fifo = dir.path().join("pw");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(fifo, "from-a-pipe\n")
        })
    };
    let mut auth = SinkAuth::new("alice", "from-a-pipe");
    auth.offer_in_clear = true;
    let sink = sink(Script {
        auth: Some(auth),
        ..Script::default()
    });
    let run = generated_to(&sink)
        .args([
            "--auth-user",
            "alice",
            "--allow-plain-auth",
            "--auth-password-file",
        ])
        .arg(&fifo)
        .run();
    run.assert_exit(0);
    writer.join().unwrap().unwrap();
}

// ---------------------------------------------------------------------------------------------
// 8 and 9. Outputs that cannot be written
// ---------------------------------------------------------------------------------------------

/// Runs the binary with stdout going to `stdout`; returns the exit code, stderr and the time taken.
fn run_with_stdout(args: &[&str], stdout: Stdio) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SMTPCHECK_PROFILE")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run smtpcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// A pipe whose reading end is already closed.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

#[test]
fn completions_and_man_page_into_a_full_disk_or_a_closed_pipe() {
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["man"],
    ] {
        let (code, stderr, took) = run_with_stdout(args, dev_full());
        assert_eq!(code, Some(3), "{args:?} > /dev/full: {stderr}");
        assert!(stderr.contains("No space left"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(10));

        let (code, stderr, _) = run_with_stdout(args, closed_pipe());
        assert_eq!(code, Some(3), "{args:?} | (closed): {stderr}");
        assert_eq!(stderr, "", "{args:?}: a closed pipe is quiet");
    }
}

#[test]
fn a_report_or_log_that_cannot_be_written_is_an_error() {
    let sink = sink(Script::default());
    let full = "/dev/full";
    for (extra, named) in [
        (
            &["--output", full, "--format", "json"][..],
            "cannot write --output /dev/full",
        ),
        (&["--output", full], "cannot write --output /dev/full"),
        (&["--log", full], "cannot write --log /dev/full"),
    ] {
        let run = generated_to(&sink).args(extra.iter().copied()).run();
        assert_refused(&run, Duration::from_secs(10), &[named, "No space left"]);
    }
    // The report itself on a full stdout.
    let addr = sink.addr().to_string();
    let args = [
        "send",
        "--smart-host",
        &addr,
        "--from",
        "alice@sender.example",
        "--to",
        "bob@rcpt.example",
        "--helo",
        "test.example",
        "--format",
        "json",
    ];
    let (code, stderr, _) = run_with_stdout(&args, dev_full());
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("cannot write the report"), "{stderr}");
    // A closed pipe is not an error: the exit code still tells the result.
    let (code, stderr, _) = run_with_stdout(&args, closed_pipe());
    assert_eq!(code, Some(0), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile DNS answer sizes and slow lookups
// ---------------------------------------------------------------------------------------------

/// A loopback TCP port nothing listens on (connections to it on any 127/8 address are refused).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_hundred_mx_hosts_with_thousands_of_addresses_each_cost_little() {
    // 100 MX hosts, each an alias of one name with 2,000 A records, so every host answers with
    // the same 2,000 addresses (a zone of 200,000 records would take the test server minutes;
    // 2,000 is about the most one answer of the test server holds, even over TCP).
    const N_ADDR: u32 = 2000;
    // The hosts are in a zone of their own, so the MX answer carries no additional records.
    let mut domain = String::from("$ORIGIN big.test.\n");
    let mut hosts = String::from("$ORIGIN hosts.test.\n");
    for j in 0..N_ADDR {
        hosts.push_str(&format!("pool A 127.1.{}.{}\n", j / 250, j % 250 + 1));
    }
    for i in 0..100 {
        domain.push_str(&format!("@ MX {} mx{i}.hosts.test.\n", 10 + i));
        hosts.push_str(&format!("mx{i} CNAME pool\n"));
    }
    let dns = TestDns::start_zones(&[&domain, &hosts]);
    let port = closed_port().to_string();
    let dns_addr = dns.addr().to_string();
    let run = Cmd::new()
        .args([
            "send",
            "--from",
            "alice@sender.example",
            "--to",
            "bob@big.test",
        ])
        .args([
            "--helo",
            "client.test",
            "--resolver",
            &dns_addr,
            "--port",
            &port,
        ])
        .args([
            "--dns-timeout",
            "5s",
            "--connect-timeout",
            "2s",
            "--timeout",
            "5s",
        ])
        .args(["--max-attempts", "3", "--format", "json", "-4"])
        .guard(Duration::from_secs(60))
        .run();
    eprintln!("took {:?}, {} bytes", run.elapsed, run.stdout.len());
    run.assert_exit(5);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_peak_rss(&run, HOSTILE_PEAK_KIB);
    assert!(
        run.stdout.len() < 64 * 1024,
        "a {} byte report\n{}",
        run.stdout.len(),
        &run.stdout[..2000]
    );
    let report = run.report();
    assert_eq!(report.attempts.len(), 3);
    let v = run.json_value();
    let route = &v["routes"][0];
    let mx = route["mx"].as_array().expect("mx hosts");
    assert!(mx.len() < 100, "every MX host was looked up: {}", mx.len());
    assert_eq!(mx[0]["host"], "mx0.hosts.test");
    assert_eq!(mx[0]["addresses"].as_array().map(Vec::len), Some(16));
    assert!(
        mx[0]["note"]
            .as_str()
            .unwrap_or("")
            .contains("2000 addresses: only the first 16 are kept"),
        "{}",
        mx[0]
    );
    assert!(
        route["note"]
            .as_str()
            .unwrap_or("")
            .contains("not looked up"),
        "{route}"
    );

    // `smtpcheck mx` shows the full picture, within the same bounds.
    let run = Cmd::new()
        .args(["mx", "big.test", "--resolver", &dns_addr, "--port", &port])
        .args(["--dns-timeout", "5s", "--format", "json", "-4"])
        .guard(Duration::from_secs(60))
        .run();
    run.assert_exit(0);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_peak_rss(&run, HOSTILE_PEAK_KIB);
    assert!(run.stdout.len() < 256 * 1024, "{} bytes", run.stdout.len());
    let v = run.json_value();
    let d = &v["domains"][0];
    assert_eq!(d["mx"].as_array().map(Vec::len), Some(32));
    assert_eq!(
        d["note"],
        "68 more MX host(s) not looked up: at most 32 per domain"
    );
    // Every host has the same addresses: 16 targets, not 32 × 16.
    assert_eq!(d["targets"].as_array().map(Vec::len), Some(16));
}

/// A DNS server on loopback UDP that answers every query `delay` late (by asking `upstream`).
struct SlowDns {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowDns {
    fn start(upstream: std::net::SocketAddr, delay: Duration) -> SlowDns {
        use std::net::UdpSocket;
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind slow DNS");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, client)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let reply_to = sock.try_clone().expect("clone socket");
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let up = UdpSocket::bind("127.0.0.1:0").expect("bind");
                    up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut answer = [0u8; 4096];
                    if up.send_to(&query, upstream).is_ok() {
                        if let Ok(m) = up.recv(&mut answer) {
                            let _ = reply_to.send_to(&answer[..m], client);
                        }
                    }
                });
            }
        });
        SlowDns { addr, stop }
    }
}

impl Drop for SlowDns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn thirty_slow_mx_lookups_with_one_attempt_take_two_lookups() {
    let sink = sink(Script::default());
    let mut zone = String::from("$ORIGIN slow.test.\n");
    for i in 0..30 {
        zone.push_str(&format!("@ MX {} mx{i}\nmx{i} A 127.0.0.1\n", 10 + i));
    }
    let dns = TestDns::start(&zone);
    let slow = SlowDns::start(dns.addr(), Duration::from_millis(1500));
    let port = sink.addr().port().to_string();
    let dns_addr = slow.addr.to_string();
    let run = Cmd::new()
        .args([
            "send",
            "--from",
            "alice@sender.example",
            "--to",
            "bob@slow.test",
        ])
        .args([
            "--helo",
            "client.test",
            "--resolver",
            &dns_addr,
            "--port",
            &port,
        ])
        .args([
            "--dns-timeout",
            "5s",
            "--connect-timeout",
            "2s",
            "--timeout",
            "5s",
        ])
        .args(["--max-attempts", "1", "--format", "json"])
        .guard(Duration::from_secs(90))
        .run();
    run.assert_exit(0);
    // The MX lookup, then the first host's A and AAAA at once (the next hosts' lookups run
    // alongside and are dropped): about 3 s, where resolving every host first took 46 s.
    assert!(
        run.elapsed < Duration::from_secs(9),
        "took {:?}\n{}",
        run.elapsed,
        run.dump()
    );
    assert_peak_rss(&run, HOSTILE_PEAK_KIB);
    let v = run.json_value();
    assert!(
        v["routes"][0]["note"]
            .as_str()
            .unwrap_or("")
            .contains("29 more MX host(s) not looked up"),
        "{}",
        v["routes"][0]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Input work stays linear
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hundred_thousand_addresses_in_to_are_read_in_linear_time() {
    let dir = TempDir::new("many-to");
    let to: Vec<String> = (0..100_000)
        .map(|i| format!("u{i}@d{}.test", i % 50))
        .collect();
    let eml = dir.write(
        "many.eml",
        format!(
            "From: alice@sender.example\r\nSubject: many\r\nTo: {}\r\n\r\nhi\r\n",
            to.join(", ")
        ),
    );
    let port = closed_port().to_string();
    let run = Cmd::send(format!("127.0.0.1:{port}"), &eml)
        .helo("test.example")
        .arg("-q")
        .guard(Duration::from_secs(120))
        .run();
    run.assert_exit(5);
    // Quadratic de-duplication took 46 s here (debug build); linear work takes well under one.
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}\n{}",
        run.elapsed,
        run.dump()
    );
    // 100,000 recipients held once each, and their report entries.
    assert_peak_rss(&run, 160 * 1024);
}

#[test]
fn a_header_section_of_tens_of_megabytes_is_refused_quickly() {
    let dir = TempDir::new("big-head");
    let mut m = b"From: alice@sender.example\r\nTo: bob@rcpt.example\r\nX-Big: ".to_vec();
    m.resize(70 * 1024 * 1024, b'x');
    m.extend_from_slice(b"\r\n\r\nbody\r\n");
    let eml = dir.write("head.eml", &m);
    drop(m);
    let run = Cmd::send("127.0.0.1:9", &eml).helo("test.example").run();
    assert_refused(
        &run,
        Duration::from_secs(5),
        &["header section is larger than 4 MiB"],
    );

    // A 3 MB header section (folded lines) in a larger file is read once, in bounded memory.
    let mut m = b"From: alice@sender.example\r\nTo: bob@rcpt.example\r\nX-Long: x".to_vec();
    while m.len() < 3 * 1024 * 1024 {
        m.extend_from_slice(b"\r\n folded continuation of a long header field");
    }
    m.extend_from_slice(b"\r\n\r\n");
    m.resize(m.len() + 20 * 1024 * 1024, b'b');
    let eml = dir.write("long-head.eml", &m);
    drop(m);
    let port = closed_port().to_string();
    let run = Cmd::send(format!("127.0.0.1:{port}"), &eml)
        .helo("test.example")
        .arg("-q")
        .run();
    run.assert_exit(5);
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}",
        run.elapsed
    );
    assert_peak_rss(&run, HOSTILE_PEAK_KIB);
}

// ---------------------------------------------------------------------------------------------
// 7. `--eml -` is streamed like a file
// ---------------------------------------------------------------------------------------------

/// A message of about `size` bytes: headers, then lines of text.
fn stdin_message(size: usize) -> Vec<u8> {
    let mut m = GOOD_MESSAGE.as_bytes().to_vec();
    while m.len() < size {
        m.extend_from_slice(b"a line of the message body on standard input\r\n");
    }
    m
}

#[test]
fn a_large_message_on_stdin_is_sent_in_bounded_memory() {
    let bytes = stdin_message(9 * 1024 * 1024);
    let sink = sink(Script::default());
    let run = Cmd::new()
        .args(["send", "--eml", "-", "--smart-host"])
        .arg(sink.addr().to_string())
        .helo("test.example")
        .args(["--timeout", "20s", "-q"])
        .stdin(bytes.clone())
        .guard(Duration::from_secs(120))
        .run();
    run.assert_exit(0);
    assert_peak_rss(&run, HOSTILE_PEAK_KIB);
    let log = one_session(&sink);
    assert_eq!(log.messages.len(), 1);
    assert_eq!(
        crlf_normalize(&unstuff(&log.messages[0])),
        crlf_normalize(&bytes)
    );
}

#[test]
fn an_endless_stream_on_stdin_is_refused_in_bounded_memory() {
    let run = Cmd::new()
        .args(["send", "--eml", "-", "--smart-host", "127.0.0.1:9"])
        .helo("test.example")
        .args(["--max-size", "60MB"])
        .stdin(stdin_message(70 * 1024 * 1024))
        .guard(Duration::from_secs(120))
        .run();
    assert_refused(
        &run,
        Duration::from_secs(60),
        &["larger than the --max-size limit"],
    );
}
