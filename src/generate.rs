//! The message when there is no `.eml`: a generated test message, or one read from stdin
//! (`--eml -`).
//!
//! The generated message is a plain-text RFC 5322 message with Date, Message-ID, From (the envelope
//! sender), To (the recipients), Subject (`smtpcheck test <timestamp>`, or `--subject`),
//! MIME-Version, Content-Type and Content-Transfer-Encoding headers, and a short body naming this
//! host and the route (or `--body TEXT` / `--body-file FILE`). Each `--header "Name: value"` is
//! added; one with the name of a generated header replaces it. Everything is validated before any
//! connection: no CR, LF or other control character can reach the header section.

use crate::error::{show, Error};
use crate::message::Envelope;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

/// The path shown for a generated message (in the report's `message.path`).
pub const GENERATED_PATH: &str = "(generated test message)";
/// The path shown for a message read from stdin.
pub const STDIN_PATH: &str = "(standard input)";

/// Headers the generator writes; a `--header` with one of these names replaces it.
const GENERATED_HEADERS: [&str; 8] = [
    "Date",
    "Message-ID",
    "From",
    "To",
    "Subject",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// The longest header field name accepted from `--header`.
const MAX_FIELD_NAME: usize = 76;

/// How the user shaped the generated message.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// `--subject`.
    pub subject: Option<String>,
    /// `--body` or the content of `--body-file`.
    pub body: Option<Vec<u8>>,
    /// `--header` values, as given.
    pub headers: Vec<String>,
}

/// Splits and checks a `--header "Name: value"`: the name is 1 to 76 printable ASCII characters
/// other than `:`; the value may not contain CR, LF or any other control character but tab.
pub fn parse_header(value: &str) -> Result<(String, String), Error> {
    let bad = |why: &str| Error::BadHeader {
        value: show(value),
        why: why.to_string(),
    };
    let (name, rest) = value
        .split_once(':')
        .ok_or_else(|| bad("there is no colon between the name and the value"))?;
    if name.is_empty() {
        return Err(bad("the field name is empty"));
    }
    if name.len() > MAX_FIELD_NAME {
        return Err(bad("the field name is longer than 76 characters"));
    }
    if let Some(c) = name.chars().find(|c| !matches!(*c as u32, 33..=126)) {
        return Err(bad(&format!(
            "the field name contains {c:?}: only printable ASCII without spaces is allowed"
        )));
    }
    check_text(rest, "value").map_err(|why| bad(&why))?;
    Ok((name.to_string(), rest.trim().to_string()))
}

/// Refuses CR, LF and control characters (header injection) in a header's text.
fn check_text(text: &str, what: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control() && *c != '\t') {
        Some('\r') | Some('\n') => Err(format!(
            "the {what} contains a line break (CR or LF), which would start a new header field"
        )),
        Some(c) => Err(format!("the {what} contains the control character {c:?}")),
        None => Ok(()),
    }
}

/// Checks `--subject`.
pub fn check_subject(subject: &str) -> Result<(), Error> {
    check_text(subject, "subject").map_err(|why| Error::BadSubject {
        value: show(subject),
        why,
    })
}

/// Reads `--body-file`, bounded by `max_size`.
pub fn read_body_file(path: &Path, max_size: u64) -> Result<Vec<u8>, Error> {
    let err = |why: String| Error::BodyFile {
        path: path.to_path_buf(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| err(crate::error::words(&e)))?;
    let meta = file.metadata().map_err(|e| err(crate::error::words(&e)))?;
    if meta.is_dir() {
        return Err(err("it is a directory".into()));
    }
    let mut bytes = Vec::new();
    file.take(max_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(crate::error::words(&e)))?;
    if bytes.len() as u64 > max_size {
        return Err(err(format!(
            "it is larger than the --max-size limit of {max_size} bytes"
        )));
    }
    Ok(bytes)
}

/// Reads the message from stdin (`--eml -`), refusing more than `max_size` bytes.
pub fn read_stdin(max_size: u64) -> Result<Vec<u8>, Error> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "smtpcheck: reading the message from standard input (--eml -); end it with Ctrl-D"
        );
    }
    read_bounded(stdin.lock(), max_size)
}

