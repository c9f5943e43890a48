//! The command line lowered into [`crate::config`]: every conversion from a clap type happens
//! here, and so does every read the flags ask for before a connection (the `--ca` file, the AUTH
//! password from its file, the environment or a prompt). A bad value is bad input (exit 3).

use super::{
    AuthMech, ColorWhen, ConnArgs, DnsArgs, DsnRet, Format, MxArgs, OAuthFlow, OAuthProvider,
    OutputArgs, QuitAfter, SendArgs, TlsMode,
};
use crate::address::parse_helo;
use crate::config::{self, InputConfig, MxConfig, OutputConfig, SendConfig};
use crate::confirm::{ConfirmOptions, ImapUrl};
use crate::deliver::DeliverOptions;
use crate::dns::{DnsOptions, Family};
use crate::error::Error;
use crate::oauth;
use crate::secret::Secret;
use crate::session::{Dsn, Helo, SessionOptions};
use crate::smtp::auth::{self, AuthOptions, Credential, Mechanism};
use crate::tls::TlsOptions;
use crate::transcript::{Policy, Stage};

/// `smtpcheck sender`: the zones of `--dnsbl` (`default` expanded, duplicates dropped) and the
/// DNS timeout checked.
pub fn sender(args: &super::SenderArgs) -> Result<crate::sender::SenderOptions, String> {
    if args.dns_timeout.is_zero() {
        return Err("--dns-timeout must be greater than zero".to_string());
    }
    Ok(crate::sender::SenderOptions {
        eml: args.eml.clone(),
        ip: args.ip,
        helo: args.helo.clone().filter(|h| !h.trim().is_empty()),
        from: args.from.clone(),
        dnsbl: dnsbl(&args.dnsbl)?,
        resolver: args.resolver,
        dns_timeout: args.dns_timeout,
    })
}

