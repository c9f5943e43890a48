//! TLS in the session: STARTTLS as `--tls` asks, the handshake (after STARTTLS, or at once for
//! implicit TLS), the certificate verdict, and EHLO again over TLS.
//!
//! The STARTTLS command is written alone; bytes the server sends after its 220 and before the
//! handshake are a protocol violation (CVE-2011-0411 class) and end the session. A failed
//! handshake ends it too, with the TLS exit code and without QUIT.

use super::conn::Conn;
use super::{is_2xx, Session, Stop};
use crate::events::Event;
use crate::exit::Exit;
use crate::smtp::codec::{escape_line, parse_capabilities};
use crate::smtp::rules::{self, StartTls, Trust};
use crate::tls;
use crate::transcript::{BreakKind, Capabilities, Failure, FailureClass, Stage};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use std::time::Instant;

impl Session<'_> {
    /// STARTTLS when offered (opportunistic) or always (required); after the handshake EHLO is
    /// sent again and only its capabilities are used.
    pub(super) async fn starttls(
        &mut self,
        conn: &mut Conn,
        caps: Capabilities,
        id: &ClientId,
    ) -> Result<Capabilities, Stop> {
        let policy = self.opts.tls.policy;
        let host = self.attempt.host.clone();
        if !self.go_ahead(rules::starttls_offer(policy, &host, caps.starttls))? {
            return Ok(caps);
        }
        let line = "STARTTLS\r\n".to_string();
        let reply = self
            .chat
            .command(conn, Stage::Starttls, line, |c| c == 220)
            .await?;
        if !self.go_ahead(rules::starttls_reply(policy, &host, &reply))? {
            return Ok(caps);
        }
        self.refuse_injected(conn)?;
        self.handshake(conn, Stage::Starttls).await?;
        self.tls_verdict()?;
        let after = self.ehlo_again(conn, id).await?;
        self.attempt.capabilities_before_tls = Some(caps);
        if let Some(c) = &mut self.attempt.capabilities {
            c.starttls = true;
        }
        Ok(after)
    }

    /// Acts on a STARTTLS decision: `true` to go on with TLS, `false` to stay in clear.
    fn go_ahead(&mut self, decision: StartTls) -> Result<bool, Stop> {
        match decision {
            StartTls::NotWanted => Ok(false),
            StartTls::Proceed => Ok(true),
            StartTls::InClear(warning) => {
                self.warn(warning);
                Ok(false)
            }
            StartTls::Fail(f) => Err(Stop::Refused(f, Exit::Tls)),
        }
    }

    /// Anything buffered after the 220 to STARTTLS was sent in clear and would be taken as coming
    /// from inside the TLS session: never used, and the session is abandoned.
    fn refuse_injected(&mut self, conn: &mut Conn) -> Result<(), Stop> {
        if conn.pending().is_empty() {
            return Ok(());
        }
        let junk = conn.take_pending();
        let why = format!(
            "protocol violation: the server sent {} byte(s) after its 220 reply to STARTTLS, before the TLS handshake ({}); discarded and the session abandoned (CVE-2011-0411 class: data injected across STARTTLS)",
            junk.len(),
            escape_line(&junk[..junk.len().min(80)])
        );
        let started = self.chat.start(Stage::Starttls, None, None);
        Err(self.fatal(Stage::Starttls, started, BreakKind::Protocol, why))
    }

    /// The TLS handshake over the current connection (`stage` is `starttls` after STARTTLS, `tls`
    /// for implicit TLS). The certificate verdict is recorded, not enforced: see
    /// [`Session::tls_verdict`].
    pub(super) async fn handshake(&mut self, conn: &mut Conn, stage: Stage) -> Result<(), Stop> {
        let started = self.chat.start(stage, None, None);
        let name = self.opts.tls.verify_name(&self.attempt.host);
        let setup = tls::client_config(&self.opts.tls)
            .and_then(|(config, verifier)| Ok((config, verifier, tls::server_name(&name)?)));
        let (config, verifier, server_name) = match setup {
            Ok(x) => x,
            Err(why) => return Err(self.fatal(stage, started, BreakKind::Protocol, why)),
        };
        let check = tls::Check {
            mode: self.opts.tls.policy,
            name: &name,
            insecure: self.opts.tls.insecure,
            now_unix: crate::time::now_unix(),
        };
        let describe = |c: &rustls::ClientConnection| tls::describe(c, verifier.seen(), check);
        let info = match conn
            .upgrade(config, server_name, self.opts.timeout, describe)
            .await
        {
            Ok(info) => info,
            Err(((kind, why), plain)) => {
                self.handshake_failed = true;
                let why = match rules::handshake_advice(self.opts.tls.policy, kind, plain) {
                    Some(advice) => format!("{why}; {advice}"),
                    None => why,
                };
                return Err(self.fatal(stage, started, kind, why));
            }
        };
        self.encrypted = true;
        self.chat.passed(stage, started);
        let mut info = info;
        info.client_certificate = self
            .opts
            .tls
            .client_cert
            .as_ref()
            .map(|c| c.subject.clone());
        self.events.on(&Event::TlsEstablished(&info));
        self.attempt.tls = Some(info);
        Ok(())
    }

    /// Records a TLS set-up step that broke: the exit code is the TLS one and no QUIT is sent. A
    /// handshake refused by the server (anything but a timeout or a dropped connection) fails the
    /// same way every time: permanent.
    fn fatal(&mut self, stage: Stage, started: Instant, kind: BreakKind, why: String) -> Stop {
        let mut broke = self.chat.broke(stage, None, started, kind, why);
        if kind == BreakKind::Protocol {
            broke.0.class = FailureClass::Permanent;
        }
        Stop::Fatal(broke.0, Exit::Tls)
    }

    /// Applies the certificate verdict: with `--tls required` or `implicit` (without `--insecure`)
    /// a certificate that did not verify ends the session; otherwise it is a warning.
    pub(super) fn tls_verdict(&mut self) -> Result<(), Stop> {
        let Some(info) = &self.attempt.tls else {
            return Ok(());
        };
        let (policy, insecure) = (self.opts.tls.policy, self.opts.tls.insecure);
        let expiry = rules::expiry_warning(info, self.opts.tls.warn_days);
        let decision = rules::certificate(policy, insecure, info);
        if let Some(w) = expiry {
            self.warn(w);
        }
        match decision {
            Trust::Accepted => Ok(()),
            Trust::Warn(warning) => {
                self.warn(warning);
                Ok(())
            }
            Trust::Refused(f) => Err(Stop::Refused(f, Exit::Tls)),
        }
    }

    /// EHLO over TLS: its capabilities replace those given in clear.
    async fn ehlo_again(&mut self, conn: &mut Conn, id: &ClientId) -> Result<Capabilities, Stop> {
        let line = Ehlo::new(id.clone()).to_string();
        let ehlo = self.chat.command(conn, Stage::Ehlo, line, is_2xx).await?;
        if !ehlo.is_positive() {
            let f = Failure::refused(Stage::Ehlo, &ehlo, "the server refused EHLO after STARTTLS");
            return Err(Stop::Refused(f, Exit::Hello));
        }
        let caps = parse_capabilities(&ehlo);
        self.attempt.capabilities = Some(caps.clone());
        Ok(caps)
    }
}
