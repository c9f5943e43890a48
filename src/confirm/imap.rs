//! The IMAP conversation of `--confirm` (async-imap over tokio): connect, TLS (implicit or
//! STARTTLS, verified by `tls.rs` as for SMTP), AUTHENTICATE XOAUTH2 with the OAuth token when the
//! server offers it (else LOGIN with the IMAP password), LIST, search every folder, wait with IDLE
//! or by polling, fetch the header, delete when asked. Each command is bounded by `--timeout`.

use super::{headers, Arrival, ConfirmOptions, Wanted, Watch};
use crate::secret::Secret;
use crate::smtp::auth::OAuthError;
use crate::smtp::rules::{self, Trust};
use crate::tls;
use crate::transcript::{Policy, TlsInfo};
use async_imap::imap_proto::{NameAttribute, Response};
use async_imap::types::Name;
use async_imap::{Authenticator, Client, Session};
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// The first pause between two searches; each pause doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between two searches (polling), and the longest IDLE before searching every
/// folder again (a message filed into another folder wakes no IDLE on the first).
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// The connection: clear, or TLS (implicit or after STARTTLS).
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A command bounded by `--timeout`; its error said with what was being done.
async fn bounded<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("IMAP {what} failed: {e}")),
        Err(_) => Err(format!(
            "IMAP {what}: no answer within {} (--timeout)",
            crate::time::human(limit)
        )),
    }
}

/// The whole check; fills `arrival`. An `Err` is why the mailbox could not be checked.
pub(super) async fn run(
    opts: &ConfirmOptions,
    wanted: &Wanted,
    accepted: Instant,
    arrival: &mut Arrival,
) -> Result<(), String> {
    let url = &opts.url;
    let limit = opts.io_timeout;
    let addr = (url.host.as_str(), url.port);
    let tcp = match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect to the IMAP server {url}: {e}")),
        Err(_) => {
            return Err(format!(
            "cannot connect to the IMAP server {url}: no connection within {} (--connect-timeout)",
            crate::time::human(opts.connect_timeout)
        ))
        }
    };
    let policy = if url.implicit_tls {
        Policy::Implicit
    } else {
        opts.tls.policy
    };
    let mut stream = Stream::Plain(tcp);
    if policy == Policy::Implicit {
        stream = handshake(opts, policy, stream, arrival).await?;
    }
    let mut client = Client::new(stream);
    greeting(&mut client, limit).await?;
    if matches!(policy, Policy::Opportunistic | Policy::Required) {
        let caps = capabilities(&mut client, limit).await?;
        let offered = caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS"));
        if offered {
            bounded(
                limit,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            let stream = handshake(opts, policy, client.into_inner(), arrival).await?;
            client = Client::new(stream);
        } else if policy == Policy::Required {
            return Err(format!(
                "the IMAP server {url} does not offer STARTTLS and --tls required asks for TLS"
            ));
        }
    }
    if arrival.tls.is_none() && !opts.allow_plain_login {
        return Err(format!(
            "the IMAP server {url} offers no TLS: not sending the IMAP password in clear (use imaps://, or --allow-plain-auth)"
        ));
    }
    let session = login(client, opts, &mut arrival.notes).await?;
    let mut finder = Finder {
        session: Some(session),
        limit,
        idle: false,
    };
    let result = finder.find(opts, wanted, accepted, arrival).await;
    // Log out politely; its failure changes nothing found.
    if let Some(mut session) = finder.session.take() {
        let _ = tokio::time::timeout(limit, session.logout()).await;
    }
    result
}

