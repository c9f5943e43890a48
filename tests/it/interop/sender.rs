//! `send --check-sender` against the interop Postfix, whose greeting and EHLO reply do not echo
//! the client's address: the sender checks fall back to the local address of the connection, with
//! the note that a NAT may change it. DNS is the interop dnsmasq (`interop.test` only).

use super::{marker, replace, report_eml, servers, smtpcheck, TempMessage};

#[test]
fn check_sender_against_postfix_uses_the_local_address_with_a_nat_note() {
    let Some(s) = servers() else { return };
    let m = marker("check-sender");
    let raw = replace(
        &report_eml(&m),
        "reports@bi.example.com",
        "reports@interop.test",
    );
    let msg = TempMessage::new(&m, raw);
    let postfix = s.postfix.to_string();
    let dns = s.dns.to_string();
    let args = [
        "--eml",
        msg.path(),
        "--to",
        "user@interop.test",
        "--from",
        "reports@interop.test",
        "--smart-host",
        &postfix,
        "--helo",
        "interop-client.example",
        "--resolver",
        &dns,
        "--dns-timeout",
        "3s",
        "--check-sender",
    ];
    let (code, report) = smtpcheck(&args);
    // Delivered: the sender verdict (interop.test publishes no SPF or DMARC record, the message
    // is not signed) is a warning, and the exit code stays the delivery's.
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "delivered");
    let ehlo = report["attempts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["stage"] == "ehlo")
        .expect("an EHLO step");
    assert!(
        !ehlo["reply"]["lines"][0]
            .as_str()
            .unwrap()
            .contains("[127.0.0.1]"),
        "Postfix does not echo the address: {ehlo:#}"
    );
    let sender = &report["sender"];
    assert_eq!(sender["ip"], "127.0.0.1", "{sender:#}");
    assert_eq!(sender["ip_source"], "local", "{sender:#}");
    assert_eq!(sender["helo"], "interop-client.example");
    assert_eq!(sender["mail_from"], "reports@interop.test");
    assert_eq!(sender["from_domain"], "interop.test");
    assert_eq!(sender["spf"]["domain"], "interop.test");
    assert_eq!(sender["spf"]["result"], "none", "{sender:#}");
    assert_eq!(sender["dkim"].as_array().map(Vec::len), Some(0));
    assert_eq!(sender["dmarc"]["result"], "none", "{sender:#}");
    assert_eq!(sender["exit"], 41, "{sender:#}");
    let notes: Vec<&str> = sender["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("local address of the connection")
                && n.contains("a NAT on the way may change it")),
        "{notes:?}"
    );
    let warned = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .any(|w| w.starts_with("sender check (exit 41): DMARC does not apply"));
    assert!(warned, "{report:#}");

    // --require-sender-pass: delivered all the same, but the exit code is the sender's.
    let m = marker("require-sender");
    let raw = replace(
        &report_eml(&m),
        "reports@bi.example.com",
        "reports@interop.test",
    );
    let msg = TempMessage::new(&m, raw);
    let mut args = args.to_vec();
    args[1] = msg.path();
    args.push("--require-sender-pass");
    let (code, report) = smtpcheck(&args);
    assert_eq!(code, 41, "{report:#}");
    assert_eq!(report["outcome"], "delivered");
    assert_eq!(report["sender"]["ip_source"], "local");
}
