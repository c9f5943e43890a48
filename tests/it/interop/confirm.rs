//! `send --confirm` against the interop Dovecot (IMAP on `IMAP_PORT` with STARTTLS, imaps on
//! `IMAPS_PORT`, both with the interop CA), to which the interop Postfix delivers over LMTP. Its
//! Sieve rule files mail carrying the test marker (`X-Smtpcheck-Test: junk`, or the address
//! `USER+junk@interop.test`) into USER's Junk folder (special use `\Junk`); on
//! `IMAP_NO_IDLE_HOST` the same server offers no IDLE. Each test uses its own message (unique
//! Message-ID); the deletion test has the mailbox imap3 to itself. Dovecot also takes
//! AUTHENTICATE XOAUTH2 (an `oauth2` passdb asking the interop introspection endpoint):
//! `IMAP_OAUTH2_TOKEN` is active for `IMAP_OAUTH2_USER` (imap2), `OAUTH2_EXPIRED_TOKEN` is inactive.

use super::{marker, report_eml, servers, TempMessage};
use crate::common::{self, JsonReport};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The IMAP side of the interop state file.
struct Imap {
    postfix: String,
    port: u16,
    imaps_port: u16,
    no_idle_host: String,
    password: String,
    /// The IMAP user whose OAuth token the introspection endpoint knows, and that token.
    oauth2_user: String,
    oauth2_token: String,
    expired_token: String,
    mail_base: PathBuf,
    ca_file: PathBuf,
}

fn imap() -> Option<Imap> {
    let s = servers()?;
    let dir = std::env::var_os("SMTPCHECK_INTEROP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/smtpcheck-interop"));
    let text = std::fs::read_to_string(dir.join("env")).expect("read the interop state file");
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        vars.get(k)
            .unwrap_or_else(|| {
                panic!("the interop state file has no {k}: run scripts/interop.sh down and up")
            })
            .to_string()
    };
    Some(Imap {
        postfix: s.postfix.to_string(),
        port: get("IMAP_PORT").parse().expect("IMAP_PORT"),
        imaps_port: get("IMAPS_PORT").parse().expect("IMAPS_PORT"),
        no_idle_host: get("IMAP_NO_IDLE_HOST"),
        password: get("IMAP_PASSWORD"),
        oauth2_user: get("IMAP_OAUTH2_USER"),
        oauth2_token: get("IMAP_OAUTH2_TOKEN"),
        expired_token: get("OAUTH2_EXPIRED_TOKEN"),
        mail_base: get("IMAP_MAIL_BASE").into(),
        ca_file: s.ca_file,
    })
}

impl Imap {
    fn url(&self, user: &str, host: &str) -> String {
        format!("imap://{user}%40interop.test@{host}:{}", self.port)
    }

    fn imaps_url(&self, user: &str) -> String {
        format!(
            "imaps://{user}%40interop.test@127.0.0.1:{}",
            self.imaps_port
        )
    }

    /// `smtpcheck send --format json` of `eml` to `to` through Postfix, with `--confirm` on
    /// `user`'s mailbox and the extra arguments.
    fn send(
        &self,
        eml: &TempMessage,
        to: &str,
        confirm: Option<&str>,
        extra: &[&str],
    ) -> common::Run {
        let mut cmd = common::Cmd::send(&self.postfix, eml.path())
            .to(to)
            .ca(&self.ca_file)
            .json()
            .env("SMTPCHECK_IMAP_PASSWORD", &self.password)
            .args(["--connect-timeout", "5s", "--timeout", "10s"]);
        if let Some(url) = confirm {
            cmd = cmd.args(["--confirm", url]);
        }
        cmd.args(extra).guard(Duration::from_secs(60)).run()
    }

    /// The message files in a mailbox (every folder), for counting.
    fn files(&self, user: &str) -> Vec<PathBuf> {
        let root = self.mail_base.join(user);
        let mut out = Vec::new();
        let mut dirs = vec![root.clone()];
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && e.path().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
        for d in dirs {
            for sub in ["new", "cur"] {
                if let Ok(entries) = std::fs::read_dir(d.join(sub)) {
                    out.extend(entries.flatten().map(|e| e.path()));
                }
            }
        }
        out.sort();
        out
    }
}

fn arrival(report: &JsonReport) -> &common::JsonArrival {
    report.arrival.as_ref().expect("the report has an arrival")
}