/// Logs in: AUTHENTICATE XOAUTH2 with the OAuth token when there is one and the server offers
/// AUTH=XOAUTH2 (its capabilities asked for again, after TLS), else LOGIN with the IMAP password.
/// A refused token is followed by LOGIN when a password is at hand (a note says so). Neither
/// secret is ever in a message.
async fn login(
    mut client: Client<Stream>,
    opts: &ConfirmOptions,
    notes: &mut Vec<String>,
) -> Result<Session<Stream>, String> {
    let url = &opts.url;
    let limit = opts.io_timeout;
    if let Some(token) = &opts.token {
        let caps = capabilities(&mut client, limit).await?;
        if offers_xoauth2(&caps) {
            let auth = XOAuth2::new(&url.user, token);
            let refused = match tokio::time::timeout(
                limit,
                client.authenticate("XOAUTH2", auth.clone()),
            )
            .await
            {
                Ok(Ok(session)) => {
                    notes
                        .push("IMAP: logged in with AUTHENTICATE XOAUTH2 (the OAuth token)".into());
                    return Ok(session);
                }
                Ok(Err((e, c))) => {
                    client = c;
                    let detail = auth
                        .server_error()
                        .map(|o| format!(" ({})", o.describe()))
                        .unwrap_or_default();
                    format!(
                        "the IMAP server {url} refused the OAuth token (AUTHENTICATE XOAUTH2) for {}: {}{detail}; check that the token is for this mailbox and its scope allows IMAP",
                        url.user,
                        one_line(&e.to_string())
                    )
                }
                Err(_) => {
                    return Err(format!(
                        "IMAP AUTHENTICATE XOAUTH2: no answer within {} (--timeout)",
                        crate::time::human(limit)
                    ))
                }
            };
            if opts.password.is_none() {
                return Err(refused);
            }
            notes.push(format!(
                "{refused}; logging in with the IMAP password instead"
            ));
        } else if opts.password.is_some() {
            notes.push("IMAP: the server offers no AUTH=XOAUTH2, so the IMAP password was used instead of the OAuth token".into());
        } else {
            return Err(format!(
                "the IMAP server {url} offers no AUTH=XOAUTH2, so the OAuth token cannot be used, and no IMAP password was given (SMTPCHECK_IMAP_PASSWORD or --confirm-password-file)"
            ));
        }
    }
    let Some(password) = &opts.password else {
        return Err(
            "no IMAP password was given (SMTPCHECK_IMAP_PASSWORD or --confirm-password-file)"
                .into(),
        );
    };
    match tokio::time::timeout(limit, client.login(&url.user, password.expose())).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err((e, _))) => Err(format!(
            "the IMAP server {url} refused the login as {}: {}; check the user and SMTPCHECK_IMAP_PASSWORD or --confirm-password-file",
            url.user,
            one_line(&e.to_string())
        )),
        Err(_) => Err(format!(
            "IMAP LOGIN: no answer within {} (--timeout)",
            crate::time::human(limit)
        )),
    }
}

fn offers_xoauth2(caps: &[String]) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case("AUTH=XOAUTH2"))
}

/// The client side of AUTHENTICATE XOAUTH2 (async-imap base64-encodes what it returns): first the
/// initial response `user=USER^Aauth=Bearer TOKEN^A^A`; to any later challenge (the server's
/// base64 JSON error, kept for the message) the empty response, after which the server ends the
/// exchange with NO. Clones share what the server said.
#[derive(Clone)]
struct XOAuth2<'a> {
    user: &'a str,
    token: &'a Secret,
    sent: std::sync::Arc<std::sync::Mutex<(bool, Option<Vec<u8>>)>>,
}

impl<'a> XOAuth2<'a> {
    fn new(user: &'a str, token: &'a Secret) -> XOAuth2<'a> {
        XOAuth2 {
            user,
            token,
            sent: Default::default(),
        }
    }

    /// The server's error challenge, decoded (`{"status":"401",…}`), when it sent one.
    fn server_error(&self) -> Option<OAuthError> {
        let state = self.sent.lock().ok()?;
        let raw = state.1.as_deref()?;
        use base64::Engine as _;
        OAuthError::decode(&base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl Authenticator for XOAuth2<'_> {
    type Response = Zeroizing<Vec<u8>>;

    fn process(&mut self, challenge: &[u8]) -> Self::Response {
        let Ok(mut state) = self.sent.lock() else {
            return Zeroizing::new(Vec::new());
        };
        if state.0 {
            state.1 = Some(challenge.to_vec());
            return Zeroizing::new(Vec::new());
        }
        state.0 = true;
        xoauth2_initial(self.user, self.token)
    }
}

/// The XOAUTH2 initial response before base64 (Google's and Microsoft's documented format).
fn xoauth2_initial(user: &str, token: &Secret) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose()).into_bytes())
}

