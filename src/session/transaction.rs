//! The mail transactions: MAIL, RCPT for each recipient, DATA and the message, one transaction
//! per [`MAX_RCPTS_PER_TRANSACTION`] recipients on the same connection. A transaction whose
//! recipients were all refused is reset and the next one tried; any other refusal ends the session.

use super::conn::Conn;
use super::data;
use super::{is_2xx, Session, Stop, MAX_RCPTS_PER_TRANSACTION};
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::smtp::rules;
use crate::transcript::{Capabilities, Failure, RecipientResult, Stage};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::RcptParameter;
use lettre::Address;

impl Session<'_> {
    /// Every transaction of the envelope, in order.
    pub(super) async fn transactions(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        let chunks: Vec<&[Address]> = envelope
            .recipients
            .chunks(MAX_RCPTS_PER_TRANSACTION)
            .collect();
        let mut first: Option<(Failure, Exit)> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let base = self.recipients.len();
            match self.transaction(conn, caps, message, envelope, chunk).await {
                Ok(()) if self.quit_early => return Ok(()),
                Ok(()) => {}
                Err(stop @ (Stop::Broken(_) | Stop::Fatal(..))) => {
                    // The session broke before this transaction's message was accepted (at RCPT,
                    // DATA or waiting for the final reply): none of its recipients got the mail.
                    self.not_delivered(base);
                    return Err(stop);
                }
                Err(Stop::Refused(f, exit)) => {
                    first.get_or_insert((f.clone(), exit));
                    let more = i + 1 < chunks.len();
                    if !self.go_on(conn, f, exit, more).await? {
                        return Ok(());
                    }
                }
            }
        }
        // --quit-after rcpt: every chunk's recipients were tried (and reset); stop here.
        self.stop_here(Stage::Rcpt);
        match first {
            Some((f, exit)) if !self.recipients.iter().any(|r| r.accepted) => {
                Err(Stop::Refused(f, exit))
            }
            _ => Ok(()),
        }
    }

    /// After a refused transaction: `true` to go on with the next one (its recipients were refused
    /// and RSET was accepted), `false` to end the session having delivered to someone; the refusal
    /// itself when nobody got the message.
    async fn go_on(
        &mut self,
        conn: &mut Conn,
        f: Failure,
        exit: Exit,
        more: bool,
    ) -> Result<bool, Stop> {
        let delivered = self.recipients.iter().any(|r| r.accepted);
        if rules::next_transaction(&f) && more {
            let rset = self.rset(conn).await?;
            if rset {
                return Ok(true);
            }
        }
        if delivered {
            return Ok(false);
        }
        Err(Stop::Refused(f, exit))
    }

    /// MAIL, RCPT for each of `recipients`, DATA and the message.
    async fn transaction(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
        recipients: &[Address],
    ) -> Result<(), Stop> {
        let base = self.recipients.len();
        let rcpt_params = self.mail(conn, caps, message, envelope).await?;
        if self.stop_here(Stage::Mail) {
            self.rset(conn).await?;
            return Ok(());
        }
        self.rcpts(conn, recipients, &rcpt_params, base).await?;
        if self.opts.quit_after == Some(Stage::Rcpt) {
            // Probe only: reset this transaction; `transactions` stops after the last one.
            self.rset(conn).await?;
            return Ok(());
        }
        self.data(conn, message, base).await
    }

    /// MAIL FROM with its parameters; returns the parameters for each RCPT.
    async fn mail(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<Vec<RcptParameter>, Stop> {
        let size = message.normalized_len();
        let dsn = &self.opts.dsn;
        let plan = rules::mail_parameters(
            caps,
            size,
            message.eight_bit,
            envelope.needs_smtputf8(),
            dsn,
        );
        self.warnings.extend(plan.warnings);
        let params = plan.params.map_err(|(f, exit)| Stop::Refused(f, exit))?;
        if let Some(note) = plan.note {
            self.warn(note);
        }
        let rcpt_params = rules::rcpt_parameters(dsn, caps.dsn);
        let line = Mail::new(envelope.from.clone(), params).to_string();
        let mail = self.chat.command(conn, Stage::Mail, line, is_2xx).await?;
        if !mail.is_positive() {
            let what = "the server refused the sender (MAIL FROM)";
            let f = Failure::refused(Stage::Mail, &mail, what);
            return Err(Stop::Refused(f, Exit::Mail));
        }
        self.mail_accepted = true;
        Ok(rcpt_params)
    }

    /// RCPT for each of `recipients` (those of this transaction start at `base`); at least one
    /// must be accepted, and a 421 ends the session.
    async fn rcpts(
        &mut self,
        conn: &mut Conn,
        recipients: &[Address],
        params: &[RcptParameter],
        base: usize,
    ) -> Result<(), Stop> {
        for rcpt in recipients {
            let line = Rcpt::new(rcpt.clone(), params.to_vec()).to_string();
            let reply = self.chat.command(conn, Stage::Rcpt, line, is_2xx).await?;
            let closing = reply.code == 421;
            self.recipients.push(RecipientResult {
                address: rcpt.to_string(),
                accepted: reply.is_positive(),
                reply: Some(reply.clone()),
            });
            if closing {
                self.not_delivered(base);
                let f = Failure::refused(Stage::Rcpt, &reply, "the server is closing the session");
                return Err(Stop::Refused(f, Exit::Rcpt));
            }
        }
        if !self.recipients[base..].iter().any(|r| r.accepted) {
            let f = rules::no_recipient_accepted(&self.recipients[base..]);
            return Err(Stop::Refused(f, Exit::Rcpt));
        }
        Ok(())
    }

    /// DATA, the message and its final reply.
    async fn data(&mut self, conn: &mut Conn, message: &Message, base: usize) -> Result<(), Stop> {
        let line = Data.to_string();
        let ready = self
            .chat
            .command(conn, Stage::Data, line, |c| c == 354)
            .await?;
        if ready.code != 354 {
            self.not_delivered(base);
            let f = Failure::refused(Stage::Data, &ready, "the server refused DATA");
            return Err(Stop::Refused(f, Exit::Data));
        }
        let reply = data::transfer(&mut self.chat, conn, message).await?;
        if reply.is_positive() {
            self.queued_as.get_or_insert_with(|| reply.text());
            return Ok(());
        }
        self.recipients.iter_mut().for_each(|r| r.accepted = false);
        let what = "the server refused the message after the data";
        let f = Failure::refused(Stage::Message, &reply, what);
        Err(Stop::Refused(f, Exit::Message))
    }

    /// RSET; `true` when it was accepted.
    async fn rset(&mut self, conn: &mut Conn) -> Result<bool, Stop> {
        let line = Rset.to_string();
        let reply = self.chat.command(conn, Stage::Rset, line, is_2xx).await?;
        Ok(reply.is_positive())
    }

    /// The recipients from `base` on did not get the message.
    fn not_delivered(&mut self, base: usize) {
        self.recipients[base..]
            .iter_mut()
            .for_each(|r| r.accepted = false);
    }
}
