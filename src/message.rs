//! Loading the `.eml` and working out the envelope: sender and recipients from the flags, else from
//! the message's headers.

use crate::address::{needs_smtputf8, parse_address, split_list};
use crate::error::Error;
use lettre::Address;
use mail_parser::{HeaderName, MessageParser};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Message files larger than this are not held in memory: [`load`] keeps their first part (the
/// header section at least) in [`Message::raw`] and what it learnt from one pass over the whole in
/// [`Message::streamed`], and the content is read from the file again, chunk by chunk, while it is
/// sent ([`Message::content`]). A 100 MB message then costs a few MB of memory, not 100.
pub const STREAM_ABOVE: u64 = 1024 * 1024;

/// The largest header section accepted (a message whose header section has not ended by then is
/// refused): it is the part kept in memory and parsed, whatever the message's size.
pub const MAX_HEADER_SECTION: usize = 4 * 1024 * 1024;

/// How much of a file [`load`] reads at a time when it streams.
const READ_CHUNK: usize = 256 * 1024;

/// A loaded message: its bytes as they are in the file plus what the report needs to know about it.
#[derive(Debug, Clone)]
pub struct Message {
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's bytes, unchanged (line endings are normalised only when sent); for a file larger
    /// than [`STREAM_ABOVE`], only its first part (see [`Message::streamed`]).
    pub raw: Vec<u8>,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// The Subject header, decoded.
    pub subject: Option<String>,
    /// `true` when the message has bytes outside ASCII (needs 8BITMIME or SMTPUTF8).
    pub eight_bit: bool,
    /// Addresses found in the headers, for the envelope.
    pub headers: HeaderAddresses,
    /// Set when the content stays in the file (larger than [`STREAM_ABOVE`]); `None` when `raw`
    /// is the whole message.
    pub streamed: Option<Streamed>,
}

/// What one pass over a message that stays in its file found (see [`STREAM_ABOVE`]).
#[derive(Debug, Clone)]
pub struct Streamed {
    /// For a message read from stdin: the unlinked temporary file it was copied into (read with
    /// positional reads, so two routes sending it at once do not share an offset); `None`: the
    /// content is read from [`Message::path`] again.
    pub spool: Option<std::sync::Arc<std::fs::File>>,
    /// The file's size when it was read.
    pub size: u64,
    /// The size for `SIZE=` ([`crate::smtp::codec::normalized_len`] of the whole).
    pub normalized_len: u64,
    /// Its lines longer than [`MAX_TEXT_LINE`].
    pub long_lines: LongLines,
}

/// Lines longer than [`MAX_TEXT_LINE`] octets (not counting the line ending), counted over a
/// message fed in chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongLines {
    /// How many.
    pub count: usize,
    /// The first one: its 0-based line index and its length.
    pub first: Option<(usize, usize)>,
    /// The index of the line being read.
    index: usize,
    /// The octets of that line so far.
    current: usize,
    /// Its last octet so far is a CR.
    last_cr: bool,
}

impl LongLines {
    /// Counts the next chunk (line ends found with memchr).
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut start = 0;
        crate::smtp::codec::bytes::each(b'\n', chunk, |end| {
            let piece = &chunk[start..end];
            let (len, cr) = match piece.last() {
                Some(&b) => (self.current + piece.len(), b == b'\r'),
                None => (self.current, self.last_cr),
            };
            self.end_line(len - usize::from(cr));
            start = end + 1;
        });
        if let Some(&b) = chunk[start..].last() {
            self.current += chunk.len() - start;
            self.last_cr = b == b'\r';
        }
    }

    /// Ends the count: the text after the last LF is a line too.
    pub fn finish(mut self) -> LongLines {
        self.end_line(self.current - usize::from(self.last_cr));
        self
    }

    fn end_line(&mut self, len: usize) {
        if len > MAX_TEXT_LINE {
            self.count += 1;
            self.first.get_or_insert((self.index, len));
        }
        self.index += 1;
        self.current = 0;
        self.last_cr = false;
    }
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
    /// A message with no content, shown as `path` (the probe's, and the generated message's
    /// stand-in while its envelope is worked out).
    pub fn empty(path: PathBuf) -> Message {
        Message {
            path,
            raw: Vec::new(),
            streamed: None,
            message_id: None,
            subject: None,
            eight_bit: false,
            headers: Default::default(),
        }
    }

    /// Its size in bytes, as in the file.
    pub fn size(&self) -> u64 {
        self.streamed
            .as_ref()
            .map_or(self.raw.len() as u64, |s| s.size)
    }

    /// The size for `SIZE=` (octets after CRLF normalisation, RFC 1870).
    pub fn normalized_len(&self) -> u64 {
        match &self.streamed {
            Some(s) => s.normalized_len,
            None => crate::smtp::codec::normalized_len(&self.raw),
        }
    }

    /// The content in chunks of at most `chunk` bytes: from memory, or read from the file again
    /// when it was too large to keep (see [`STREAM_ABOVE`]).
    pub fn content(&self, chunk: usize) -> Result<Content<'_>, String> {
        let source = match &self.streamed {
            None => ContentSource::Memory(self.raw.chunks(chunk.max(1))),
            Some(Streamed {
                spool: Some(spool),
                size,
                ..
            }) => ContentSource::Spool {
                file: spool,
                at: 0,
                size: *size,
            },
            Some(s) => ContentSource::File {
                file: std::fs::File::open(&self.path).map_err(|e| {
                    format!(
                        "cannot read the message file {}: {}",
                        self.path.display(),
                        crate::error::words(&e)
                    )
                })?,
                left: s.size,
                size: s.size,
                path: &self.path,
            },
        };
        Ok(Content {
            source,
            chunk: chunk.max(1),
            buf: Vec::new(),
        })
    }

    /// The report's view of the message.
    pub fn info(&self) -> MessageInfo {
        MessageInfo {
            path: self.path.display().to_string(),
            bytes: self.size(),
            message_id: self.message_id.clone(),
            subject: self.subject.clone(),
        }
    }
}

