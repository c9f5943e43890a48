//! `smtpcheck mx`: the routing plan for domains without sending anything, and with `--probe` each
//! server's greeting and EHLO capabilities.

use crate::config::MxConfig;
use crate::dns::Resolver;
use crate::events::Events;
use crate::exit::Exit;
use crate::message::{Envelope, Message, Source};
use crate::plan::Target;
use crate::plan::{plan_domain, random_seed, MxHost};
use crate::report::Diagnosis;
use crate::session::{attempt, SessionOptions};
use crate::smtp::rules;
use crate::transcript::{Attempt, Stage};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

/// The report of `smtpcheck mx`.
#[derive(Debug, Clone, Serialize)]
pub struct MxReport {
    /// Always [`crate::report::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// smtpcheck's version.
    pub version: &'static str,
    /// The process exit code: 0 every domain has a usable mail host (with --probe: one that
    /// answered), 4 a domain has none, 5 with --probe when a domain's hosts all failed to answer.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
    /// One entry per domain, in the order given.
    pub domains: Vec<DomainReport>,
}

/// The plan (and probes) for one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    /// The domain.
    pub domain: String,
    /// The MX hosts in the order they would be tried, with their addresses.
    pub mx: Vec<MxHost>,
    /// Implicit MX, null MX…
    pub note: Option<String>,
    /// Why there is no usable mail host (DNS failure) with its hint, or null.
    pub failure: Option<Diagnosis>,
    /// The addresses a delivery would try, in order.
    pub targets: Vec<Target>,
    /// With --probe: one probe per target (greeting, EHLO, STARTTLS as --tls asks, QUIT).
    pub probes: Vec<Probe>,
    /// This domain's exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
}

/// One probe of one address: the attempt's fields (steps, capabilities, `tls` whenever a handshake
/// happened) plus what it came to.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The conversation.
    #[serde(flatten)]
    pub attempt: Attempt,
    /// Why the probe did not succeed (with `--tls required`: no STARTTLS, or a certificate that
    /// is neither verified nor pinned), with its hint; null when it did.
    pub failure: Option<Diagnosis>,
    /// What was noticed on the way (STARTTLS not offered, a certificate not verified, expiry).
    pub warnings: Vec<String>,
    /// This probe's exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
}

impl Probe {
    /// `true` when the host works as `--tls` asks: greeting, EHLO or HELO, and TLS when required.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs `smtpcheck mx` and returns the report (output is left to the caller).
pub async fn run(config: &MxConfig, observer: &dyn Events) -> MxReport {
    let (args, opts) = (config, &config.session);
    let resolver = Resolver::new(args.dns.resolver, args.dns.timeout);
    let probe_opts = opts.clone();
    let resolver = &resolver;
    let probe_opts = &probe_opts;
    let domains: Vec<DomainReport> = stream::iter(args.domains.iter())
        .map(|domain| async move {
            let plan = match resolver {
                Ok(r) => {
                    plan_domain(r, domain, args.dns.family, args.dns.port, random_seed()).await
                }
                Err(why) => crate::plan::RoutePlan::unresolved(domain, why),
            };
            let mut probes = Vec::new();
            if args.probe {
                for target in &plan.targets {
                    probes.push(probe(target, probe_opts, observer).await);
                }
            }
            let exit = if plan.targets.is_empty() {
                Exit::Dns
            } else if args.probe && !probes.iter().any(Probe::ok) {
                if probes.iter().any(|p| p.exit == Exit::Tls) {
                    Exit::Tls
                } else {
                    Exit::Connect
                }
            } else {
                Exit::Delivered
            };
            DomainReport {
                domain: plan.domain,
                mx: plan.mx,
                note: plan.note,
                failure: plan.failure.map(Diagnosis::of),
                targets: plan.targets,
                probes,
                exit,
            }
        })
        .buffered(8)
        .collect()
        .await;
    let exit = if domains.iter().any(|d| d.exit == Exit::Dns) {
        Exit::Dns
    } else if domains.iter().any(|d| d.exit == Exit::Connect) {
        Exit::Connect
    } else if domains.iter().any(|d| d.exit == Exit::Tls) {
        Exit::Tls
    } else {
        Exit::Delivered
    };
    MxReport {
        schema_version: crate::report::SCHEMA_VERSION,
        version: env!("CARGO_PKG_VERSION"),
        exit,
        domains,
    }
}

/// Connects, reads the greeting, sends EHLO (HELO if refused), STARTTLS and the handshake as
/// `--tls` asks (the certificate judged as `send` judges it), then QUIT; no mail transaction. An
/// opportunistic probe whose handshake failed still counts as working (delivery would go on in
/// clear), with a warning.
pub async fn probe(target: &Target, opts: &SessionOptions, observer: &dyn Events) -> Probe {
    let message = Message::empty(std::path::PathBuf::new());
    let envelope = Envelope {
        from: None,
        from_source: Source::Flag,
        recipients: Vec::new(),
        recipients_source: Source::Flag,
    };
    let opts = SessionOptions {
        quit_after: Some(Stage::Starttls),
        ..opts.clone()
    };
    let r = attempt(target, &opts, &message, &envelope, observer).await;
    let why = r.failure.as_ref().map_or("", |f| f.reason.as_str());
    let fallback = rules::tls_fallback(opts.tls.policy, r.handshake_failed, &r.attempt.host, why);
    let mut warnings = r.warnings;
    let (failure, exit) = match fallback {
        Some(w) => {
            warnings.push(w);
            (None, Exit::Delivered)
        }
        None => (r.failure.map(Diagnosis::of), r.exit),
    };
    Probe {
        attempt: r.attempt,
        failure,
        warnings,
        exit,
    }
}