/// `--dnsbl`: trimmed, lower-cased, `default` expanded, each zone once.
fn dnsbl(given: &[String]) -> Result<Vec<String>, String> {
    let mut zones: Vec<String> = Vec::new();
    for z in given {
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
    Ok(zones)
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
        let mech = args.auth_mech.map(mechanism);
        let token = oauth_token(args, &session.tls)?;
        let have_cert = session.tls.client_cert.is_some();
        if mech == Some(Mechanism::External) && !have_cert {
            return Err(Error::ClientCert {
                why: "--auth-mech external needs a client certificate: give --tls-cert FILE and --tls-key FILE".into(),
            });
        }
        let password = credentials(user, mech, (token.is_some(), have_cert), args)?;
        session.auth = Some(AuthOptions {
            user: user.clone(),
            password,
            token,
            mechanism: mech,
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
    let confirm = match &args.confirm {
        Some(url) => Some(confirm(args, url, &session)?),
        None => None,
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
        confirm,
        check_sender: (args.check_sender || args.require_sender_pass)
            .then(|| {
                dnsbl(&args.dnsbl).map(|zones| crate::config::SenderCheck {
                    ip: args.ip,
                    dnsbl: zones,
                    require_pass: args.require_sender_pass,
                })
            })
            .transpose()
            .map_err(|why| Error::BadDnsbl { why })?,
    })
}

/// `--confirm`: the IMAP password read now (before any connection), the TLS settings of the
/// SMTP session (`imaps://` makes them implicit).
fn confirm(
    args: &SendArgs,
    url: &ImapUrl,
    session: &SessionOptions,
) -> Result<ConfirmOptions, Error> {
    // The token of the SMTP login, else SMTPCHECK_OAUTH2_TOKEN (the other token sources need
    // --auth-user). With a token, the password is read only when given without a prompt.
    let token = match &session.auth {
        Some(a) => a.token.clone(),
        None => oauth_token(args, &session.tls)?,
    };
    let file = args.confirm_password_file.as_deref();
    let env = std::env::var_os(IMAP_PASSWORD.env).is_some_and(|v| !v.is_empty());
    let password = if token.is_none() || file.is_some() || env {
        Some(auth::resolve_password_of(&IMAP_PASSWORD, &url.user, file)?)
    } else {
        None
    };
    Ok(ConfirmOptions {
        url: url.clone(),
        password,
        token,
        timeout: args.confirm_timeout,
        folders: args.confirm_folders.clone().map(|f| {
            f.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        delete: args.confirm_delete,
        // --tls-name is the SMTP server's: the IMAP certificate is checked against the IMAP host.
        tls: TlsOptions {
            name: None,
            ..session.tls.clone()
        },
        allow_plain_login: args.allow_plain_auth,
        connect_timeout: session.connect_timeout,
        io_timeout: session.timeout,
    })
}

/// The OAuth 2.0 access token: from `--oauth2-flow`, else SMTPCHECK_OAUTH2_TOKEN,
/// `--oauth2-token-file` or `--oauth2-token-cmd`; `None` when none is given.
fn oauth_token(args: &SendArgs, tls: &TlsOptions) -> Result<Option<Secret>, Error> {
    match args.oauth2_flow {
        Some(flow) => oauth_flow(flow, args, tls).map(Some),
        None => oauth::given_token(oauth::TokenSources {
            file: args.oauth2_token_file.as_deref(),
            command: args.oauth2_token_cmd.as_deref(),
            env: std::env::var(oauth::TOKEN_ENV).ok().map(Secret::new),
        }),
    }
}

/// The IMAP password of `--confirm`.
const IMAP_PASSWORD: auth::PasswordSource = auth::PasswordSource {
    what: "IMAP",
    env: "SMTPCHECK_IMAP_PASSWORD",
    user_flag: "--confirm",
    file_flag: "--confirm-password-file",
};

/// `--oauth2-flow`: the endpoints (the explicit flags over the preset's), the client secret and
/// refresh token read, then the flow run (the device code is shown on stderr). An `https://`
/// endpoint is trusted by the session's roots, `--ca` included (read here when `--tls off` left
/// it unread).
fn oauth_flow(
    flow: OAuthFlow,
    args: &SendArgs,
    tls: &crate::tls::TlsOptions,
) -> Result<Secret, Error> {
    use oauth::flow::{self as f, Flow, Provider};
    let bad = |why: String| Error::OAuth { why };
    let flow = match flow {
        OAuthFlow::ClientCredentials => Flow::ClientCredentials,
        OAuthFlow::DeviceCode => Flow::DeviceCode,
        OAuthFlow::RefreshToken => Flow::RefreshToken,
    };
    let preset = args
        .oauth2_provider
        .map(|p| {
            let p = match p {
                OAuthProvider::Microsoft => Provider::Microsoft,
                OAuthProvider::Google => Provider::Google,
            };
            f::preset(p, args.oauth2_tenant.as_deref(), flow)
        })
        .transpose()
        .map_err(bad)?;
    let token_url = args
        .oauth2_token_url
        .clone()
        .or_else(|| preset.as_ref().map(|p| p.token_url.clone()))
        .ok_or_else(|| {
            bad(format!(
                "--oauth2-flow {} needs --oauth2-token-url URL or --oauth2-provider",
                flow.as_str()
            ))
        })?;
    let token_url = oauth::http::Endpoint::parse(&token_url, "--oauth2-token-url").map_err(bad)?;
    let device_url = args
        .oauth2_device_url
        .clone()
        .or_else(|| preset.as_ref().map(|p| p.device_url.clone()))
        .filter(|_| flow == Flow::DeviceCode)
        .map(|u| oauth::http::Endpoint::parse(&u, "--oauth2-device-url"))
        .transpose()
        .map_err(bad)?;
    let client_id = args
        .oauth2_client_id
        .clone()
        .filter(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| bad(format!("--oauth2-flow {} needs --oauth2-client-id ID (the application's client ID, without spaces)", flow.as_str())))?;
    let read = |path: &std::path::Path, flag: &str| -> Result<Secret, Error> {
        let raw = zeroize::Zeroizing::new(
            crate::files::read_prefix(path, 64 * 1024, Some(b'\n'))
                .map_err(|why| bad(format!("cannot read {flag} {}: {why}", path.display())))?,
        );
        let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
        let line = std::str::from_utf8(&raw[..end])
            .map(|l| l.trim_end_matches('\r'))
            .map_err(|_| {
                bad(format!(
                    "{flag} {}: the first line is not UTF-8",
                    path.display()
                ))
            })?;
        if line.is_empty() {
            return Err(bad(format!(
                "{flag} {}: the first line is empty",
                path.display()
            )));
        }
        Ok(Secret::new(line.to_string()))
    };
    let client_secret = match &args.oauth2_client_secret_file {
        Some(path) => Some(read(path, "--oauth2-client-secret-file")?),
        None => std::env::var(f::CLIENT_SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    };
    let refresh_token = args
        .oauth2_refresh_token_file
        .as_deref()
        .map(|p| read(p, "--oauth2-refresh-token-file"))
        .transpose()?;
    let options = f::FlowOptions {
        flow,
        token_url,
        device_url,
        client_id,
        client_secret,
        scope: args
            .oauth2_scope
            .clone()
            .or_else(|| preset.map(|p| p.scope)),
        refresh_token,
        timeout: f::REQUEST_TIMEOUT,
        device_wait: f::MAX_DEVICE_WAIT,
        roots: match (&args.conn.ca, tls.policy) {
            (Some(ca), crate::transcript::Policy::Off) => crate::tls::Roots::with_ca(ca)?,
            _ => tls.roots.clone(),
        },
    };
    f::fetch(&options, &mut |line| eprintln!("smtpcheck: {line}"))
}

/// The password, when the mechanism needs one: always for a password mechanism, never for a token
/// mechanism; when the mechanism is left to the server's offer, only without a token, or when a
/// password is at hand without a prompt (so a server that offers no token mechanism can still be
/// logged in to).
fn credentials(
    user: &str,
    mech: Option<Mechanism>,
    (have_token, have_cert): (bool, bool),
    args: &SendArgs,
) -> Result<Option<Secret>, Error> {
    let file = args.auth_password_file.as_deref();
    match mech.map(Mechanism::credential) {
        Some(Credential::Token) if !have_token => Err(Error::OAuth {
            why: format!(
                "--auth-mech {} needs an OAuth 2.0 access token: set {}, or give --oauth2-token-file FILE, --oauth2-token-cmd COMMAND or --oauth2-flow FLOW",
                mech.map(Mechanism::as_str).unwrap_or_default().to_ascii_lowercase(),
                oauth::TOKEN_ENV
            ),
        }),
        Some(Credential::Token) | Some(Credential::Certificate) => Ok(None),
        None if have_token || have_cert => {
            let env = std::env::var_os(auth::PASSWORD_ENV).is_some_and(|v| !v.is_empty());
            if file.is_some() || env {
                auth::resolve_password(user, file).map(Some)
            } else {
                Ok(None)
            }
        }
        Some(Credential::Password) | None => auth::resolve_password(user, file).map(Some),
    }
}

/// `smtpcheck mx`.
pub fn mx(args: &MxArgs) -> Result<MxConfig, Error> {
    Ok(MxConfig {
        domains: args
            .domains
            .iter()
            .map(|d| mx_domain(d))
            .collect::<Result<_, _>>()?,
        probe: args.probe,
        session: session(&args.conn)?,
        dns: dns(&args.dns),
    })
}

/// A domain given to `smtpcheck mx`: an address (`user@example.com`) stands for its domain, as
/// mail to it would be routed by that domain's MX records.
fn mx_domain(value: &str) -> Result<String, Error> {
    let Some((_, domain)) = value.rsplit_once('@') else {
        return Ok(value.to_string());
    };
    if domain.is_empty() {
        return Err(Error::BadAddress {
            value: crate::error::show(value),
            origin: "the domains of smtpcheck mx".into(),
            why:
                "nothing after the @; give a domain (example.com) or an address (user@example.com)"
                    .into(),
        });
    }
    Ok(domain.to_string())
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
    let client_cert = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::load_client_cert(cert, key)?),
        _ => None,
    };
    let tls = TlsOptions {
        warn_days: args.cert_warn_days,
        save_chain: args.tls_save_chain.clone(),
        client_cert,
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
        AuthMech::ScramSha256 => Mechanism::ScramSha256,
        AuthMech::External => Mechanism::External,
        AuthMech::Xoauth2 => Mechanism::XOAuth2,
        AuthMech::Oauthbearer => Mechanism::OAuthBearer,
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