/// A message's content, chunk by chunk (see [`Message::content`]).
pub struct Content<'a> {
    source: ContentSource<'a>,
    chunk: usize,
    buf: Vec<u8>,
}

enum ContentSource<'a> {
    Memory(std::slice::Chunks<'a, u8>),
    Spool {
        file: &'a std::fs::File,
        at: u64,
        size: u64,
    },
    File {
        file: std::fs::File,
        left: u64,
        size: u64,
        path: &'a Path,
    },
}

impl Content<'_> {
    /// The next chunk; `Ok(None)` after the last. From a file, an error when it cannot be read or
    /// its size changed since it was loaded (the message must not be sent cut or grown).
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, String> {
        match &mut self.source {
            ContentSource::Memory(chunks) => Ok(chunks.next()),
            ContentSource::Spool { file, at, size } => {
                if *at >= *size {
                    return Ok(None);
                }
                let want = (*size - *at).min(self.chunk as u64) as usize;
                self.buf.resize(want, 0);
                read_exact_at(file, &mut self.buf, *at)
                    .map_err(|e| format!("cannot read the spooled standard input: {e}"))?;
                *at += want as u64;
                Ok(Some(&self.buf))
            }
            ContentSource::File {
                file,
                left,
                size,
                path,
            } => {
                let changed = || {
                    format!(
                        "the message file {} changed while it was being sent (it had {size} bytes when it was checked); the message was not completed",
                        path.display()
                    )
                };
                let read_err = |e: std::io::Error| {
                    format!(
                        "cannot read the message file {}: {}",
                        path.display(),
                        crate::error::words(&e)
                    )
                };
                if *left == 0 {
                    let mut probe = [0u8; 1];
                    return match file.read(&mut probe) {
                        Ok(0) => Ok(None),
                        Ok(_) => Err(changed()),
                        Err(e) => Err(read_err(e)),
                    };
                }
                let want = (*left).min(self.chunk as u64) as usize;
                self.buf.resize(want, 0);
                match file.read_exact(&mut self.buf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Err(changed())
                    }
                    Err(e) => return Err(read_err(e)),
                }
                *left -= want as u64;
                Ok(Some(&self.buf))
            }
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
    if meta.len() > STREAM_ABOVE {
        return load_streamed(path, max_size);
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

/// `buf.len()` bytes of `file` from offset `at` (positional: the file's own offset is not used).
#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(_: &std::fs::File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    Err(std::io::Error::other("no spool file on this platform"))
}

/// The message on standard input (`--eml -`, shown as `path`), streamed like a file: up to
/// [`STREAM_ABOVE`] it is kept in memory; beyond, it is copied chunk by chunk into an unlinked
/// temporary file (at most `max_size` bytes, else [`Error::StdinTooLarge`]) and read from there
/// again while it is sent, so memory stays a few MB whatever arrives.
pub fn from_reader(path: &Path, mut input: impl Read, max_size: u64) -> Result<Message, Error> {
    let mut first = Vec::new();
    (&mut input)
        .take(STREAM_ABOVE.min(max_size) + 1)
        .read_to_end(&mut first)
        .map_err(Error::ReadStdin)?;
    if first.len() as u64 > max_size {
        return Err(Error::StdinTooLarge { limit: max_size });
    }
    if first.len() as u64 <= STREAM_ABOVE || cfg!(not(unix)) {
        let mut rest = Vec::new();
        input
            .take(max_size + 1 - first.len() as u64)
            .read_to_end(&mut rest)
            .map_err(Error::ReadStdin)?;
        first.extend_from_slice(&rest);
        if first.len() as u64 > max_size {
            return Err(Error::StdinTooLarge { limit: max_size });
        }
        return from_bytes(path, first);
    }
    let mut spool = spool_file().map_err(Error::ReadStdin)?;
    let mut total = first.len() as u64;
    std::io::Write::write_all(&mut spool, &first).map_err(Error::ReadStdin)?;
    drop(first);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::ReadStdin(e)),
        };
        total += n as u64;
        if total > max_size {
            return Err(Error::StdinTooLarge { limit: max_size });
        }
        std::io::Write::write_all(&mut spool, &buf[..n]).map_err(Error::ReadStdin)?;
    }
    std::io::Seek::rewind(&mut spool).map_err(Error::ReadStdin)?;
    let mut message = scan_streamed(path, &spool, max_size)?;
    if let Some(s) = &mut message.streamed {
        s.spool = Some(std::sync::Arc::new(spool));
    }
    Ok(message)
}

