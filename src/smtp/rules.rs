//! The protocol decisions of a session, as pure functions: no socket, no clock, no printing.
//!
//! The session asks these what to do next (fall back to HELO? send STARTTLS? accept this
//! certificate? send the password? which MAIL and RCPT parameters?) and what an attempt came to
//! (which failure, which exit code). Every text a decision produces is written here, so each one
//! can be checked against a table of cases.

use crate::exit::Exit;
use crate::smtp::auth::Credential;
use crate::smtp::Dsn;
use crate::transcript::{
    BreakKind, Capabilities, Failure, FailureClass, Policy, RcptStatus, RecipientResult, Reply,
    Stage, Step, TlsInfo, Verdict,
};
use lettre::transport::smtp::extension::{MailBodyParameter, MailParameter, RcptParameter};

/// A failure decided on this side, without a server reply to quote: permanent, with no code.
fn local(stage: Stage, reason: String, kind: Option<BreakKind>) -> Failure {
    Failure {
        stage,
        class: FailureClass::Permanent,
        reason,
        code: None,
        enhanced: None,
        kind,
    }
}

/// `true` when a refused EHLO may be followed by HELO: only when EHLO was not recognised or not
/// implemented (500, 502, 504, 550). Any other refusal (421 closing, 554…) ends the session.
pub fn helo_fallback(ehlo_code: u16) -> bool {
    matches!(ehlo_code, 500 | 502 | 504 | 550)
}

/// What to do about STARTTLS at one point of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartTls {
    /// `--tls off` or `implicit`: STARTTLS is not part of this session.
    NotWanted,
    /// Go on: send STARTTLS (after EHLO), or do the handshake (after its 220).
    Proceed,
    /// Go on unencrypted; the warning says why (`--tls opportunistic`).
    InClear(String),
    /// Give up: TLS is required (the exit code is [`Exit::Tls`]).
    Fail(Failure),
}

/// After EHLO: whether to send STARTTLS, given `--tls` and whether `host` offered it.
pub fn starttls_offer(policy: Policy, host: &str, offered: bool) -> StartTls {
    if !matches!(policy, Policy::Opportunistic | Policy::Required) {
        return StartTls::NotWanted;
    }
    if offered {
        return StartTls::Proceed;
    }
    if policy == Policy::Required {
        return StartTls::Fail(local(
            Stage::Starttls,
            format!(
                "TLS is required (--tls required) but {host} does not offer STARTTLS in its EHLO reply"
            ),
            None,
        ));
    }
    StartTls::InClear(format!(
        "{host} does not offer STARTTLS: the session continued unencrypted (--tls opportunistic)"
    ))
}

/// After the reply to STARTTLS: 220 goes on to the handshake; anything else fails under
/// `--tls required` and continues in clear otherwise.
pub fn starttls_reply(policy: Policy, host: &str, reply: &Reply) -> StartTls {
    if reply.code == 220 {
        return StartTls::Proceed;
    }
    if policy == Policy::Required {
        return StartTls::Fail(Failure::refused(
            Stage::Starttls,
            reply,
            "TLS is required (--tls required) but the server refused STARTTLS",
        ));
    }
    StartTls::InClear(format!(
        "{host} refused STARTTLS ({}): the session continued unencrypted (--tls opportunistic)",
        reply.lines.join(" / ")
    ))
}

/// What to make of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// It verified.
    Accepted,
    /// It did not verify, and the session goes on encrypted with this warning.
    Warn(String),
    /// It did not verify and the policy requires it (the exit code is [`Exit::Tls`]).
    Refused(Failure),
}

/// The certificate verdict of a TLS session: with `--tls required` or `implicit` a certificate
/// that is neither verified nor pinned ends the session (unless `--insecure`: its verdict is then
/// `not-checked`); otherwise it is a warning. The texts name the name that was checked.
pub fn certificate(policy: Policy, insecure: bool, tls: &TlsInfo) -> Trust {
    if tls.verdict.trusted() {
        return Trust::Accepted;
    }
    let name = &tls.name;
    let verdict = tls.verdict.as_str();
    let reason = tls.reason.as_deref().unwrap_or("not verified");
    let advice = tls
        .advice
        .as_deref()
        .map(|a| format!("; to fix: {a}"))
        .unwrap_or_default();
    if policy.strict() && !insecure {
        let stage = if policy == Policy::Implicit {
            Stage::Tls
        } else {
            Stage::Starttls
        };
        return Trust::Refused(local(
            stage,
            format!(
                "TLS certificate of {name} not accepted (--tls {}): {verdict}: {reason}{advice}",
                policy.as_str()
            ),
            None,
        ));
    }
    if tls.verdict == Verdict::NotChecked || insecure {
        return Trust::Warn(format!(
            "TLS certificate of {name} not checked: {reason}; the session continued encrypted but the server is not authenticated (because of --insecure)"
        ));
    }
    Trust::Warn(format!(
        "TLS certificate of {name} not verified ({verdict}): {reason}; the session continued encrypted but the server is not authenticated (as --tls opportunistic allows){advice}"
    ))
}

