//! The mail transactions: MAIL, RCPT for each recipient, DATA and the message, one transaction
//! per [`MAX_RCPTS_PER_TRANSACTION`] recipients on the same connection. A transaction whose
//! recipients were all refused is reset and the next one tried; any other refusal ends the session.
//! When the server limits the recipients of a transaction (RFC 5321 4.5.3.1.10: 452 or 4.5.3), the
//! recipients it did not take go in a further transaction, as many times as needed (at most
//! [`MAX_TRANSACTIONS`]) and never twice to a recipient it answered.

use super::conn::Conn;
use super::data;
use super::{is_2xx, Session, Stop, MAX_RCPTS_PER_TRANSACTION};
use crate::exit::Exit;
use crate::message::{Envelope, Message};
use crate::smtp::rules;
use crate::transcript::{Capabilities, Failure, RcptStatus, RecipientResult, Stage};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::RcptParameter;
use lettre::Address;
use std::collections::VecDeque;

/// The most transactions in one session (a bound on the recipient-limit loop).
pub const MAX_TRANSACTIONS: usize = 50;

impl Session<'_> {
    /// Every transaction of the envelope, in order.
    pub(super) async fn transactions(
        &mut self,
        conn: &mut Conn,
        caps: &Capabilities,
        message: &Message,
        envelope: &Envelope,
    ) -> Result<(), Stop> {
        let mut queue: VecDeque<Address> = envelope.recipients.iter().cloned().collect();
        let mut first: Option<(Failure, Exit)> = None;
        let mut count = 0;
        while !queue.is_empty() {
            count += 1;
            if count > MAX_TRANSACTIONS {
                let why =
                    format!("not offered: the session reached {MAX_TRANSACTIONS} transactions");
                self.leave(queue.drain(..), &why);
                break;
            }
            let take = queue.len().min(MAX_RCPTS_PER_TRANSACTION);
            let chunk: Vec<Address> = queue.drain(..take).collect();
            let base = self.recipients.len();
            let result = self
                .transaction(conn, caps, message, envelope, &chunk)
                .await;
            let left = std::mem::take(&mut self.limited);
            // A fresh transaction whose first RCPT met the limit makes no progress: stop there.
            let stuck = std::mem::take(&mut self.limit_stuck);
            for a in left.into_iter().rev() {
                queue.push_front(a);
            }
            match result {
                Ok(()) if self.quit_early => return Ok(()),
                Ok(()) => {}
                Err(stop @ (Stop::Broken(_) | Stop::Fatal(..))) => {
                    // The session broke before this transaction's message was accepted (at RCPT,
                    // DATA or waiting for the final reply): none of its recipients got the mail.
                    let why = stop_reason(&stop);
                    self.not_delivered(base, &why);
                    self.leave(queue.drain(..), &format!("not offered: {why}"));
                    return Err(stop);
                }
                Err(Stop::Refused(f, exit)) => {
                    first.get_or_insert((f.clone(), exit));
                    let more = !queue.is_empty() && !stuck;
                    if !self.go_on(conn, f.clone(), exit, more).await? {
                        self.leave(queue.drain(..), &format!("not offered: {}", f.reason));
                        return Ok(());
                    }
                }
            }
            if stuck {
                let why = "not offered: the server took no recipient in a further transaction";
                self.leave(queue.drain(..), why);
                break;
            }
        }
        // --quit-after rcpt: every chunk's recipients were tried (and reset); stop here.
        self.stop_here(Stage::Rcpt);
        let anyone = self
            .recipients
            .iter()
            .any(|r| r.accepted || r.status == RcptStatus::RcptAccepted);
        match first {
            Some((f, exit)) if !anyone => Err(Stop::Refused(f, exit)),
            _ => Ok(()),
        }
    }

    /// Records `addresses` as never offered, with `why`.
    fn leave(&mut self, addresses: impl Iterator<Item = Address>, why: &str) {
        for a in addresses {
            self.recipients.push(RecipientResult::not_tried(
                a.to_string(),
                Some(why.to_string()),
            ));
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
    /// must be accepted, and a 421 ends the session. A recipient-limit reply after the first RCPT
    /// leaves it and the rest in `limited`, for a further transaction.
    async fn rcpts(
        &mut self,
        conn: &mut Conn,
        recipients: &[Address],
        params: &[RcptParameter],
        base: usize,
    ) -> Result<(), Stop> {
        for (i, rcpt) in recipients.iter().enumerate() {
            let line = Rcpt::new(rcpt.clone(), params.to_vec()).to_string();
            let reply = self.chat.command(conn, Stage::Rcpt, line, is_2xx).await?;
            if rules::recipient_limit(&reply) {
                self.warn(rules::recipient_limit_note(&reply));
                if i == 0 {
                    // Not even one in a fresh transaction: this recipient is deferred, and a
                    // further transaction would make no progress.
                    self.recipients
                        .push(RecipientResult::answered(rcpt.to_string(), reply));
                    self.limit_stuck = true;
                    self.limited = recipients[1..].to_vec();
                } else {
                    self.limited = recipients[i..].to_vec();
                }
                break;
            }
            let closing = reply.code == 421;
            self.recipients
                .push(RecipientResult::answered(rcpt.to_string(), reply.clone()));
            if closing {
                let f = Failure::refused(Stage::Rcpt, &reply, "the server is closing the session");
                self.not_delivered(base, &f.reason);
                return Err(Stop::Refused(f, Exit::Rcpt));
            }
        }
        if !self.recipients[base..].iter().any(RecipientResult::rcpt_ok) {
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
            let f = Failure::refused(Stage::Data, &ready, "the server refused DATA");
            self.answered(base, &ready, &f.reason);
            return Err(Stop::Refused(f, Exit::Data));
        }
        let reply = data::transfer(&mut self.chat, conn, message).await?;
        if reply.is_positive() {
            self.queued_as.get_or_insert_with(|| reply.text());
            if self.queue_id.is_none() {
                self.queue_id = rules::queue_id(&reply);
            }
            for r in &mut self.recipients[base..] {
                if r.status == RcptStatus::RcptAccepted {
                    r.set(RcptStatus::Delivered, None);
                }
            }
            return Ok(());
        }
        let what = "the server refused the message after the data";
        let f = Failure::refused(Stage::Message, &reply, what);
        self.answered(base, &reply, &f.reason);
        Err(Stop::Refused(f, Exit::Message))
    }

    /// RSET; `true` when it was accepted.
    async fn rset(&mut self, conn: &mut Conn) -> Result<bool, Stop> {
        let line = Rset.to_string();
        let reply = self.chat.command(conn, Stage::Rset, line, is_2xx).await?;
        Ok(reply.is_positive())
    }

    /// The recipients accepted at RCPT from `base` on were refused (5xx) or deferred (4xx) with
    /// the message: `reply` says which, `why` is their reason.
    fn answered(&mut self, base: usize, reply: &crate::transcript::Reply, why: &str) {
        let status = if reply.code >= 500 {
            RcptStatus::Refused
        } else {
            RcptStatus::Deferred
        };
        for r in &mut self.recipients[base..] {
            if r.rcpt_ok() {
                r.set(status, Some(why.to_string()));
            }
        }
    }

    /// The recipients accepted at RCPT from `base` on did not get the message: the session broke
    /// (or closed) first, so they are deferred.
    fn not_delivered(&mut self, base: usize, why: &str) {
        for r in &mut self.recipients[base..] {
            if r.rcpt_ok() {
                r.set(RcptStatus::Deferred, Some(why.to_string()));
            }
        }
    }
}

/// The reason of a stop, in words.
fn stop_reason(stop: &Stop) -> String {
    match stop {
        Stop::Refused(f, _) | Stop::Broken(f) | Stop::Fatal(f, _) => f.reason.clone(),
    }
}
