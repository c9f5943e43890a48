//! What one conversation is told to do: the name to announce, the time bounds, where to stop, TLS,
//! AUTH and DSN. Settled before any connection; nothing here does I/O.

use crate::smtp::auth;
pub use crate::smtp::Dsn;
use crate::tls::TlsOptions;
use crate::transcript::Stage;
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;

/// The name to announce in EHLO/HELO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helo {
    /// Given with `--helo`.
    Given(ClientId),
    /// This machine's fully qualified name when one is known, else the address literal of the
    /// connection's local address (RFC 5321 4.1.4).
    Auto(Option<String>),
}

/// Settings for one conversation.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// What to announce in EHLO/HELO.
    pub helo: Helo,
    /// Bound on the TCP connect.
    pub connect_timeout: Duration,
    /// Bound on each reply and each write.
    pub timeout: Duration,
    /// Stop after this stage succeeded (RSET after MAIL or RCPT, then QUIT) without sending the
    /// message: `Connect`, `Greeting`, `Ehlo`, `Mail` or `Rcpt`. `None` runs the whole transaction.
    pub quit_after: Option<Stage>,
    /// TLS: the mode (`--tls`), trust roots (`--ca`), `--tls-name` and `--insecure`.
    pub tls: TlsOptions,
    /// AUTH, when `--auth-user` was given (the password already found).
    pub auth: Option<auth::AuthOptions>,
    /// Delivery status notification parameters (RFC 3461).
    pub dsn: Dsn,
}
