//! Getting an access token from the identity provider (RFC 6749, RFC 8628): the client-credentials
//! grant (Microsoft's app-only SMTP), the device authorization grant (an admin signs in on another
//! device), and the refresh-token grant; the Microsoft and Google presets; the provider's errors
//! explained (`invalid_client`, `unauthorized_client`, `AADSTS…`).
//!
//! Every request is bounded by [`REQUEST_TIMEOUT`], the device-code polling by the code's own
//! lifetime and [`MAX_DEVICE_WAIT`]. The client secret, the refresh token, the device code and the
//! token are [`Secret`]s, scrubbed from any provider text that is shown.

use super::http::{self, Endpoint};
use crate::error::Error;
use crate::secret::Secret;
use std::time::{Duration, Instant};

/// The bound on each HTTP request to the identity provider.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the device-code flow waits for the sign-in, whatever the code's lifetime.
pub const MAX_DEVICE_WAIT: Duration = Duration::from_secs(15 * 60);

/// The environment variable the client secret is read from.
pub const CLIENT_SECRET_ENV: &str = "SMTPCHECK_OAUTH2_CLIENT_SECRET";

/// The device-code grant type (RFC 8628 3.4).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A token flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// RFC 6749 4.4: the application's own identity (client ID and secret).
    ClientCredentials,
    /// RFC 8628: a user signs in in a browser, on any device.
    DeviceCode,
    /// RFC 6749 6: a refresh token from an earlier sign-in.
    RefreshToken,
}

impl Flow {
    /// The name of `--oauth2-flow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::ClientCredentials => "client-credentials",
            Flow::DeviceCode => "device-code",
            Flow::RefreshToken => "refresh-token",
        }
    }
}

/// An identity provider preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Microsoft Entra ID (Exchange Online), with a tenant.
    Microsoft,
    /// Google (Gmail, Google Workspace).
    Google,
}

/// The endpoints and scope a preset fills in (the explicit flags win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The token endpoint.
    pub token_url: String,
    /// The device authorization endpoint.
    pub device_url: String,
    /// The scope for the flow.
    pub scope: String,
}

/// The documented endpoints and scopes of `provider` for `flow`: Microsoft's app-only scope is
/// `https://outlook.office365.com/.default`, its delegated one `https://outlook.office.com/SMTP.Send`
/// (with `offline_access` for a refresh token); Google's is `https://mail.google.com/`.
pub fn preset(provider: Provider, tenant: Option<&str>, flow: Flow) -> Result<Preset, String> {
    match provider {
        Provider::Microsoft => {
            let tenant = tenant.ok_or(
                "--oauth2-provider microsoft needs --oauth2-tenant (the tenant ID or its domain, e.g. contoso.onmicrosoft.com)",
            )?;
            if tenant.is_empty()
                || !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(format!(
                    "--oauth2-tenant {}: give the tenant ID (a GUID) or a domain name",
                    crate::error::show(tenant)
                ));
            }
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            let scope = match flow {
                Flow::ClientCredentials => "https://outlook.office365.com/.default",
                Flow::DeviceCode | Flow::RefreshToken => {
                    "https://outlook.office.com/SMTP.Send offline_access"
                }
            };
            Ok(Preset {
                token_url: format!("{base}/token"),
                device_url: format!("{base}/devicecode"),
                scope: scope.to_string(),
            })
        }
        Provider::Google => Ok(Preset {
            token_url: "https://oauth2.googleapis.com/token".into(),
            device_url: "https://oauth2.googleapis.com/device/code".into(),
            scope: "https://mail.google.com/".into(),
        }),
    }
}