#[test]
fn found_in_the_inbox_over_starttls_with_the_interop_ca() {
    let Some(imap) = imap() else { return };
    let m = marker("confirm-inbox");
    let eml = TempMessage::new(&m, report_eml(&m));
    let run = imap.send(
        &eml,
        "imap1@interop.test",
        Some(&imap.url("imap1", "127.0.0.1")),
        &[],
    );
    run.assert_exit(0)
        .assert_no_secret(std::slice::from_ref(&imap.password));
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    let a = arrival(&report);
    assert!(a.found, "{}", run.dump());
    assert_eq!(a.folder.as_deref(), Some("INBOX"));
    assert_eq!(a.special_use.as_deref(), Some("\\Inbox"));
    assert_eq!(a.matched_by, "message-id");
    assert!(a.after_ms.is_some_and(|ms| (0.0..30_000.0).contains(&ms)));
    let tls = a.tls.as_ref().expect("IMAP went through STARTTLS");
    assert_eq!(tls.verdict, "verified");
    assert!(a.error.is_none() && !a.deleted);
    // Postfix's Received line, then Dovecot's (LMTP from Postfix) as the last hop.
    let [.., postfix, dovecot] = a.hops.as_slice() else {
        panic!("two Received hops at least: {:?}", a.hops)
    };
    assert_eq!(postfix.by.as_deref(), Some("mx.interop.test"));
    assert_eq!(dovecot.by.as_deref(), Some("imap.interop.test"));
    assert!(dovecot.at.is_some(), "{:?}", a.hops);
}

/// A message with the Sieve rule's test marker: `X-Smtpcheck-Test: junk` as its first header field.
fn junk_eml(marker: &str) -> Vec<u8> {
    let mut raw = b"X-Smtpcheck-Test: junk\r\n".to_vec();
    raw.extend(report_eml(marker));
    raw
}

#[test]
fn found_over_imaps_with_the_interop_ca() {
    let Some(imap) = imap() else { return };
    let m = marker("confirm-imaps");
    let eml = TempMessage::new(&m, report_eml(&m));
    let run = imap.send(
        &eml,
        "imap2@interop.test",
        Some(&imap.imaps_url("imap2")),
        &[],
    );
    run.assert_exit(0)
        .assert_no_secret(std::slice::from_ref(&imap.password));
    let report = run.report();
    let a = arrival(&report);
    assert!(
        a.found && a.folder.as_deref() == Some("INBOX"),
        "{}",
        run.dump()
    );
    assert!(a.mailbox.starts_with("imaps://"), "{}", a.mailbox);
    let tls = a.tls.as_ref().expect("imaps is TLS");
    assert_eq!(tls.verdict, "verified");
}

#[test]
fn found_in_junk_exits_16_and_the_text_says_so() {
    let Some(imap) = imap() else { return };
    // The header marker: Sieve files it into Junk.
    let m = marker("confirm-junk");
    let eml = TempMessage::new(&m, junk_eml(&m));
    let run = imap.send(
        &eml,
        "imap1@interop.test",
        Some(&imap.url("imap1", "127.0.0.1")),
        &[],
    );
    run.assert_exit(16);
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    let a = arrival(&report);
    assert_eq!(
        (a.found, a.folder.as_deref(), a.special_use.as_deref()),
        (true, Some("Junk"), Some("\\Junk"))
    );
    // The address marker (USER+junk@), the same Sieve rule.
    let m2 = marker("confirm-junk-text");
    let eml2 = TempMessage::new(&m2, report_eml(&m2));
    let text = common::Cmd::send(&imap.postfix, eml2.path())
        .to("imap1+junk@interop.test")
        .ca(&imap.ca_file)
        .env("SMTPCHECK_IMAP_PASSWORD", &imap.password)
        .args(["--confirm", &imap.url("imap1", "127.0.0.1")])
        .run();
    text.assert_exit(16);
    assert!(
        text.last_line().contains("arrived in the JUNK folder Junk")
            && text.last_line().contains("(exit 16)"),
        "{}",
        text.dump()
    );
}

#[test]
fn never_arrives_exits_17_within_the_timeout_while_idling() {
    let Some(imap) = imap() else { return };
    let m = marker("confirm-never");
    let eml = TempMessage::new(&m, report_eml(&m));
    // Delivered to another mailbox: never in imap1's.
    let started = Instant::now();
    let run = imap.send(
        &eml,
        "other@interop.test",
        Some(&imap.url("imap1", "127.0.0.1")),
        &["--confirm-timeout", "2s"],
    );
    run.assert_exit(17);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let report = run.report();
    let a = arrival(&report);
    assert!(!a.found && a.error.is_none());
    assert_eq!(a.watch.as_deref(), Some("idle"));
    assert_eq!(a.folders.first().map(String::as_str), Some("INBOX"));
    assert!(a.folders.iter().any(|f| f == "Junk"), "{:?}", a.folders);
}

