//! Loading the `.eml` and working out the envelope: sender and recipients from the flags, else from
//! the message's headers.

use crate::address::{needs_smtputf8, parse_address, split_list};
use crate::error::Error;
use lettre::Address;
use mail_parser::{HeaderName, MessageParser};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A loaded message: its bytes as they are in the file plus what the report needs to know about it.
#[derive(Debug, Clone)]
pub struct Message {
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's bytes, unchanged (line endings are normalised only when sent).
    pub raw: Vec<u8>,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// The Subject header, decoded.
    pub subject: Option<String>,
    /// `true` when the message has bytes outside ASCII (needs 8BITMIME or SMTPUTF8).
    pub eight_bit: bool,
    /// Addresses found in the headers, for the envelope.
    pub headers: HeaderAddresses,
}

/// Envelope candidates found in the message's headers (not validated yet).
#[derive(Debug, Clone, Default)]
pub struct HeaderAddresses {
    /// The Return-Path address; `Some("")` for `Return-Path: <>`.
    pub return_path: Option<String>,
    /// The Sender address.
    pub sender: Option<String>,
    /// The first From address.
    pub from: Option<String>,
    /// The To, Cc and Bcc addresses, with the header each came from.
    pub recipients: Vec<(&'static str, String)>,
}

/// What the report says about the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    /// The file it was read from.
    pub path: String,
    /// Its size in bytes, as in the file.
    pub bytes: u64,
    /// The Message-ID header.
    pub message_id: Option<String>,
    /// The Subject header.
    pub subject: Option<String>,
}

impl Message {
    /// The report's view of the message.
    pub fn info(&self) -> MessageInfo {
        MessageInfo {
            path: self.path.display().to_string(),
            bytes: self.raw.len() as u64,
            message_id: self.message_id.clone(),
            subject: self.subject.clone(),
        }
    }
}

/// Reads and checks a message file. Refuses anything that is not a regular, non-empty RFC 5322
/// message of at most `max_size` bytes, naming the file.
pub fn load(path: &Path, max_size: u64) -> Result<Message, Error> {
    let read_err = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else {
            "a FIFO, socket or device"
        };
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > max_size {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: max_size,
        });
    }
    let raw = std::fs::read(path).map_err(read_err)?;
    if raw.len() as u64 > max_size {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: raw.len() as u64,
            limit: max_size,
        });
    }
    from_bytes(path, raw)
}

/// Checks and parses message bytes (`path` is used in messages only).
pub fn from_bytes(path: &Path, raw: Vec<u8>) -> Result<Message, Error> {
    let not_msg = |why: &str| Error::NotAMessage {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if raw.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    check_header_section(&raw).map_err(|why| not_msg(&why))?;
    // Only the header section is parsed: the body is sent as it is, so a 100 MB message costs one
    // copy of the file, not a parse tree of every MIME part.
    let header_end = find_header_end(&raw);
    let head = &raw[..(header_end + 2).min(raw.len())];
    let parsed = MessageParser::default()
        .parse(head)
        .ok_or_else(|| not_msg("it could not be parsed"))?;
    if parsed.headers().is_empty() {
        return Err(not_msg("it has no header fields"));
    }

    let first = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.iter().find_map(|x| x.address().map(str::to_string)))
    };
    let mut headers = HeaderAddresses {
        return_path: parsed.header_raw(HeaderName::ReturnPath).map(angle_content),
        sender: first(parsed.sender()),
        from: first(parsed.from()),
        recipients: Vec::new(),
    };
    for (name, list) in [
        ("To", parsed.to()),
        ("Cc", parsed.cc()),
        ("Bcc", parsed.bcc()),
    ] {
        if let Some(list) = list {
            for a in list.iter() {
                if let Some(addr) = a.address() {
                    headers.recipients.push((name, addr.to_string()));
                }
            }
        }
    }
    let message_id = parsed.message_id().map(str::to_string);
    let subject = parsed.subject().map(str::to_string);
    let eight_bit = !raw.is_ascii();
    Ok(Message {
        path: path.to_path_buf(),
        raw,
        message_id,
        subject,
        eight_bit,
        headers,
    })
}

