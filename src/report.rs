//! The one `Serialize` result of a check, and its verdict. Renderers only format it.

use crate::confirm::Arrival;
use crate::deliver::{Mode, RouteResult};
use crate::diagnose::Hint;
use crate::exit::Exit;
use crate::message::{EnvelopeInfo, MessageInfo};
use crate::plan::MxHost;
use crate::sender::SenderReport;
use crate::smtp::rules;
use crate::transcript::{
    Attempt, BreakKind, Failure, FailureClass, RcptStatus, RecipientResult, Stage,
};
use serde::Serialize;

/// The JSON schema version; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Accepted for every recipient.
    Delivered,
    /// Accepted for some recipients, refused for others.
    Partial,
    /// Not accepted for any recipient.
    Failed,
    /// `--quit-after`: every step up to the chosen stage succeeded; nothing was sent.
    Probed,
}

impl Outcome {
    /// The outcome an exit code stands for.
    pub fn from_exit(exit: Exit) -> Outcome {
        match exit {
            Exit::Delivered => Outcome::Delivered,
            Exit::Partial => Outcome::Partial,
            _ => Outcome::Failed,
        }
    }

    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Probed => "probed",
        }
    }
}

/// Everything a check found out. Serialised as the JSON report (see README for the schema).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// smtpcheck's version.
    pub version: &'static str,
    /// `delivered`, `partial` or `failed`.
    pub outcome: Outcome,
    /// The process exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
    /// Why it did not fully succeed, with a hint; null when delivered.
    pub failure: Option<Diagnosis>,
    /// Every distinct failure, each with the domain and the recipients it concerns (empty when
    /// delivered); `failure` is the overall one.
    pub failures: Vec<FailureGroup>,
    /// The message sent (null when it could not be loaded).
    pub message: Option<MessageInfo>,
    /// The envelope (null when it could not be worked out).
    pub envelope: Option<EnvelopeInfo>,
    /// One route per recipient domain (direct mode) or one for the smart host.
    pub routes: Vec<RouteReport>,
    /// Every connection attempt of every route, in order, each with its steps.
    pub attempts: Vec<Attempt>,
    /// What the server said about each recipient.
    pub recipients: Vec<RecipientResult>,
    /// The text of the reply that accepted the message (it usually names the queue id), or null.
    pub queued_as: Option<String>,
    /// The queue id in that reply, for the common MTAs' formats (Postfix, Exim, Sendmail,
    /// OpenSMTPD, Exchange, Gmail, Haraka, qmail); null otherwise.
    pub queue_id: Option<String>,
    /// Things worth knowing that did not stop the check.
    pub warnings: Vec<String>,
    /// One entry per round of the check (more than one with --retry).
    pub rounds: Vec<Round>,
    /// Milliseconds the whole check took.
    pub elapsed_ms: f64,
    /// `--confirm`: what the IMAP check of the recipient's mailbox found; null without
    /// `--confirm`, or when the message was not accepted.
    pub arrival: Option<Arrival>,
    /// `--check-sender`: the sender checks (the `smtpcheck sender` report, for the IP the server
    /// saw); null without `--check-sender`.
    pub sender: Option<SenderReport>,
}

/// What came of `--check-sender`.
#[derive(Debug, Clone)]
pub enum SenderOutcome {
    /// The checks ran; `required` is `--require-sender-pass`.
    Done {
        /// The sender report.
        report: Box<SenderReport>,
        /// A failing verdict changes the exit code.
        required: bool,
    },
    /// The checks could not run (no IP, DNS unusable): why, as a warning.
    NotDone(String),
}

/// The result of one round of the check (`--retry` repeats transient failures).
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 1 for the first round.
    pub round: u32,
    /// The round's outcome.
    pub outcome: Outcome,
    /// The round's exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
    /// Why the round failed, or null.
    pub failure: Option<Diagnosis>,
    /// How long the round took.
    pub elapsed_ms: f64,
}

impl Round {
    /// The summary of a round's report.
    fn of(round: u32, report: &Report) -> Round {
        Round {
            round,
            outcome: report.outcome,
            exit: report.exit,
            failure: report.failure.clone(),
            elapsed_ms: report.elapsed_ms,
        }
    }
}

/// A step slower than this is noted in the warnings.
pub const SLOW_STEP_MS: f64 = 5000.0;