/// The server's greeting: OK (or PREAUTH) goes on, BYE or nothing is an error.
async fn greeting(client: &mut Client<Stream>, limit: Duration) -> Result<(), String> {
    let first = bounded(limit, "greeting", client.read_response()).await?;
    let Some(first) = first else {
        return Err("the IMAP server closed the connection before its greeting".into());
    };
    match first.parsed() {
        Response::Data { status, .. } => match status {
            async_imap::imap_proto::Status::Bye => Err(format!(
                "the IMAP server said BYE in its greeting: {}",
                one_line(&format!("{:?}", first.parsed()))
            )),
            _ => Ok(()),
        },
        other => Err(format!(
            "unexpected IMAP greeting: {}",
            one_line(&format!("{other:?}"))
        )),
    }
}

/// CAPABILITY before login (its untagged answer comes back through the channel async-imap
/// hands unsolicited responses to).
async fn capabilities(client: &mut Client<Stream>, limit: Duration) -> Result<Vec<String>, String> {
    let (tx, rx) = async_channel::bounded(64);
    bounded(
        limit,
        "CAPABILITY",
        client.run_command_and_check_ok("CAPABILITY", Some(tx)),
    )
    .await?;
    let mut caps = Vec::new();
    while let Ok(u) = rx.try_recv() {
        if let async_imap::types::UnsolicitedResponse::Other(r) = u {
            if let Response::Capabilities(list) = r.parsed() {
                caps.extend(list.iter().map(capability_name));
            }
        }
    }
    Ok(caps)
}

fn capability_name(c: &async_imap::imap_proto::Capability<'_>) -> String {
    use async_imap::imap_proto::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".to_string(),
        Capability::Auth(a) => format!("AUTH={a}"),
        Capability::Atom(a) => a.to_string(),
    }
}

/// The TLS handshake, verified as for SMTP: the verdict is recorded in `arrival.tls`; a
/// certificate that does not verify stops the check (the password is never sent to a server
/// that is not authenticated), unless `--insecure`.
async fn handshake(
    opts: &ConfirmOptions,
    policy: Policy,
    stream: Stream,
    arrival: &mut Arrival,
) -> Result<Stream, String> {
    let Stream::Plain(tcp) = stream else {
        return Err("TLS asked for twice on the IMAP connection".into());
    };
    let name = opts.tls.verify_name(&opts.url.host);
    let (config, verifier) = tls::client_config(&opts.tls)?;
    let server_name = tls::server_name(&name)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls_stream =
        match tokio::time::timeout(opts.io_timeout, connector.connect(server_name, tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let detail = verifier
                    .seen()
                    .and_then(|s| s.result.err())
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "TLS handshake with the IMAP server {} failed: {e}{detail}",
                    opts.url
                ));
            }
            Err(_) => {
                return Err(format!(
                    "TLS handshake with the IMAP server {}: no answer within {} (--timeout)",
                    opts.url,
                    crate::time::human(opts.io_timeout)
                ))
            }
        };
    let check = tls::Check {
        mode: policy,
        name: &name,
        insecure: opts.tls.insecure,
        now_unix: crate::time::now_unix(),
    };
    let info: TlsInfo = tls::describe(tls_stream.get_ref().1, verifier.seen(), check);
    // Even opportunistic TLS must authenticate the server before the password is sent.
    let strict = match policy {
        Policy::Opportunistic => Policy::Required,
        other => other,
    };
    let trust = rules::certificate(strict, opts.tls.insecure, &info);
    arrival.tls = Some(info);
    match trust {
        Trust::Accepted => {}
        Trust::Warn(w) => arrival.notes.push(format!("IMAP: {w}")),
        Trust::Refused(f) => {
            return Err(format!(
            "the IMAP server's certificate is not trusted, so the IMAP password was not sent: {}",
            f.reason
        ))
        }
    }
    Ok(Stream::Tls(Box::new(tls_stream)))
}