/// Waits for a message that arrives 4 s after the IMAP check began: delivered by a second run
/// to imap2, while the first run (which delivered it elsewhere) watches imap2 on `host`. The
/// first run's `--log` says when its check begins.
fn found_after_a_wait(imap: &Imap, host: &str, label: &str) -> JsonReport {
    let m = marker(label);
    let eml = TempMessage::new(&m, report_eml(&m));
    let dir = common::TempDir::new(label);
    let log = dir.path().join("watch.log");
    let watcher = common::Cmd::send(&imap.postfix, eml.path())
        .to("other@interop.test")
        .ca(&imap.ca_file)
        .json()
        .env("SMTPCHECK_IMAP_PASSWORD", &imap.password)
        .args([
            "--confirm",
            &imap.url("imap2", host),
            "--confirm-timeout",
            "30s",
        ])
        .arg("--log")
        .arg(&log)
        .guard(Duration::from_secs(60));
    let handle = std::thread::spawn(move || watcher.run());
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("looking for the message")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the watching run did not begin its IMAP check"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The check logs in and searches once before it waits: on a loaded machine that can take a
    // while, and a message already there when it first searches is found without any waiting.
    std::thread::sleep(Duration::from_millis(4000));
    imap.send(&eml, "imap2@interop.test", None, &[])
        .assert_exit(0);
    let run = handle.join().expect("the watching run");
    run.assert_exit(0);
    let report = run.report();
    let a = arrival(&report);
    assert!(
        a.found && a.folder.as_deref() == Some("INBOX"),
        "{}",
        run.dump()
    );
    assert!(
        a.after_ms.is_some_and(|ms| ms >= 1000.0),
        "{:?}",
        a.after_ms
    );
    report
}

#[test]
fn found_after_a_wait_with_idle() {
    let Some(imap) = imap() else { return };
    let report = found_after_a_wait(&imap, "127.0.0.1", "confirm-idle");
    assert_eq!(arrival(&report).watch.as_deref(), Some("idle"));
}

#[test]
fn found_after_a_wait_by_polling_when_the_server_has_no_idle() {
    let Some(imap) = imap() else { return };
    let report = found_after_a_wait(&imap, &imap.no_idle_host, "confirm-poll");
    assert_eq!(arrival(&report).watch.as_deref(), Some("poll"));
}

#[test]
fn a_wrong_imap_password_exits_18_and_keeps_the_smtp_verdict() {
    let Some(imap) = imap() else { return };
    let m = marker("confirm-badpw");
    let eml = TempMessage::new(&m, report_eml(&m));
    let wrong = "not-the-imap-password-7f3a";
    let run = common::Cmd::send(&imap.postfix, eml.path())
        .to("imap1@interop.test")
        .ca(&imap.ca_file)
        .json()
        .env("SMTPCHECK_IMAP_PASSWORD", wrong)
        .args(["--confirm", &imap.url("imap1", "127.0.0.1")])
        .run();
    run.assert_exit(18).assert_no_secret(&[wrong.to_string()]);
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    assert!(report.failure.is_none());
    assert!(report.recipients.iter().all(|r| r.accepted));
    let a = arrival(&report);
    let error = a.error.as_deref().expect("an error");
    assert!(
        error.contains("refused the login as imap1@interop.test"),
        "{error}"
    );
    assert!(error.contains("AUTHENTICATIONFAILED"), "{error}");
    assert!(!a.found);
}

#[test]
fn an_untrusted_imap_certificate_gets_no_password() {
    let Some(imap) = imap() else { return };
    let m = marker("confirm-noca");
    let eml = TempMessage::new(&m, report_eml(&m));
    // No --ca: SMTP goes on with a warning (opportunistic), IMAP refuses to log in.
    let run = common::Cmd::send(&imap.postfix, eml.path())
        .to("imap1@interop.test")
        .json()
        .env("SMTPCHECK_IMAP_PASSWORD", &imap.password)
        .args(["--confirm", &imap.url("imap1", "127.0.0.1")])
        .run();
    run.assert_exit(18);
    let report = run.report();
    let a = arrival(&report);
    let error = a.error.as_deref().expect("an error");
    assert!(error.contains("IMAP password was not sent"), "{error}");
    assert_eq!(a.tls.as_ref().map(|t| t.verified), Some(false));
}

