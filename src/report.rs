//! The one `Serialize` result of a check, and its verdict. Renderers only format it.

use crate::exit::Exit;
use crate::message::{EnvelopeInfo, MessageInfo};
use crate::session::AttemptResult;
use crate::transcript::{Attempt, Failure, FailureClass, RecipientResult, Stage};
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
    /// Why it did not fully succeed; null when delivered.
    pub failure: Option<Failure>,
    /// The message sent (null when it could not be loaded).
    pub message: Option<MessageInfo>,
    /// The envelope (null when it could not be worked out).
    pub envelope: Option<EnvelopeInfo>,
    /// Every connection attempt, in order, each with its steps.
    pub attempts: Vec<Attempt>,
    /// What the server said about each recipient.
    pub recipients: Vec<RecipientResult>,
    /// The text of the reply that accepted the message (it usually names the queue id), or null.
    pub queued_as: Option<String>,
    /// Things worth knowing that did not stop the check.
    pub warnings: Vec<String>,
    /// Milliseconds the whole check took.
    pub elapsed_ms: f64,
}

impl Report {
    /// A report for a check that stopped before any connection (bad input).
    pub fn input_error(
        reason: String,
        exit: Exit,
        message: Option<MessageInfo>,
        envelope: Option<EnvelopeInfo>,
    ) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            outcome: Outcome::Failed,
            exit,
            failure: Some(Failure {
                stage: Stage::Input,
                class: FailureClass::Permanent,
                reason,
                code: None,
                enhanced: None,
                kind: None,
            }),
            message,
            envelope,
            attempts: Vec::new(),
            recipients: Vec::new(),
            queued_as: None,
            warnings: Vec::new(),
            elapsed_ms: 0.0,
        }
    }

    /// The report for a route: all attempts, with the deciding one giving the verdict.
    pub fn from_attempts(
        message: MessageInfo,
        envelope: EnvelopeInfo,
        results: Vec<AttemptResult>,
        decisive: Option<usize>,
        fallback_failure: Option<Failure>,
        fallback_exit: Exit,
    ) -> Report {
        let decider = decisive.and_then(|i| results.get(i));
        let (exit, failure, recipients, queued_as) = match decider {
            Some(r) => {
                // Recipients never offered (the session stopped before RCPT) are listed as not accepted.
                let mut recipients = r.recipients.clone();
                for addr in &envelope.recipients {
                    if !recipients.iter().any(|x| &x.address == addr) {
                        recipients.push(RecipientResult {
                            address: addr.clone(),
                            accepted: false,
                            reply: None,
                        });
                    }
                }
                (r.exit, r.failure.clone(), recipients, r.queued_as.clone())
            }
            None => (fallback_exit, fallback_failure, Vec::new(), None),
        };
        let mut warnings: Vec<String> = Vec::new();
        for w in results.iter().flat_map(|r| &r.warnings) {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            outcome: Outcome::from_exit(exit),
            exit,
            failure,
            message: Some(message),
            envelope: Some(envelope),
            attempts: results.into_iter().map(|r| r.attempt).collect(),
            recipients,
            queued_as,
            warnings,
            elapsed_ms: 0.0,
        }
    }
}