/// A folder and its special use.
#[derive(Debug, Clone)]
struct Folder {
    name: String,
    special_use: Option<String>,
    selectable: bool,
}

fn special_use(attrs: &[NameAttribute<'_>]) -> Option<String> {
    attrs.iter().find_map(|a| {
        let name = match a {
            NameAttribute::Junk => "\\Junk",
            NameAttribute::Sent => "\\Sent",
            NameAttribute::Drafts => "\\Drafts",
            NameAttribute::Trash => "\\Trash",
            NameAttribute::Archive => "\\Archive",
            NameAttribute::All => "\\All",
            NameAttribute::Flagged => "\\Flagged",
            NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\Junk") => "\\Junk",
            _ => return None,
        };
        Some(name.to_string())
    })
}

/// The order the folders are searched in: `--confirm-folders` as given, else INBOX, the
/// `\Junk` folders, then every other selectable folder.
fn order(listed: &[Folder], asked: Option<&[String]>) -> Vec<Folder> {
    if let Some(asked) = asked {
        return asked
            .iter()
            .map(|name| {
                listed
                    .iter()
                    .find(|f| &f.name == name || (is_inbox(name) && is_inbox(&f.name)))
                    .cloned()
                    .unwrap_or(Folder {
                        name: name.clone(),
                        special_use: None,
                        selectable: true,
                    })
            })
            .collect();
    }
    let mut out: Vec<Folder> = listed
        .iter()
        .filter(|f| is_inbox(&f.name))
        .cloned()
        .collect();
    if out.is_empty() {
        out.push(Folder {
            name: "INBOX".into(),
            special_use: None,
            selectable: true,
        });
    }
    let junk = |f: &&Folder| f.special_use.as_deref() == Some("\\Junk");
    out.extend(listed.iter().filter(junk).cloned());
    out.extend(
        listed
            .iter()
            .filter(|f| f.selectable && !is_inbox(&f.name) && !junk(f))
            .cloned(),
    );
    out
}

fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// An IMAP quoted string (CR and LF refused earlier or removed here).
fn quoted(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The UID SEARCH criteria for the message.
fn criteria(wanted: &Wanted) -> String {
    match wanted {
        Wanted::MessageId(id) => format!("HEADER Message-ID {}", quoted(id)),
        Wanted::SubjectDate { subject, date } => {
            let mut c = format!("HEADER Date {}", quoted(date));
            if let Some(s) = subject.as_deref().filter(|s| s.is_ascii() && !s.is_empty()) {
                c.push_str(&format!(" SUBJECT {}", quoted(s)));
            }
            c
        }
    }
}

fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The logged-in session.
struct Finder {
    /// `None` only while IDLE holds it (and after an IDLE that failed).
    session: Option<Session<Stream>>,
    limit: Duration,
    idle: bool,
}

impl Finder {
    fn sess(&mut self) -> Result<&mut Session<Stream>, String> {
        self.session.as_mut().ok_or_else(gone)
    }

    async fn find(
        &mut self,
        opts: &ConfirmOptions,
        wanted: &Wanted,
        accepted: Instant,
        arrival: &mut Arrival,
    ) -> Result<(), String> {
        let caps = bounded(self.limit, "CAPABILITY", self.sess()?.capabilities()).await?;
        self.idle = caps.has_str("IDLE");
        let uidplus = caps.has_str("UIDPLUS");
        let deadline = accepted + opts.timeout;
        let mut pause = FIRST_PAUSE;
        let found = loop {
            let folders = order(&self.list().await?, opts.folders.as_deref());
            for f in &folders {
                if !arrival.folders.contains(&f.name) {
                    arrival.folders.push(f.name.clone());
                }
            }
            if let Some(hit) = self.search(&folders, wanted).await? {
                break Some(hit);
            }
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            let wait = pause.min(deadline - now);
            if self.idle {
                arrival.watch = Some(Watch::Idle);
                let first = folders.first().map_or("INBOX", |f| f.name.as_str());
                self.idle_wait(first, wait).await?;
            } else {
                arrival.watch = Some(Watch::Poll);
                tokio::time::sleep(wait).await;
            }
            pause = (pause * 2).min(MAX_PAUSE);
        };
        let Some((folder, uid)) = found else {
            return Ok(());
        };
        arrival.found = true;
        arrival.after_ms = Some(accepted.elapsed().as_secs_f64() * 1000.0);
        arrival.folder = Some(folder.name.clone());
        arrival.special_use = folder
            .special_use
            .clone()
            .or_else(|| is_inbox(&folder.name).then(|| "\\Inbox".to_string()));
        let header = self.header(uid).await?;
        let fields = headers::fields(&header);
        arrival.authentication_results = headers::values(&fields, "Authentication-Results")
            .filter_map(headers::parse_auth_results)
            .collect();
        arrival.hops = headers::hops(&fields);
        arrival.spam = headers::spam(&fields);
        if opts.delete {
            arrival.deleted = self.delete(&folder.name, uid, uidplus, arrival).await?;
        }
        Ok(())
    }

    /// Every folder with its attributes.
    async fn list(&mut self) -> Result<Vec<Folder>, String> {
        let limit = self.limit;
        let session = self.sess()?;
        let read = async {
            let stream = session.list(Some(""), Some("*")).await?;
            let names: Vec<Result<Name, async_imap::error::Error>> = stream.collect().await;
            let mut out = Vec::new();
            for n in names {
                let n = n?;
                out.push(Folder {
                    name: n.name().to_string(),
                    special_use: special_use(n.attributes()),
                    selectable: !n.attributes().contains(&NameAttribute::NoSelect),
                });
            }
            Ok::<_, async_imap::error::Error>(out)
        };
        bounded(limit, "LIST", read).await
    }

    /// The first folder holding the message, with the message's UID there.
    async fn search(
        &mut self,
        folders: &[Folder],
        wanted: &Wanted,
    ) -> Result<Option<(Folder, u32)>, String> {
        let query = criteria(wanted);
        for f in folders.iter().filter(|f| f.selectable) {
            let examined = tokio::time::timeout(self.limit, self.sess()?.examine(&f.name)).await;
            match examined {
                Ok(Ok(_)) => {}
                // A folder named in --confirm-folders that does not exist, or one that cannot be
                // opened: not there.
                Ok(Err(async_imap::error::Error::No(_))) => continue,
                Ok(Err(e)) => return Err(format!("IMAP EXAMINE {} failed: {e}", f.name)),
                Err(_) => return Err(format!("IMAP EXAMINE {}: no answer in time", f.name)),
            }
            let uids = bounded(self.limit, "UID SEARCH", self.sess()?.uid_search(&query)).await?;
            if let Some(uid) = uids.into_iter().min() {
                return Ok(Some((f.clone(), uid)));
            }
        }
        Ok(None)
    }

    /// IDLE on `folder` until the server announces a change or `wait` is over.
    async fn idle_wait(&mut self, folder: &str, wait: Duration) -> Result<(), String> {
        let limit = self.limit;
        bounded(limit, "EXAMINE", self.sess()?.examine(folder)).await?;
        // `idle()` takes the session by value: it is out while IDLE runs.
        let session = self.session.take().ok_or_else(gone)?;
        let mut handle = session.idle();
        bounded(limit, "IDLE", handle.init()).await?;
        {
            let (fut, stop) = handle.wait_with_timeout(wait);
            let _ = tokio::time::timeout(wait + limit, fut).await;
            drop(stop);
        }
        self.session = Some(bounded(limit, "IDLE DONE", handle.done()).await?);
        Ok(())
    }

    /// The message's header block.
    async fn header(&mut self, uid: u32) -> Result<Vec<u8>, String> {
        let limit = self.limit;
        let session = self.sess()?;
        let read = async {
            let stream = session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])")
                .await?;
            let all: Vec<_> = stream.collect().await;
            let mut header = Vec::new();
            for f in all {
                if let Some(h) = f?.header() {
                    header = h.to_vec();
                }
            }
            Ok::<_, async_imap::error::Error>(header)
        };
        bounded(limit, "UID FETCH", read).await
    }

    /// Marks the message deleted and expunges just it (UIDPLUS); without UIDPLUS it is only
    /// marked, so that no other message marked deleted is expunged with it.
    async fn delete(
        &mut self,
        folder: &str,
        uid: u32,
        uidplus: bool,
        arrival: &mut Arrival,
    ) -> Result<bool, String> {
        let limit = self.limit;
        bounded(limit, "SELECT", self.sess()?.select(folder)).await?;
        let session = self.sess()?;
        let store = async {
            let stream = session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
                .await?;
            let all: Vec<_> = stream.collect().await;
            for r in all {
                r?;
            }
            Ok::<_, async_imap::error::Error>(())
        };
        bounded(limit, "UID STORE", store).await?;
        if !uidplus {
            arrival.notes.push(format!(
                "--confirm-delete: the server has no UIDPLUS, so the message was only marked \\Deleted in {folder} (not expunged, to leave other messages alone)"
            ));
            return Ok(false);
        }
        let session = self.sess()?;
        let expunge = async {
            let stream = session.uid_expunge(uid.to_string()).await?;
            let all: Vec<_> = stream.collect().await;
            for r in all {
                r?;
            }
            Ok::<_, async_imap::error::Error>(())
        };
        bounded(limit, "UID EXPUNGE", expunge).await?;
        Ok(true)
    }
}