impl Report {
    /// A report for a check that stopped before any connection (bad input).
    pub fn input_error(
        reason: String,
        exit: Exit,
        message: Option<MessageInfo>,
        envelope: Option<EnvelopeInfo>,
    ) -> Report {
        let stage = match exit {
            Exit::Usage => Stage::Usage,
            Exit::Interrupted => Stage::Interrupted,
            _ => Stage::Input,
        };
        let class = match exit {
            Exit::Interrupted => FailureClass::Transient,
            _ => FailureClass::Permanent,
        };
        let failure = Diagnosis::of(Failure {
            stage,
            class,
            reason,
            code: None,
            enhanced: None,
            kind: None,
        });
        Report {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            outcome: Outcome::Failed,
            exit,
            failures: vec![FailureGroup {
                domain: None,
                diagnosis: failure.clone(),
                recipients: Vec::new(),
            }],
            failure: Some(failure),
            message,
            envelope,
            routes: Vec::new(),
            attempts: Vec::new(),
            recipients: Vec::new(),
            queued_as: None,
            queue_id: None,
            warnings: Vec::new(),
            rounds: Vec::new(),
            elapsed_ms: 0.0,
            arrival: None,
            sender: None,
        }
    }

    /// The report for a whole check: every route, with the verdict over all recipients.
    ///
    /// Exit code: 0 when every recipient was accepted, 1 when some were, otherwise the first
    /// route's code.
    pub fn from_routes(
        message: MessageInfo,
        envelope: EnvelopeInfo,
        routes: Vec<RouteResult>,
    ) -> Report {
        let mut route_reports = Vec::new();
        let mut attempts = Vec::new();
        let mut recipients: Vec<RecipientResult> = Vec::new();
        let mut warnings: Vec<String> = Vec::new();
        for route in routes {
            let rr = RouteReport::from_result(route, &mut attempts, &mut warnings);
            recipients.extend(rr.recipients.iter().cloned());
            route_reports.push(rr);
        }
        let total = recipients.len();
        let accepted = recipients.iter().filter(|r| r.accepted).count();
        let first = route_reports.first();
        let exit = if total > 0 && accepted == total {
            Exit::Delivered
        } else if accepted > 0 {
            Exit::Partial
        } else {
            first.map_or(Exit::Connect, |r| r.exit)
        };
        let failure = route_reports.iter().find_map(|r| r.failure.clone());
        let queued_as = route_reports.iter().find_map(|r| r.queued_as.clone());
        let queue_id = route_reports.iter().find_map(|r| r.queue_id.clone());
        let failures = if exit == Exit::Delivered {
            Vec::new()
        } else {
            failure_groups(&route_reports)
        };
        Report {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            outcome: Outcome::from_exit(exit),
            exit,
            failure: if exit == Exit::Delivered {
                None
            } else {
                failure
            },
            failures,
            message: Some(message),
            envelope: Some(envelope),
            routes: route_reports,
            attempts,
            recipients,
            queued_as,
            queue_id,
            warnings,
            rounds: Vec::new(),
            elapsed_ms: 0.0,
            arrival: None,
            sender: None,
        }
    }

    /// The same report, with the time its round took.
    pub fn took(mut self, elapsed_ms: f64) -> Report {
        self.elapsed_ms = elapsed_ms;
        self
    }

    /// Finishes the report of a whole check from the reports of its rounds (one, or more with
    /// `--retry`; the last one decides): the rounds' summaries, `--quit-after` probes marked as
    /// such, the warnings (the message's pre-flight warnings first, then the session's, then slow
    /// steps), the time the whole check took and the `--confirm` arrival (when the message was
    /// accepted for every recipient, its exit code 16, 17 or 18 replaces 0; the outcome stays
    /// `delivered`) and the `--check-sender` report (a failing sender verdict is a warning; with
    /// `required` its exit code 40, 41 or 24 replaces a remaining 0). The only place a report is
    /// completed.
    pub fn finish(
        rounds: Vec<Report>,
        probe: Option<Stage>,
        preflight: Vec<String>,
        elapsed_ms: f64,
        arrival: Option<Arrival>,
        sender: Option<SenderOutcome>,
    ) -> Report {
        let summary: Vec<Round> = rounds
            .iter()
            .zip(1..)
            .map(|(r, n)| Round::of(n, r))
            .collect();
        let Some(mut report) = rounds.into_iter().last() else {
            return Report::input_error("nothing was tried".into(), Exit::Connect, None, None);
        };
        if let Some(stage) = probe {
            report.mark_probe(stage);
        }
        let mut warnings = preflight;
        warnings.append(&mut report.warnings);
        warnings.extend(report.slow_steps());
        report.warnings = warnings;
        if summary.len() > 1 {
            let n = summary.len();
            let failures = report.failure.iter_mut();
            let failures = failures.chain(report.failures.iter_mut().map(|g| &mut g.diagnosis));
            let failures =
                failures.chain(report.routes.iter_mut().filter_map(|r| r.failure.as_mut()));
            for f in failures {
                crate::diagnose::after_retries(&mut f.hint, n);
            }
        }
        report.rounds = summary;
        report.elapsed_ms = elapsed_ms;
        if let Some(arrival) = arrival {
            if report.exit == Exit::Delivered || arrival.interrupted {
                if let Some(exit) = arrival.exit() {
                    report.exit = exit;
                }
            }
            report.warnings.extend(arrival.notes.iter().cloned());
            report.arrival = Some(arrival);
        }
        if let Some(check) = sender {
            match check {
                SenderOutcome::Done {
                    report: s,
                    required,
                } => {
                    if s.exit != Exit::Delivered {
                        report.warnings.push(format!(
                            "sender check (exit {}): {}",
                            s.exit.code(),
                            s.verdict
                        ));
                        if required && report.exit == Exit::Delivered {
                            report.exit = s.exit;
                        }
                    }
                    report.sender = Some(*s);
                }
                SenderOutcome::NotDone(why) => report.warnings.push(why),
            }
        }
        report
    }

