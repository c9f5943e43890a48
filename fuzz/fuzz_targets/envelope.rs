//! The envelope builder on arbitrary `--to` values and To/Cc headers with many, repeated and
//! hostile addresses: `Envelope::resolve` must never panic, never accept an address that could
//! inject SMTP commands, and list every accepted recipient once (case-insensitively).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpcheck::internals::message::{self, Envelope};
use std::collections::HashSet;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The input is a list of addresses, one per line, used both as --to values and as headers.
    let list: Vec<String> = text.lines().map(str::to_string).collect();
    let eml = format!(
        "From: a@example.com\r\nTo: {}\r\nCc: {}\r\n\r\nbody\r\n",
        list.join(", "),
        list.iter().rev().cloned().collect::<Vec<_>>().join(", ")
    );
    let msg = message::from_bytes(Path::new("fuzz.eml"), eml.into_bytes()).ok();
    let empty = message::from_bytes(Path::new("f.eml"), b"From: a@example.com\r\n\r\n".to_vec())
        .expect("a minimal message");
    let mut tries = vec![Envelope::resolve(&empty, None, &list)];
    if let Some(msg) = &msg {
        tries.push(Envelope::resolve(msg, None, &[]));
    }
    for env in tries.into_iter().flatten() {
        let mut seen = HashSet::new();
        for a in env.from.iter().chain(&env.recipients) {
            let s: &str = a.as_ref();
            assert!(!s.contains(['\r', '\n', '\0', '<', '>']), "accepted {s:?}");
        }
        for r in &env.recipients {
            let s: &str = r.as_ref();
            assert!(seen.insert(s.to_ascii_lowercase()), "{s:?} listed twice");
        }
    }
});
