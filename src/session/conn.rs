//! The connection layer: the only code that touches a socket.
//!
//! Opens the TCP connection within `connect_timeout`, keeps the read buffer, reads one reply at a
//! time within a total deadline (not per read, so a server dripping one byte at a time cannot
//! stretch it) and within the reply bounds of the codec, writes within a deadline, and upgrades
//! the stream to TLS (the handshake within the same deadline). It runs over any byte stream: TCP,
//! TLS over it, or an in-memory pipe. What went wrong is returned as a [`Trouble`], in words;
//! recording it is the caller's job.

use crate::smtp::codec::{parse_reply, Parsed};
use crate::transcript::{BreakKind, Reply};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A byte stream the session can run over (plain TCP, TLS over it, or an in-memory pipe).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the connection broke, and what happened in words.
pub(super) type Trouble = (BreakKind, String);

/// A connection with its read buffer.
pub(super) struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    /// A connection over an already-open stream.
    pub(super) fn new(io: Box<dyn Io>) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Closes the connection cleanly, for a session that ends without QUIT (`--quit-after
    /// connect`): shuts the write half down (a FIN, not a reset) and reads whatever the server
    /// still sends (its greeting) until it closes too, for at most `bound`. Closing a socket with
    /// unread data would reset the connection.
    pub(super) async fn close(&mut self, bound: Duration) {
        let drain = async {
            let _ = self.io.shutdown().await;
            let mut scratch = [0u8; 4096];
            while let Ok(1..) = self.io.read(&mut scratch).await {}
        };
        let _ = tokio::time::timeout(bound, drain).await;
    }

    /// Opens a TCP connection to `addr` within `timeout`; returns it with its local address.
    pub(super) async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(Conn, Option<SocketAddr>), Trouble> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                Ok((Conn::new(Box::new(stream)), local))
            }
            Err(_) => Err((
                BreakKind::ConnectTimeout,
                format!(
                    "no answer from {addr} within {}",
                    crate::time::human(timeout)
                ),
            )),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err((
                BreakKind::ConnectionRefused,
                format!("connection to {addr} refused"),
            )),
            Ok(Err(e)) => Err((
                BreakKind::ConnectFailed,
                format!("cannot connect to {addr}: {}", crate::error::words(&e)),
            )),
        }
    }

    /// Bytes received but not yet taken as part of a reply.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes received but not yet taken as part of a reply.
    pub(super) fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Adds to the buffer what the server has already sent and can be read without waiting (at
    /// most 4 KiB); a read error or the end of the stream is left for the next reply to find.
    pub(super) async fn read_ready(&mut self) {
        let mut tmp = [0u8; 4096];
        let io = &mut self.io;
        let n = std::future::poll_fn(|cx| {
            let mut buf = tokio::io::ReadBuf::new(&mut tmp);
            match std::pin::Pin::new(&mut **io).poll_read(cx, &mut buf) {
                std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(buf.filled().len()),
                _ => std::task::Poll::Ready(0),
            }
        })
        .await;
        self.buf.extend_from_slice(&tmp[..n]);
    }

    /// Reads one complete reply, bounded in time (a total deadline) and in size.
    pub(super) async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, Trouble> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tmp = [0u8; 8192];
        loop {
            if let Some(reply) = self.buffered_reply()? {
                return Ok(reply);
            }
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut tmp)).await {
                Err(_) => return Err(self.no_reply_within(timeout)),
                Ok(Err(e)) => return Err(io_break(&e)),
                Ok(Ok(0)) => return Err(self.closed()),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// The first reply in the buffer, taken out of it, when it is complete.
    fn buffered_reply(&mut self) -> Result<Option<Reply>, Trouble> {
        match parse_reply(&self.buf) {
            Ok(Parsed::Complete(reply, used)) => {
                self.buf.drain(..used);
                Ok(Some(reply))
            }
            Ok(Parsed::Incomplete) => Ok(None),
            Err(e) => Err((BreakKind::Malformed, format!("malformed reply: {e}"))),
        }
    }

    /// The deadline for a reply passed.
    fn no_reply_within(&self, timeout: Duration) -> Trouble {
        let partial = if self.buf.is_empty() {
            ""
        } else {
            " (only part of a reply arrived)"
        };
        (
            BreakKind::Timeout,
            format!(
                "no complete reply within {}{partial}",
                crate::time::human(timeout)
            ),
        )
    }

    /// The server closed the connection while a reply was awaited.
    fn closed(&self) -> Trouble {
        let mid = if self.buf.is_empty() {
            ""
        } else {
            " in the middle of a reply"
        };
        (
            BreakKind::Closed,
            format!("the server closed the connection{mid}"),
        )
    }

    /// Writes bytes, bounded in time.
    pub(super) async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), Trouble> {
        let io = &mut self.io;
        match tokio::time::timeout(timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        {
            Err(_) => Err((
                BreakKind::Timeout,
                format!(
                    "the server did not take the data within {} (it stopped reading)",
                    crate::time::human(timeout)
                ),
            )),
            Ok(Err(e)) => Err(io_break(&e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Runs the TLS handshake over this connection within `timeout`; from then on everything goes
    /// through TLS. `describe` reads the facts of the established session. A failure is said in
    /// words (never the library's error text); the flag is `true` when the server answered in
    /// plain SMTP.
    pub(super) async fn upgrade<T>(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        timeout: Duration,
        describe: impl FnOnce(&ClientConnection) -> T,
    ) -> Result<T, (Trouble, bool)> {
        let io = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
        let first = Arc::new(std::sync::Mutex::new(Vec::new()));
        let io = Sniff {
            inner: io,
            first: first.clone(),
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = match tokio::time::timeout(timeout, connector.connect(name, io)).await {
            Ok(Ok(stream)) => stream,
            Err(_) => {
                let why = format!(
                    "TLS handshake: no answer within {}",
                    crate::time::human(timeout)
                );
                return Err(((BreakKind::Timeout, why), false));
            }
            Ok(Err(e)) => {
                let seen = first.lock().map(|b| b.clone()).unwrap_or_default();
                let (kind, why, plain) = crate::tls::handshake_failure(&e, &seen);
                return Err(((kind, format!("TLS handshake failed: {why}")), plain));
            }
        };
        let facts = describe(stream.get_ref().1);
        self.io = Box::new(stream);
        Ok(facts)
    }
}

/// How many of the first bytes read during a handshake are kept to recognise a plain-text answer.
const SNIFF: usize = 64;

/// A stream that keeps the first bytes read from it (to tell a server answering in plain SMTP
/// from a broken TLS server).
struct Sniff {
    inner: Box<dyn Io>,
    first: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl AsyncRead for Sniff {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let new = &buf.filled()[before..];
            if let Ok(mut first) = self.first.lock() {
                let room = SNIFF.saturating_sub(first.len());
                first.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        poll
    }
}

impl AsyncWrite for Sniff {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why a read or a write failed, in words.
fn io_break(e: &std::io::Error) -> Trouble {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => (
            BreakKind::Closed,
            format!(
                "the connection was closed by the server ({})",
                crate::error::words(e)
            ),
        ),
        _ => (
            BreakKind::Io,
            format!("network error: {}", crate::error::words(e)),
        ),
    }
}
