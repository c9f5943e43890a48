//! The message transfer after the 354: the content CRLF-normalised and dot-stuffed chunk by chunk
//! ([`DataEncoder`]), each chunk written within the deadline, the terminator, and the final reply,
//! recorded as the `message` step.

use super::chat::{unsolicited, Broke, Chat};
use super::conn::{Conn, Trouble};
use crate::message::Message;
use crate::smtp::codec::DataEncoder;
use crate::transcript::{BreakKind, Reply, Stage};
use std::time::Duration;

/// Size of each chunk of message data encoded and written at a time.
const DATA_CHUNK: usize = 64 * 1024;

/// Writes the message (CRLF-normalised, dot-stuffed, terminated) and reads the final reply.
pub(super) async fn transfer(
    chat: &mut Chat<'_>,
    conn: &mut Conn,
    message: &Message,
) -> Result<Reply, Broke> {
    let sent = Some(".".to_string());
    let started = chat.start(Stage::Message, Some("."), Some(message.size()));
    let timeout = chat.timeout();
    let res = match write_content(conn, message, timeout).await {
        Ok(octets) => conn.read_reply(timeout).await.map(|r| (r, octets)),
        Err(trouble) => Err(trouble),
    };
    match res {
        Ok((reply, octets)) => {
            let ok = reply.is_positive();
            Ok(chat.replied(Stage::Message, sent, Some(octets), started, reply, ok))
        }
        Err((kind, why)) => Err(chat.broke(Stage::Message, sent, started, kind, why)),
    }
}

/// Writes the encoded message and its terminator; returns the octets of the message as sent (the
/// terminator not counted).
///
/// Nothing is pipelined, so the server has no reason to say anything before the terminator: bytes
/// that came with the 354, or that have arrived by the time the content is written, are a
/// protocol violation (before the terminator is sent, so the message is not completed), never
/// taken for the reply to the data.
///
/// The content comes from memory, or from the file chunk by chunk for a large message: a file that
/// cannot be read or changed size breaks the session before the terminator, so the server never
/// takes a cut message.
async fn write_content(
    conn: &mut Conn,
    message: &Message,
    timeout: Duration,
) -> Result<u64, Trouble> {
    let mut enc = DataEncoder::new();
    let mut out = Vec::with_capacity(DATA_CHUNK + DATA_CHUNK / 8);
    let mut octets = 0u64;
    let early = |conn: &Conn| match conn.pending() {
        [] => Ok(()),
        pending => Err((BreakKind::Protocol, unsolicited(pending))),
    };
    early(conn)?;
    let mut content = message
        .content(DATA_CHUNK)
        .map_err(|why| (BreakKind::Io, why))?;
    while let Some(chunk) = content.next_chunk().map_err(|why| (BreakKind::Io, why))? {
        out.clear();
        enc.encode(chunk, &mut out);
        octets += out.len() as u64;
        conn.write(&out, timeout).await?;
    }
    conn.read_ready().await;
    early(conn)?;
    out.clear();
    enc.finish(&mut out);
    octets += out.len() as u64 - 3;
    conn.write(&out, timeout).await?;
    Ok(octets)
}
