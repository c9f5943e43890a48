//! The EHLO capability parser: on replies framed from arbitrary bytes by the reply parser, and on
//! arbitrary (already escaped) lines, it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpcheck::internals::{parse_capabilities, parse_reply, Parsed, Reply};

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete(reply, _)) = parse_reply(data) {
        let caps = parse_capabilities(&reply);
        assert!(caps.keywords.len() < reply.lines.len().max(1));
    }
    // Lines as they could be after escaping, including ones too short to hold a code, or whose
    // fifth byte is inside a multi-byte character.
    let text = String::from_utf8_lossy(data);
    let reply = Reply {
        code: 250,
        enhanced: None,
        lines: text.split('\n').map(str::to_string).collect(),
    };
    let caps = parse_capabilities(&reply);
    let _ = serde_json::to_string(&caps).expect("capabilities serialise");
});
