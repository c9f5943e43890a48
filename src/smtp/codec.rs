//! Pure wire formats: reply framing and parsing, EHLO capability parsing, and DATA encoding.
//!
//! No I/O here: the session feeds bytes in and writes what comes out, which keeps all of this
//! testable with plain byte strings.

use crate::transcript::{Capabilities, Reply};

/// The longest reply line accepted, in octets including the line ending. RFC 5321 allows 512;
/// real servers sometimes send more, so be lenient but bounded.
pub const MAX_REPLY_LINE: usize = 4096;
/// The most lines one reply may have before it counts as an endless reply.
pub const MAX_REPLY_LINES: usize = 256;

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line exceeded [`MAX_REPLY_LINE`].
    #[error("reply line longer than {MAX_REPLY_LINE} octets")]
    LineTooLong,
    /// The reply exceeded [`MAX_REPLY_LINES`] lines.
    #[error("reply has more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// A line did not start with a valid three-digit code and separator.
    #[error("not an SMTP reply line: {0}")]
    BadLine(String),
    /// The code is outside 200–599.
    #[error("reply code {0} is outside 200-599")]
    BadCode(u16),
    /// The lines of one multi-line reply carry different codes.
    #[error("multi-line reply mixes codes {0} and {1}")]
    MixedCodes(u16, u16),
}

