//! Delivery status notification parameters (RFC 3461).

/// DSN parameters (RFC 3461), sent only when the server advertises DSN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `NOTIFY=` on each RCPT: `NEVER` or some of `SUCCESS`, `FAILURE`, `DELAY`.
    pub notify: Option<Vec<String>>,
    /// `RET=` on MAIL: `FULL` or `HDRS`.
    pub ret: Option<String>,
    /// `ENVID=` on MAIL.
    pub envid: Option<String>,
}

impl Dsn {
    /// `true` when any DSN parameter was asked for.
    pub fn requested(&self) -> bool {
        self.notify.is_some() || self.ret.is_some() || self.envid.is_some()
    }
}
