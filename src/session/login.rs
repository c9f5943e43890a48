//! AUTH with `--auth-user`: refused before any credential is sent when the connection is not
//! encrypted (or its certificate did not verify) unless `--allow-plain-auth`, or when the server
//! offers no AUTH (see [`rules::auth_gate`], which words the refusal by what would be sent: the
//! password, the OAuth token, or nothing secret for EXTERNAL); then PLAIN, LOGIN, CRAM-MD5,
//! SCRAM-SHA-256, with an OAuth token OAUTHBEARER or XOAUTH2, with a client certificate EXTERNAL. Credentials appear in the transcript only redacted.

use super::conn::Conn;
use super::{is_2xx, Session, Stop};
use crate::exit::Exit;
use crate::secret::Secret;
use crate::smtp::auth::{self, AuthOptions, Mechanism};
use crate::smtp::rules::{self, AuthGate};
use crate::transcript::{Capabilities, Failure, Reply, Stage};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The decoded text of a `334` challenge (empty when it is not base64 text).
fn decoded(r: &Reply) -> String {
    let text = r
        .lines
        .first()
        .and_then(|l| l.get(4..))
        .unwrap_or("")
        .trim();
    String::from_utf8(B64.decode(text).unwrap_or_default()).unwrap_or_default()
}

/// A refusal decided on this side: nothing (more) was sent.
fn refuse(reason: String) -> Stop {
    Stop::Refused(rules::auth_failure(reason), Exit::Auth)
}

fn is_334(code: u16) -> bool {
    code == 334
}