/// The result of looking for one complete reply at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete reply and how many bytes of the buffer it used.
    Complete(Reply, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Shows reply bytes as text: valid UTF-8 is kept, control characters (other than tab) and
/// invalid bytes become `\xNN`.
pub fn escape_line(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Looks for one complete reply at the start of `buf`.
///
/// Lines end in CRLF or (leniently) a bare LF. Returns [`Parsed::Incomplete`] when the reply has not
/// fully arrived yet, and an error as soon as the bytes cannot be a valid reply or exceed the bounds,
/// so a caller never has to buffer more than `MAX_REPLY_LINE * MAX_REPLY_LINES` bytes.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed, ReplyError> {
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut code: Option<u16> = None;
    loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong);
            }
            // Reject an obviously bad partial line early (e.g. garbage without newline).
            check_prefix(rest)?;
            return Ok(Parsed::Incomplete);
        };
        if nl + 1 > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let mut line = &rest[..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos += nl + 1;
        let (this_code, last) = parse_line_head(line)?;
        if let Some(first) = code {
            if first != this_code {
                return Err(ReplyError::MixedCodes(first, this_code));
            }
        }
        code = Some(this_code);
        lines.push(escape_line(line));
        if last {
            let code = this_code;
            let enhanced = lines.first().and_then(|l| enhanced_code(code, l));
            return Ok(Parsed::Complete(
                Reply {
                    code,
                    enhanced,
                    lines,
                },
                pos,
            ));
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

/// Checks that a partial line could still become a valid reply line.
fn check_prefix(partial: &[u8]) -> Result<(), ReplyError> {
    for (i, &b) in partial.iter().enumerate().take(4) {
        let ok = match i {
            0..=2 => b.is_ascii_digit(),
            _ => b == b' ' || b == b'-' || b == b'\r',
        };
        if !ok {
            return Err(ReplyError::BadLine(escape_line(
                partial.get(..64).unwrap_or(partial),
            )));
        }
    }
    Ok(())
}

/// Parses `ddd`, `ddd text` or `ddd-text`; returns the code and whether this is the last line.
fn parse_line_head(line: &[u8]) -> Result<(u16, bool), ReplyError> {
    let bad = || ReplyError::BadLine(escape_line(line.get(..64).unwrap_or(line)));
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(bad()),
    };
    if !(200..=599).contains(&code) {
        return Err(ReplyError::BadCode(code));
    }
    Ok((code, last))
}

/// Extracts an RFC 3463 enhanced status code from a reply line such as `550 5.1.1 User unknown`.
///
/// The class digit must match the reply code's first digit (2, 4 or 5); subject and detail have
/// one to three digits.
pub fn enhanced_code(code: u16, line: &str) -> Option<String> {
    let text = line.get(4..)?;
    let token = text.split([' ', '\t']).next()?;
    let mut parts = token.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let class_ok =
        matches!(class, "2" | "4" | "5") && class.as_bytes()[0] - b'0' == (code / 100) as u8;
    if class_ok && digits(subject, 3) && digits(detail, 3) {
        Some(token.to_string())
    } else {
        None
    }
}

/// Parses the extension keywords of an EHLO reply (every line after the first).
pub fn parse_capabilities(reply: &Reply) -> Capabilities {
    let mut caps = Capabilities::default();
    for line in reply.lines.iter().skip(1) {
        let text = line.get(4..).unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        caps.keywords.push(text.to_string());
        let mut words = text.split_ascii_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        match keyword.as_str() {
            "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
            "PIPELINING" => caps.pipelining = true,
            "8BITMIME" => caps.eight_bit_mime = true,
            "SMTPUTF8" => caps.smtputf8 = true,
            "DSN" => caps.dsn = true,
            "STARTTLS" => caps.starttls = true,
            "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
            "CHUNKING" => caps.chunking = true,
            // Old servers advertise `AUTH=PLAIN LOGIN`.
            k if k == "AUTH" || k.starts_with("AUTH=") => {
                let first = k.strip_prefix("AUTH=").filter(|s| !s.is_empty());
                for mech in first
                    .map(str::to_string)
                    .into_iter()
                    .chain(words.map(str::to_ascii_uppercase))
                {
                    if !caps.auth.contains(&mech) {
                        caps.auth.push(mech);
                    }
                }
            }
            _ => {}
        }
    }
    caps
}

/// Streaming DATA encoder: turns message bytes into the on-the-wire form.
///
/// Every bare CR and bare LF becomes CRLF, a `.` at the start of a line is doubled, and
/// [`DataEncoder::finish`] adds a CRLF only when the content does not already end with one, then
/// the terminator `.` CRLF. Nothing in the input can produce `CRLF.CRLF` before the terminator.
#[derive(Debug, Clone)]
pub struct DataEncoder {
    /// At the start of a line (the next byte is the first of a line).
    at_line_start: bool,
    /// The previous input byte was a CR whose line ending has already been written as CRLF.
    pending_cr: bool,
    /// Nothing written yet.
    empty: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEncoder {
    /// A fresh encoder at the start of the message.
    pub fn new() -> Self {
        DataEncoder {
            at_line_start: true,
            pending_cr: false,
            empty: true,
        }
    }

    /// Encodes one chunk of message bytes, appending to `out`.
    ///
    /// Line by line: `memchr2` finds the next CR or LF (vectorised), the bytes before it are copied
    /// in one go, and the line ending is written as CRLF. Only the first byte of each line is looked
    /// at for dot-stuffing.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        out.reserve(input.len() + input.len() / 32 + 8);
        self.empty = false;
        let line_end = bytes::CrOrLf::new();
        let mut i = 0;
        if self.pending_cr {
            self.pending_cr = false;
            if input[0] == b'\n' {
                // The CR that ended the previous chunk already produced this line ending.
                i = 1;
            }
        }
        while i < input.len() {
            if self.at_line_start && input[i] == b'.' {
                out.push(b'.');
            }
            let Some(p) = line_end.find(&input[i..]) else {
                out.extend_from_slice(&input[i..]);
                self.at_line_start = false;
                return;
            };
            let end = i + p;
            out.extend_from_slice(&input[i..end]);
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            i = end + 1;
            if input[end] == b'\r' {
                match input.get(i) {
                    Some(b'\n') => i += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
        }
    }

    /// Ends the data: a CRLF if the last line lacks one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.empty && !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Encodes a whole message for DATA, terminator included.
pub fn encode_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 8);
    let mut enc = DataEncoder::new();
    enc.encode(message, &mut out);
    enc.finish(&mut out);
    out
}

/// The message size as RFC 1870 counts it for `SIZE=`: octets after CRLF normalisation, including
/// the final CRLF, excluding dot-stuffing and the terminator.
pub fn normalized_len(input: &[u8]) -> u64 {
    let mut n = NormalizedLen::default();
    n.feed(input);
    n.total()
}

/// [`normalized_len`] of a message fed in chunks (any split gives the same total).
///
/// A bare CR or a bare LF becomes a two-octet CRLF (one octet more), a CRLF stays as it is:
/// `len + bare LFs + bare CRs`, plus a CRLF when the last line has none. Two vectorised scans
/// (memchr) per chunk: the LFs, checking the byte before each, and a count of the CRs.
#[derive(Debug, Clone, Default)]
pub struct NormalizedLen {
    len: u64,
    lfs: u64,
    crs: u64,
    pairs: u64,
    last: Option<u8>,
}

impl NormalizedLen {
    /// Counts the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let Some(&last) = chunk.last() else {
            return;
        };
        bytes::each(b'\n', chunk, |at| {
            self.lfs += 1;
            let before = if at > 0 {
                Some(chunk[at - 1])
            } else {
                self.last
            };
            self.pairs += u64::from(before == Some(b'\r'));
        });
        self.crs += bytes::count(b'\r', chunk) as u64;
        self.len += chunk.len() as u64;
        self.last = Some(last);
    }

    /// The size of everything fed so far, as [`normalized_len`] counts it.
    pub fn total(&self) -> u64 {
        let n = self.len + (self.lfs - self.pairs) + (self.crs - self.pairs);
        if matches!(self.last, None | Some(b'\r' | b'\n')) {
            n
        } else {
            n + 2
        }
    }
}