/// A warning when the certificate expires within `warn_days` days (`--cert-warn-days`); an
/// expired one has its own verdict.
pub fn expiry_warning(tls: &TlsInfo, warn_days: u32) -> Option<String> {
    let days = tls.days_left?;
    if days < 0 || days >= i64::from(warn_days) {
        return None;
    }
    let when = match days {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        d => format!("in {d} days"),
    };
    let at = tls.not_after.as_deref().unwrap_or("soon");
    Some(format!(
        "the TLS certificate of {} expires {when} ({at}; --cert-warn-days {warn_days}): renew it on the server",
        tls.name
    ))
}

/// What to do after a TLS handshake the server refused (`kind` protocol; `plain`: it answered in
/// plain SMTP), for the mode in use: never the mode already in use. `None` under `--tls
/// opportunistic` (the session falls back to clear, see [`tls_fallback`]) and for timeouts and
/// dropped connections.
pub fn handshake_advice(policy: Policy, kind: BreakKind, plain: bool) -> Option<String> {
    if kind != BreakKind::Protocol {
        return None;
    }
    match policy {
        Policy::Implicit if plain => Some(
            "use --tls opportunistic or --tls required (STARTTLS) on this port, or the server's implicit-TLS port (usually 465)".into(),
        ),
        Policy::Implicit => Some(
            "check that this port speaks TLS from the first byte (usually 465); if the server greets in plain text, use --tls required (STARTTLS)".into(),
        ),
        Policy::Required => Some(
            "the server offers STARTTLS but its TLS does not work: fix the server's TLS set-up (with --tls opportunistic smtpcheck, like an MTA, would deliver in clear instead)".into(),
        ),
        Policy::Opportunistic | Policy::Off => None,
    }
}

/// The warning when an opportunistic session's handshake failed and the attempt is made again in
/// clear on a new connection, as MTAs do at their opportunistic level (Postfix `may`, Exim
/// `tls_tempfail_tryclear`); `None` when there is no such fallback (`--tls required` or
/// `implicit` never fall back).
pub fn tls_fallback(
    policy: Policy,
    handshake_failed: bool,
    host: &str,
    why: &str,
) -> Option<String> {
    (policy == Policy::Opportunistic && handshake_failed).then(|| {
        format!(
            "the TLS of {host} is broken ({why}): reconnected to the same address and went on in clear, as MTAs do with opportunistic TLS; the server's TLS needs fixing"
        )
    })
}

/// What the AUTH gate looks at before any credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthGate<'a> {
    /// The user name (`--auth-user`).
    pub user: &'a str,
    /// `--allow-plain-auth`: send credentials in clear or to an unverified server.
    pub allow_plain: bool,
    /// A TLS handshake completed.
    pub encrypted: bool,
    /// The certificate verified (`true` when there is no TLS at all).
    pub verified: bool,
    /// Why the certificate did not verify, when it did not.
    pub reason: Option<&'a str>,
    /// `--insecure`.
    pub insecure: bool,
    /// The server offers AUTH in its (last) EHLO reply.
    pub offered: bool,
    /// What the login would send: the password, an OAuth token, or nothing secret (EXTERNAL, the
    /// client certificate), for the wording of a refusal.
    pub credential: Credential,
}

/// `Ok` when the credential may be sent; otherwise why not (nothing was sent): over a connection
/// that is not encrypted, or whose certificate did not verify, unless `--allow-plain-auth` (or
/// `--insecure` for the certificate); or when the server offers no AUTH. The refusal names what
/// would have been sent (the password, the OAuth token; EXTERNAL sends no secret, but logs in to
/// a server that may not be who it claims).
pub fn auth_gate(g: &AuthGate<'_>) -> Result<(), Failure> {
    let user = g.user;
    let withheld = |reason: String| local(Stage::Auth, reason, Some(BreakKind::Withheld));
    if !g.allow_plain {
        let secret = match g.credential {
            Credential::Password => Some("password"),
            Credential::Token => Some("OAuth token"),
            Credential::Certificate => None,
        };
        if !g.encrypted {
            return Err(withheld(match secret {
                Some(what) => format!(
                    "refusing to send the {what} of {user} over an unencrypted connection (nothing was sent); use TLS (--tls required or --tls implicit) or allow it with --allow-plain-auth"
                ),
                None => format!(
                    "refusing to log in as {user} with AUTH EXTERNAL over an unencrypted connection: it relies on the client certificate, which only TLS presents (nothing was sent); use TLS (--tls required or --tls implicit) or try it anyway with --allow-plain-auth"
                ),
            }));
        }
        if !g.verified && !g.insecure {
            let why = g.reason.unwrap_or("not verified");
            return Err(withheld(match secret {
                Some(what) => format!(
                    "refusing to send the {what} of {user}: the TLS certificate was not verified ({why}), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or send it anyway with --insecure or --allow-plain-auth"
                ),
                None => format!(
                    "refusing to log in as {user} with AUTH EXTERNAL (no secret is sent): the TLS certificate was not verified ({why}), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or log in anyway with --insecure or --allow-plain-auth"
                ),
            }));
        }
    }
    if !g.offered {
        let after = if g.encrypted { " after TLS" } else { "" };
        return Err(local(
            Stage::Auth,
            format!(
                "cannot log in as {user}: the server does not offer AUTH in its EHLO reply{after}"
            ),
            Some(BreakKind::NoAuth),
        ));
    }
    Ok(())
}