/// Reads at most `max_size` bytes from `input`; more is an error.
pub fn read_bounded(input: impl Read, max_size: u64) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    input
        .take(max_size + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::ReadStdin)?;
    if bytes.len() as u64 > max_size {
        return Err(Error::StdinTooLarge { limit: max_size });
    }
    Ok(bytes)
}

/// The generated message's bytes (CRLF line endings).
///
/// `via` names the route ("smart host relay:25" or "direct MX delivery"), `host` this machine,
/// `now` the time for Date, Subject and Message-ID, `unique` makes the Message-ID unique.
pub fn message(
    envelope: &Envelope,
    shape: &Shape,
    via: &str,
    host: &str,
    now: SystemTime,
    unique: u64,
) -> Result<Vec<u8>, Error> {
    let mut extra = Vec::new();
    for h in &shape.headers {
        extra.push(parse_header(h)?);
    }
    if let Some(s) = &shape.subject {
        check_subject(s)?;
    }
    let stamp = crate::time::rfc3339_millis(now);
    let stamp = format!("{}Z", stamp.get(..19).unwrap_or(&stamp));
    let from = match &envelope.from {
        Some(a) => a.to_string(),
        // The null sender: the From header still needs an address.
        None => format!("postmaster@{host}"),
    };
    let to: Vec<String> = envelope.recipients.iter().map(|a| a.to_string()).collect();
    let subject = shape
        .subject
        .clone()
        .unwrap_or_else(|| format!("smtpcheck test {stamp}"));
    let body = match &shape.body {
        Some(b) => b.clone(),
        None => default_body(host, via, &to, &stamp).into_bytes(),
    };
    let eight_bit = !body.is_ascii();
    let millis = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let id_domain = if crate::address::check_domain(host).is_ok() {
        host
    } else {
        "localhost"
    };
    let generated: Vec<(&str, String)> = vec![
        ("Date", crate::time::rfc5322_date(now)),
        (
            "Message-ID",
            format!("<smtpcheck.{millis}.{unique:016x}@{id_domain}>"),
        ),
        ("From", format!("smtpcheck <{from}>")),
        ("To", to.join(",\r\n ")),
        ("Subject", encode_word(&subject)),
        ("MIME-Version", "1.0".into()),
        ("Content-Type", "text/plain; charset=utf-8".into()),
        (
            "Content-Transfer-Encoding",
            if eight_bit { "8bit" } else { "7bit" }.into(),
        ),
    ];
    let mut out = Vec::new();
    for (name, value) in &generated {
        if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    for (name, value) in &extra {
        let canonical = GENERATED_HEADERS
            .iter()
            .find(|g| g.eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or(name);
        out.extend_from_slice(format!("{canonical}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"X-Mailer: smtpcheck ");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    if !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// The default body: what this is, from where, by which route, to whom.
fn default_body(host: &str, via: &str, to: &[String], stamp: &str) -> String {
    format!(
        "This is a test message sent by smtpcheck {} from {host}\r\nvia {via}\r\nto {} at {stamp}.\r\n\r\nIt needs no answer.\r\n",
        env!("CARGO_PKG_VERSION"),
        to.join(", ")
    )
}

/// An RFC 2047 encoded word (UTF-8, base64) for non-ASCII text, folded into words of at most 75
/// characters; ASCII text as it is.
fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    // 45 bytes of UTF-8 become 60 base64 characters: "=?UTF-8?B?" + 60 + "?=" = 72.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{from_bytes, Envelope, Source};
    use std::time::Duration;

    fn envelope(from: Option<&str>, to: &[&str]) -> Envelope {
        Envelope {
            from: from.map(|f| f.parse().unwrap()),
            from_source: Source::Flag,
            recipients: to.iter().map(|t| t.parse().unwrap()).collect(),
            recipients_source: Source::Flag,
        }
    }

    #[test]
    fn generated_message_parses_with_every_header() {
        let e = envelope(
            Some("a@sender.example"),
            &["b@rcpt.example", "c@rcpt.example"],
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_330_801);
        let raw = message(
            &e,
            &Shape::default(),
            "smart host relay:25",
            "box.example",
            t,
            7,
        )
        .unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(
            text.starts_with("Date: Sun, 22 Nov 2026 07:00:01 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSubject: smtpcheck test 2026-11-22T07:00:01Z\r\n"));
        assert!(text.contains("\r\nFrom: smtpcheck <a@sender.example>\r\n"));
        assert!(text.contains("via smart host relay:25"));
        assert!(text.contains("from box.example"));
        assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
        let m = from_bytes(Path::new(GENERATED_PATH), raw).unwrap();
        assert_eq!(m.headers.from.as_deref(), Some("a@sender.example"));
        assert_eq!(m.headers.recipients.len(), 2);
        assert_eq!(
            m.message_id.as_deref(),
            Some("smtpcheck.1795330801000.0000000000000007@box.example")
        );
        assert!(crate::message::preflight(&m, &e).is_empty());
    }

    #[test]
    fn shaped_message() {
        let e = envelope(None, &["b@rcpt.example"]);
        let shape = Shape {
            subject: Some("Grüße aus der Prüfung".into()),
            body: Some(b"caf\xc3\xa9\n.\nend".to_vec()),
            headers: vec!["X-Test: 1".into(), "from: Other <o@x.example>".into()],
        };
        let raw = message(
            &e,
            &shape,
            "direct MX delivery",
            "h.example",
            SystemTime::now(),
            1,
        )
        .unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("\r\nFrom: Other <o@x.example>\r\n"), "{text}");
        assert_eq!(text.matches("From:").count(), 1);
        assert!(text.contains("\r\nX-Test: 1\r\n"));
        assert!(text.contains("Content-Transfer-Encoding: 8bit"));
        assert!(text.contains("=?UTF-8?B?"));
        assert!(text.ends_with("end\r\n"));
        let m = from_bytes(Path::new(GENERATED_PATH), raw).unwrap();
        assert_eq!(m.subject.as_deref(), Some("Grüße aus der Prüfung"));
        // The null sender: From names postmaster at this host.
        let raw = message(
            &e,
            &Shape::default(),
            "x",
            "h.example",
            SystemTime::now(),
            1,
        )
        .unwrap();
        assert!(String::from_utf8(raw)
            .unwrap()
            .contains("From: smtpcheck <postmaster@h.example>"));
    }

    #[test]
    fn header_validation() {
        assert_eq!(
            parse_header("X-Tag:  a b ").unwrap(),
            ("X-Tag".to_string(), "a b".to_string())
        );
        for bad in [
            "no colon",
            ": empty name",
            "Bad Name: x",
            "X-A: b\r\nBcc: evil@x",
            "X-A: b\nBcc: evil@x",
            "X-A: nul\0",
            "Nämé: x",
        ] {
            let e = parse_header(bad).unwrap_err();
            assert!(e.to_string().contains("--header"), "{e}");
        }
        assert!(check_subject("a\r\nBcc: x").is_err());
        assert!(check_subject("tab\tok").is_ok());
    }

    #[test]
    fn bounded_reads() {
        assert_eq!(read_bounded(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(matches!(
            read_bounded(&b"abcd"[..], 3),
            Err(Error::StdinTooLarge { limit: 3 })
        ));
    }

    #[test]
    fn long_subjects_fold_into_short_words() {
        let w = encode_word(&"é".repeat(100));
        for word in w.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
        }
    }
}