    /// `true` when nothing was delivered and the failure is transient (worth another round).
    pub fn is_transient_failure(&self) -> bool {
        self.outcome == Outcome::Failed
            && !self.recipients.iter().any(|r| r.accepted)
            && self
                .failure
                .as_ref()
                .is_some_and(|f| f.class == FailureClass::Transient)
    }

    /// For `--quit-after`: a run that got as far as asked is a probe, not a delivery. Recipients
    /// never offered say so; after `--quit-after rcpt` the recipients' answers decide the exit
    /// code (0 all accepted at RCPT, 1 some, 13/33 none) and the outcome is `probed`.
    fn mark_probe(&mut self, stage: Stage) {
        let why =
            format!("the check stopped after {stage} (--quit-after {stage}); nothing was sent");
        let answered =
            |rs: &[RecipientResult]| !rs.is_empty() && rs.iter().all(|r| r.reply.is_some());
        let probed = |outcome: Outcome, failure: Option<&Diagnosis>, rs: &[RecipientResult]| {
            outcome == Outcome::Delivered
                || (stage == Stage::Rcpt
                    && answered(rs)
                    && failure.is_none_or(|f| f.stage == Stage::Rcpt))
        };
        if probed(self.outcome, self.failure.as_ref(), &self.recipients) {
            self.outcome = Outcome::Probed;
            self.queued_as = None;
            self.queue_id = None;
        }
        for r in &mut self.routes {
            if probed(r.outcome, r.failure.as_ref(), &r.recipients) {
                r.outcome = Outcome::Probed;
            }
            for rc in &mut r.recipients {
                if rc.status == RcptStatus::NotTried && rc.reason.is_none() {
                    rc.reason = Some(why.clone());
                }
            }
        }
        for rc in &mut self.recipients {
            if rc.status == RcptStatus::NotTried && rc.reason.is_none() {
                rc.reason = Some(why.clone());
            }
        }
    }

    /// Notes for steps slower than [`SLOW_STEP_MS`]; not for a step that ended in a timeout (its
    /// failure already says it waited too long).
    fn slow_steps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.attempts {
            for s in &a.steps {
                let timed_out = matches!(
                    s.error_kind,
                    Some(BreakKind::Timeout | BreakKind::ConnectTimeout)
                );
                if s.elapsed_ms > SLOW_STEP_MS && !timed_out {
                    out.push(format!(
                        "slow: the {} step with {} [{}] took {:.1} s",
                        s.stage,
                        a.host,
                        a.address,
                        s.elapsed_ms / 1000.0
                    ));
                }
            }
        }
        out
    }
}

/// A failure with its explanation: serialised as the failure's fields plus `hint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The failure.
    #[serde(flatten)]
    pub failure: Failure,
    /// Its likely cause and the next step.
    pub hint: Hint,
}

impl Diagnosis {
    /// Explains a failure.
    pub fn of(failure: Failure) -> Diagnosis {
        let hint = crate::diagnose::explain(&failure);
        Diagnosis { failure, hint }
    }
}

impl std::ops::Deref for Diagnosis {
    type Target = Failure;
    fn deref(&self) -> &Failure {
        &self.failure
    }
}

/// What happened on one route (a recipient domain, or the smart host).
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    /// The recipient domain; null in smart-host mode.
    pub domain: Option<String>,
    /// `direct` or `smart-host`.
    pub mode: Mode,
    /// The relay (`host:port`) in smart-host mode, or the fallback relay when it was tried.
    pub relay: Option<String>,
    /// The MX hosts found, in the order they were to be tried (empty in smart-host mode).
    pub mx: Vec<MxHost>,
    /// A note on the DNS answer: implicit MX, null MX, NXDOMAIN…
    pub note: Option<String>,
    /// The attempts on this route, in order.
    pub attempts: Vec<Attempt>,
    /// This route's outcome.
    pub outcome: Outcome,
    /// This route's exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
    /// Why it did not deliver to every recipient of the route, with a hint; null when it did.
    pub failure: Option<Diagnosis>,
    /// What the server said about each recipient of the route.
    pub recipients: Vec<RecipientResult>,
    /// The reply text that accepted the message on this route.
    pub queued_as: Option<String>,
    /// The queue id in that reply, when its format is known.
    pub queue_id: Option<String>,
}