/// The error when the session was lost in an IDLE that failed.
fn gone() -> String {
    "the IMAP session ended during IDLE".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, special_use: Option<&str>, selectable: bool) -> Folder {
        Folder {
            name: name.into(),
            special_use: special_use.map(str::to_string),
            selectable,
        }
    }

    #[test]
    fn folders_are_searched_inbox_then_junk_then_the_rest() {
        let listed = [
            folder("Archive", Some("\\Archive"), true),
            folder("Junk", Some("\\Junk"), true),
            folder("Parent", None, false),
            folder("INBOX", None, true),
        ];
        let names = |v: Vec<Folder>| v.into_iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(names(order(&listed, None)), ["INBOX", "Junk", "Archive"]);
        let asked = ["Junk".to_string(), "Nowhere".to_string()];
        let got = order(&listed, Some(&asked));
        assert_eq!(got[0].special_use.as_deref(), Some("\\Junk"));
        assert_eq!(names(got), ["Junk", "Nowhere"]);
        assert_eq!(names(order(&[], None)), ["INBOX"]);
    }

    #[test]
    fn search_criteria_are_quoted() {
        assert_eq!(
            criteria(&Wanted::MessageId("a\"b\\c@d".into())),
            "HEADER Message-ID \"a\\\"b\\\\c@d\""
        );
        assert_eq!(
            criteria(&Wanted::SubjectDate {
                subject: Some("Hi".into()),
                date: "Tue, 3 Jun 2025\r\n 10:00:00 +0000".into()
            }),
            "HEADER Date \"Tue, 3 Jun 2025 10:00:00 +0000\" SUBJECT \"Hi\""
        );
    }
}

