//! Hardening, second round, end to end through the built binary: a reply that arrives before the
//! data is finished, secrets a server echoes after AUTH, hostile DNS answer sizes, quadratic input,
//! file flags naming endless devices and FIFOs, streaming `--eml -`, and outputs that cannot be
//! written. Every run is bounded in wall time and in peak memory, like `hostile`.

use crate::common::dns::TestDns;
use crate::common::*;
use crate::hostile::{assert_peak_rss, hostile, GOOD_MESSAGE, HOSTILE_PEAK_KIB};
use std::path::{Path, PathBuf};
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

#[allow(dead_code)]
fn unused(_: &TestDns, _: PathBuf, _: &str) -> &'static str {
    GOOD_MESSAGE
}
