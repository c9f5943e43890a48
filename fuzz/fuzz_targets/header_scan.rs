//! The header-section scanner on arbitrary bytes cut into arbitrary chunks: it must find the same
//! end however the input is cut, the end a line-by-line reading of the whole finds (just after the
//! LF of the first line that is empty or a lone CR), and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpcheck::internals::message::HeaderScan;

/// The end of the header section found line by line in the whole input.
fn oracle(data: &[u8]) -> Option<u64> {
    let mut pos = 0usize;
    for line in data.split(|&b| b == b'\n') {
        let end = pos + line.len();
        if end >= data.len() {
            return None; // the last piece has no LF
        }
        if line.is_empty() || line == b"\r" {
            return Some(end as u64 + 1);
        }
        pos = end + 1;
    }
    None
}

fuzz_target!(|input: &[u8]| {
    // The first bytes choose the chunk sizes; the rest is the message.
    let Some((&sizes, data)) = input.split_first() else {
        return;
    };
    let mut whole = HeaderScan::default();
    let expected = oracle(data);
    assert_eq!(whole.feed(data), expected);

    let mut cut = HeaderScan::default();
    let mut found = None;
    let mut rest = data;
    let mut i = 0u32;
    while !rest.is_empty() {
        let n = (((sizes as u32).rotate_left(i) % 7) as usize + 1).min(rest.len());
        found = cut.feed(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    if data.is_empty() {
        found = cut.feed(data);
    }
    assert_eq!(found, expected, "cut into chunks");
});