/// The text between the first `<` and the following `>` (or the trimmed value without brackets).
fn angle_content(raw: &str) -> String {
    let v = raw.trim();
    match (v.find('<'), v.rfind('>')) {
        (Some(s), Some(e)) if s < e => v[s + 1..e].trim().to_string(),
        _ => v.to_string(),
    }
}

/// Checks that the bytes start with an RFC 5322 header section that ends in an empty line.
fn check_header_section(raw: &[u8]) -> Result<(), String> {
    let mut lines = raw.split(|&b| b == b'\n').peekable();
    let first = lines.next().unwrap_or(&[]);
    if !is_field_line(first) {
        return Err("it does not start with a header field (Name: value)".into());
    }
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // The piece after the file's last LF is the end of the file, not an empty line.
        if line.is_empty() && lines.peek().is_some() {
            return Ok(());
        }
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // folded continuation
        }
        if !is_field_line(line) {
            return Err(format!(
                "line {:?} in the header section is not a header field",
                crate::codec::escape_line(line.get(..40).unwrap_or(line))
            ));
        }
    }
    Err("it has only a header section: no empty line and no body follow the headers".into())
}

/// `name: …` where name is printable ASCII other than `:`.
fn is_field_line(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

/// Where an envelope value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The Return-Path header.
    ReturnPath,
    /// The Sender header.
    Sender,
    /// The From header.
    From,
    /// The To, Cc and Bcc headers.
    Headers,
}

/// The SMTP envelope: who the message is from and to, validated.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The reverse path; `None` is the null sender `<>`.
    pub from: Option<Address>,
    /// Where the sender came from.
    pub from_source: Source,
    /// The recipients, de-duplicated, in the order given.
    pub recipients: Vec<Address>,
    /// Where the recipients came from.
    pub recipients_source: Source,
}

/// What the report says about the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvelopeInfo {
    /// The reverse path; `""` for the null sender.
    pub from: String,
    /// Where it came from: `flag`, `return-path`, `sender` or `from`.
    pub from_source: Source,
    /// The recipients.
    pub recipients: Vec<String>,
    /// Where they came from: `flag` or `headers`.
    pub recipients_source: Source,
}

impl Envelope {
    /// Works out the envelope: `--from` (empty means `<>`), else a non-empty Return-Path, else
    /// Sender, else the first From; `--to` values (comma-separated lists allowed), else To, Cc, Bcc.
    pub fn resolve(
        message: &Message,
        from_flag: Option<&str>,
        to_flags: &[String],
    ) -> Result<Envelope, Error> {
        let h = &message.headers;
        let (from, from_source) = match from_flag {
            Some("") => (None, Source::Flag),
            Some(f) => (Some(parse_address(f, "--from")?), Source::Flag),
            None => {
                if let Some(rp) = h.return_path.as_deref().filter(|s| !s.is_empty()) {
                    (
                        Some(parse_address(rp, "the Return-Path header")?),
                        Source::ReturnPath,
                    )
                } else if let Some(s) = &h.sender {
                    (Some(parse_address(s, "the Sender header")?), Source::Sender)
                } else if let Some(f) = &h.from {
                    (Some(parse_address(f, "the From header")?), Source::From)
                } else {
                    return Err(Error::NoSender);
                }
            }
        };
        let mut recipients: Vec<Address> = Vec::new();
        let mut push = |a: Address| {
            if !recipients
                .iter()
                .any(|r| AsRef::<str>::as_ref(r).eq_ignore_ascii_case(a.as_ref()))
            {
                recipients.push(a);
            }
        };
        let recipients_source = if to_flags.is_empty() {
            for (header, value) in &h.recipients {
                push(parse_address(value, &format!("the {header} header"))?);
            }
            Source::Headers
        } else {
            for flag in to_flags {
                let parts = split_list(flag);
                if parts.is_empty() {
                    push(parse_address(flag, "--to")?);
                }
                for p in parts {
                    push(parse_address(p, "--to")?);
                }
            }
            Source::Flag
        };
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        Ok(Envelope {
            from,
            from_source,
            recipients,
            recipients_source,
        })
    }

    /// `true` when an address needs SMTPUTF8.
    pub fn needs_smtputf8(&self) -> bool {
        self.from.iter().chain(&self.recipients).any(needs_smtputf8)
    }

