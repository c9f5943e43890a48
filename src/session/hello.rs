//! The opening of the conversation: the greeting (220 or the session is refused) and EHLO, falling
//! back to HELO only when EHLO is not recognised or not implemented.

use super::conn::Conn;
use super::options::Helo;
use super::{is_2xx, Session, Stop};
use crate::exit::Exit;
use crate::smtp::codec::parse_capabilities;
use crate::smtp::rules;
use crate::transcript::{Capabilities, Failure, Policy, Reply, Stage};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use std::net::IpAddr;

impl Session<'_> {
    /// Reads the greeting; anything but 220 refuses the session. With implicit TLS the certificate
    /// verdict is applied now, so that a refusal can still end with QUIT over TLS.
    pub(super) async fn greet(&mut self, conn: &mut Conn) -> Result<(), Stop> {
        let greeting = self
            .chat
            .receive(conn, Stage::Greeting, |c| c == 220)
            .await?;
        if greeting.code != 220 {
            let f = Failure::refused(
                Stage::Greeting,
                &greeting,
                "the server refused the session in its greeting",
            );
            return Err(Stop::Refused(f, Exit::Greeting));
        }
        if self.opts.tls.policy == Policy::Implicit {
            self.tls_verdict()?;
        }
        self.attempt.greeting_name = greeting_name(&greeting);
        Ok(())
    }

    /// EHLO, or HELO after an EHLO refused as not recognised or not implemented; returns the
    /// capabilities (none after HELO).
    pub(super) async fn hello(
        &mut self,
        conn: &mut Conn,
        id: &ClientId,
    ) -> Result<Capabilities, Stop> {
        let line = Ehlo::new(id.clone()).to_string();
        let ehlo = self.chat.command(conn, Stage::Ehlo, line, is_2xx).await?;
        if ehlo.is_positive() {
            let caps = parse_capabilities(&ehlo);
            self.attempt.capabilities = Some(caps.clone());
            return Ok(caps);
        }
        if !rules::helo_fallback(ehlo.code) {
            let f = Failure::refused(Stage::Ehlo, &ehlo, "the server refused EHLO");
            return Err(Stop::Refused(f, Exit::Hello));
        }
        let line = format!("HELO {id}\r\n");
        let helo = self.chat.command(conn, Stage::Helo, line, is_2xx).await?;
        if !helo.is_positive() {
            let f = Failure::refused(Stage::Helo, &helo, "the server refused both EHLO and HELO");
            return Err(Stop::Refused(f, Exit::Hello));
        }
        Ok(Capabilities::default())
    }

    /// The name for EHLO/HELO.
    pub(super) fn client_id(&self) -> ClientId {
        match &self.opts.helo {
            Helo::Given(id) => id.clone(),
            Helo::Auto(Some(fqdn)) => ClientId::Domain(fqdn.clone()),
            Helo::Auto(None) => match self.local.map(|a| a.ip()) {
                Some(IpAddr::V4(v4)) => ClientId::Ipv4(v4),
                Some(IpAddr::V6(v6)) => ClientId::Ipv6(v6),
                None => ClientId::Ipv4(std::net::Ipv4Addr::LOCALHOST),
            },
        }
    }
}

/// The name the server gives in its greeting, when it is a valid domain.
fn greeting_name(greeting: &Reply) -> Option<String> {
    greeting
        .lines
        .first()
        .and_then(|l| l.get(4..))
        .and_then(|t| t.split_whitespace().next())
        .filter(|n| crate::address::check_domain(n).is_ok())
        .map(str::to_string)
}
