//! `smtpcheck mx`: the routing plan for domains without sending anything, and with `--probe` each
//! server's greeting and EHLO capabilities.

use crate::config::MxConfig;
use crate::dns::Resolver;
use crate::events::Events;
use crate::exit::Exit;
use crate::message::{Envelope, Message, Source};
use crate::plan::Target;
use crate::plan::{plan_domain, random_seed, MxHost};
use crate::session::{attempt, SessionOptions};
use crate::transcript::{Attempt, Failure, Stage};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

/// The report of `smtpcheck mx`.
#[derive(Debug, Clone, Serialize)]
pub struct MxReport {
    /// Always [`crate::report::SCHEMA_VERSION`].
    pub schema_version: u32,
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
    /// Why there is no usable mail host (DNS failure), or null.
    pub failure: Option<Failure>,
    /// The addresses a delivery would try, in order.
    pub targets: Vec<Target>,
    /// With --probe: one attempt per target (greeting, EHLO, QUIT).
    pub probes: Vec<Attempt>,
    /// This domain's exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
}

/// Runs `smtpcheck mx` and returns the report (output is left to the caller).
pub async fn run(config: &MxConfig, observer: &dyn Events) -> MxReport {
    let (args, opts) = (config, &config.session);
    let resolver = Resolver::new(args.dns.resolver, args.dns.timeout);
    let probe_opts = SessionOptions {
        quit_after: Some(Stage::Ehlo),
        ..opts.clone()
    };
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
            } else if args.probe && !probes.iter().any(probe_ok) {
                Exit::Connect
            } else {
                Exit::Delivered
            };
            DomainReport {
                domain: plan.domain,
                mx: plan.mx,
                note: plan.note,
                failure: plan.failure,
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
    } else {
        Exit::Delivered
    };
    MxReport {
        schema_version: crate::report::SCHEMA_VERSION,
        exit,
        domains,
    }
}

/// `true` when the probe got a 220 greeting and an accepted EHLO or HELO.
pub fn probe_ok(a: &Attempt) -> bool {
    a.steps
        .iter()
        .any(|s| matches!(s.stage, Stage::Ehlo | Stage::Helo) && s.ok)
}

/// Connects, reads the greeting, sends EHLO (HELO if refused) and QUIT; no mail transaction.
pub async fn probe(target: &Target, opts: &SessionOptions, observer: &dyn Events) -> Attempt {
    let message = Message {
        path: std::path::PathBuf::new(),
        raw: Vec::new(),
        streamed: None,
        message_id: None,
        subject: None,
        eight_bit: false,
        headers: Default::default(),
    };
    let envelope = Envelope {
        from: None,
        from_source: Source::Flag,
        recipients: Vec::new(),
        recipients_source: Source::Flag,
    };
    let opts = SessionOptions {
        quit_after: Some(Stage::Ehlo),
        ..opts.clone()
    };
    attempt(target, &opts, &message, &envelope, observer)
        .await
        .attempt
}
