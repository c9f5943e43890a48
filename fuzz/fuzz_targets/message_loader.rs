//! The message loader on arbitrary file contents: `message::from_bytes` (header section check,
//! mail-parser on the headers) and `Envelope::resolve` on what it found must never panic, and an
//! envelope it accepts must never hold an address that could inject SMTP commands.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpcheck::internals::message::{self, Envelope};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = message::from_bytes(Path::new("fuzz.eml"), data.to_vec()) else {
        return;
    };
    assert_eq!(msg.raw, data);
    let _ = msg.info();
    // The envelope from the headers alone, and with flags overriding them.
    for (from, to) in [
        (None, Vec::new()),
        (Some(""), vec!["rcpt@example.com".to_string()]),
    ] {
        let Ok(env) = Envelope::resolve(&msg, from, &to) else {
            continue;
        };
        for a in env.from.iter().chain(&env.recipients) {
            let s: &str = a.as_ref();
            assert!(!s.contains(['\r', '\n', '\0', '<', '>']), "accepted {s:?}");
        }
        let _ = env.info();
        let _ = message::preflight(&msg, &env);
    }
});
