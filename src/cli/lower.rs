//! The command line lowered into [`crate::config`]: every conversion from a clap type happens
//! here, and so does every read the flags ask for before a connection (the `--ca` file, the AUTH
//! password from its file, the environment or a prompt). A bad value is bad input (exit 3).

use super::{
    AuthMech, ColorWhen, ConnArgs, DnsArgs, DsnRet, Format, MxArgs, OutputArgs, QuitAfter,
    SendArgs, TlsMode,
};
use crate::address::parse_helo;
use crate::config::{self, InputConfig, MxConfig, OutputConfig, SendConfig};
use crate::deliver::DeliverOptions;
use crate::dns::{DnsOptions, Family};
use crate::error::Error;
use crate::session::{Dsn, Helo, SessionOptions};
use crate::smtp::auth::{self, AuthOptions, Mechanism};
use crate::tls::TlsOptions;
use crate::transcript::{Policy, Stage};

/// `smtpcheck sender`: the zones of `--dnsbl` (`default` expanded, duplicates dropped) and the
/// DNS timeout checked.
pub fn sender(args: &super::SenderArgs) -> Result<crate::sender::SenderOptions, String> {
    if args.dns_timeout.is_zero() {
        return Err("--dns-timeout must be greater than zero".to_string());
    }
    let mut zones: Vec<String> = Vec::new();
    for z in &args.dnsbl {
        let z = z.trim().trim_end_matches('.').to_ascii_lowercase();
        let add: Vec<String> = if z == "default" {
            crate::sender::DEFAULT_DNSBL
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else if crate::sender::lookup::valid_domain(&z) {
            vec![z]
        } else {
            return Err(format!("--dnsbl {z:?} is not a DNS zone name"));
        };
        for z in add {
            if !zones.contains(&z) {
                zones.push(z);
            }
        }
    }
    Ok(crate::sender::SenderOptions {
        eml: args.eml.clone(),
        ip: args.ip,
        helo: args.helo.clone().filter(|h| !h.trim().is_empty()),
        from: args.from.clone(),
        dnsbl: zones,
        resolver: args.resolver,
        dns_timeout: args.dns_timeout,
    })
}

/// `--color`.
pub fn color(when: ColorWhen) -> config::Color {
    match when {
        ColorWhen::Auto => config::Color::Auto,
        ColorWhen::Always => config::Color::Always,
        ColorWhen::Never => config::Color::Never,
    }
}

/// The output flags (nothing to check: the `--output` file is created by the renderer). Lowered
/// first and on its own, so that an error in the other flags is reported in the format asked for.
pub fn output(args: &OutputArgs) -> OutputConfig {
    OutputConfig {
        format: match args.format {
            Format::Text => config::Format::Text,
            Format::Json => config::Format::Json,
            Format::Junit => config::Format::Junit,
        },
        file: args.output.clone(),
        quiet: args.quiet,
        verbose: args.verbose,
    }
}

/// `smtpcheck send`: the session settings (with `--helo` checked, the trust roots and the AUTH
/// password loaded), the routing and the input as given.
pub fn send(args: &SendArgs) -> Result<SendConfig, Error> {
    let mut session = session(&args.conn)?;
    if let Some(user) = &args.auth_user {
        auth::check_user(user)?;
        let password = auth::resolve_password(user, args.auth_password_file.as_deref())?;
        session.auth = Some(AuthOptions {
            user: user.clone(),
            password,
            mechanism: args.auth_mech.map(mechanism),
            allow_unencrypted: args.allow_plain_auth,
        });
    }
    session.quit_after = args.quit_after.map(quit_after);
    session.dsn = Dsn {
        notify: args.notify.clone().map(|n| n.0),
        ret: args.ret.map(|r| match r {
            DsnRet::Full => "FULL".to_string(),
            DsnRet::Hdrs => "HDRS".to_string(),
        }),
        envid: args.envid.clone(),
    };
    Ok(SendConfig {
        input: InputConfig {
            eml: args.eml.clone(),
            from: args.from.clone(),
            to: args.to.clone(),
            subject: args.subject.clone(),
            body: args.body.clone(),
            body_file: args.body_file.clone(),
            headers: args.header.clone(),
            max_size: args.max_size,
        },
        session,
        deliver: deliver(args),
        log: args.log.clone(),
        retry: args.retry,
        retry_delay: args.retry_delay,
    })
}

/// `smtpcheck mx`.
pub fn mx(args: &MxArgs) -> Result<MxConfig, Error> {
    Ok(MxConfig {
        domains: args.domains.clone(),
        probe: args.probe,
        session: session(&args.conn)?,
        dns: dns(&args.dns),
    })
}

/// The routing settings: the relay's port defaults to 25, or 465 with `--tls implicit`.
fn deliver(args: &SendArgs) -> DeliverOptions {
    let relay_port = if args.conn.tls == TlsMode::Implicit {
        465
    } else {
        25
    };
    DeliverOptions {
        smart_host: args.smart_host.as_ref().map(|h| h.with_default(relay_port)),
        fallback: args
            .fallback_smart_host
            .as_ref()
            .map(|h| h.with_default(relay_port)),
        max_attempts: args.max_attempts.map_or(usize::MAX, |n| n as usize),
        concurrency: args.concurrency as usize,
        dns: dns(&args.dns),
    }
}

fn dns(args: &DnsArgs) -> DnsOptions {
    DnsOptions {
        resolver: args.resolver,
        timeout: args.dns_timeout,
        family: match (args.ipv4, args.ipv6) {
            (true, false) => Family::V4,
            (false, true) => Family::V6,
            _ => Family::Any,
        },
        port: args.port,
    }
}

/// The session settings shared by `send` and `mx --probe`: `--helo` and `--tls-name` checked, the
/// trust roots (with `--ca`) loaded. No AUTH, DSN or `--quit-after`: those are `send`'s.
fn session(args: &ConnArgs) -> Result<SessionOptions, Error> {
    let helo = match &args.helo {
        Some(h) => Helo::Given(parse_helo(h)?),
        None => Helo::Auto(crate::host::local_fqdn()),
    };
    let tls = TlsOptions::new(
        policy(args.tls),
        args.ca.as_deref(),
        args.tls_name.as_deref(),
        args.insecure,
    )?
    .with_pins(&args.tls_pin)?;
    let tls = TlsOptions {
        warn_days: args.cert_warn_days,
        save_chain: args.tls_save_chain.clone(),
        ..tls
    };
    Ok(SessionOptions {
        helo,
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        quit_after: None,
        tls,
        auth: None,
        dsn: Dsn::default(),
    })
}

fn policy(mode: TlsMode) -> Policy {
    match mode {
        TlsMode::Off => Policy::Off,
        TlsMode::Opportunistic => Policy::Opportunistic,
        TlsMode::Required => Policy::Required,
        TlsMode::Implicit => Policy::Implicit,
    }
}

fn mechanism(m: AuthMech) -> Mechanism {
    match m {
        AuthMech::Plain => Mechanism::Plain,
        AuthMech::Login => Mechanism::Login,
        AuthMech::CramMd5 => Mechanism::CramMd5,
    }
}

/// The session stage `--quit-after` stops after.
fn quit_after(q: QuitAfter) -> Stage {
    match q {
        QuitAfter::Connect => Stage::Connect,
        QuitAfter::Greeting => Stage::Greeting,
        QuitAfter::Ehlo => Stage::Ehlo,
        QuitAfter::Tls => Stage::Starttls,
        QuitAfter::Auth => Stage::Auth,
        QuitAfter::Mail => Stage::Mail,
        QuitAfter::Rcpt => Stage::Rcpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn send_config(args: &[&str]) -> SendConfig {
        let cli = Cli::try_parse_from(["smtpcheck", "send"].iter().chain(args)).unwrap();
        let Command::Send(a) = cli.command else {
            panic!("not send")
        };
        send(&a).unwrap()
    }

    #[test]
    fn relay_port_follows_the_tls_mode() {
        let c = send_config(&["--smart-host", "relay.test", "--helo", "c.test"]);
        assert_eq!(c.deliver.smart_host.unwrap().port, 25);
        let c = send_config(&["--smart-host", "relay.test", "--tls", "implicit"]);
        assert_eq!(c.deliver.smart_host.unwrap().port, 465);
        let c = send_config(&["--smart-host", "relay.test:2525", "--tls", "implicit"]);
        assert_eq!(c.deliver.smart_host.unwrap().port, 2525);
    }

    #[test]
    fn flags_become_settings() {
        let c = send_config(&[
            "--to",
            "a@b.test",
            "-6",
            "--quit-after",
            "tls",
            "--ret",
            "hdrs",
            "--notify",
            "success,delay",
            "--format",
            "junit",
            "-q",
            "--max-attempts",
            "3",
        ]);
        assert_eq!(c.deliver.dns.family, Family::V6);
        assert_eq!(c.deliver.max_attempts, 3);
        assert_eq!(c.session.quit_after, Some(Stage::Starttls));
        assert_eq!(c.session.dsn.ret.as_deref(), Some("HDRS"));
        assert_eq!(
            c.session.dsn.notify,
            Some(vec!["SUCCESS".to_string(), "DELAY".to_string()])
        );
        assert_eq!(c.input.to, vec!["a@b.test"]);
        assert_eq!(c.session.tls.policy, Policy::Opportunistic);
    }

    #[test]
    fn a_bad_helo_is_bad_input() {
        let cli =
            Cli::try_parse_from(["smtpcheck", "mx", "a.test", "--helo", "not a name"]).unwrap();
        let Command::Mx(a) = cli.command else {
            panic!("not mx")
        };
        let err = mx(&a).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::BadInput);
    }
}
