//! Explanations: for every failure, a plain-language cause and a next step.
//!
//! One table keyed on the stage, the reply code, the enhanced status code, or (when no reply came)
//! the kind of break. The first row that matches wins, so specific rows come before general ones.
//! README's troubleshooting section is built from this table.

use crate::transcript::{BreakKind, Failure, Stage};
use serde::Serialize;

/// What a failure most likely means and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    /// The likely cause, in plain words.
    pub cause: String,
    /// What to try next.
    pub next_step: String,
}

/// What a table row matches on.
#[derive(Debug, Clone, Copy)]
enum When {
    /// A failure with this break kind.
    Kind(BreakKind),
    /// A failure with this kind at this stage.
    KindAt(BreakKind, Stage),
    /// An enhanced status code starting with this text (`5.7.1`, `5.1.`).
    Enhanced(&'static str),
    /// An enhanced status code at this stage.
    EnhancedAt(&'static str, Stage),
    /// This reply code at this stage.
    CodeAt(u16, Stage),
    /// This reply code at any stage.
    Code(u16),
    /// Any reply of this class (4 or 5) at this stage.
    ClassAt(u16, Stage),
    /// Anything at this stage.
    Stage(Stage),
    /// A server reply whose words contain this text (lower case; matched without regard to case).
    Text(&'static str),
    /// This reply code, with words containing this text.
    CodeText(u16, &'static str),
    /// This enhanced code, with words containing this text.
    EnhancedText(&'static str, &'static str),
    /// This reply code with this enhanced code.
    CodeEnhanced(u16, &'static str),
}

/// One row: the condition, the cause and the next step.
struct Row(When, &'static str, &'static str);

/// The table. Order matters: the first match wins.
const TABLE: &[Row] = &[
    // The command line (a usage error, reported as JSON when JSON was asked for).
    Row(When::Stage(Stage::Interrupted), "The check was interrupted (Ctrl-C) before it finished; what the server answered so far is not reported.", "Run it again and let it finish (every wait is bounded: lower --timeout or --connect-timeout to finish sooner)."),
    Row(When::Stage(Stage::Usage), "The command line has an unknown flag, a missing value or a bad flag value; nothing was tried.", "Fix the flag named in the reason (see smtpcheck help send); nothing was sent."),
    // Input.
    Row(When::Stage(Stage::Input), "smtpcheck could not use the message file, an address or a flag value.", "Fix the file or flag named in the reason and run again; nothing was sent."),
    // DNS.
    Row(When::Kind(BreakKind::NoDomain), "The recipient's domain does not exist in DNS (NXDOMAIN).", "Check the spelling of the domain in the recipient address."),
    Row(When::Kind(BreakKind::NullMx), "The domain publishes a null MX (RFC 7505): it accepts no mail at all.", "Use another address for this recipient; mail to this domain cannot be delivered."),
    // RFC 5321 5.1 wants a host name as MX target; Postfix ("malformed domain name") and Exim refuse an address there.
    Row(When::Kind(BreakKind::MxIsAddress), "A DNS misconfiguration: the domain's MX record names an IP address instead of a host name, and mail servers (Postfix, Exim) refuse to use it.", "Ask the domain's administrator to point the MX at a host name that has the address in an A/AAAA record."),
    Row(When::Kind(BreakKind::NoAddress), "The domain has no mail host with an address (MX hosts without A/AAAA records, or no MX and no address).", "Ask the domain's administrator to fix its MX records; check -4/-6 if you restricted the address family."),
    Row(When::Kind(BreakKind::DnsError), "The DNS lookup failed temporarily (timeout, SERVFAIL or an unreachable DNS server).", "Retry later; check the resolver (--resolver) and --dns-timeout, and that this machine can reach DNS."),
    // Connection.
    Row(When::Kind(BreakKind::ConnectionRefused), "Nothing accepts connections on that address and port (no mail server running there, or a firewall rejects the connection).", "Check the host and port (--smart-host HOST:PORT, --port) and that the mail server is running."),
    Row(When::Kind(BreakKind::ConnectTimeout), "No answer to the connection attempt: outbound port 25 is commonly blocked by ISPs, cloud providers and firewalls, or the host is down.", "Try your provider's relay with --smart-host (often port 587 with --auth-user), or test from another network."),
    Row(When::Kind(BreakKind::ConnectFailed), "The connection could not be made: no route to the address, or the network is unreachable.", "Check this machine's network and routing; try -4 or -6 if one address family is broken."),
    // Blocklists (DNSBL), by the server's words: Postfix reject_rbl_client says "Client host [IP] blocked using zen.spamhaus.org"; Exim's and others' texts say "listed at" / "listed in".
    Row(When::Text("blocked using"), "Your sending IP address is on a DNS blocklist (DNSBL) that this server consults.", "Look the address up on the list the reply names and request delisting, or send through a relay with a clean address (--smart-host)."),
    Row(When::Text("listed at"), "Your sending IP address is listed on a blocklist (DNSBL) that this server consults.", "Look the address up on the list the reply names and request delisting, or send through a relay with a clean address (--smart-host)."),
    Row(When::Text("spamhaus"), "Your sending IP address or domain is on a Spamhaus blocklist.", "Check the address at check.spamhaus.org and request removal, or send through a relay with a clean address (--smart-host)."),
    // Gmail, "SMTP error reference" (support.google.com/a/answer/3726730): "421-4.7.28 ... unusual rate of unsolicited mail", "550-5.7.28 ... has been blocked".
    Row(When::Enhanced("4.7.28"), "Gmail is rate-limiting mail from your IP address or domain (an unusual rate of unsolicited mail).", "Slow down and retry later; follow Google's sender guidelines (SPF, DKIM, DMARC, low spam rate)."),
    Row(When::Enhanced("5.7.28"), "Gmail blocked mail from your IP address or domain for an unusual rate of unsolicited mail (reputation).", "Follow Google's sender guidelines and check Postmaster Tools; send through a relay with a good reputation."),
    // Gmail, SMTP error reference: "421-4.7.0 Try again later, closing connection."
    Row(When::CodeEnhanced(421, "4.7.0"), "The server is temporarily refusing or throttling you (Gmail: \"Try again later, closing connection\").", "Retry later (--retry with --retry-delay); if it persists, check your sending IP's reputation and authentication."),
    // Greeting.
    Row(When::CodeAt(421, Stage::Greeting), "The server is busy, throttling connections, or temporarily refusing your address.", "Retry later (--retry with --retry-delay); if it persists your address may be rate-limited."),
    Row(When::CodeAt(554, Stage::Greeting), "The server refused the session outright: your IP address is probably on a blocklist or not allowed to connect.", "Read the greeting for a blocklist link and request delisting, or send through your own relay (--smart-host)."),
    Row(When::ClassAt(5, Stage::Greeting), "The server refused the session in its greeting.", "Read the server's words; use a relay that accepts your address (--smart-host)."),
    Row(When::ClassAt(4, Stage::Greeting), "The server temporarily refused the session in its greeting.", "Retry later."),
    // TLS and AUTH.
    Row(When::Stage(Stage::Tls), "TLS from the first byte (--tls implicit) could not be established, or the certificate was not trusted: the port may speak plain SMTP, or the server's TLS is broken.", "Read the reason: it says what the certificate needs (--ca, --tls-pin, --tls-name) or which mode the port speaks."),
    Row(When::Stage(Stage::Starttls), "TLS could not be established or the certificate was not trusted.", "Read the reason and the TLS facts: trust a private CA or this very certificate with --ca, pin the key with --tls-pin, check another name with --tls-name, or go on while still reporting with --insecure."),
    // Postfix smtpd: "530 5.7.0 Must issue a STARTTLS command first"; OpenSMTPD: "530 5.5.1 Invalid command: Must issue a STARTTLS command first"; Gmail's SMTP error reference lists the same words.
    Row(When::CodeText(530, "starttls"), "The server requires STARTTLS (encryption) before it accepts this command.", "Run with --tls required (or --tls opportunistic) so that smtpcheck sends STARTTLS first."),
    // smtpcheck's own AUTH gate: the server's EHLO reply offers no AUTH.
    Row(When::Kind(BreakKind::NoAuth), "The server does not offer AUTH on this port (often port 25, which takes mail for its own domains without login); nothing was sent.", "For submission use port 587 (--smart-host HOST:587 --tls required) or 465 (--tls implicit); or drop --auth-user on port 25."),
    // smtpcheck's own AUTH gate: the connection is not encrypted or not verified.
    Row(When::Kind(BreakKind::Withheld), "smtpcheck did not log in (it sent neither the password nor the OAuth token): the connection was not encrypted, or its certificate was not verified.", "Use --tls required or --tls implicit, trust the CA with --ca FILE, or allow it knowingly with --allow-plain-auth."),
    // Microsoft 365, "Enable or disable SMTP AUTH in Exchange Online" / basic-auth retirement: "550 5.7.30 Basic authentication is not supported for Client Submission".
    Row(When::Enhanced("5.7.30"), "Microsoft 365 no longer accepts Basic authentication (user name and password) for SMTP submission.", "Use OAuth 2.0: --oauth2-provider microsoft --oauth2-tenant T with --oauth2-flow client-credentials (app-only: Entra permission SMTP.SendAsApp with admin consent, the app's service principal registered in Exchange and given FullAccess to the mailbox) or device-code (delegated: SMTP.Send); an app password will not work here."),
    // Microsoft 365, "Authenticated client SMTP submission (SMTP AUTH) in Exchange Online": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant" (also: for the mailbox; security defaults).
    Row(When::Enhanced("5.7.139"), "Microsoft 365 refused the login: SMTP AUTH is disabled for the tenant or the mailbox (or security defaults / Conditional Access block it).", "Ask the Microsoft 365 admin to enable Authenticated SMTP for this mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false; the setting applies to OAuth logins too) and, for the whole tenant, Set-TransportConfig -SmtpClientAuthenticationDisabled $false."),
    // Microsoft, "Email non-delivery reports and SMTP errors in Exchange Online": "530 5.7.57 Client not authenticated to send mail during MAIL FROM".
    Row(When::Enhanced("5.7.57"), "The server (Microsoft 365) requires you to log in before sending through it: the client is not authenticated.", "Log in with --auth-user over --tls required on port 587 (smtp.office365.com), or use the domain's MX on port 25 for inbound mail only."),
    // Microsoft, "Email non-delivery reports and SMTP errors in Exchange Online": "550 5.7.60 SMTP; Client does not have permissions to send as this sender".
    Row(When::Enhanced("5.7.60"), "The logged-in account may not send as this sender (no SendAs right for the --from address).", "Use the account's own address as --from, or have the admin grant SendAs for that address (with --oauth2-flow client-credentials: to the app's Exchange service principal, Add-RecipientPermission)."),
    // Outlook.com high-volume sender requirements (May 2025): "550 5.7.515 Access denied, sending domain [domain] doesn't meet the required authentication level".
    Row(When::Enhanced("5.7.515"), "Outlook.com refused the message: the sending domain does not meet its authentication requirements (SPF, DKIM and DMARC for high-volume senders).", "Publish SPF and DKIM for the From domain and a DMARC record (at least p=none) that aligns with them."),
    // Gmail, SMTP error reference: "534-5.7.9 Application-specific password required."
    Row(When::Enhanced("5.7.9"), "The account requires an app password (or OAuth): its normal password is refused for SMTP (Gmail: 2-Step Verification).", "Log in with OAuth (--oauth2-provider google --oauth2-flow refresh-token, scope https://mail.google.com/), or create an app password and use it (SMTPCHECK_PASSWORD)."),
    // Postfix and Exim: "530 5.7.0 Authentication required"; Microsoft uses 5.7.1 "Client was not authenticated".
    Row(When::Text("authentication required"), "The server requires authentication before it accepts mail.", "Log in with --auth-user (the password via SMTPCHECK_PASSWORD or --auth-password-file), usually with --tls required."),
    Row(When::Text("not authenticated"), "The server requires authentication before it accepts mail.", "Log in with --auth-user, usually with --tls required."),
    Row(When::Code(530), "The server requires authentication before it accepts mail (530 5.7.0).", "Log in with --auth-user (the password via SMTPCHECK_PASSWORD or --auth-password-file), usually with --tls required."),
    Row(When::Enhanced("5.7.0"), "The server requires authentication or encryption first.", "Log in with --auth-user, usually with --tls required."),
    // Microsoft 365: "535 5.7.3 Authentication unsuccessful" (a refused password or OAuth token).
    Row(When::CodeEnhanced(535, "5.7.3"), "Microsoft 365 refused the login: a user name or password is refused once Basic authentication is off; an OAuth token is refused when expired, for another audience or scope (app-only needs https://outlook.office365.com/.default, delegated https://outlook.office.com/SMTP.Send), or when --auth-user is not the mailbox the app may use.", "Get a fresh token (--oauth2-flow), check the scope and that --auth-user is the mailbox the app was given access to (Add-MailboxPermission for its service principal); passwords and app passwords no longer work."),
    // Gmail, SMTP error reference: "535-5.7.8 Username and Password not accepted."; Postfix: "535 5.7.8 Error: authentication failed"; after an OAuth token, the 334 JSON error (status 401/invalid_token) came first.
    Row(When::Code(535), "Authentication failed: the user name or password, or the OAuth token, was not accepted (535 5.7.8); with OAuth the decoded error (status, scope) is in the reason: an expired token, a token for another user or scope.", "Check --auth-user and the password; with OAuth get a fresh token with the right scope for that user (Gmail: https://mail.google.com/); Microsoft 365 accepts no app password: use OAuth (--oauth2-provider microsoft)."),
    Row(When::Stage(Stage::Auth), "Authentication did not succeed.", "Check the user, the password and the mechanisms the server offers (see capabilities)."),
    // Policy codes, recognised at any stage.
    Row(When::Enhanced("5.7.23"), "SPF check failed: the sender's domain does not authorise your sending address.", "Send through the sender domain's own relay, or add your sending IP to its SPF record."),
    // Gmail, SMTP error reference: "550-5.7.25 The IP address sending this message does not have a PTR record setup".
    Row(When::Enhanced("5.7.25"), "Your sending address has no valid reverse DNS (PTR) record.", "Give your sending IP a PTR record that matches your --helo name, or use a relay that has one."),
    // Gmail, SMTP error reference: "550-5.7.26 Unauthenticated email from [domain] is not accepted due to domain's DMARC policy".
    Row(When::Enhanced("5.7.26"), "The message failed sender authentication (DMARC: SPF and DKIM did not align with the From domain).", "Sign the message with DKIM for the From domain and make SPF pass, or send through the domain's own relay."),
    // RFC 7505 3.4: "550 5.7.27 Sender address has null MX".
    Row(When::EnhancedText("5.7.27", "null mx"), "The sender's domain publishes a null MX, so mail from it is refused (RFC 7505).", "Use an envelope sender (--from) whose domain can receive mail."),
    // Gmail, SMTP error reference: "550-5.7.27 ... SPF check ... does not pass" (the sender's SPF failed).
    Row(When::Enhanced("5.7.27"), "The message failed SPF: the sender's domain does not authorise your sending IP (Gmail 5.7.27).", "Add your sending IP to the SPF record of the --from domain, or send through that domain's relay."),
    // RFC 5321 4.5.3.1.10: 452 (enhanced 4.5.3, RFC 3463) is the limit on recipients per transaction; OpenSMTPD says "452 4.5.3 Too many recipients".
    Row(When::Enhanced("4.5.3"), "The server limits the recipients of one transaction; smtpcheck sends the rest in further transactions (RFC 5321 4.5.3.1.10). This is a limit, not greylisting.", "Nothing to fix when every recipient ended up delivered; otherwise send the recipients left later, or fewer per message."),
    Row(When::Enhanced("4.7.1"), "Greylisting or a temporary policy deferral: the server asks you to come back later.", "Retry after a few minutes (--retry 3 --retry-delay 5m), as a real mail server would."),
    Row(When::CodeAt(451, Stage::Rcpt), "The server deferred the recipient temporarily (often greylisting).", "Retry after a few minutes (--retry with --retry-delay)."),
    Row(When::Enhanced("5.7.1"), "Relaying denied or refused by policy: this server does not accept this mail from your client (it does not relay to that domain for you).", "Authenticate (--auth-user), use the relay that serves your network (--smart-host), or send to a domain this server hosts."),
    // Recipients.
    Row(When::EnhancedAt("5.1.1", Stage::Rcpt), "The mailbox does not exist at the recipient's server.", "Check the recipient address for typos; ask the recipient for the right address."),
    Row(When::CodeAt(452, Stage::Rcpt), "Too many recipients, or the server is out of storage for now.", "Send to fewer recipients per message, or retry later."),
    Row(When::Enhanced("5.1.10"), "The recipient's domain publishes a null MX: it accepts no mail.", "Use another address for this recipient."),
    Row(When::ClassAt(5, Stage::Rcpt), "The server refused the recipient.", "Read the server's words; check the address and whether this server accepts mail for that domain."),
    Row(When::ClassAt(4, Stage::Rcpt), "The server deferred the recipient temporarily.", "Retry later."),
    // Size.
    Row(When::Kind(BreakKind::TooLarge), "The message is larger than the server's advertised SIZE limit, so it was not sent.", "Shrink the message or its attachments below the limit, or use a server with a larger limit."),
    Row(When::Enhanced("5.3.4"), "The message is too large for the server.", "Shrink the message or its attachments; compare with the SIZE the server advertises."),
    Row(When::Enhanced("5.2.3"), "The message is larger than the recipient's server or mailbox accepts.", "Shrink the message or its attachments."),
    Row(When::Code(552), "The server refused the message as too large or over a storage limit.", "Shrink the message, or retry later if the mailbox is full."),
    Row(When::Kind(BreakKind::Unsupported), "The message needs an extension the server does not offer (SMTPUTF8 for non-ASCII addresses).", "Use ASCII addresses, or send through a server that offers SMTPUTF8."),
    // Commands not understood.
    Row(When::Code(500), "The server did not recognise a command (500): it may not speak ESMTP, or a proxy is interfering.", "Check the transcript for the command it refused; make sure you reach a real mail server on that port."),
    Row(When::Code(502), "The server does not implement a command smtpcheck needed.", "Check the transcript for the command it refused."),
    // EHLO and HELO.
    Row(When::Stage(Stage::Ehlo), "The server refused the EHLO greeting.", "Use --helo with a fully qualified name that resolves (ideally your IP's PTR name); 421 means the server is closing: retry later."),
    Row(When::Stage(Stage::Helo), "The server refused both EHLO and HELO: it does not accept your client name or your client.", "Use --helo with a fully qualified name that resolves (ideally your IP's PTR name)."),
    // Sender.
    Row(When::ClassAt(5, Stage::Mail), "The server refused the envelope sender (MAIL FROM).", "Check --from: the sender's domain may be refused by policy, or need authentication (--auth-user)."),
    Row(When::ClassAt(4, Stage::Mail), "The server deferred the envelope sender temporarily.", "Retry later."),
    // DATA and the message.
    Row(When::Stage(Stage::Data), "The server refused DATA (often: no valid recipients left, or a policy decision).", "Read the server's words and the recipients' replies."),
    Row(When::ClassAt(5, Stage::Message), "The server refused the message content after the data (spam or virus filter, or policy).", "Read the server's words; check the content, attachments and sender authentication (SPF, DKIM)."),
    Row(When::ClassAt(4, Stage::Message), "The server deferred the message after the data.", "Retry later."),
    // Broken sessions.
    Row(When::KindAt(BreakKind::Timeout, Stage::Greeting), "The server accepted the connection but never greeted: a tarpit, an overloaded server, or a TLS port (465) that waits for a handshake.", "Raise --timeout; for port 465 use --tls implicit."),
    Row(When::Kind(BreakKind::Timeout), "The server stopped answering within --timeout.", "Raise --timeout if the server is just slow; otherwise a firewall, a proxy or a tarpit may be in the way."),
    Row(When::Kind(BreakKind::Closed), "The server closed the connection without a reply (often a policy drop, a rate limit or a crash).", "Check the server's log for this session; retry later."),
    Row(When::Kind(BreakKind::Io), "A network error broke the session.", "Retry; check the network path."),
    Row(When::Kind(BreakKind::Malformed), "The reply is not valid SMTP: the port may not be a mail server (HTTP?) or it expects TLS first.", "Check the port; for port 465 use --tls implicit."),
    Row(When::Kind(BreakKind::Protocol), "The server broke the SMTP protocol.", "Report it to the server's administrator with this transcript."),
];

/// The generic hints for anything the table does not know.
fn fallback(f: &Failure) -> Hint {
    let (cause, next) = match (f.code, f.class) {
        (Some(c), _) if c >= 500 => (
            "The server refused this step permanently.",
            "Read the server's words in the verdict; retrying unchanged will fail again.",
        ),
        (Some(_), _) => ("The server refused this step temporarily.", "Retry later."),
        (None, crate::transcript::FailureClass::Transient) => (
            "The check failed for a reason that may go away.",
            "Retry later.",
        ),
        (None, crate::transcript::FailureClass::Permanent) => {
            ("The check failed.", "Read the reason in the verdict.")
        }
    };
    Hint {
        cause: cause.into(),
        next_step: next.into(),
    }
}

fn matches(when: When, f: &Failure) -> bool {
    let enhanced = f.enhanced.as_deref().unwrap_or("");
    let code_class = f.code.map(|c| c / 100);
    match when {
        When::Kind(k) => f.kind == Some(k),
        When::KindAt(k, s) => f.kind == Some(k) && f.stage == s,
        When::Enhanced(e) => enhanced == e || (e.ends_with('.') && enhanced.starts_with(e)),
        When::EnhancedAt(e, s) => f.stage == s && enhanced == e,
        When::CodeAt(c, s) => f.code == Some(c) && f.stage == s,
        When::Code(c) => f.code == Some(c),
        When::ClassAt(c, s) => code_class == Some(c) && f.stage == s,
        When::Stage(s) => f.stage == s,
        When::Text(t) => f.code.is_some() && says(f, t),
        When::CodeText(c, t) => f.code == Some(c) && says(f, t),
        When::EnhancedText(e, t) => enhanced == e && says(f, t),
        When::CodeEnhanced(c, e) => f.code == Some(c) && enhanced == e,
    }
}

/// `true` when the failure's words (which quote the server's reply) contain `text`, ignoring case.
fn says(f: &Failure, text: &str) -> bool {
    f.reason.to_ascii_lowercase().contains(text)
}

/// The cause and next step for a failure.
pub fn explain(f: &Failure) -> Hint {
    TABLE
        .iter()
        .find(|Row(when, _, _)| matches(*when, f))
        .map(|Row(_, cause, next)| Hint {
            cause: (*cause).into(),
            next_step: (*next).into(),
        })
        .unwrap_or_else(|| fallback(f))
}

/// The hint once `--retry` has already run `rounds` rounds that all ended the same way: "retry
/// later (--retry …)" is no longer news, so it says what is left to try.
pub fn after_retries(hint: &mut Hint, rounds: usize) {
    if rounds > 1 && hint.next_step.to_ascii_lowercase().contains("retry") {
        hint.next_step = format!(
            "Already retried: {rounds} rounds (--retry) ended the same way. Wait longer before the \
             next try (greylisting can take 5 to 30 minutes: raise --retry-delay), and if it \
             persists read the server's words: the deferral may be a policy that will not lift."
        );
    }
}

/// The table as Markdown rows (`| when | cause | next step |`), for README's troubleshooting section.
#[cfg(test)]
pub fn table_markdown() -> String {
    let mut s = String::from("| failure | likely cause | next step |\n|---|---|---|\n");
    for Row(when, cause, next) in TABLE {
        let w = match when {
            When::Kind(k) => format!("`{}`", k.as_str()),
            When::KindAt(k, st) => format!("`{}` at {}", k.as_str(), st),
            When::Enhanced(e) => format!("enhanced code {e}"),
            When::EnhancedAt(e, st) => format!("{e} at {st}"),
            When::CodeAt(c, st) => format!("{c} at {st}"),
            When::Code(c) => format!("{c}"),
            When::ClassAt(c, st) => format!("{c}xx at {st}"),
            When::Stage(st) => format!("any failure at {st}"),
            When::Text(t) => format!("reply says \"{t}\""),
            When::CodeText(c, t) => format!("{c}, reply says \"{t}\""),
            When::EnhancedText(e, t) => format!("{e}, reply says \"{t}\""),
            When::CodeEnhanced(c, e) => format!("{c} {e}"),
        };
        s.push_str(&format!("| {w} | {cause} | {next} |\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{FailureClass, Reply};

    fn reply(stage: Stage, line: &str) -> Failure {
        let code: u16 = line[..3].parse().unwrap();
        let r = Reply {
            code,
            enhanced: crate::smtp::codec::enhanced_code(code, line),
            lines: vec![line.to_string()],
        };
        Failure::refused(stage, &r, "x")
    }

    fn broken(stage: Stage, kind: BreakKind) -> Failure {
        Failure::broken(stage, kind, "x".into())
    }

    fn cause(f: &Failure) -> String {
        explain(f).cause
    }

    #[test]
    fn connection_rows() {
        assert!(cause(&broken(Stage::Connect, BreakKind::ConnectionRefused))
            .contains("Nothing accepts connections"));
        let t = explain(&broken(Stage::Connect, BreakKind::ConnectTimeout));
        assert!(t.cause.contains("port 25 is commonly blocked"));
        assert!(t.next_step.contains("587"));
        assert!(cause(&broken(Stage::Connect, BreakKind::ConnectFailed)).contains("no route"));
    }

    #[test]
    fn dns_rows() {
        assert!(cause(&broken(Stage::Dns, BreakKind::NoDomain)).contains("does not exist"));
        assert!(cause(&broken(Stage::Dns, BreakKind::NullMx)).contains("null MX"));
        assert!(cause(&broken(Stage::Dns, BreakKind::NoAddress))
            .contains("no mail host with an address"));
        assert!(cause(&broken(Stage::Dns, BreakKind::DnsError)).contains("failed temporarily"));
    }

    #[test]
    fn greeting_rows() {
        assert!(cause(&reply(Stage::Greeting, "421 4.3.2 busy")).contains("busy"));
        assert!(cause(&reply(Stage::Greeting, "554 5.7.1 you are listed")).contains("blocklist"));
        assert!(cause(&broken(Stage::Greeting, BreakKind::Timeout)).contains("never greeted"));
    }

    #[test]
    fn hello_rows() {
        assert!(cause(&reply(Stage::Ehlo, "421 closing")).contains("refused the EHLO"));
        assert!(cause(&reply(Stage::Helo, "550 go away")).contains("both EHLO and HELO"));
    }

    #[test]
    fn auth_and_relay_rows() {
        assert!(
            cause(&reply(Stage::Mail, "530 5.7.0 Authentication required"))
                .contains("requires authentication")
        );
        assert!(
            cause(&reply(Stage::Rcpt, "554 5.7.1 <a@b>: Relay access denied"))
                .contains("Relaying denied")
        );
        assert!(cause(&reply(Stage::Rcpt, "550 5.7.1 relaying denied")).contains("Relaying denied"));
        assert!(cause(&reply(
            Stage::Auth,
            "535 5.7.8 Error: authentication failed"
        ))
        .contains("password"));
    }

    #[test]
    fn recipient_rows() {
        assert!(cause(&reply(
            Stage::Rcpt,
            "550 5.1.1 <x@y>: Recipient address rejected"
        ))
        .contains("mailbox does not exist"));
        assert!(
            cause(&reply(Stage::Rcpt, "451 4.7.1 Greylisted, try again")).contains("Greylisting")
        );
        assert!(cause(&reply(Stage::Rcpt, "452 4.5.3 Too many recipients"))
            .contains("limits the recipients"));
        assert!(
            cause(&reply(Stage::Rcpt, "451 4.5.3 Too many recipients")).contains("not greylisting")
        );
    }

    #[test]
    fn size_rows() {
        assert!(cause(&reply(
            Stage::Message,
            "552 5.3.4 Message size exceeds fixed limit"
        ))
        .contains("too large"));
        assert!(cause(&reply(Stage::Message, "552 Message too big")).contains("too large"));
        let f = Failure {
            stage: Stage::Mail,
            class: FailureClass::Permanent,
            reason: "x".into(),
            code: None,
            enhanced: None,
            kind: Some(BreakKind::TooLarge),
        };
        assert!(cause(&f).contains("SIZE"));
    }

    #[test]
    fn policy_rows() {
        assert!(cause(&reply(Stage::Rcpt, "550 5.7.23 SPF fail")).contains("SPF"));
        assert!(cause(&reply(Stage::Mail, "550 5.7.25 no PTR")).contains("reverse DNS"));
        assert!(cause(&reply(Stage::Message, "550 5.7.26 DMARC policy")).contains("DMARC"));
        assert!(
            cause(&reply(Stage::Mail, "550 5.7.27 sender domain has null MX")).contains("null MX")
        );
    }

    #[test]
    fn protocol_rows() {
        assert!(
            cause(&reply(Stage::Mail, "500 5.5.1 command not recognized"))
                .contains("did not recognise")
        );
        assert!(cause(&broken(Stage::Starttls, BreakKind::Protocol)).contains("certificate"));
        assert!(cause(&broken(Stage::Mail, BreakKind::Timeout)).contains("stopped answering"));
        assert!(cause(&broken(Stage::Mail, BreakKind::Closed)).contains("closed the connection"));
        assert!(cause(&broken(Stage::Greeting, BreakKind::Malformed)).contains("not valid SMTP"));
    }

    /// Every row can be reached: a failure built to match it gets that row's hint, not an earlier
    /// row's (a row shadowed by a more general one above it fails here).
    #[test]
    fn every_row_is_reachable() {
        for (i, Row(when, cause, _)) in TABLE.iter().enumerate() {
            let mut f = Failure {
                stage: Stage::Mail,
                class: FailureClass::Permanent,
                reason: "x".into(),
                code: None,
                enhanced: None,
                kind: None,
            };
            let class_code = |e: &str| u16::from(e.as_bytes()[0] - b'0') * 100 + 50;
            match *when {
                When::Kind(k) => {
                    f.stage = Stage::Connect;
                    f.kind = Some(k);
                }
                When::KindAt(k, st) => {
                    f.stage = st;
                    f.kind = Some(k);
                }
                When::Enhanced(e) => {
                    f.code = Some(class_code(e));
                    f.enhanced = Some(e.to_string());
                }
                When::EnhancedAt(e, st) => {
                    f.stage = st;
                    f.code = Some(class_code(e));
                    f.enhanced = Some(e.to_string());
                }
                When::CodeAt(c, st) => {
                    f.stage = st;
                    f.code = Some(c);
                }
                When::Code(c) => f.code = Some(c),
                When::ClassAt(c, st) => {
                    f.stage = st;
                    f.code = Some(c * 100 + 99);
                }
                When::Stage(st) => f.stage = st,
                When::Text(t) => {
                    f.code = Some(550);
                    f.reason = format!("x: 550 {t}");
                }
                When::CodeText(c, t) => {
                    f.code = Some(c);
                    f.reason = format!("x: {c} {t}");
                }
                When::EnhancedText(e, t) => {
                    f.code = Some(class_code(e));
                    f.enhanced = Some(e.to_string());
                    f.reason = format!("x: {e} {t}");
                }
                When::CodeEnhanced(c, e) => {
                    f.code = Some(c);
                    f.enhanced = Some(e.to_string());
                }
            }
            assert_eq!(
                explain(&f).cause,
                *cause,
                "row {i} ({when:?}) is shadowed by an earlier row"
            );
        }
    }

    #[test]
    fn readme_has_the_same_table() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&table_markdown()),
            "README's troubleshooting table differs from src/diagnose.rs: regenerate it with table_markdown()"
        );
    }

    #[test]
    fn every_failure_gets_a_hint() {
        let f = reply(Stage::Quit, "599 odd");
        assert!(!explain(&f).next_step.is_empty());
        assert!(table_markdown().lines().count() > TABLE.len());
    }
}