    /// The report's view of the envelope.
    pub fn info(&self) -> EnvelopeInfo {
        EnvelopeInfo {
            from: self
                .from
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            from_source: self.from_source,
            recipients: self.recipients.iter().map(|a| a.to_string()).collect(),
            recipients_source: self.recipients_source,
        }
    }
}

/// The longest line RFC 5321 allows in message text, excluding CRLF.
pub const MAX_TEXT_LINE: usize = 998;

/// Checks of the message and envelope that need no server: each finding is a warning (or, for
/// the From domain, a note) for the report. Nothing here stops the check.
pub fn preflight(message: &Message, envelope: &Envelope) -> Vec<String> {
    let mut out = Vec::new();
    let raw = &message.raw;
    // Line ends found with memchr: a 100 MB message is checked in milliseconds.
    let (mut long, mut first_long) = (0usize, None);
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len()));
    for (index, end) in ends.enumerate() {
        let line = &raw[start..end];
        let n = line.strip_suffix(b"\r").unwrap_or(line).len();
        if n > MAX_TEXT_LINE {
            long += 1;
            first_long.get_or_insert((index, n));
        }
        start = end + 1;
    }
    if let Some((first, n)) = first_long {
        out.push(format!(
            "{long} line(s) are longer than {MAX_TEXT_LINE} octets (the first is line {}, {n} octets): RFC 5321 forbids them and servers may refuse or break them; use a transfer encoding (quoted-printable or base64)",
            first + 1
        ));
    }
    let header_end = find_header_end(raw);
    let headers = &raw[..header_end];
    let has = |name: &str| header_present(headers, name);
    if message.headers.recipients.iter().any(|(h, _)| *h == "Bcc") {
        out.push("the message has a non-empty Bcc header: every recipient will see the Bcc addresses; remove it from the file and give hidden recipients with --to".into());
    }
    if !has("date") {
        out.push(
            "the message has no Date header: many servers refuse or score such mail as spam".into(),
        );
    }
    if !has("message-id") {
        out.push(
            "the message has no Message-ID header: many servers refuse or score such mail as spam"
                .into(),
        );
    }
    if !headers.is_ascii() && !envelope.needs_smtputf8() {
        out.push("the header section has non-ASCII bytes that are not MIME-encoded: they need SMTPUTF8 (RFC 6531) or RFC 2047 encoding".into());
    }
    if let (Some(from), Some(sender)) = (&message.headers.from, &envelope.from) {
        let from_domain = from.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
        let env_domain = sender.domain().to_ascii_lowercase();
        if !from_domain.is_empty() && from_domain != env_domain {
            out.push(format!(
                "note: the From header's domain ({from_domain}) differs from the envelope sender's ({env_domain}); DMARC alignment may fail"
            ));
        }
    }
    out
}

/// The length of the header section (up to the empty line).
fn find_header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    for line in raw.split(|&b| b == b'\n') {
        let end = pos + line.len() + 1;
        if line.strip_suffix(b"\r").unwrap_or(line).is_empty() {
            return pos;
        }
        pos = end;
    }
    raw.len()
}