/// A new temporary file, already unlinked (it lives as long as it is open).
fn spool_file() -> std::io::Result<std::fs::File> {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut n = 0u32;
    loop {
        let path = dir.join(format!(
            ".smtpcheck-stdin-{}-{nanos}-{n}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// [`load`] for a file larger than [`STREAM_ABOVE`]: one pass over it in chunks keeps its first part
/// (up to the end of the header section) and counts what the session and the pre-flight checks
/// need; the content itself is not kept.
fn load_streamed(path: &Path, max_size: u64) -> Result<Message, Error> {
    let read_err = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    scan_streamed(path, &file, max_size)
}

/// The pass of [`load_streamed`] over an open file (`path` names it in errors).
fn scan_streamed(path: &Path, mut file: &std::fs::File, max_size: u64) -> Result<Message, Error> {
    let read_err = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::new();
    let mut scan = HeaderScan::default();
    let mut head_done = false;
    let mut size = crate::smtp::codec::NormalizedLen::default();
    let mut long = LongLines::default();
    let mut eight_bit = false;
    let mut total = 0u64;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        let chunk = &buf[..n];
        total += n as u64;
        if total > max_size {
            return Err(Error::TooLarge {
                path: path.to_path_buf(),
                size: total,
                limit: max_size,
            });
        }
        size.feed(chunk);
        long.feed(chunk);
        eight_bit |= !chunk.is_ascii();
        if !head_done {
            head.extend_from_slice(chunk);
            // Done once the empty line that ends the header section is there, LF included; each
            // chunk is scanned once, not the whole head again.
            head_done = scan.feed(chunk).is_some();
            if !head_done && head.len() > MAX_HEADER_SECTION {
                return Err(Error::NotAMessage {
                    path: path.to_path_buf(),
                    why: header_too_large(),
                });
            }
        }
    }
    let mut message = from_bytes(path, head)?;
    message.eight_bit = eight_bit;
    message.streamed = Some(Streamed {
        spool: None,
        size: total,
        normalized_len: size.total(),
        long_lines: long.finish(),
    });
    Ok(message)
}

/// Why a message whose header section goes on past [`MAX_HEADER_SECTION`] is refused.
fn header_too_large() -> String {
    format!(
        "its header section is larger than {} (no empty line ends it by then)",
        crate::files::show_size(MAX_HEADER_SECTION as u64)
    )
}

/// Finds where the header section ends in a message fed in chunks: just after the LF of its first
/// empty line (empty, or a lone CR), as [`find_header_end`] finds it in the whole. Each byte is
/// looked at once, however the message is cut.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderScan {
    /// Octets fed before the current chunk.
    offset: u64,
    /// What the current line holds so far: 0 nothing, 1 a lone CR, 2 anything else.
    line: u8,
    /// The end, once found.
    end: Option<u64>,
}

impl HeaderScan {
    /// Feeds the next chunk; the end (an offset in the whole) once it has been seen.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<u64> {
        if self.end.is_some() {
            return self.end;
        }
        let mut start = 0;
        let mut found = None;
        for lf in memchr::memchr_iter(b'\n', chunk) {
            if self.after(&chunk[start..lf]) < 2 {
                found = Some(self.offset + lf as u64 + 1);
                break;
            }
            self.line = 0;
            start = lf + 1;
        }
        match found {
            Some(end) => self.end = Some(end),
            None => self.line = self.after(&chunk[start..]),
        }
        self.offset += chunk.len() as u64;
        self.end
    }

    /// The state of the current line once `piece` (without LF) is added to it.
    fn after(&self, piece: &[u8]) -> u8 {
        match (self.line, piece) {
            (state, []) => state,
            (0, b"\r") => 1,
            _ => 2,
        }
    }
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
    if find_header_end(&raw) > MAX_HEADER_SECTION {
        return Err(not_msg(&header_too_large()));
    }
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
        streamed: None,
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
    if first.starts_with(b"From ") {
        return Err(
            "it starts with an mbox separator line (\"From \" without a colon), so it is a \
                    mailbox or a message saved with its mbox line; remove that first line (e.g. \
                    tail -n +2 FILE > message.eml)"
                .into(),
        );
    }
    if first.starts_with(b"\xEF\xBB\xBF") {
        return Err(
            "it starts with a UTF-8 byte order mark (BOM), which is not part of any \
                    header field; save it without the BOM (e.g. sed '1s/^\\xEF\\xBB\\xBF//' \
                    FILE > message.eml)"
                .into(),
        );
    }
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
                crate::smtp::codec::escape_line(line.get(..40).unwrap_or(line))
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
        // De-duplicated through a set (case-insensitive): 100,000 addresses cost 100,000 steps.
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut push = |a: Address| {
            if seen.insert(AsRef::<str>::as_ref(&a).to_ascii_lowercase()) {
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
    let long = match &message.streamed {
        Some(s) => s.long_lines,
        None => {
            let mut l = LongLines::default();
            l.feed(raw);
            l.finish()
        }
    };
    if let Some((first, n)) = long.first {
        out.push(format!(
            "{} line(s) are longer than {MAX_TEXT_LINE} octets (the first is line {}, {n} octets): RFC 5321 forbids them and servers may refuse or break them; use a transfer encoding (quoted-printable or base64)",
            long.count,
            first + 1
        ));
    }
    let header_end = find_header_end(raw);
    let headers = &raw[..header_end];
    let has = |name: &str| header_present(headers, name);
    if message.headers.recipients.iter().any(|(h, _)| *h == "Bcc") {
        out.push("the message has a non-empty Bcc header: every recipient will see the Bcc addresses; remove it from the file and give hidden recipients with --to".into());
    }
    if !has("from") {
        out.push(
            "the message has no From header: RFC 5322 requires one, and many servers refuse such mail (Gmail, Microsoft 365); add a From: line to the header".into(),
        );
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

    /// A big message (over [`STREAM_ABOVE`]) with bare LFs, CRLFs, a bare CR, dot lines, 8-bit
    /// bytes and long lines, as bytes.
    fn big_message() -> Vec<u8> {
        let mut m = b"From: F <f@x.com>\r\nTo: a@y.com\r\nSubject: big\r\n\r\n".to_vec();
        let mut i = 0u64;
        while m.len() as u64 <= STREAM_ABOVE + 300_000 {
            i += 1;
            match i % 7 {
                0 => m.extend_from_slice(&vec![b'x'; 999 + (i % 5) as usize]),
                1 => m.extend_from_slice(".dot line\n".as_bytes()),
                2 => m.extend_from_slice("caf\u{e9}\r".as_bytes()),
                _ => m.extend_from_slice(b"an ordinary line of text\r\n"),
            }
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b"no final line break");
        m
    }

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("smtpcheck-msg-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn all_content(m: &Message, chunk: usize) -> Result<Vec<u8>, String> {
        let mut c = m.content(chunk)?;
        let mut out = Vec::new();
        while let Some(piece) = c.next_chunk()? {
            out.extend_from_slice(piece);
        }
        Ok(out)
    }

    #[test]
    fn a_large_file_is_streamed_with_the_same_facts() {
        let bytes = big_message();
        let path = temp_file("big.eml", &bytes);
        let streamed = load(&path, u64::MAX).unwrap();
        let in_memory = from_bytes(&path, bytes.clone()).unwrap();
        let s = streamed.streamed.as_ref().expect("streamed");
        assert!(streamed.raw.len() < bytes.len() && bytes.starts_with(&streamed.raw));
        assert_eq!(streamed.size(), bytes.len() as u64);
        assert_eq!(streamed.info(), in_memory.info());
        assert_eq!(s.normalized_len, crate::smtp::codec::normalized_len(&bytes));
        assert_eq!(streamed.normalized_len(), in_memory.normalized_len());
        assert!(streamed.eight_bit && in_memory.eight_bit);
        assert_eq!(streamed.headers.recipients, in_memory.headers.recipients);
        let env = Envelope::resolve(&in_memory, None, &[]).unwrap();
        let warnings = preflight(&streamed, &env);
        assert!(
            warnings.iter().any(|w| w.contains("longer than 998")),
            "{warnings:?}"
        );
        assert_eq!(warnings, preflight(&in_memory, &env));
        for chunk in [1000, 64 * 1024, 10 * 1024 * 1024] {
            assert_eq!(
                all_content(&streamed, chunk).unwrap(),
                bytes,
                "chunk {chunk}"
            );
            assert_eq!(
                all_content(&in_memory, chunk).unwrap(),
                bytes,
                "chunk {chunk}"
            );
        }
        // Too large is still refused, whether the metadata or the read finds it.
        assert!(matches!(
            load(&path, STREAM_ABOVE),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            load_streamed(&path, STREAM_ABOVE),
            Err(Error::TooLarge { .. })
        ));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn stdin_is_streamed_through_a_spool_with_the_same_facts() {
        let bytes = big_message();
        let path = Path::new("-");
        let from_stdin = from_reader(path, &bytes[..], u64::MAX).unwrap();
        let in_memory = from_bytes(path, bytes.clone()).unwrap();
        let s = from_stdin.streamed.as_ref().expect("streamed");
        assert!(s.spool.is_some() && from_stdin.raw.len() < bytes.len());
        assert_eq!(from_stdin.size(), bytes.len() as u64);
        assert_eq!(from_stdin.normalized_len(), in_memory.normalized_len());
        // Two readers at once do not share an offset.
        let (mut a, mut b) = (
            from_stdin.content(1000).unwrap(),
            from_stdin.content(777).unwrap(),
        );
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        loop {
            let x = a.next_chunk().unwrap().map(<[u8]>::to_vec);
            let y = b.next_chunk().unwrap().map(<[u8]>::to_vec);
            if x.is_none() && y.is_none() {
                break;
            }
            got_a.extend(x.unwrap_or_default());
            got_b.extend(y.unwrap_or_default());
        }
        assert!(got_a == bytes && got_b == bytes);
        // Small input stays in memory; too much is refused.
        let small = from_reader(path, &b"From: a@b.c\r\n\r\nhi\r\n"[..], 100).unwrap();
        assert!(small.streamed.is_none());
        for limit in [3, STREAM_ABOVE + 10] {
            assert!(matches!(
                from_reader(path, &bytes[..], limit),
                Err(Error::StdinTooLarge { .. })
            ));
        }
    }

    #[test]
    fn a_streamed_file_that_changes_is_not_sent_cut_or_grown() {
        let bytes = big_message();
        for (name, changed) in [
            ("shorter", bytes[..bytes.len() - 10].to_vec()),
            ("longer", [&bytes[..], b"more"].concat()),
        ] {
            let path = temp_file(name, &bytes);
            let m = load(&path, u64::MAX).unwrap();
            std::fs::write(&path, &changed).unwrap();
            let err = all_content(&m, 64 * 1024).unwrap_err();
            assert!(err.contains("changed while it was being sent"), "{err}");
            std::fs::remove_file(&path).unwrap();
            let err = all_content(&m, 64 * 1024).unwrap_err();
            assert!(err.contains("cannot read the message file"), "{err}");
        }
    }

    #[test]
    fn long_lines_counted_in_any_chunking() {
        let bytes = big_message();
        let reference: Vec<(usize, usize)> = bytes
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .enumerate()
            .filter(|(_, n)| *n > MAX_TEXT_LINE)
            .collect();
        for chunk in [1, 2, 3, 7, 1000, 4096, bytes.len()] {
            let mut l = LongLines::default();
            bytes.chunks(chunk).for_each(|c| l.feed(c));
            let l = l.finish();
            assert_eq!(l.count, reference.len(), "chunk {chunk}");
            assert_eq!(l.first, reference.first().copied(), "chunk {chunk}");
        }
        for text in [&b""[..], b"\r", b"x\r\n", b"\n\r\n"] {
            let mut l = LongLines::default();
            l.feed(text);
            assert_eq!(l.finish().count, 0);
        }
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