/// Everything a flow needs, settled from the flags.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// Which flow.
    pub flow: Flow,
    /// The token endpoint.
    pub token_url: Endpoint,
    /// The device authorization endpoint (device-code flow).
    pub device_url: Option<Endpoint>,
    /// The application (client) ID.
    pub client_id: String,
    /// The client secret (client credentials; optional for the others).
    pub client_secret: Option<Secret>,
    /// The scope asked for.
    pub scope: Option<String>,
    /// The refresh token (refresh-token flow).
    pub refresh_token: Option<Secret>,
    /// The bound on each request.
    pub timeout: Duration,
    /// The bound on the device-code wait.
    pub device_wait: Duration,
    /// The roots an `https://` endpoint's certificate must chain to: the built-in and system
    /// ones, and `--ca` (a private identity provider), as for the SMTP session.
    pub roots: crate::tls::Roots,
}

/// What the flow tells the user on the way (the device code and where to enter it).
pub type Say<'a> = &'a mut dyn FnMut(&str);

/// Runs the flow and returns the access token.
pub fn fetch(opts: &FlowOptions, say: Say<'_>) -> Result<Secret, Error> {
    let secrets: Vec<&Secret> = opts
        .client_secret
        .iter()
        .chain(opts.refresh_token.iter())
        .collect();
    let scope = opts.scope.as_deref();
    let client_secret = opts.client_secret.as_ref().map(|s| s.expose());
    let mut fields: Vec<(&str, &str)> = Vec::new();
    match opts.flow {
        Flow::ClientCredentials => {
            let secret = client_secret.ok_or_else(|| Error::OAuth {
                why: format!("--oauth2-flow client-credentials needs the client secret: set {CLIENT_SECRET_ENV} or give --oauth2-client-secret-file FILE"),
            })?;
            fields.push(("grant_type", "client_credentials"));
            fields.push(("client_id", &opts.client_id));
            fields.push(("client_secret", secret));
            if let Some(scope) = scope {
                fields.push(("scope", scope));
            }
            token_request(opts, &fields, &secrets)
        }
        Flow::RefreshToken => {
            let refresh = opts.refresh_token.as_ref().ok_or_else(|| Error::OAuth {
                why: "--oauth2-flow refresh-token needs --oauth2-refresh-token-file FILE".into(),
            })?;
            fields.push(("grant_type", "refresh_token"));
            fields.push(("refresh_token", refresh.expose()));
            fields.push(("client_id", &opts.client_id));
            if let Some(secret) = client_secret {
                fields.push(("client_secret", secret));
            }
            if let Some(scope) = scope {
                fields.push(("scope", scope));
            }
            token_request(opts, &fields, &secrets)
        }
        Flow::DeviceCode => device_code(opts, say, &secrets),
    }
}

/// One POST to the token endpoint: the access token, or the provider's error explained.
fn token_request(
    opts: &FlowOptions,
    fields: &[(&str, &str)],
    secrets: &[&Secret],
) -> Result<Secret, Error> {
    match post(&opts.token_url, fields, opts.timeout, &opts.roots, secrets)? {
        Answer::Token(t) => Ok(t),
        Answer::Error(e) => Err(e.denied(opts.flow, secrets)),
    }
}

/// What the token endpoint answered.
enum Answer {
    Token(Secret),
    Error(ProviderError),
}

/// POSTs the form and reads the JSON answer.
fn post(
    endpoint: &Endpoint,
    fields: &[(&str, &str)],
    timeout: Duration,
    roots: &crate::tls::Roots,
    secrets: &[&Secret],
) -> Result<Answer, Error> {
    let body = http::form(fields);
    let r = http::post_form(endpoint, &body, timeout, roots).map_err(|why| {
        Error::OAuthUnavailable {
            why: format!(
                "cannot get an OAuth token: {}; check the endpoint URL and this machine's network",
                scrub(&why, secrets)
            ),
        }
    })?;
    let json: serde_json::Value = serde_json::from_slice(&r.body).map_err(|_| {
        Error::OAuthUnavailable {
            why: format!(
                "cannot get an OAuth token: {} answered HTTP {} without a JSON body; check --oauth2-token-url",
                endpoint.shown(),
                r.status
            ),
        }
    })?;
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(token) = text("access_token").filter(|_| r.status == 200) {
        let token = Secret::new(token);
        super::check_token(&token).map_err(|why| Error::OAuth {
            why: format!(
                "the access token from {} is unusable: {why}",
                endpoint.shown()
            ),
        })?;
        return Ok(Answer::Token(token));
    }
    Ok(Answer::Error(ProviderError {
        status: r.status,
        error: text("error").unwrap_or_else(|| format!("HTTP {}", r.status)),
        description: text("error_description"),
        endpoint: endpoint.shown(),
        json,
    }))
}

