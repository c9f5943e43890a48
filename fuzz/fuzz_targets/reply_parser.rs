//! The SMTP reply parser on arbitrary server bytes: it must return a reply, "incomplete" or an
//! error, never panic, never claim more bytes than it was given, and only produce replies within
//! its bounds whose lines are safe to print (control characters escaped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpcheck::internals::{escape_line, parse_reply, Parsed, MAX_REPLY_LINE, MAX_REPLY_LINES};

fuzz_target!(|data: &[u8]| {
    // Parse reply after reply, as the session does with its read buffer.
    let mut rest = data;
    while let Ok(Parsed::Complete(reply, used)) = parse_reply(rest) {
        assert!(
            used > 0 && used <= rest.len(),
            "used {used} of {}",
            rest.len()
        );
        assert!((200..=599).contains(&reply.code));
        assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
        for line in &reply.lines {
            assert!(
                !line.contains(['\r', '\n', '\0']),
                "unescaped control in {line:?}"
            );
            // Each escaped byte grows to at most 4 characters.
            assert!(line.len() <= 4 * MAX_REPLY_LINE);
        }
        let _ = reply.text();
        let _ = reply.is_positive();
        let json = serde_json::to_string(&reply).expect("a reply serialises");
        let _: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        rest = &rest[used..];
    }
    let shown = escape_line(data);
    assert!(!shown.contains(['\r', '\n', '\0']));
});