#[test]
fn confirm_delete_leaves_the_mailbox_as_before() {
    let Some(imap) = imap() else { return };
    let before = imap.files("imap3");
    let m = marker("confirm-delete");
    let eml = TempMessage::new(&m, report_eml(&m));
    let run = imap.send(
        &eml,
        "imap3@interop.test",
        Some(&imap.url("imap3", "127.0.0.1")),
        &["--confirm-delete", "--confirm-folders", "INBOX"],
    );
    run.assert_exit(0);
    let report = run.report();
    let a = arrival(&report);
    assert!(a.found && a.deleted, "{}", run.dump());
    assert_eq!(a.folders, ["INBOX"]);
    let after = imap.files("imap3");
    let names = |v: &[PathBuf]| -> Vec<String> {
        // Dovecot may move a file from new/ to cur/ and add flags: compare the unique part.
        let mut n: Vec<String> = v
            .iter()
            .filter_map(|p| p.file_name())
            .map(|f| {
                f.to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&after), names(&before));
}

/// `send --confirm` of a new message to the OAuth user's mailbox with `token` in
/// `SMTPCHECK_OAUTH2_TOKEN`, and the IMAP password only when `password` is given.
fn send_with_token(imap: &Imap, label: &str, token: &str, password: bool) -> common::Run {
    let m = marker(label);
    let eml = TempMessage::new(&m, report_eml(&m));
    let user = imap
        .oauth2_user
        .strip_suffix("@interop.test")
        .expect("IMAP_OAUTH2_USER is @interop.test");
    let mut cmd = common::Cmd::send(&imap.postfix, eml.path())
        .to(&imap.oauth2_user)
        .ca(&imap.ca_file)
        .json()
        .env("SMTPCHECK_OAUTH2_TOKEN", token)
        .args(["--connect-timeout", "5s", "--timeout", "10s"])
        .args(["--confirm", &imap.url(user, "127.0.0.1")]);
    if password {
        cmd = cmd.env("SMTPCHECK_IMAP_PASSWORD", &imap.password);
    }
    cmd.guard(Duration::from_secs(60)).run()
}

#[test]
fn a_valid_token_confirms_over_starttls_with_xoauth2() {
    let Some(imap) = imap() else { return };
    // No IMAP password: only the token can log in.
    let run = send_with_token(&imap, "confirm-token", &imap.oauth2_token, false);
    run.assert_exit(0)
        .assert_no_secret(std::slice::from_ref(&imap.oauth2_token));
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    let a = arrival(&report);
    assert!(
        a.found && a.folder.as_deref() == Some("INBOX"),
        "{}",
        run.dump()
    );
    assert_eq!(a.tls.as_ref().map(|t| t.verdict.as_str()), Some("verified"));
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("logged in with AUTHENTICATE XOAUTH2 (the OAuth token)")),
        "{:?}",
        a.notes
    );
}

#[test]
fn an_expired_token_falls_back_to_the_imap_password_or_exits_18() {
    let Some(imap) = imap() else { return };
    // With the IMAP password: Dovecot refuses the token, the password logs in, a note says so.
    let run = send_with_token(&imap, "confirm-expired-pw", &imap.expired_token, true);
    run.assert_exit(0)
        .assert_no_secret(&[imap.expired_token.clone(), imap.password.clone()]);
    let report = run.report();
    let a = arrival(&report);
    assert!(a.found, "{}", run.dump());
    assert!(
        a.notes.iter().any(|n| n.contains("refused the OAuth token")
            && n.contains("logging in with the IMAP password instead")),
        "{:?}",
        a.notes
    );
    // The token alone: no way to log in, exit 18, the SMTP verdict kept.
    let run = send_with_token(&imap, "confirm-expired", &imap.expired_token, false);
    run.assert_exit(18)
        .assert_no_secret(std::slice::from_ref(&imap.expired_token));
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    assert!(report.recipients.iter().all(|r| r.accepted));
    let a = arrival(&report);
    let error = a.error.as_deref().expect("an error");
    assert!(
        error.contains("refused the OAuth token (AUTHENTICATE XOAUTH2)"),
        "{error}"
    );
    assert!(!a.found);
}
