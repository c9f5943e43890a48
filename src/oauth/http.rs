//! The few HTTP/1.1 requests the token flows make: one form POST per request, over TLS (rustls,
//! the SMTP session's roots: built-in, system, and `--ca`), `Connection: close`, every step bounded by one deadline: the name lookup,
//! the connect, the handshake, the writes and the reads. Plain `http://` is accepted only for a
//! loopback host (the tests' token endpoint). The form, which carries secrets, is never shown.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The largest response body read (token responses are a few KiB).
const MAX_RESPONSE: usize = 1024 * 1024;

/// A token or device-authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https`, or `http` for a loopback host.
    pub tls: bool,
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The path with its query, at least `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses `https://HOST[:PORT]/PATH` (or `http://` with a loopback host); `flag` names the
    /// flag in errors.
    pub fn parse(url: &str, flag: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("{flag} {}: {why}", crate::error::show(url));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("it must start with https://"));
        };
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("it contains white space or control characters"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if authority.contains('@') {
            return Err(bad("it must not carry a user name or password"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        if !tls && !loopback {
            return Err(bad(
                "token endpoints must use https:// (http:// only for a loopback address)",
            ));
        }
        Ok(Endpoint {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// `https://host:port/path`, for messages.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// A response: the status code and the body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, de-chunked (it may carry a token: the caller keeps it secret).
    pub body: Zeroizing<Vec<u8>>,
}

/// `application/x-www-form-urlencoded` of `fields` (RFC 6749 appendix B).
pub fn form(fields: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(k, &mut out);
        out.push('=');
        encode_into(v, &mut out);
    }
    out
}

fn encode_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// POSTs `body` (a form) to `endpoint`, all within `timeout`. Errors say what failed, never the
/// body.
pub fn post_form(
    endpoint: &Endpoint,
    body: &str,
    timeout: Duration,
    roots: &crate::tls::Roots,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let addr = resolve(&endpoint.host, endpoint.port, timeout)?;
    let left = || deadline.saturating_duration_since(Instant::now());
    let tcp = TcpStream::connect_timeout(&addr, left().max(Duration::from_millis(1)))
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.shown()))?;
    let host_header = if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    };
    let mut request = Zeroizing::new(format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: smtpcheck/{}\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        env!("CARGO_PKG_VERSION"),
        body.len()
    ));
    request.push_str(body);
    let raw = if endpoint.tls {
        let config = tls_config(roots);
        let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|_| format!("{} is not a valid TLS name", endpoint.host))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        exchange(&mut stream, request.as_bytes(), deadline, endpoint).map_err(|why| {
            if why.contains("invalid peer certificate") {
                format!("{why} (the certificate of a private identity provider is trusted with --ca FILE, its CA)")
            } else {
                why
            }
        })?
    } else {
        let mut stream = tcp;
        exchange(&mut stream, request.as_bytes(), deadline, endpoint)?
    };
    parse_response(&raw).map_err(|why| format!("{}: {why}", endpoint.shown()))
}

/// The socket under a stream, to set its timeouts.
trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// Writes the request and reads the response until the server closes, before `deadline`.
fn exchange(
    stream: &mut dyn Socket,
    request: &[u8],
    deadline: Instant,
    endpoint: &Endpoint,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let timed_out = || format!("no complete answer from {} in time", endpoint.shown());
    let arm = |s: &dyn Socket| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let _ = s.tcp().set_read_timeout(Some(left));
        let _ = s.tcp().set_write_timeout(Some(left));
        Ok(())
    };
    let mut written = 0;
    while written < request.len() {
        arm(stream)?;
        match stream.write(&request[written..]) {
            Ok(0) => return Err(format!("{} closed the connection", endpoint.shown())),
            Ok(n) => written += n,
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            Err(e) => return Err(format!("cannot send to {}: {e}", endpoint.shown())),
        }
    }
    arm(stream)?;
    let _ = stream.flush();
    let mut out = Zeroizing::new(Vec::new());
    let mut buf = [0u8; 16 * 1024];
    loop {
        arm(stream)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE + 64 * 1024 {
                    return Err(format!("the answer of {} is too large", endpoint.shown()));
                }
            }
            // A TLS server that closes without close_notify: what came is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            Err(e) => return Err(format!("cannot read from {}: {e}", endpoint.shown())),
        }
    }
    Ok(out)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Looks the host up (on a helper thread, so a stuck resolver is not waited for beyond `timeout`).
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|mut a| a.next()),
        );
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(Some(addr))) => Ok(addr),
        Ok(Ok(None)) => Err(format!("{host} has no address")),
        Ok(Err(e)) => Err(format!("cannot look up {host}: {e}")),
        Err(_) => Err(format!("the lookup of {host} took too long")),
    }
}

/// The rustls client set-up for the token endpoints: `roots` (the built-in and system roots and
/// `--ca`), no client certificate.
fn tls_config(roots: &crate::tls::Roots) -> Arc<rustls::ClientConfig> {
    let roots = roots.store();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
    Arc::new(config)
}

/// The status and body of a raw HTTP/1.1 response (Content-Length, chunked, or up to the close).
fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = memchr::memmem::find(raw, b"\r\n\r\n").ok_or("the answer is not HTTP")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "the answer's header is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("the answer has no HTTP status line")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        if rest.len() < n {
            return Err("the answer ended early".into());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_RESPONSE {
        return Err("the answer is too large".into());
    }
    Ok(Response {
        status,
        body: Zeroizing::new(body),
    })
}

/// The body of a chunked transfer coding.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = memchr::memmem::find(rest, b"\r\n").ok_or("a chunk is cut short")?;
        let size_text = std::str::from_utf8(&rest[..end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size || out.len() + size > MAX_RESPONSE {
            return Err("a chunk is cut short or too large".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_but_for_loopback() {
        let e = Endpoint::parse(
            "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
            "--oauth2-token-url",
        )
        .unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        assert_eq!(e.path, "/contoso/oauth2/v2.0/token");
        let e = Endpoint::parse("http://127.0.0.1:8080/token?x=1", "f").unwrap();
        assert_eq!(
            (e.tls, e.port, e.path.as_str()),
            (false, 8080, "/token?x=1")
        );
        assert!(Endpoint::parse("http://[::1]:9/t", "f").is_ok());
        assert!(Endpoint::parse("http://localhost/t", "f").is_ok());
        let err = Endpoint::parse("http://idp.example/token", "--oauth2-token-url").unwrap_err();
        assert!(
            err.contains("https://") && err.contains("--oauth2-token-url"),
            "{err}"
        );
        assert!(Endpoint::parse("ftp://x/", "f").is_err());
        assert!(Endpoint::parse("https://user:pw@x/", "f").is_err());
        assert!(Endpoint::parse("https://x:0/", "f").is_err());
        assert!(Endpoint::parse("https:///t", "f").is_err());
    }

    #[test]
    fn forms_are_encoded() {
        let f = form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://a/.default x"),
        ]);
        assert_eq!(
            f.as_str(),
            "grant_type=client_credentials&scope=https%3A%2F%2Fa%2F.default+x"
        );
    }

    #[test]
    fn responses_are_parsed() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2;x\r\n\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{\"a\"}"[..]));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