/// Byte searches for the whole-message scans (vectorised, from memchr).
///
/// memchr's generic functions probe the CPU (`cpuid`) on first use to choose AVX2, and in a virtual
/// machine every `cpuid` traps to the hypervisor: the probe took 45-70 µs on the development VM, a
/// few percent of a whole check of a small message. So on x86_64 a search in less than `LARGE`
/// (16 KiB) calls memchr's SSE2 code directly (SSE2 is part of the architecture: nothing is
/// probed), and only larger ones, where the probe is paid once for megabytes, go through the
/// generic functions.
pub mod bytes {
    #[cfg(target_arch = "x86_64")]
    use memchr::arch::x86_64::sse2::memchr::{One, Two};

    /// Searches in at least this many octets use memchr's best code for the CPU (AVX2 after a
    /// one-time probe); smaller ones SSE2, without a probe.
    pub const LARGE: usize = 16 * 1024;

    /// A finder of the next CR or LF.
    #[derive(Debug, Clone, Copy)]
    pub struct CrOrLf {
        #[cfg(target_arch = "x86_64")]
        sse2: Option<Two>,
    }

    impl CrOrLf {
        /// A finder (cheap: two vector constants).
        pub fn new() -> CrOrLf {
            CrOrLf {
                #[cfg(target_arch = "x86_64")]
                sse2: Two::new(b'\r', b'\n'),
            }
        }

        /// The position of the first CR or LF in `haystack`.
        pub fn find(&self, haystack: &[u8]) -> Option<usize> {
            #[cfg(target_arch = "x86_64")]
            if let (Some(f), true) = (&self.sse2, haystack.len() < LARGE) {
                return f.find(haystack);
            }
            memchr::memchr2(b'\r', b'\n', haystack)
        }
    }

    impl Default for CrOrLf {
        fn default() -> Self {
            CrOrLf::new()
        }
    }

    /// How many times `byte` occurs in `haystack`.
    pub fn count(byte: u8, haystack: &[u8]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let (Some(f), true) = (One::new(byte), haystack.len() < LARGE) {
            return f.count(haystack);
        }
        memchr::memchr_iter(byte, haystack).count()
    }