#[cfg(test)]
mod login_tests {
    //! AUTHENTICATE XOAUTH2 and its fallbacks, against a scripted IMAP server on loopback.
    use super::*;
    use crate::confirm::ImapUrl;
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    const TOKEN: &str = "ya29.secret-token-3c1f";
    const PASSWORD: &str = "imap-password-9d2e";

    #[test]
    fn the_xoauth2_initial_response_is_the_documented_one_and_the_smtp_one() {
        let token = Secret::new(TOKEN.to_string());
        let raw = xoauth2_initial("me@corp.example", &token);
        assert_eq!(
            raw.as_slice(),
            b"user=me@corp.example\x01auth=Bearer ya29.secret-token-3c1f\x01\x01"
        );
        // What async-imap sends (base64 of the raw response) is what SMTP AUTH XOAUTH2 sends.
        let smtp = crate::smtp::auth::xoauth2_response("me@corp.example", &token);
        assert_eq!(B64.encode(raw.as_slice()), smtp.expose());
    }

    #[test]
    fn an_error_challenge_gets_the_empty_response_and_is_kept() {
        let token = Secret::new(TOKEN.to_string());
        let mut auth = XOAuth2::new("me@corp.example", &token);
        assert!(auth.server_error().is_none());
        assert_eq!(
            auth.process(b"").as_slice(),
            xoauth2_initial("me@corp.example", &token).as_slice()
        );
        let json = br#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
        assert!(auth.clone().process(json).is_empty());
        let said = auth
            .server_error()
            .expect("the challenge is kept")
            .describe();
        assert!(
            said.contains("401") && said.contains("mail.google.com"),
            "{said}"
        );
    }