/// The device authorization grant: ask for a code, show it, poll the token endpoint.
fn device_code(opts: &FlowOptions, say: Say<'_>, secrets: &[&Secret]) -> Result<Secret, Error> {
    let device_url = opts.device_url.as_ref().ok_or_else(|| Error::OAuth {
        why: "--oauth2-flow device-code needs --oauth2-device-url URL (or --oauth2-provider)"
            .into(),
    })?;
    let mut fields = vec![("client_id", opts.client_id.as_str())];
    if let Some(scope) = opts.scope.as_deref() {
        fields.push(("scope", scope));
    }
    let body = http::form(&fields);
    let r = http::post_form(device_url, &body, opts.timeout, &opts.roots).map_err(|why| {
        Error::OAuthUnavailable {
            why: format!("cannot start the device sign-in: {why}; check --oauth2-device-url"),
        }
    })?;
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let number = |k: &str| json.get(k).and_then(|v| v.as_u64());
    let (Some(device), Some(user_code), 200) = (text("device_code"), text("user_code"), r.status)
    else {
        let e = ProviderError {
            status: r.status,
            error: text("error").unwrap_or_else(|| format!("HTTP {}", r.status)),
            description: text("error_description"),
            endpoint: device_url.shown(),
            json: json.clone(),
        };
        return Err(e.denied(Flow::DeviceCode, secrets));
    };
    let device = Secret::new(device);
    let uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .unwrap_or_else(|| "(the provider gave no address)".into());
    let shown = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect::<String>()
    };
    say(&format!(
        "To let smtpcheck log in, open {} in a browser on any device and enter the code {}",
        shown(&uri),
        shown(&user_code)
    ));
    let lifetime = Duration::from_secs(number("expires_in").unwrap_or(900));
    let wait = lifetime.min(opts.device_wait);
    let mut interval = Duration::from_secs(number("interval").unwrap_or(5).clamp(1, 60));
    let started = Instant::now();
    let mut poll = vec![
        ("grant_type", DEVICE_GRANT),
        ("device_code", device.expose()),
        ("client_id", opts.client_id.as_str()),
    ];
    if let Some(secret) = opts.client_secret.as_ref() {
        poll.push(("client_secret", secret.expose()));
    }
    let mut all: Vec<&Secret> = secrets.to_vec();
    all.push(&device);
    loop {
        if started.elapsed() + interval > wait {
            return Err(Error::OAuthDenied {
                why: format!(
                    "nobody completed the device sign-in within {} s; run again and enter the code at {} sooner",
                    wait.as_secs(),
                    shown(&uri)
                ),
            });
        }
        std::thread::sleep(interval);
        match post(&opts.token_url, &poll, opts.timeout, &opts.roots, &all)? {
            Answer::Token(t) => return Ok(t),
            Answer::Error(e) if e.error == "authorization_pending" => {}
            Answer::Error(e) if e.error == "slow_down" => interval += Duration::from_secs(5),
            Answer::Error(e) => return Err(e.denied(Flow::DeviceCode, &all)),
        }
    }
}

/// An error answer of the identity provider (RFC 6749 5.2).
#[derive(Debug)]
struct ProviderError {
    status: u16,
    error: String,
    description: Option<String>,
    endpoint: String,
    json: serde_json::Value,
}