impl RouteReport {
    /// Builds the route's report, appending its attempts and warnings to the top-level lists.
    fn from_result(
        route: RouteResult,
        all_attempts: &mut Vec<Attempt>,
        warnings: &mut Vec<String>,
    ) -> RouteReport {
        let decider = route.decisive.and_then(|i| route.results.get(i));
        let (failure, mut recipients, queued_as, queue_id) = match decider {
            Some(r) => (
                r.failure.clone(),
                r.recipients.clone(),
                r.queued_as.clone(),
                r.queue_id.clone(),
            ),
            None => (route.failure.clone(), Vec::new(), None, None),
        };
        // Recipients never offered (the session stopped before RCPT) are not tried, with the
        // failure that stopped it (a `--quit-after` probe fills in its own reason).
        let why = failure.as_ref().map(|f| f.reason.clone());
        let offered: std::collections::HashSet<String> =
            recipients.iter().map(|x| x.address.clone()).collect();
        for addr in &route.recipients {
            if !offered.contains(addr) {
                recipients.push(RecipientResult::not_tried(addr.clone(), why.clone()));
            }
        }
        let notes = route.results.iter().filter_map(|r| r.attempt.name_note());
        for w in route
            .results
            .iter()
            .flat_map(|r| r.warnings.iter().cloned())
            .chain(notes)
        {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        let attempts: Vec<Attempt> = route.results.into_iter().map(|r| r.attempt).collect();
        all_attempts.extend(attempts.iter().cloned());
        RouteReport {
            domain: route.domain,
            mode: route.mode,
            relay: route.relay,
            mx: route.mx,
            note: route.note,
            attempts,
            outcome: Outcome::from_exit(route.exit),
            exit: route.exit,
            failure: if route.exit == Exit::Delivered {
                None
            } else {
                failure.map(Diagnosis::of)
            },
            recipients,
            queued_as,
            queue_id,
        }
    }
}

/// One distinct failure and what it concerns (JSON `failures[]`): the failure's fields and hint,
/// the route's domain (null in smart-host mode) and the recipients it kept from the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The recipient domain of the route; null in smart-host mode or before any route.
    pub domain: Option<String>,
    /// The failure and its hint.
    #[serde(flatten)]
    pub diagnosis: Diagnosis,
    /// The recipients it concerns.
    pub recipients: Vec<String>,
}

/// Every distinct failure of the routes, in order: each recipient that did not get the message is
/// put with the failure that kept it (its own RCPT refusal, the message's refusal, or the failure
/// that stopped the session before its RCPT); a route's failure that concerns no recipient is
/// listed too.
fn failure_groups(routes: &[RouteReport]) -> Vec<FailureGroup> {
    let mut groups: Vec<FailureGroup> = Vec::new();
    for route in routes {
        let add = |groups: &mut Vec<FailureGroup>, failure: Failure, address: Option<&str>| {
            let found = groups
                .iter_mut()
                .find(|g| g.domain == route.domain && g.diagnosis.failure == failure);
            let group = match found {
                Some(g) => g,
                None => {
                    groups.push(FailureGroup {
                        domain: route.domain.clone(),
                        diagnosis: Diagnosis::of(failure),
                        recipients: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            if let Some(a) = address {
                group.recipients.push(a.to_string());
            }
        };
        let route_failure = route.failure.as_ref().map(|d| d.failure.clone());
        for r in &route.recipients {
            let failure = match (&r.status, &r.reply) {
                (RcptStatus::Delivered | RcptStatus::RcptAccepted, _) => continue,
                (_, Some(reply)) if !reply.is_positive() => {
                    let what = format!("recipient {}", RcptStatus::of_rcpt(reply).as_str());
                    Failure::refused(Stage::Rcpt, reply, &what)
                }
                _ => match (&route_failure, &r.reason) {
                    (Some(f), _) if f.stage != Stage::Rcpt || r.reply.is_some() => f.clone(),
                    (_, Some(why)) => rules::recipient_refused(r).with_reason(why),
                    (Some(f), None) => f.clone(),
                    (None, None) => continue,
                },
            };
            add(&mut groups, failure, Some(&r.address));
        }
        if let Some(f) = route_failure {
            let covered = groups.iter().any(|g| g.domain == route.domain);
            if !covered {
                add(&mut groups, f, None);
            }
        }
    }
    groups
}
