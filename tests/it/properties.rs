//! Property tests of the wire formats and address validation, through the library API: for any
//! input, the DATA encoder cannot be made to end the data early or send a bare CR or LF, the reply
//! and capability parsers cannot be made to panic or read out of bounds, and address validation
//! never lets a line break through.

use proptest::prelude::*;
use smtpcheck::internals::message::{self, Envelope};
use smtpcheck::internals::Reply;
use smtpcheck::internals::{
    encode_data, escape_line, normalized_len, parse_address, parse_capabilities, parse_helo,
    parse_reply, DataEncoder, Parsed, MAX_REPLY_LINES,
};
use smtpcheck_sink::unstuff;
use std::path::Path;

/// Bytes rich in what matters to the encoder: CR, LF, dots, plus anything else.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        3 => Just(b'.'),
        2 => Just(b'a'),
        1 => any::<u8>(),
    ];
    prop_oneof![
        prop::collection::vec(byte, 0..300),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// Every bare CR, bare LF and CRLF as CRLF, plus a final CRLF when the input does not end with a
/// line break (what the server must end up with), computed independently of the encoder.
fn expected_content(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Checks everything the wire form of `input` must satisfy.
fn check_encoding(input: &[u8], wire: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(wire.ends_with(b".\r\n"), "no terminator");
    let body = &wire[..wire.len() - 3];
    prop_assert!(
        body.is_empty() || body.ends_with(b"\r\n"),
        "the terminator does not follow a CRLF"
    );
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\r' {
            prop_assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {}", i);
        }
        if b == b'\n' {
            prop_assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {}", i);
        }
    }
    // The end-of-data sequence occurs exactly once: at the very end.
    let eod = wire.windows(5).position(|w| w == b"\r\n.\r\n");
    if body.is_empty() {
        prop_assert_eq!(wire, &b".\r\n"[..]);
        prop_assert_eq!(eod, None);
    } else {
        prop_assert_eq!(eod, Some(wire.len() - 5), "CRLF.CRLF before the terminator");
    }
    for line in body.split(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            prop_assert!(line.starts_with(b".."), "unstuffed line {:?}", line);
        }
    }
    prop_assert_eq!(unstuff(body), expected_content(input));
    prop_assert_eq!(
        normalized_len(input),
        expected_content(input).len() as u64,
        "SIZE= differs from the octets sent"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn data_encoding_is_clean_and_reversible(input in message_bytes()) {
        check_encoding(&input, &encode_data(&input))?;
    }

    #[test]
    fn data_encoding_does_not_depend_on_chunking(
        input in message_bytes(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut enc = DataEncoder::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            enc.encode(&input[from..cut], &mut out);
            from = cut;
        }
        enc.finish(&mut out);
        prop_assert_eq!(out, encode_data(&input));
    }

    #[test]
    fn reply_parser_never_panics_or_overreads(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check_reply_parse(&input)?;
    }

    #[test]
    fn reply_parser_on_reply_shaped_input(input in reply_like()) {
        check_reply_parse(&input)?;
    }

    #[test]
    fn capability_parser_never_panics(
        lines in prop::collection::vec(any::<String>(), 0..12),
        bytes in reply_like(),
    ) {
        let caps = parse_capabilities(&Reply { code: 250, enhanced: None, lines: lines.clone() });
        prop_assert!(caps.keywords.len() <= lines.len().saturating_sub(1));
        if let Ok(Parsed::Complete(reply, _)) = parse_reply(&bytes) {
            let _ = parse_capabilities(&reply);
        }
    }

    #[test]
    fn addresses_with_line_breaks_or_nul_are_refused(
        local in "[a-zA-Z0-9.+_\"-]{0,20}",
        domain in "[a-z0-9.-]{0,20}",
        bad in prop::sample::select(vec!["\r", "\n", "\r\n", "\0", "\r\nRCPT TO:<e@x.example>"]),
        at in any::<prop::sample::Index>(),
    ) {
        let mut value = format!("{local}@{domain}");
        let mut pos = at.index(value.len() + 1);
        while !value.is_char_boundary(pos) {
            pos -= 1;
        }
        value.insert_str(pos, bad);
        prop_assert!(parse_address(&value, "--to").is_err(), "accepted {:?}", value);
        prop_assert!(parse_helo(&value).is_err(), "accepted --helo {:?}", value);
    }

    #[test]
    fn accepted_addresses_are_safe_on_a_command_line(value in any::<String>()) {
        if let Ok(a) = parse_address(&value, "--to") {
            let s: &str = a.as_ref();
            prop_assert!(!s.contains(['\r', '\n', '\0', '<', '>']), "accepted {:?}", s);
            prop_assert!(!s.chars().any(char::is_control), "accepted {:?}", s);
            prop_assert!(s.len() + 2 <= 256);
        }
        if let Ok(id) = parse_helo(&value) {
            prop_assert!(!id.to_string().contains(['\r', '\n', '\0', ' ']), "accepted {:?}", value);
        }
    }

    #[test]
    fn message_loader_never_panics(input in message_bytes()) {
        if let Ok(m) = message::from_bytes(Path::new("p.eml"), input.clone()) {
            if let Ok(env) = Envelope::resolve(&m, None, &[]) {
                for a in env.from.iter().chain(&env.recipients) {
                    let s: &str = a.as_ref();
                    prop_assert!(!s.contains(['\r', '\n', '\0']), "accepted {:?}", s);
                }
                let _ = message::preflight(&m, &env);
            }
        }
    }
}