    /// Calls `f` with the position of every `byte` in `haystack`, in order.
    pub fn each(byte: u8, haystack: &[u8], f: impl FnMut(usize)) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(finder), true) = (One::new(byte), haystack.len() < LARGE) {
            finder.iter(haystack).for_each(f);
            return;
        }
        memchr::memchr_iter(byte, haystack).for_each(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Reply, usize) {
        match parse_reply(buf) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("expected a complete reply, got {other:?}"),
        }
    }

    #[test]
    fn single_line_reply() {
        let (r, n) = complete(b"250 2.1.0 Ok\r\nextra");
        assert_eq!(r.code, 250);
        assert_eq!(r.enhanced.as_deref(), Some("2.1.0"));
        assert_eq!(r.lines, vec!["250 2.1.0 Ok"]);
        assert_eq!(r.text(), "Ok");
        assert_eq!(n, 14);
    }

    #[test]
    fn bare_code_and_bare_lf_are_accepted() {
        let (r, n) = complete(b"250\n");
        assert_eq!((r.code, n), (250, 4));
        assert_eq!(r.text(), "");
    }

    #[test]
    fn multi_line_reply_kept_line_by_line() {
        let (r, _) = complete(b"250-mx.example.com\r\n250-SIZE 1000\r\n250 PIPELINING\r\n");
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.lines[2], "250 PIPELINING");
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn incomplete_until_last_line() {
        assert_eq!(
            parse_reply(b"250-a\r\n250-b\r\n25").unwrap(),
            Parsed::Incomplete
        );
        assert_eq!(parse_reply(b"").unwrap(), Parsed::Incomplete);
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(matches!(
            parse_reply(b"hello\r\n"),
            Err(ReplyError::BadLine(_))
        ));
        assert!(matches!(
            parse_reply(b"HTTP/1.1 400"),
            Err(ReplyError::BadLine(_))
        ));
        assert_eq!(parse_reply(b"199 x\r\n"), Err(ReplyError::BadCode(199)));
        assert_eq!(parse_reply(b"600 x\r\n"), Err(ReplyError::BadCode(600)));
        assert_eq!(
            parse_reply(b"250-a\r\n550 b\r\n"),
            Err(ReplyError::MixedCodes(250, 550))
        );
        assert!(matches!(
            parse_reply(b"250xyz\r\n"),
            Err(ReplyError::BadLine(_))
        ));
    }

    #[test]
    fn bounds_are_enforced() {
        let long = vec![b'2'; 3]
            .into_iter()
            .chain(vec![b' '; MAX_REPLY_LINE])
            .collect::<Vec<_>>();
        assert_eq!(parse_reply(&long), Err(ReplyError::LineTooLong));
        let endless = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(parse_reply(&endless), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn escapes_nul_and_invalid_utf8() {
        let (r, _) = complete(b"220 hi\x00there \xff\xfe ok\r\n");
        assert_eq!(r.lines[0], "220 hi\\x00there \\xff\\xfe ok");
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn enhanced_code_rules() {
        assert_eq!(
            enhanced_code(550, "550 5.1.1 <x>: unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code(550, "550-5.7.1 relay denied").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(enhanced_code(550, "550 4.1.1 mismatched class"), None);
        assert_eq!(enhanced_code(250, "250 Ok: queued as 1.2.3.4"), None);
        assert_eq!(enhanced_code(250, "250 2.0.0"), Some("2.0.0".into()));
        assert_eq!(enhanced_code(451, "451 4.7.1000 x"), None);
    }

    #[test]
    fn capabilities_parsed() {
        let (r, _) = complete(
            b"250-mx.example\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN login\r\n250-AUTH=CRAM-MD5\r\n250-STARTTLS\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
        );
        let c = parse_capabilities(&r);
        assert_eq!(c.size, Some(10_240_000));
        assert!(c.pipelining && c.eight_bit_mime && c.starttls && c.dsn && c.smtputf8);
        assert!(c.enhanced_status_codes && c.chunking);
        assert_eq!(c.auth, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert_eq!(c.keywords.len(), 10);
    }

    #[test]
    fn data_is_crlf_normalised_and_dot_stuffed() {
        assert_eq!(encode_data(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(encode_data(b".x\n..y\n"), b"..x\r\n...y\r\n.\r\n");
        assert_eq!(encode_data(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(encode_data(b"a\rb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(encode_data(b"a\r\r\nb"), b"a\r\n\r\nb\r\n.\r\n");
        assert_eq!(
            encode_data(b"a\n.\nMAIL FROM:<x>\n"),
            b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"
        );
        assert_eq!(encode_data(b"a\r\n\r\n"), b"a\r\n\r\n.\r\n");
        assert_eq!(encode_data(b""), b".\r\n");
    }

    #[test]
    fn normalized_len_matches_unstuffed_encoding() {
        for input in [&b"a\nb"[..], b"a\r\n", b"", b"\r\r\n.\n..x", b"x\r"] {
            let enc = encode_data(input);
            let body = &enc[..enc.len() - 3];
            let stuffed_dots = body.windows(3).filter(|w| w == b"\n..").count()
                + usize::from(body.starts_with(b".."));
            assert_eq!(
                normalized_len(input),
                (body.len() - stuffed_dots) as u64,
                "{input:?}"
            );
        }
    }

    /// The byte-at-a-time definition the fast encoder must match: bare CR and bare LF become
    /// CRLF, a dot at a line start is doubled.
    fn reference_encode(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut at_start, mut prev_cr) = (true, false);
        for &b in input {
            match b {
                b'\n' if prev_cr => {}
                b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
                _ => {
                    if at_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                }
            }
            at_start = matches!(b, b'\r' | b'\n');
            prev_cr = b == b'\r';
        }
        if !input.is_empty() && !at_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn fast_encoder_matches_the_reference_in_any_chunking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"a.\r\nx.";
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let want = reference_encode(&input);
            assert_eq!(encode_data(&input), want, "{input:?}");
            let body = &want[..want.len() - 3];
            let stuffed = body.windows(3).filter(|w| w == b"\n..").count()
                + usize::from(body.starts_with(b".."));
            assert_eq!(normalized_len(&input), (body.len() - stuffed) as u64);
            // Random chunk boundaries, empty chunks included.
            let mut out = Vec::new();
            let mut enc = DataEncoder::new();
            let mut at = 0;
            while at < input.len() {
                let take = ((next() % 5) as usize).min(input.len() - at);
                enc.encode(&input[at..at + take], &mut out);
                at += take;
            }
            enc.finish(&mut out);
            assert_eq!(out, want, "chunked {input:?}");
            let mut n = NormalizedLen::default();
            let mut at = 0;
            while at < input.len() {
                let take = ((next() % 4) as usize).min(input.len() - at);
                n.feed(&input[at..at + take]);
                at += take;
            }
            assert_eq!(n.total(), normalized_len(&input), "chunked size {input:?}");
        }
    }

    #[test]
    fn data_encoding_is_chunk_independent() {
        let input = b"x\r\n.a\r\r\n.\n\rb.\r\n.";
        let whole = encode_data(input);
        for split in 0..input.len() {
            let mut out = Vec::new();
            let mut enc = DataEncoder::new();
            enc.encode(&input[..split], &mut out);
            enc.encode(&input[split..], &mut out);
            enc.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }
}