impl ProviderError {
    /// The error explained: what the provider said, the likely cause and the next step.
    fn denied(&self, flow: Flow, secrets: &[&Secret]) -> Error {
        let description = self
            .description
            .as_deref()
            .map(|d| {
                let first = d.lines().next().unwrap_or("");
                let clean: String = first
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(400)
                    .collect();
                format!(": {}", scrub(&clean, secrets))
            })
            .unwrap_or_default();
        let code = aadsts(self.description.as_deref().unwrap_or("")).or_else(|| {
            self.json
                .get("error_codes")
                .and_then(|c| c.as_array())
                .and_then(|c| c.first())
                .and_then(|c| c.as_u64())
                .map(|c| format!("AADSTS{c}"))
        });
        let (cause, next) = explain(&self.error, code.as_deref(), flow);
        let error = scrub(&self.error, secrets);
        Error::OAuthDenied {
            why: format!(
                "the identity provider refused the {} flow ({} answered HTTP {}, {error}{description}). Cause: {cause} Next step: {next}",
                flow.as_str(),
                self.endpoint,
                self.status
            ),
        }
    }
}

/// The first `AADSTS<digits>` in `text`.
fn aadsts(text: &str) -> Option<String> {
    let at = text.find("AADSTS")?;
    let digits: String = text[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// The cause and next step for a provider error (the `AADSTS` code, when there is one, first).
pub fn explain(error: &str, aadsts: Option<&str>, flow: Flow) -> (&'static str, &'static str) {
    let by_code = match aadsts {
        Some("AADSTS7000215") => Some(("the client secret is wrong (often the secret's ID was given instead of its value).", "Copy the secret's Value from the app registration (Certificates & secrets) into SMTPCHECK_OAUTH2_CLIENT_SECRET or --oauth2-client-secret-file.")),
        Some("AADSTS7000222") => Some(("the client secret has expired.", "Create a new client secret in the app registration (Certificates & secrets) and use its value.")),
        Some("AADSTS700016") => Some(("no application with this client ID exists in the tenant.", "Check --oauth2-client-id (the Application (client) ID) and --oauth2-tenant, and that the app is registered or consented in that tenant.")),
        Some("AADSTS90002") | Some("AADSTS900023") => Some(("the tenant does not exist.", "Check --oauth2-tenant: the Directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com.")),
        Some("AADSTS65001") => Some(("the permission was not consented: the app lacks admin consent for SMTP (SMTP.SendAsApp for app-only, SMTP.Send delegated).", "In Entra ID, API permissions: add Office 365 Exchange Online SMTP.SendAsApp (application) or SMTP.Send (delegated) and grant admin consent.")),
        Some("AADSTS7000218") => Some(("the device-code or refresh-token flow needs a client secret for this app, or the app is not a public client.", "Enable \"Allow public client flows\" in the app registration (Authentication), or give the client secret.")),
        Some("AADSTS50076") | Some("AADSTS50079") => Some(("multi-factor authentication is required for this sign-in.", "Use --oauth2-flow device-code so the user can complete MFA in a browser.")),
        Some("AADSTS53003") => Some(("a Conditional Access policy blocked the sign-in.", "Ask the Entra ID admin which policy applies (Sign-in logs) and exclude this app or location.")),
        Some("AADSTS70008") | Some("AADSTS700082") | Some("AADSTS50173") => Some(("the refresh token has expired or was revoked (password change, sign-out, inactivity).", "Sign in again with --oauth2-flow device-code to get a new refresh token.")),
        Some("AADSTS70011") => Some(("the scope is not valid for this flow.", "For client credentials use https://outlook.office365.com/.default; delegated flows use https://outlook.office.com/SMTP.Send (the presets set these).")),
        _ => None,
    };
    if let Some(found) = by_code {
        return found;
    }
    match error {
        "invalid_client" => ("the client ID or the client secret was not accepted (wrong, expired, or not a secret of this app).", "Check --oauth2-client-id and the secret (SMTPCHECK_OAUTH2_CLIENT_SECRET or --oauth2-client-secret-file); create a new secret if it expired."),
        "unauthorized_client" => match flow {
            Flow::ClientCredentials => ("this application may not use the client-credentials grant.", "Use an app registration with a client secret (a confidential client), and grant it SMTP.SendAsApp with admin consent."),
            _ => ("this application may not use this grant (for device code: it is not a public client).", "Enable \"Allow public client flows\" in the app registration (Microsoft) or use a \"TVs and Limited Input devices\" OAuth client (Google)."),
        },
        "invalid_grant" => match flow {
            Flow::RefreshToken => ("the refresh token is expired, revoked, or belongs to another client.", "Sign in again (--oauth2-flow device-code) to get a new refresh token, with the same --oauth2-client-id."),
            _ => ("the grant was refused (expired code or credentials).", "Run the flow again."),
        },
        "invalid_scope" => ("the scope was refused for this application or flow.", "Use the preset's scope (--oauth2-provider), or https://outlook.office365.com/.default (Microsoft app-only), https://outlook.office.com/SMTP.Send (Microsoft delegated), https://mail.google.com/ (Google)."),
        "access_denied" | "authorization_declined" => ("the user declined the sign-in, or an admin policy denied it.", "Run again and approve the request, or ask the admin to allow this app."),
        "expired_token" => ("the device code expired before the sign-in was completed.", "Run again and complete the sign-in within the time shown."),
        "invalid_request" => ("the provider found the request malformed (a missing or unsupported parameter).", "Check --oauth2-client-id, --oauth2-scope and the endpoint URLs."),
        "unsupported_grant_type" => ("this endpoint does not support the flow.", "Check --oauth2-token-url; choose another --oauth2-flow."),
        _ => ("the identity provider refused the request.", "Read the provider's words above; check the client ID, secret, tenant and scope."),
    }
}

/// `text` with every secret replaced with `<redacted>`.
fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    for s in secrets {
        if s.expose().len() >= 3 {
            text = text.replace(s.expose(), "<redacted>");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_fill_in_the_documented_endpoints() {
        let p = preset(
            Provider::Microsoft,
            Some("contoso.onmicrosoft.com"),
            Flow::ClientCredentials,
        )
        .unwrap();
        assert_eq!(
            p.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(p.scope, "https://outlook.office365.com/.default");
        let p = preset(Provider::Microsoft, Some("t"), Flow::DeviceCode).unwrap();
        assert_eq!(
            p.device_url,
            "https://login.microsoftonline.com/t/oauth2/v2.0/devicecode"
        );
        assert!(p.scope.starts_with("https://outlook.office.com/SMTP.Send"));
        assert!(preset(Provider::Microsoft, None, Flow::DeviceCode).is_err());
        assert!(preset(Provider::Microsoft, Some("a/b"), Flow::DeviceCode).is_err());
        let g = preset(Provider::Google, None, Flow::RefreshToken).unwrap();
        assert_eq!(g.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(g.scope, "https://mail.google.com/");
    }

    #[test]
    fn provider_errors_are_explained() {
        assert_eq!(
            aadsts("AADSTS7000215: Invalid client secret provided. Trace ID: x").as_deref(),
            Some("AADSTS7000215")
        );
        assert_eq!(aadsts("no code"), None);
        let (cause, _) = explain(
            "invalid_client",
            Some("AADSTS7000215"),
            Flow::ClientCredentials,
        );
        assert!(cause.contains("secret's ID"), "{cause}");
        let (_, next) = explain("invalid_client", None, Flow::ClientCredentials);
        assert!(next.contains("--oauth2-client-id"), "{next}");
        let (_, next) = explain("unauthorized_client", None, Flow::DeviceCode);
        assert!(next.contains("public client"), "{next}");
        let (cause, _) = explain(
            "invalid_grant",
            Some("AADSTS65001"),
            Flow::ClientCredentials,
        );
        assert!(cause.contains("SMTP.SendAsApp"), "{cause}");
        let (_, next) = explain("invalid_grant", None, Flow::RefreshToken);
        assert!(next.contains("device-code"), "{next}");
    }
}