/// Byte strings shaped like replies (codes, separators, text, CRLF or LF), with junk mixed in.
fn reply_like() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop_oneof![Just(250u16), Just(550), 0u16..1000],
        prop::sample::select(vec![&b"-"[..], b" ", b"", b"x"]),
        prop::collection::vec(any::<u8>(), 0..20),
        prop::sample::select(vec![&b"\r\n"[..], b"\n", b"\r", b""]),
    )
        .prop_map(|(code, sep, text, end)| {
            let mut l = format!("{code:03}").into_bytes();
            l.extend_from_slice(sep);
            l.extend(text.into_iter().filter(|b| *b != b'\n'));
            l.extend_from_slice(end);
            l
        });
    prop::collection::vec(line, 0..8).prop_map(|lines| lines.concat())
}

fn check_reply_parse(input: &[u8]) -> Result<(), TestCaseError> {
    let mut rest = input;
    while let Ok(Parsed::Complete(reply, used)) = parse_reply(rest) {
        prop_assert!(
            used > 0 && used <= rest.len(),
            "used {} of {}",
            used,
            rest.len()
        );
        prop_assert!((200..=599).contains(&reply.code));
        prop_assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
        for l in &reply.lines {
            prop_assert!(!l.contains(['\r', '\n', '\0']), "unescaped line {:?}", l);
        }
        prop_assert!(serde_json::to_string(&reply).is_ok());
        rest = &rest[used..];
    }
    prop_assert!(!escape_line(input).contains(['\r', '\n', '\0']));
    Ok(())
}

/// Fixed cases that once mattered (or easily could): kept as plain tests.
#[test]
fn encoder_edge_cases() {
    for input in [
        &b""[..],
        b".",
        b"\r",
        b"\n",
        b"\r\n.\r\n",
        b"\n.\n",
        b"\r.\r",
        b"a\r\n.\r\nMAIL FROM:<x@y>\r\n",
        b"..\n.",
    ] {
        check_encoding(input, &encode_data(input)).unwrap();
    }
}

/// The end of the header section found line by line in the whole input (just after the LF of the
/// first line that is empty or a lone CR), computed independently of the scanner.
fn header_end_oracle(data: &[u8]) -> Option<u64> {
    let mut pos = 0usize;
    for line in data.split(|&b| b == b'\n') {
        let end = pos + line.len();
        if end >= data.len() {
            return None;
        }
        if line.is_empty() || line == b"\r" {
            return Some(end as u64 + 1);
        }
        pos = end + 1;
    }
    None
}

proptest! {
    /// The header-section scanner finds the same end however the message is cut into chunks, and
    /// the end a line-by-line reading finds.
    #[test]
    fn header_scan_does_not_depend_on_chunking(
        data in message_bytes(),
        cuts in prop::collection::vec(1usize..40, 1..20),
    ) {
        let expected = header_end_oracle(&data);
        let mut whole = message::HeaderScan::default();
        prop_assert_eq!(whole.feed(&data), expected);
        let mut scan = message::HeaderScan::default();
        let mut found = scan.feed(&[]);
        let (mut rest, mut i) = (&data[..], 0);
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            found = scan.feed(&rest[..n]);
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(found, expected);
    }

    /// Recipients from the headers are listed once each (case-insensitively), however often and
    /// in whatever case they repeat.
    #[test]
    fn envelope_recipients_are_unique(picks in prop::collection::vec((0usize..5, any::<bool>()), 1..60)) {
        let to: Vec<String> = picks
            .iter()
            .map(|(i, upper)| {
                let a = format!("user{i}@example{i}.com");
                if *upper { a.to_ascii_uppercase() } else { a }
            })
            .collect();
        let eml = format!("From: a@example.com\r\nTo: {}\r\n\r\nhi\r\n", to.join(", "));
        let msg = message::from_bytes(Path::new("p.eml"), eml.into_bytes()).unwrap();
        let env = Envelope::resolve(&msg, None, &[]).unwrap();
        let distinct: std::collections::HashSet<usize> = picks.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(env.recipients.len(), distinct.len());
    }
}