/// An AUTH refusal decided on this side (the exit code is [`Exit::Auth`]).
pub fn auth_failure(reason: String) -> Failure {
    local(Stage::Auth, reason, None)
}

/// What MAIL FROM will carry, decided before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailParams {
    /// Warnings for the result that are not shown as notes (8-bit content without 8BITMIME);
    /// kept even when the message is not offered.
    pub warnings: Vec<String>,
    /// The parameters, or why the message must not be offered at all, with the exit code.
    pub params: Result<Vec<MailParameter>, (Failure, Exit)>,
    /// A note to show (and keep as a warning) when the parameters are fine: DSN was asked for but
    /// the server does not advertise it.
    pub note: Option<String>,
}

/// The MAIL FROM parameters for a message of `size` octets (as sent): SIZE when advertised (a
/// message over a non-zero limit is not offered), BODY=8BITMIME for 8-bit content when
/// advertised, SMTPUTF8 when an address needs it (not offered when not advertised), and RET and
/// ENVID only when the server advertises DSN.
pub fn mail_parameters(
    caps: &Capabilities,
    size: u64,
    eight_bit: bool,
    needs_smtputf8: bool,
    dsn: &Dsn,
) -> MailParams {
    let mut out = MailParams {
        warnings: Vec::new(),
        params: Ok(Vec::new()),
        note: None,
    };
    let mut params = Vec::new();
    if let Some(limit) = caps.size {
        if limit > 0 && size > limit {
            let reason = format!("the message is {size} octets but the server accepts at most {limit} (EHLO SIZE {limit}); not sent");
            let f = local(Stage::Mail, reason, Some(BreakKind::TooLarge));
            out.params = Err((f, Exit::Message));
            return out;
        }
        params.push(MailParameter::Size(size as usize));
    }
    if eight_bit {
        if caps.eight_bit_mime {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        } else {
            out.warnings.push(
                "the message has 8-bit content but the server does not advertise 8BITMIME: it may be refused or altered".into(),
            );
        }
    }
    if needs_smtputf8 {
        if !caps.smtputf8 {
            let reason = "an envelope address is not ASCII and the server does not advertise SMTPUTF8; not sent";
            let f = local(Stage::Mail, reason.into(), Some(BreakKind::Unsupported));
            out.params = Err((f, Exit::Mail));
            return out;
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    out.note = dsn_note(dsn, caps.dsn);
    params.extend(dsn_mail_parameters(dsn, caps.dsn));
    out.params = Ok(params);
    out
}

/// The note for DSN parameters asked for from a server that does not advertise DSN.
fn dsn_note(dsn: &Dsn, advertised: bool) -> Option<String> {
    (dsn.requested() && !advertised).then(|| {
        "the server does not advertise DSN: --notify, --ret and --envid were not sent".into()
    })
}

/// RET and ENVID, in that order, when asked for and advertised.
fn dsn_mail_parameters(dsn: &Dsn, advertised: bool) -> Vec<MailParameter> {
    if !advertised {
        return Vec::new();
    }
    let other = |keyword: &str, value: &String| MailParameter::Other {
        keyword: keyword.into(),
        value: Some(value.clone()),
    };
    let ret = dsn.ret.iter().map(|v| other("RET", v));
    ret.chain(dsn.envid.iter().map(|v| other("ENVID", v)))
        .collect()
}

/// The parameters of each RCPT TO: NOTIFY, only when asked for and the server advertises DSN.
pub fn rcpt_parameters(dsn: &Dsn, advertised: bool) -> Vec<RcptParameter> {
    match &dsn.notify {
        Some(notify) if advertised => vec![RcptParameter::Other {
            keyword: "NOTIFY".into(),
            value: Some(notify.join(",")),
        }],
        _ => Vec::new(),
    }
}

/// Why a transaction in which no recipient was accepted failed: the first permanent refusal, else
/// the first reply (so the failure is temporary only when every refusal was).
pub fn no_recipient_accepted(recipients: &[RecipientResult]) -> Failure {
    let replies = || recipients.iter().filter_map(|r| r.reply.as_ref());
    let first = replies()
        .find(|r| r.code >= 500)
        .or_else(|| replies().next());
    match first {
        Some(reply) => Failure::refused(Stage::Rcpt, reply, "no recipient was accepted"),
        None => Failure::broken(
            Stage::Rcpt,
            BreakKind::Protocol,
            "no recipient was accepted".into(),
        ),
    }
}

/// After a refused transaction, whether the next one (if any) may still be tried: only when the
/// refusal was its recipients' and the server is not closing the session (421).
pub fn next_transaction(refusal: &Failure) -> bool {
    refusal.stage == Stage::Rcpt && refusal.code != Some(421)
}

/// How a conversation ended, as far as the verdict is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ran to its end, or stopped on purpose (`--quit-after`).
    Finished,
    /// It stopped on a refusal (or a failure that decides its own exit code).
    Refused(Failure, Exit),
    /// No usable reply came: the session broke.
    Broken(Failure),
}

/// What an attempt came to: its failure (none when it delivered to every recipient) and the exit
/// code it implies. `quit_early` says the session stopped after `quit_after`; a session that ran
/// to its end with a refused recipient delivered only in part.
pub fn outcome(
    ending: Ending,
    quit_early: bool,
    quit_after: Option<Stage>,
    recipients: &[RecipientResult],
) -> (Option<Failure>, Exit) {
    match ending {
        Ending::Finished if quit_early && quit_after != Some(Stage::Rcpt) => {
            (None, Exit::Delivered)
        }
        Ending::Finished => {
            let done = |r: &&RecipientResult| {
                r.accepted || (quit_early && r.status == RcptStatus::RcptAccepted)
            };
            match recipients.iter().find(|r| !done(r)) {
                None => (None, Exit::Delivered),
                Some(r) if recipients.iter().any(|r| done(&r)) => {
                    (Some(recipient_refused(r)), Exit::Partial)
                }
                Some(r) => {
                    let f = recipient_refused(r);
                    let exit = Exit::Rcpt.with_class(f.class);
                    (Some(f), exit)
                }
            }
        }
        Ending::Refused(f, exit) => {
            // A server's 4xx gives the stage's temporary code; decisions on this side keep theirs.
            let exit = if f.code.is_some() {
                exit.with_class(f.class)
            } else {
                exit
            };
            (Some(f), exit)
        }
        Ending::Broken(f) if f.stage == Stage::Connect => (Some(f), Exit::Connect),
        Ending::Broken(f) => (Some(f), Exit::Broken),
    }
}

/// Why one recipient did not get the message.
pub fn recipient_refused(r: &RecipientResult) -> Failure {
    match &r.reply {
        Some(reply) if !reply.is_positive() => Failure::refused(
            Stage::Rcpt,
            reply,
            &format!(
                "recipient {} {}",
                r.address,
                RcptStatus::of_rcpt(reply).as_str()
            ),
        ),
        _ => Failure {
            stage: Stage::Rcpt,
            class: FailureClass::Transient,
            reason: r
                .reason
                .clone()
                .unwrap_or_else(|| format!("recipient {} not accepted", r.address)),
            code: None,
            enhanced: None,
            kind: None,
        },
    }
}

/// `true` when a reply to RCPT says the transaction holds all the recipients it will take
/// (RFC 5321 4.5.3.1.10: 452, or a 4xx with enhanced code 4.5.3; a 552 "too many recipients", with
/// 5.5.3, is to be treated the same way): the remaining recipients go in a further transaction.
pub fn recipient_limit(reply: &Reply) -> bool {
    let enhanced = reply.enhanced.as_deref();
    let says = reply
        .text()
        .to_ascii_lowercase()
        .contains("too many recipients");
    match reply.code {
        452 => enhanced.is_none_or(|e| e == "4.5.3") || says,
        400..=499 => enhanced == Some("4.5.3"),
        552 => enhanced == Some("5.5.3") || says,
        _ => false,
    }
}

/// The note shown (once) when the server limits the recipients of a transaction.
pub fn recipient_limit_note(reply: &Reply) -> String {
    format!(
        "the server takes fewer recipients per transaction than offered ({}): the rest were sent in further transactions (RFC 5321 4.5.3.1.10); this is a limit, not greylisting",
        reply.lines.join(" / ")
    )
}

/// Makes the step where smtpcheck stopped the session a failed step saying why: when `failure`
/// was decided on this side (a certificate refused, a message over SIZE, the AUTH gate), no step
/// of its stage failed, so the last step of that stage (before QUIT) is marked failed with the
/// reason, or a step of that stage with nothing sent is added before QUIT.
pub fn mark_stop(steps: &mut Vec<Step>, failure: &Failure) {
    if steps.iter().any(|s| !s.ok && s.stage == failure.stage) {
        return;
    }
    let end = match steps.last() {
        Some(s) if s.stage == Stage::Quit => steps.len() - 1,
        _ => steps.len(),
    };
    if let Some(last) = steps[..end].last_mut() {
        if last.stage == failure.stage {
            last.ok = false;
            last.error = Some(failure.reason.clone());
            last.error_kind = last.error_kind.or(failure.kind);
            return;
        }
    }
    steps.insert(
        end,
        Step {
            stage: failure.stage,
            sent: None,
            octets: None,
            reply: None,
            elapsed_ms: 0.0,
            ok: false,
            error: Some(failure.reason.clone()),
            error_kind: failure.kind,
        },
    );
}

/// The queue id in the reply that accepted the message, for the common formats: Postfix
/// (`queued as X`), Exim (`OK id=X`), Sendmail and OpenSMTPD (`X Message accepted for delivery`),
/// Exchange and Microsoft 365 (`[InternalId=X, …]`), Gmail (`OK 1712… X - gsmtp`), Haraka
/// (`Message Queued (X)`) and qmail (`qp X`). `None` for any other text.
pub fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.text();
    let lower = text.to_ascii_lowercase();
    let word = |s: &str| -> Option<String> {
        let w: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@'))
            .collect();
        let w = w.trim_end_matches('.').to_string();
        (!w.is_empty()).then_some(w)
    };
    let after = |needle: &str| lower.find(needle).map(|i| &text[i + needle.len()..]);
    if let Some(rest) = after("queued as ") {
        return word(rest);
    }
    if let Some(rest) = after("internalid=") {
        return word(rest);
    }
    if let Some(rest) = after("message queued (") {
        return word(rest);
    }
    if let Some(i) = lower.find(" - gsmtp") {
        return text[..i].split_whitespace().last().map(str::to_string);
    }
    if let Some(rest) = after("ok id=") {
        return word(rest);
    }
    if let Some(i) = lower.find(" message accepted") {
        return text[..i].split_whitespace().last().and_then(word);
    }
    if let Some(rest) = after(" qp ") {
        return word(rest);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines: vec![format!("{code} {text}")],
        }
    }

    fn caps(size: Option<u64>, eight_bit_mime: bool, smtputf8: bool, dsn: bool) -> Capabilities {
        Capabilities {
            size,
            eight_bit_mime,
            smtputf8,
            dsn,
            ..Capabilities::default()
        }
    }

    fn dsn(notify: Option<&[&str]>, ret: Option<&str>, envid: Option<&str>) -> Dsn {
        Dsn {
            notify: notify.map(|n| n.iter().map(|s| s.to_string()).collect()),
            ret: ret.map(str::to_string),
            envid: envid.map(str::to_string),
        }
    }

    fn rcpt(address: &str, accepted: bool, reply: Option<Reply>) -> RecipientResult {
        let mut r = match reply {
            Some(reply) => RecipientResult::answered(address.into(), reply),
            None => RecipientResult::not_tried(address.into(), None),
        };
        if accepted {
            r.set(RcptStatus::Delivered, None);
        }
        r
    }

    #[test]
    fn helo_follows_only_an_ehlo_not_recognised_or_not_implemented() {
        let table = [
            (500, true),
            (502, true),
            (504, true),
            (550, true),
            (421, false),
            (451, false),
            (501, false),
            (554, false),
            (250, false),
        ];
        for (code, fallback) in table {
            assert_eq!(helo_fallback(code), fallback, "EHLO {code}");
        }
    }

    #[test]
    fn starttls_offer_table() {
        use Policy::*;
        let clear = "mx.test does not offer STARTTLS: the session continued unencrypted (--tls opportunistic)";
        let fail = "TLS is required (--tls required) but mx.test does not offer STARTTLS in its EHLO reply";
        let table: [(Policy, bool, StartTls); 8] = [
            (Off, true, StartTls::NotWanted),
            (Off, false, StartTls::NotWanted),
            (Implicit, true, StartTls::NotWanted),
            (Implicit, false, StartTls::NotWanted),
            (Opportunistic, true, StartTls::Proceed),
            (Opportunistic, false, StartTls::InClear(clear.into())),
            (Required, true, StartTls::Proceed),
            (
                Required,
                false,
                StartTls::Fail(local(Stage::Starttls, fail.into(), None)),
            ),
        ];
        for (policy, offered, want) in table {
            assert_eq!(
                starttls_offer(policy, "mx.test", offered),
                want,
                "{policy:?} offered={offered}"
            );
        }
    }

    #[test]
    fn starttls_reply_table() {
        use Policy::*;
        let ok = reply(220, "go ahead");
        let no = reply(454, "TLS not available");
        assert_eq!(
            starttls_reply(Opportunistic, "mx.test", &ok),
            StartTls::Proceed
        );
        assert_eq!(starttls_reply(Required, "mx.test", &ok), StartTls::Proceed);
        assert_eq!(
            starttls_reply(Opportunistic, "mx.test", &no),
            StartTls::InClear(
                "mx.test refused STARTTLS (454 TLS not available): the session continued unencrypted (--tls opportunistic)".into()
            )
        );
        let StartTls::Fail(f) = starttls_reply(Required, "mx.test", &no) else {
            panic!("required STARTTLS refused must fail");
        };
        assert_eq!(
            f.reason,
            "TLS is required (--tls required) but the server refused STARTTLS: 454 TLS not available"
        );
        assert_eq!(
            (f.stage, f.code, f.class),
            (Stage::Starttls, Some(454), FailureClass::Transient)
        );
    }

    fn tls(verdict: Verdict, days_left: Option<i64>) -> TlsInfo {
        TlsInfo {
            mode: Policy::Required,
            version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            name: "mx.test".into(),
            subject: None,
            san: vec![],
            issuer: None,
            not_before: None,
            not_after: Some("2030-01-01T00:00:00Z".into()),
            days_left,
            chain_length: 1,
            verified: verdict.trusted(),
            verdict,
            reason: (!verdict.trusted()).then(|| "it expired".to_string()),
            advice: (!verdict.trusted()).then(|| "renew it".to_string()),
            name_matched: true,
            spki_sha256: None,
            client_certificate: None,
            chain: vec![],
        }
    }

    #[test]
    fn certificate_table() {
        use Policy::*;
        let expired = tls(Verdict::Expired, Some(-3));
        let warn = Trust::Warn("TLS certificate of mx.test not verified (expired): it expired; the session continued encrypted but the server is not authenticated (as --tls opportunistic allows); to fix: renew it".into());
        let insecure = Trust::Warn("TLS certificate of mx.test not checked: it expired; the session continued encrypted but the server is not authenticated (because of --insecure)".into());
        let refuse = |mode: &str, stage| {
            Trust::Refused(local(
                stage,
                format!("TLS certificate of mx.test not accepted (--tls {mode}): expired: it expired; to fix: renew it"),
                None,
            ))
        };
        let table = [
            (Opportunistic, false, warn.clone()),
            (Opportunistic, true, insecure.clone()),
            (Required, false, refuse("required", Stage::Starttls)),
            (Implicit, false, refuse("implicit", Stage::Tls)),
            (Required, true, insecure.clone()),
            (Implicit, true, insecure),
        ];
        for (policy, ins, want) in table {
            assert_eq!(
                certificate(policy, ins, &expired),
                want,
                "{policy:?} insecure={ins}"
            );
        }
        for v in [Verdict::Verified, Verdict::Pinned] {
            for policy in [Opportunistic, Required, Implicit] {
                assert_eq!(
                    certificate(policy, false, &tls(v, Some(90))),
                    Trust::Accepted
                );
            }
        }
    }

    #[test]
    fn expiry_warning_table() {
        let w = |days| expiry_warning(&tls(Verdict::Verified, days), 14);
        assert_eq!(w(None), None);
        assert_eq!(w(Some(-1)), None, "expired has its own verdict");
        assert_eq!(w(Some(14)), None);
        assert_eq!(
            w(Some(13)).as_deref(),
            Some("the TLS certificate of mx.test expires in 13 days (2030-01-01T00:00:00Z; --cert-warn-days 14): renew it on the server")
        );
        assert!(w(Some(0)).unwrap().contains("expires today"));
        assert!(w(Some(1)).unwrap().contains("expires tomorrow"));
        assert_eq!(expiry_warning(&tls(Verdict::Verified, Some(5)), 0), None);
    }

    #[test]
    fn handshake_advice_never_suggests_the_mode_in_use() {
        use Policy::*;
        for policy in [Off, Opportunistic, Required, Implicit] {
            for plain in [false, true] {
                if let Some(a) = handshake_advice(policy, BreakKind::Protocol, plain) {
                    let own = format!("use --tls {}", policy.as_str());
                    assert!(!a.contains(&own), "{policy:?}: {a}");
                }
            }
        }
        assert!(handshake_advice(Implicit, BreakKind::Protocol, true)
            .unwrap()
            .contains("--tls opportunistic or --tls required"));
        assert_eq!(
            handshake_advice(Opportunistic, BreakKind::Protocol, false),
            None
        );
        assert_eq!(handshake_advice(Required, BreakKind::Timeout, false), None);
    }

    #[test]
    fn only_opportunistic_falls_back_to_clear() {
        use Policy::*;
        assert!(tls_fallback(Opportunistic, true, "mx.test", "x")
            .unwrap()
            .starts_with("the TLS of mx.test is broken (x): reconnected"));
        for policy in [Off, Required, Implicit] {
            assert_eq!(tls_fallback(policy, true, "mx.test", "x"), None);
        }
        assert_eq!(tls_fallback(Opportunistic, false, "mx.test", "x"), None);
    }

    #[test]
    fn auth_gate_table() {
        let gate = |allow_plain, encrypted, verified, insecure, offered| AuthGate {
            user: "bob",
            allow_plain,
            encrypted,
            verified,
            reason: Some("self-signed"),
            insecure,
            offered,
            credential: Credential::Password,
        };
        let clear = "refusing to send the password of bob over an unencrypted connection (nothing was sent); use TLS (--tls required or --tls implicit) or allow it with --allow-plain-auth";
        let unverified = "refusing to send the password of bob: the TLS certificate was not verified (self-signed), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or send it anyway with --insecure or --allow-plain-auth";
        let none = "cannot log in as bob: the server does not offer AUTH in its EHLO reply";
        let none_tls =
            "cannot log in as bob: the server does not offer AUTH in its EHLO reply after TLS";
        // (allow_plain, encrypted, verified, insecure, offered) → result
        type Case = (bool, bool, bool, bool, bool);
        let table: [(Case, Result<(), &str>); 10] = [
            ((false, false, true, false, true), Err(clear)),
            ((false, false, true, false, false), Err(clear)),
            ((true, false, true, false, true), Ok(())),
            ((true, false, true, false, false), Err(none)),
            ((false, true, true, false, true), Ok(())),
            ((false, true, true, false, false), Err(none_tls)),
            ((false, true, false, false, true), Err(unverified)),
            ((false, true, false, true, true), Ok(())),
            ((true, true, false, false, true), Ok(())),
            ((true, true, false, false, false), Err(none_tls)),
        ];
        for ((a, e, v, i, o), want) in table {
            let got = auth_gate(&gate(a, e, v, i, o)).map_err(|f| {
                let kind = if o || f.reason.starts_with("refusing") {
                    BreakKind::Withheld
                } else {
                    BreakKind::NoAuth
                };
                assert_eq!(f.kind, Some(kind), "{}", f.reason);
                f.reason
            });
            assert_eq!(
                got,
                want.map_err(str::to_string),
                "allow_plain={a} encrypted={e} verified={v} insecure={i} offered={o}"
            );
        }
        let mut g = gate(false, true, false, false, true);
        g.reason = None;
        assert!(auth_gate(&g).is_err_and(|e| e.reason.contains("(not verified)")));
    }

    /// The refusals name what would have been sent: the password, the OAuth token, or (AUTH
    /// EXTERNAL) no secret at all; whether the gate passes does not depend on it.
    #[test]
    fn auth_gate_words_the_refusal_by_credential() {
        let gate = |credential, encrypted, verified| AuthGate {
            user: "bob",
            allow_plain: false,
            encrypted,
            verified,
            reason: Some("self-signed"),
            insecure: false,
            offered: true,
            credential,
        };
        use Credential::{Certificate, Password, Token};
        // (credential, encrypted, verified) → refusal
        type Case = (Credential, bool, bool);
        let table: [(Case, Option<&str>); 9] = [
            ((Password, false, true), Some("refusing to send the password of bob over an unencrypted connection (nothing was sent); use TLS (--tls required or --tls implicit) or allow it with --allow-plain-auth")),
            ((Password, true, false), Some("refusing to send the password of bob: the TLS certificate was not verified (self-signed), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or send it anyway with --insecure or --allow-plain-auth")),
            ((Password, true, true), None),
            ((Token, false, true), Some("refusing to send the OAuth token of bob over an unencrypted connection (nothing was sent); use TLS (--tls required or --tls implicit) or allow it with --allow-plain-auth")),
            ((Token, true, false), Some("refusing to send the OAuth token of bob: the TLS certificate was not verified (self-signed), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or send it anyway with --insecure or --allow-plain-auth")),
            ((Token, true, true), None),
            ((Certificate, false, true), Some("refusing to log in as bob with AUTH EXTERNAL over an unencrypted connection: it relies on the client certificate, which only TLS presents (nothing was sent); use TLS (--tls required or --tls implicit) or try it anyway with --allow-plain-auth")),
            ((Certificate, true, false), Some("refusing to log in as bob with AUTH EXTERNAL (no secret is sent): the TLS certificate was not verified (self-signed), so the server may not be who it claims (nothing was sent); trust its CA with --ca FILE, or log in anyway with --insecure or --allow-plain-auth")),
            ((Certificate, true, true), None),
        ];
        for ((c, e, v), want) in table {
            let got = auth_gate(&gate(c, e, v)).map_err(|f| {
                assert_eq!(f.kind, Some(BreakKind::Withheld), "{}", f.reason);
                assert_eq!(f.stage, Stage::Auth);
                f.reason
            });
            assert_eq!(
                got.err().as_deref(),
                want,
                "credential={c:?} encrypted={e} verified={v}"
            );
            // --allow-plain-auth lets every credential through; --insecure the unverified ones.
            let mut g = gate(c, e, v);
            g.allow_plain = true;
            assert!(auth_gate(&g).is_ok(), "{c:?} with --allow-plain-auth");
            if e {
                let mut g = gate(c, e, v);
                g.insecure = true;
                assert!(auth_gate(&g).is_ok(), "{c:?} with --insecure");
            }
        }
        // "password" is never the word for a token or a certificate.
        for c in [Token, Certificate] {
            for (e, v) in [(false, true), (true, false)] {
                let why = auth_gate(&gate(c, e, v)).unwrap_err().reason;
                assert!(!why.contains("password"), "{c:?}: {why}");
            }
        }
    }

    #[test]
    fn mail_parameters_size() {
        let none = Dsn::default();
        let p = mail_parameters(
            &caps(Some(1000), false, false, false),
            999,
            false,
            false,
            &none,
        );
        assert_eq!(p.params, Ok(vec![MailParameter::Size(999)]));
        let p = mail_parameters(
            &caps(Some(0), false, false, false),
            5000,
            false,
            false,
            &none,
        );
        assert_eq!(
            p.params,
            Ok(vec![MailParameter::Size(5000)]),
            "SIZE 0 means no limit"
        );
        let p = mail_parameters(&caps(None, false, false, false), 5000, false, false, &none);
        assert_eq!(p.params, Ok(vec![]));
        let p = mail_parameters(
            &caps(Some(1000), false, false, false),
            1001,
            true,
            false,
            &none,
        );
        let (f, exit) = p.params.expect_err("over SIZE");
        assert_eq!(exit, Exit::Message);
        assert_eq!(f.kind, Some(BreakKind::TooLarge));
        assert_eq!(f.reason, "the message is 1001 octets but the server accepts at most 1000 (EHLO SIZE 1000); not sent");
        assert!(
            p.warnings.is_empty(),
            "SIZE is decided before the 8-bit check"
        );
    }

    #[test]
    fn mail_parameters_8bit_and_smtputf8() {
        let none = Dsn::default();
        let warn = "the message has 8-bit content but the server does not advertise 8BITMIME: it may be refused or altered";
        let p = mail_parameters(&caps(None, true, false, false), 10, true, false, &none);
        let body = MailParameter::Body(MailBodyParameter::EightBitMime);
        assert_eq!((p.params, p.warnings), (Ok(vec![body]), vec![]));
        let p = mail_parameters(&caps(None, false, false, false), 10, true, false, &none);
        assert_eq!((p.params, p.warnings), (Ok(vec![]), vec![warn.to_string()]));
        let p = mail_parameters(&caps(None, false, true, false), 10, false, true, &none);
        assert_eq!(p.params, Ok(vec![MailParameter::SmtpUtfEight]));
        let p = mail_parameters(&caps(None, false, false, false), 10, true, true, &none);
        let (f, exit) = p.params.expect_err("SMTPUTF8 not advertised");
        assert_eq!(
            (f.stage, f.kind, exit),
            (Stage::Mail, Some(BreakKind::Unsupported), Exit::Mail)
        );
        assert_eq!(
            f.reason,
            "an envelope address is not ASCII and the server does not advertise SMTPUTF8; not sent"
        );
        assert_eq!(p.warnings, [warn], "the 8-bit warning stays with a refusal");
    }

    #[test]
    fn mail_parameters_dsn_only_when_advertised() {
        let asked = dsn(Some(&["SUCCESS", "FAILURE"]), Some("HDRS"), Some("id-1"));
        let p = mail_parameters(
            &caps(Some(100), false, false, true),
            10,
            false,
            false,
            &asked,
        );
        let other = |k: &str, v: &str| MailParameter::Other {
            keyword: k.into(),
            value: Some(v.into()),
        };
        let want = vec![
            MailParameter::Size(10),
            other("RET", "HDRS"),
            other("ENVID", "id-1"),
        ];
        assert_eq!((p.params, p.note), (Ok(want), None));
        let p = mail_parameters(&caps(None, false, false, false), 10, false, false, &asked);
        assert_eq!(p.params, Ok(vec![]));
        assert_eq!(
            p.note.as_deref(),
            Some("the server does not advertise DSN: --notify, --ret and --envid were not sent")
        );
        let p = mail_parameters(
            &caps(None, false, false, false),
            10,
            false,
            false,
            &Dsn::default(),
        );
        assert_eq!(p.note, None, "no DSN asked, nothing to say");
        let envid_only = dsn(None, None, Some("x"));
        let p = mail_parameters(
            &caps(None, false, false, true),
            10,
            false,
            false,
            &envid_only,
        );
        assert_eq!(p.params, Ok(vec![other("ENVID", "x")]));
    }

    #[test]
    fn rcpt_parameters_notify_only_when_advertised() {
        let asked = dsn(Some(&["SUCCESS", "DELAY"]), None, None);
        let notify = RcptParameter::Other {
            keyword: "NOTIFY".into(),
            value: Some("SUCCESS,DELAY".into()),
        };
        assert_eq!(rcpt_parameters(&asked, true), vec![notify]);
        assert_eq!(rcpt_parameters(&asked, false), vec![]);
        assert_eq!(
            rcpt_parameters(&dsn(None, Some("FULL"), None), true),
            vec![]
        );
    }

    #[test]
    fn next_transaction_only_after_recipients_refused() {
        let rcpt550 = Failure::refused(Stage::Rcpt, &reply(550, "no"), "no recipient was accepted");
        let rcpt421 = Failure::refused(Stage::Rcpt, &reply(421, "bye"), "closing");
        let mail550 = Failure::refused(Stage::Mail, &reply(550, "no"), "sender");
        assert!(next_transaction(&rcpt550));
        assert!(!next_transaction(&rcpt421));
        assert!(!next_transaction(&mail550));
    }

    #[test]
    fn no_recipient_accepted_quotes_the_first_reply() {
        let rs = [
            rcpt("a@x.test", false, Some(reply(550, "no a"))),
            rcpt("b@x.test", false, Some(reply(551, "no b"))),
        ];
        assert_eq!(
            no_recipient_accepted(&rs).reason,
            "no recipient was accepted: 550 no a"
        );
        let f = no_recipient_accepted(&[]);
        assert_eq!(
            (f.kind, f.reason.as_str()),
            (Some(BreakKind::Protocol), "no recipient was accepted")
        );
    }

    #[test]
    fn outcome_table() {
        let all = [rcpt("a@x.test", true, Some(reply(250, "ok")))];
        let some = [
            rcpt("a@x.test", true, Some(reply(250, "ok"))),
            rcpt("b@x.test", false, Some(reply(550, "unknown"))),
        ];
        assert_eq!(
            outcome(Ending::Finished, false, None, &all),
            (None, Exit::Delivered)
        );
        let (f, exit) = outcome(Ending::Finished, false, None, &some);
        assert_eq!(exit, Exit::Partial);
        assert_eq!(
            f.map(|f| f.reason),
            Some("recipient b@x.test refused: 550 unknown".into())
        );
        // Stopped on purpose before RCPT: nobody was offered anything, that is a success.
        assert_eq!(
            outcome(Ending::Finished, true, Some(Stage::Mail), &[]),
            (None, Exit::Delivered)
        );
        // --quit-after rcpt still reports the refused recipients.
        assert_eq!(
            outcome(Ending::Finished, true, Some(Stage::Rcpt), &some).1,
            Exit::Partial
        );
        let unanswered = [rcpt("c@x.test", false, None)];
        let (f, _) = outcome(Ending::Finished, false, None, &unanswered);
        assert_eq!(
            f.map(|f| f.reason),
            Some("recipient c@x.test not accepted".into())
        );
        let refused = Failure::refused(Stage::Mail, &reply(550, "no"), "sender");
        assert_eq!(
            outcome(
                Ending::Refused(refused.clone(), Exit::Mail),
                false,
                None,
                &[]
            ),
            (Some(refused), Exit::Mail)
        );
        let connect = Failure::broken(Stage::Connect, BreakKind::ConnectionRefused, "x".into());
        assert_eq!(
            outcome(Ending::Broken(connect.clone()), false, None, &[]).1,
            Exit::Connect
        );
        let data = Failure::broken(Stage::Data, BreakKind::Timeout, "x".into());
        assert_eq!(
            outcome(Ending::Broken(data), false, None, &all).1,
            Exit::Broken
        );
    }
}