    /// What the scripted server does after CAPABILITY (when asked for) and one login command.
    #[derive(Clone, Copy)]
    enum Script {
        /// Offers AUTH=XOAUTH2 and accepts the right initial response.
        AcceptToken,
        /// Offers AUTH=XOAUTH2, answers with a JSON error challenge, then NO; then takes LOGIN.
        RefuseToken,
        /// Offers no XOAUTH2; takes LOGIN with the right password.
        NoXoauth2,
    }

    /// Serves one connection; returns every line the client sent.
    async fn serve(listener: TcpListener, script: Script) -> Vec<String> {
        let (sock, _) = listener.accept().await.expect("accept");
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        w.write_all(b"* OK scripted IMAP ready\r\n")
            .await
            .expect("greet");
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
        {
            seen.push(line.clone());
            let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
            let reply = if command.eq_ignore_ascii_case("CAPABILITY") {
                let auth = match script {
                    Script::NoXoauth2 => "AUTH=PLAIN",
                    _ => "AUTH=PLAIN AUTH=XOAUTH2",
                };
                format!("* CAPABILITY IMAP4rev1 {auth}\r\n{tag} OK done\r\n")
            } else if command.eq_ignore_ascii_case("AUTHENTICATE XOAUTH2") {
                w.write_all(b"+ \r\n").await.expect("continue");
                let response = lines.next_line().await.ok().flatten().unwrap_or_default();
                seen.push(response.clone());
                let want = B64.encode(format!(
                    "user=me@corp.example\x01auth=Bearer {TOKEN}\x01\x01"
                ));
                match script {
                    Script::AcceptToken if response == want => format!("{tag} OK logged in\r\n"),
                    _ => {
                        let json = r#"{"status":"401","schemes":"Bearer"}"#;
                        w.write_all(format!("+ {}\r\n", B64.encode(json)).as_bytes())
                            .await
                            .expect("challenge");
                        let empty = lines.next_line().await.ok().flatten().unwrap_or_default();
                        seen.push(empty);
                        format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
                    }
                }
            } else if command.starts_with("LOGIN ") {
                if command == format!("LOGIN \"me@corp.example\" \"{PASSWORD}\"") {
                    format!("{tag} OK logged in\r\n")
                } else {
                    format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
                }
            } else if command.eq_ignore_ascii_case("LOGOUT") {
                let _ = w
                    .write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                    .await;
                break;
            } else {
                format!("{tag} BAD unexpected\r\n")
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        seen
    }

    /// Logs in to the scripted server with these credentials; the result, the notes and the
    /// lines the server saw.
    async fn exchange(
        script: Script,
        token: bool,
        password: bool,
    ) -> (Result<(), String>, Vec<String>, Vec<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(serve(listener, script));
        let opts = ConfirmOptions {
            url: ImapUrl::parse(&format!("imap://me%40corp.example@127.0.0.1:{port}"))
                .expect("url"),
            password: password.then(|| Secret::new(PASSWORD.to_string())),
            token: token.then(|| Secret::new(TOKEN.to_string())),
            timeout: Duration::from_secs(5),
            folders: None,
            delete: false,
            tls: crate::tls::TlsOptions::default(),
            allow_plain_login: true,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
        };
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut client = Client::new(Stream::Plain(tcp));
        greeting(&mut client, opts.io_timeout)
            .await
            .expect("greeting");
        let mut notes = Vec::new();
        let result = match login(client, &opts, &mut notes).await {
            Ok(mut session) => {
                let _ = session.logout().await;
                Ok(())
            }
            Err(e) => Err(e),
        };
        let seen = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the scripted server ends")
            .expect("the scripted server");
        (result, notes, seen)
    }

    fn no_secret(texts: &[String]) {
        for t in texts {
            assert!(!t.contains(TOKEN) && !t.contains(PASSWORD), "{t}");
        }
    }

    #[tokio::test]
    async fn a_token_is_used_when_the_server_offers_xoauth2() {
        let (result, notes, seen) = exchange(Script::AcceptToken, true, true).await;
        assert_eq!(result, Ok(()), "{seen:?}");
        assert!(
            seen.iter().any(|l| l.ends_with("AUTHENTICATE XOAUTH2")),
            "{seen:?}"
        );
        assert!(!seen.iter().any(|l| l.contains(" LOGIN ")), "{seen:?}");
        assert!(
            notes.iter().any(|n| n.contains("AUTHENTICATE XOAUTH2")),
            "{notes:?}"
        );
        no_secret(&notes);
    }

    #[tokio::test]
    async fn a_refused_token_without_a_password_is_a_clear_error() {
        let (result, notes, seen) = exchange(Script::RefuseToken, true, false).await;
        let error = result.expect_err("refused");
        assert!(error.contains("refused the OAuth token"), "{error}");
        assert!(error.contains("AUTHENTICATIONFAILED"), "{error}");
        assert!(error.contains("status 401"), "{error}");
        // The error challenge was answered with the empty response.
        assert!(seen.iter().any(String::is_empty), "{seen:?}");
        no_secret(&[error]);
        no_secret(&notes);
    }

    #[tokio::test]
    async fn a_refused_token_falls_back_to_the_password() {
        let (result, notes, seen) = exchange(Script::RefuseToken, true, true).await;
        assert_eq!(result, Ok(()), "{seen:?}");
        assert!(seen.iter().any(|l| l.contains(" LOGIN ")), "{seen:?}");
        assert!(
            notes.iter().any(|n| n.contains("refused the OAuth token")
                && n.contains("logging in with the IMAP password instead")),
            "{notes:?}"
        );
        no_secret(&notes);
    }

    #[tokio::test]
    async fn without_xoauth2_the_password_is_used_or_the_check_stops() {
        let (result, notes, seen) = exchange(Script::NoXoauth2, true, true).await;
        assert_eq!(result, Ok(()), "{seen:?}");
        assert!(!seen.iter().any(|l| l.contains("AUTHENTICATE")), "{seen:?}");
        assert!(
            notes.iter().any(|n| n.contains("offers no AUTH=XOAUTH2")),
            "{notes:?}"
        );

        let (result, _, seen) = exchange(Script::NoXoauth2, true, false).await;
        let error = result.expect_err("no way to log in");
        assert!(error.contains("offers no AUTH=XOAUTH2"), "{error}");
        assert!(!seen
            .iter()
            .any(|l| l.contains("LOGIN") || l.contains("AUTHENTICATE")));

        // No token: no CAPABILITY, straight to LOGIN (as before).
        let (result, notes, seen) = exchange(Script::NoXoauth2, false, true).await;
        assert_eq!(result, Ok(()), "{seen:?}");
        assert!(notes.is_empty() && !seen.iter().any(|l| l.contains("CAPABILITY")));
    }
}