impl Session<'_> {
    /// Logs in when `--auth-user` was given.
    pub(super) async fn authenticate(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
    ) -> Result<(), Stop> {
        let opts = self.opts;
        let Some(auth) = &opts.auth else {
            return Ok(());
        };
        let user = auth.user.as_str();
        let mut have = Vec::new();
        if auth.token.is_some() {
            have.push(auth::Credential::Token);
        }
        if auth.password.is_some() {
            have.push(auth::Credential::Password);
        }
        if self.opts.tls.client_cert.is_some() {
            have.push(auth::Credential::Certificate);
        }
        let chosen = auth::choose(&caps.auth, auth.mechanism, &have);
        // What the login would send, for the gate's wording: the chosen mechanism's credential,
        // else (no usable offer) the best one at hand.
        let credential = match &chosen {
            Ok((m, _)) => m.credential(),
            Err(_) => have.first().copied().unwrap_or(auth::Credential::Password),
        };
        let tls = self.attempt.tls.as_ref();
        let gate = AuthGate {
            user,
            allow_plain: auth.allow_unencrypted,
            encrypted: self.encrypted,
            verified: tls.is_none_or(|t| t.verified),
            reason: tls.and_then(|t| t.reason.as_deref()),
            insecure: opts.tls.insecure,
            offered: !caps.auth.is_empty(),
            credential,
        };
        rules::auth_gate(&gate).map_err(|f| Stop::Refused(f, Exit::Auth))?;
        let (mech, advertised) =
            chosen.map_err(|why| refuse(format!("cannot log in as {user}: {why}")))?;
        if !advertised {
            self.warn(format!(
                "AUTH {} was forced with --auth-mech although the server offers only AUTH {}",
                mech.as_str(),
                caps.auth.join(" ")
            ));
        }
        self.chat
            .keep_credentials(user, auth.password.as_ref(), auth.token.as_ref());
        let (last, detail) = self.log_in(conn, auth, mech).await?;
        if last.is_positive() {
            return Ok(());
        }
        let what = match detail {
            Some(detail) => format!(
                "authentication as {user} ({}) failed; {detail}",
                mech.as_str()
            ),
            None => format!("authentication as {user} ({}) failed", mech.as_str()),
        };
        let f = Failure::refused(Stage::Auth, &last, &what);
        Err(Stop::Refused(f, Exit::Auth))
    }

    /// The exchange of `mech`; returns the last reply, and what the server said about a failure
    /// beyond its reply (the decoded OAuth error).
    async fn log_in(
        &mut self,
        conn: &mut Conn,
        auth: &AuthOptions,
        mech: Mechanism,
    ) -> Result<(Reply, Option<String>), Stop> {
        let user = auth.user.as_str();
        let missing = |what: &str| {
            refuse(format!(
                "cannot log in as {user} with {}: no {what} was given",
                mech.as_str()
            ))
        };
        let password = || auth.password.as_ref().ok_or_else(|| missing("password"));
        let r = match mech {
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => {
                let token = auth.token.as_ref().ok_or_else(|| {
                    missing("OAuth token (SMTPCHECK_OAUTH2_TOKEN, --oauth2-token-file, --oauth2-token-cmd or --oauth2-flow)")
                })?;
                return self.oauth(conn, user, token, mech).await;
            }
            Mechanism::Plain => {
                let password = password()?;
                let line = auth::plain_command(user, password);
                let shown = mech.shown_command(user);
                self.chat
                    .command_secret(conn, Stage::Auth, &line, shown, is_2xx, Some(password))
                    .await?
            }
            Mechanism::Login => self.login(conn, user, password()?).await?,
            Mechanism::CramMd5 => self.cram_md5(conn, user, password()?).await?,
            Mechanism::ScramSha256 => self.scram(conn, user, password()?).await?,
            // RFC 4954: "=" is the empty initial response (no authorisation identity: the
            // server derives it from the certificate).
            Mechanism::External => {
                let line = "AUTH EXTERNAL =\r\n".to_string();
                self.chat.command(conn, Stage::Auth, line, is_2xx).await?
            }
        };
        Ok((r, None))
    }

    /// OAUTHBEARER (RFC 7628) or XOAUTH2: the token as an initial response when the line fits
    /// (RFC 4954), else after the server's empty `334`. A failure comes as `334 base64(JSON)`:
    /// answered with the empty response (RFC 7628 3.2.3), the JSON decoded for the verdict.
    async fn oauth(
        &mut self,
        conn: &mut Conn,
        user: &str,
        token: &Secret,
        mech: Mechanism,
    ) -> Result<(Reply, Option<String>), Stop> {
        let response = match mech {
            Mechanism::OAuthBearer => {
                let host = self.attempt.host.clone();
                auth::oauthbearer_response(user, &host, self.attempt.port, token)
            }
            _ => auth::xoauth2_response(user, token),
        };
        let mut r = if auth::fits_initial_response(mech, &response) {
            let line = Secret::new(format!("AUTH {} {}", mech.as_str(), response.expose()));
            let shown = mech.shown_command(user);
            self.chat
                .command_secret(conn, Stage::Auth, &line, shown, is_2xx, Some(token))
                .await?
        } else {
            let line = format!("AUTH {}\r\n", mech.as_str());
            let r = self.chat.command(conn, Stage::Auth, line, is_334).await?;
            if r.code != 334 {
                return Ok((r, None));
            }
            let shown = auth::redacted("token", user);
            self.chat
                .command_secret(conn, Stage::Auth, &response, shown, is_2xx, Some(token))
                .await?
        };
        if r.code != 334 {
            return Ok((r, None));
        }
        let text = r.lines.first().and_then(|l| l.get(4..)).unwrap_or("");
        let detail = match auth::OAuthError::decode(text) {
            Some(e) => {
                let said = self.chat.scrubbed(e.describe());
                format!("the server's OAuth error: {said}")
            }
            None => "the server's 334 challenge after the token is not base64 JSON".to_string(),
        };
        let shown = format!("(empty response, acknowledging the error: {detail})");
        r = self
            .chat
            .exchange(conn, Stage::Auth, b"\r\n", shown, is_2xx)
            .await?;
        Ok((r, Some(detail)))
    }

    /// AUTH LOGIN: the user name, then the password, each after a 334.
    async fn login(
        &mut self,
        conn: &mut Conn,
        user: &str,
        password: &Secret,
    ) -> Result<Reply, Stop> {
        let line = "AUTH LOGIN\r\n".to_string();
        let r = self.chat.command(conn, Stage::Auth, line, is_334).await?;
        if r.code != 334 {
            return Ok(r);
        }
        let line = format!("{}\r\n", auth::login_user(user));
        let shown = format!("<user name {user}, base64>");
        let r = self
            .chat
            .exchange(conn, Stage::Auth, line.as_bytes(), shown, is_334)
            .await?;
        if r.code != 334 {
            return Ok(r);
        }
        let line = auth::login_password(password);
        let shown = auth::redacted("password", user);
        let r = self
            .chat
            .command_secret(conn, Stage::Auth, &line, shown, is_2xx, Some(password))
            .await?;
        Ok(r)
    }

    /// AUTH SCRAM-SHA-256 (RFC 7677): the client-first message as the initial response, the proof
    /// after the server-first message, then the server's signature checked: a server that cannot
    /// prove it knows the password is a failure, even when it says 235. A server message that
    /// cannot be used cancels the exchange ("*").
    async fn scram(
        &mut self,
        conn: &mut Conn,
        user: &str,
        password: &Secret,
    ) -> Result<Reply, Stop> {
        let nonce = auth::Scram::random_nonce()
            .map_err(|why| refuse(format!("cannot log in as {user}: {why}")))?;
        let mut scram = auth::Scram::new(user, &nonce);
        let first = scram.client_first();
        let line = format!("AUTH SCRAM-SHA-256 {}\r\n", B64.encode(&first));
        let shown = format!("AUTH SCRAM-SHA-256 <client-first {first}, base64>");
        let r = self
            .chat
            .exchange(conn, Stage::Auth, line.as_bytes(), shown, is_334)
            .await?;
        if r.code != 334 {
            return Ok(r);
        }
        let server_first = decoded(&r);
        let (last, proof) = match scram.client_final(password, &server_first) {
            Ok(x) => x,
            Err(why) => return self.cancel(conn, user, why).await,
        };
        self.chat.keep(&proof);
        let shown = auth::redacted("SCRAM proof", user);
        let r = self
            .chat
            .command_secret(conn, Stage::Auth, &last, shown, is_334, Some(password))
            .await?;
        let verified = match r.code {
            334 => scram.verify(&decoded(&r)),
            // RFC 4954 4: the server-final message may come with the 235.
            235 => match decoded(&r) {
                extra if extra.is_empty() => Err("the server accepted the login without its SCRAM signature (v=): it did not prove it knows the password".to_string()),
                extra => scram.verify(&extra),
            },
            _ => return Ok(r),
        };
        if let Err(why) = verified {
            if r.code == 334 {
                return self.cancel(conn, user, why).await;
            }
            return Err(refuse(format!(
                "authentication as {user} (SCRAM-SHA-256) failed: {why}"
            )));
        }
        if r.code == 235 {
            return Ok(r);
        }
        let shown = "(empty response: the server's SCRAM signature is verified)".to_string();
        let r = self
            .chat
            .exchange(conn, Stage::Auth, b"\r\n", shown, is_2xx)
            .await?;
        Ok(r)
    }

    /// Cancels an exchange ("*", RFC 4954) and refuses with `why`.
    async fn cancel(&mut self, conn: &mut Conn, user: &str, why: String) -> Result<Reply, Stop> {
        let cancel = "*\r\n".to_string();
        self.chat
            .command(conn, Stage::Auth, cancel, |_| true)
            .await?;
        Err(refuse(format!("cannot log in as {user}: {why}")))
    }

    /// AUTH CRAM-MD5: the response to the server's challenge; a challenge that cannot be answered
    /// cancels the exchange ("*", RFC 4954) and refuses.
    async fn cram_md5(
        &mut self,
        conn: &mut Conn,
        user: &str,
        password: &Secret,
    ) -> Result<Reply, Stop> {
        let line = "AUTH CRAM-MD5\r\n".to_string();
        let r = self.chat.command(conn, Stage::Auth, line, is_334).await?;
        if r.code != 334 {
            return Ok(r);
        }
        let challenge = r.lines.first().and_then(|l| l.get(4..)).unwrap_or("");
        match auth::cram_md5_response(user, password, challenge) {
            Ok(line) => {
                let shown = auth::redacted("CRAM-MD5 response", user);
                let r = self
                    .chat
                    .command_secret(conn, Stage::Auth, &line, shown, is_2xx, Some(password))
                    .await?;
                Ok(r)
            }
            Err(why) => {
                let cancel = "*\r\n".to_string();
                self.chat
                    .command(conn, Stage::Auth, cancel, |_| true)
                    .await?;
                Err(refuse(format!("cannot log in as {user}: {why}")))
            }
        }
    }
}