/// `true` when a header field named `name` (lower-case) starts a line of `headers`.
fn header_present(headers: &[u8], name: &str) -> bool {
    headers.split(|&b| b == b'\n').any(|l| {
        l.len() > name.len()
            && l[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && l[name.len()] == b':'
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Result<Message, Error> {
        from_bytes(Path::new("t.eml"), text.as_bytes().to_vec())
    }

    #[test]
    fn refuses_non_messages() {
        assert!(matches!(msg(""), Err(Error::EmptyFile { .. })));
        assert!(matches!(
            msg("\x7fELF\x02\x01\x01\0\0\0"),
            Err(Error::NotAMessage { .. })
        ));
        assert!(matches!(
            msg("just some text\n\nmore"),
            Err(Error::NotAMessage { .. })
        ));
        assert!(matches!(
            msg("Subject: x\nFrom: a@b.c"),
            Err(Error::NotAMessage { .. })
        ));
        assert!(matches!(
            msg("Subject: x\nnot a header\n\nbody"),
            Err(Error::NotAMessage { .. })
        ));
        // Only headers: the final line break is not the empty line that ends the header section.
        for headers_only in [
            "Subject: x\r\nFrom: a@b.c\r\n",
            "Subject: x\n",
            "Subject: x\r",
        ] {
            assert!(
                matches!(msg(headers_only), Err(Error::NotAMessage { .. })),
                "{headers_only:?}"
            );
        }
        assert!(
            msg("Subject: x\r\n\r\n").is_ok(),
            "headers and an empty body"
        );
    }

    #[test]
    fn envelope_from_headers_in_order() {
        let m = msg("Return-Path: <>\r\nSender: s@x.com\r\nFrom: F <f@x.com>\r\nTo: a@y.com, B <b@y.com>\r\nCc: c@z.com\r\nBcc: a@Y.com\r\n\r\nhi\r\n").unwrap();
        let e = Envelope::resolve(&m, None, &[]).unwrap();
        assert_eq!(e.from.unwrap().to_string(), "s@x.com");
        assert_eq!(e.from_source, Source::Sender);
        let r: Vec<String> = e.recipients.iter().map(|a| a.to_string()).collect();
        assert_eq!(r, vec!["a@y.com", "b@y.com", "c@z.com"]);

        let m = msg("Return-Path: <bounce@x.com>\nFrom: f@x.com\nTo: a@y.com\n\nhi").unwrap();
        let e = Envelope::resolve(&m, None, &[]).unwrap();
        assert_eq!(e.from.unwrap().to_string(), "bounce@x.com");
        let m = msg("From: f@x.com\nTo: a@y.com\n\nhi").unwrap();
        assert_eq!(
            Envelope::resolve(&m, None, &[]).unwrap().from_source,
            Source::From
        );
    }

    #[test]
    fn flags_override_headers() {
        let m = msg("From: f@x.com\nTo: a@y.com\n\nhi").unwrap();
        let e = Envelope::resolve(&m, Some(""), &["u@d.com, v@d.com".into(), "w@e.com".into()])
            .unwrap();
        assert!(e.from.is_none());
        assert_eq!(e.recipients.len(), 3);
        assert_eq!(e.info().from, "");
    }

    #[test]
    fn missing_envelope_parts() {
        let m = msg("Subject: x\n\nhi").unwrap();
        assert!(matches!(
            Envelope::resolve(&m, None, &["a@b.com".into()]),
            Err(Error::NoSender)
        ));
        assert!(matches!(
            Envelope::resolve(&m, Some("a@b.com"), &[]),
            Err(Error::NoRecipients)
        ));
    }

    #[test]
    fn bad_header_address_is_named() {
        let m = msg("From: <<<@@@>>>\nTo: a@y.com\n\nhi").unwrap();
        let e = Envelope::resolve(&m, None, &[]).unwrap_err();
        assert!(e.to_string().contains("From header"), "{e}");
    }

    fn warnings(text: &str, from: Option<&str>) -> Vec<String> {
        let m = msg(text).unwrap();
        let e = Envelope::resolve(&m, from, &["r@x.com".into()]).unwrap();
        preflight(&m, &e)
    }

    #[test]
    fn preflight_clean_message_has_no_warnings() {
        let w = warnings("Date: Sun, 22 Nov 2026 07:00:00 +0000\nMessage-ID: <a@x.com>\nFrom: f@x.com\nTo: r@x.com\n\nhi\n", None);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn preflight_findings() {
        let long = "a".repeat(1200);
        let w = warnings(
            &format!("From: f@x.com\nBcc: secret@y.com\n\n{long}\n"),
            Some("bounce@other.org"),
        );
        assert!(w.iter().any(|x| x.contains("longer than 998")), "{w:?}");
        assert!(w.iter().any(|x| x.contains("Bcc")));
        assert!(w.iter().any(|x| x.contains("no Date")));
        assert!(w.iter().any(|x| x.contains("no Message-ID")));
        assert!(w
            .iter()
            .any(|x| x.starts_with("note: the From header's domain (x.com) differs")));
        let w = warnings(
            "Date: x\nMessage-ID: <a@b>\nFrom: f@x.com\nSubject: caf\u{e9}\n\nhi",
            None,
        );
        assert!(w.iter().any(|x| x.contains("non-ASCII")), "{w:?}");
    }

    #[test]
    fn eight_bit_detected() {
        assert!(msg("From: a@b.com\n\nh\u{e9}").unwrap().eight_bit);
        assert!(!msg("From: a@b.com\n\nhe").unwrap().eight_bit);
    }
}
