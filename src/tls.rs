//! TLS for the session: trust roots, a certificate verifier that records its verdict instead of
//! aborting the handshake, and the TLS facts for the report.
//!
//! The verifier always lets the handshake complete (a bad signature still aborts it: that is an
//! attack or a broken server, not a certificate verdict), so an opportunistic session can report
//! "certificate not trusted: unknown issuer" and continue encrypted, as real MTAs do. The session
//! then decides from [`TlsInfo::verified`] and the [`Policy`] whether to go on. The handshake itself
//! runs in [`crate::session`], the only code that touches sockets.

use crate::error::Error;
use crate::transcript::Policy;
use crate::transcript::{TlsInfo, Verdict};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// System CA bundles, the first one found is used (in addition to the built-in webpki roots).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// TLS settings, settled before any connection.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// How TLS is used.
    pub policy: Policy,
    /// The trusted roots: webpki-roots, the system bundle, and `--ca`, loaded at the first
    /// handshake (a check that never reaches TLS never pays for them).
    pub roots: Roots,
    /// `--tls-name`: verify the certificate against this name instead of the host name.
    pub name: Option<String>,
    /// `--insecure`: a certificate that does not verify is reported but does not end the session.
    pub insecure: bool,
}

impl Default for TlsOptions {
    /// TLS off.
    fn default() -> Self {
        TlsOptions {
            policy: Policy::Off,
            roots: Roots::default(),
            name: None,
            insecure: false,
        }
    }
}

impl TlsOptions {
    /// Settings for `policy`; `ca` is read and checked now unless TLS is off (a bad file is bad
    /// input, before any connection), the other trust roots when a handshake needs them; `name`
    /// is checked to be a DNS name or an IP address.
    pub fn new(
        policy: Policy,
        ca: Option<&Path>,
        name: Option<&str>,
        insecure: bool,
    ) -> Result<TlsOptions, Error> {
        if let Some(n) = name {
            if ServerName::try_from(n).is_err() {
                return Err(Error::BadTlsName {
                    value: crate::error::show(n),
                });
            }
        }
        let extra = match ca {
            Some(path) if policy != Policy::Off => read_ca(path)?,
            _ => RootCertStore::empty(),
        };
        Ok(TlsOptions {
            policy,
            roots: Roots::with_extra(extra),
            name: name.map(str::to_string),
            insecure,
        })
    }

    /// The name the certificate of `host` is verified against: `--tls-name`, else the host name
    /// connected to (an IP address is verified as an IP address).
    pub fn verify_name(&self, host: &str) -> String {
        self.name.clone().unwrap_or_else(|| host.to_string())
    }
}

/// Trust roots loaded on first use and then shared (clones share the loaded store): the built-in
/// webpki roots, the first system bundle found, and the `--ca` certificates given up front.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The `--ca` trust anchors (already read and checked).
    extra: Arc<RootCertStore>,
    /// The whole store, once a handshake asked for it.
    loaded: Arc<OnceLock<Arc<RootCertStore>>>,
}

impl Default for Roots {
    /// The built-in and system roots only.
    fn default() -> Self {
        Roots::with_extra(RootCertStore::empty())
    }
}

impl Roots {
    /// Roots made of the built-in and system ones plus `extra`.
    pub fn with_extra(extra: RootCertStore) -> Roots {
        Roots {
            extra: Arc::new(extra),
            loaded: Arc::new(OnceLock::new()),
        }
    }

    /// The whole store, loaded now if this is the first time.
    pub fn store(&self) -> Arc<RootCertStore> {
        self.loaded
            .get_or_init(|| Arc::new(builtin_and_system(&self.extra)))
            .clone()
    }

    /// `true` once [`Roots::store`] has loaded the store.
    pub fn is_loaded(&self) -> bool {
        self.loaded.get().is_some()
    }
}

/// The built-in webpki roots and the first system bundle found, plus `extra`.
fn builtin_and_system(extra: &RootCertStore) -> RootCertStore {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(bytes) = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| crate::files::read_bounded(Path::new(p), MAX_CA_FILE).ok())
    {
        let certs = CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok);
        roots.add_parsable_certificates(certs);
    }
    roots.roots.extend(extra.roots.iter().cloned());
    roots
}

/// The largest `--ca` file read (a full public CA bundle is about 250 KiB).
pub const MAX_CA_FILE: u64 = 8 * 1024 * 1024;

/// The trust anchors of a `--ca` PEM file; an unreadable file, bad PEM, no certificate or none
/// usable as a trust anchor is an error naming the file.
fn read_ca(path: &Path) -> Result<RootCertStore, Error> {
    let fail = |why: String| Error::CaFile {
        path: path.to_path_buf(),
        why,
    };
    let bytes = crate::files::read_bounded(path, MAX_CA_FILE).map_err(fail)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("not a valid PEM file ({e})")))?;
    if certs.is_empty() {
        return Err(fail("it holds no PEM CERTIFICATE block".into()));
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail(format!(
            "none of its {ignored} certificate(s) can be used as a trust anchor"
        )));
    }
    Ok(roots)
}

/// What the verifier saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The full verification result (chain, validity, name).
    pub result: Result<(), rustls::Error>,
    /// Whether the certificate is valid for the name, checked on its own.
    pub name_matched: bool,
    /// How many certificates the server sent.
    pub chain_length: usize,
}

/// A verifier that checks like rustls's own WebPKI verifier, records the result and lets the
/// handshake go on. Handshake signatures are still checked for real.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl RecordingVerifier {
    /// What the verifier saw (None before the server's certificate arrived).
    pub fn seen(&self) -> Option<Seen> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        let name_matched = ParsedCertificate::try_from(end_entity)
            .and_then(|p| verify_server_name(&p, server_name))
            .is_ok();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Seen {
                result,
                name_matched,
                chain_length: 1 + intermediates.len(),
            });
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client configuration for one handshake, with its recording verifier.
pub fn client_config(
    opts: &TlsOptions,
) -> Result<(Arc<ClientConfig>, Arc<RecordingVerifier>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(opts.roots.store(), provider.clone())
        .build()
        .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok((Arc::new(config), verifier))
}

/// The name to give the handshake (SNI for a DNS name; none for an IP address).
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string()).map_err(|_| {
        format!("{name:?} is not a DNS name or IP address to verify a certificate against")
    })
}

/// Parsed facts of the leaf certificate.
#[derive(Debug, Default)]
struct Leaf {
    subject: Option<String>,
    issuer: Option<String>,
    san: Vec<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
}

fn parse_leaf(der: &[u8]) -> Leaf {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Leaf::default();
    };
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => san.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => san.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Leaf {
        subject: Some(cert.subject().to_string()),
        issuer: Some(cert.issuer().to_string()),
        san,
        not_before: Some(cert.validity().not_before.timestamp()),
        not_after: Some(cert.validity().not_after.timestamp()),
    }
}

/// The TLS facts of an established connection, with the verdict the verifier recorded.
pub fn describe(
    conn: &ClientConnection,
    seen: Option<Seen>,
    mode: Policy,
    name: &str,
    now_unix: i64,
) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{suite:?}"))
        })
        .unwrap_or_else(|| "unknown".to_string());
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| parse_leaf(c.as_ref()))
        .unwrap_or_default();
    let days_left = leaf.not_after.map(|t| (t - now_unix).div_euclid(86_400));
    let (verdict, reason) = match &seen {
        None => (
            Verdict::Other,
            Some("the server sent no certificate".to_string()),
        ),
        Some(s) => judge(&s.result, &leaf, name, days_left),
    };
    TlsInfo {
        mode,
        version,
        cipher_suite,
        name: name.to_string(),
        subject: leaf.subject,
        san: leaf.san,
        issuer: leaf.issuer,
        not_before: leaf.not_before.map(crate::time::rfc3339),
        not_after: leaf.not_after.map(crate::time::rfc3339),
        days_left,
        chain_length: seen.as_ref().map_or(0, |s| s.chain_length),
        verified: verdict == Verdict::Trusted,
        verdict,
        reason,
        name_matched: seen.as_ref().is_some_and(|s| s.name_matched),
    }
}

/// The verdict and its reason in words.
fn judge(
    result: &Result<(), rustls::Error>,
    leaf: &Leaf,
    name: &str,
    days_left: Option<i64>,
) -> (Verdict, Option<String>) {
    let Err(e) = result else {
        return (Verdict::Trusted, None);
    };
    let issuer = leaf.issuer.as_deref().unwrap_or("its issuer");
    let self_signed = leaf.issuer.is_some() && leaf.issuer == leaf.subject;
    let names = if leaf.san.is_empty() {
        "no subject alternative names".to_string()
    } else {
        leaf.san.join(", ")
    };
    match e {
        rustls::Error::InvalidCertificate(ce) => {
            match ce {
                CertificateError::UnknownIssuer => {
                    let why = if self_signed {
                        format!("the certificate is self-signed ({issuer})")
                    } else {
                        format!("{issuer} is not a trusted CA (or an intermediate certificate is missing)")
                    };
                    (
                        Verdict::UnknownIssuer,
                        Some(format!("certificate not trusted: unknown issuer: {why}")),
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    let when = match (leaf.not_after.map(crate::time::rfc3339), days_left) {
                        (Some(t), Some(d)) if d < 0 => format!(" on {t} ({} days ago)", -d),
                        (Some(t), _) => format!(" (not after {t})"),
                        _ => String::new(),
                    };
                    (Verdict::Expired, Some(format!("certificate expired{when}")))
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    let when = leaf
                        .not_before
                        .map(|t| format!(": not before {}", crate::time::rfc3339(t)))
                        .unwrap_or_default();
                    (
                        Verdict::NotYetValid,
                        Some(format!("certificate not valid yet{when}")),
                    )
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => (
                    Verdict::NameMismatch,
                    Some(format!(
                        "certificate not valid for {name}: it is for {names}"
                    )),
                ),
                CertificateError::Revoked => {
                    (Verdict::Revoked, Some("certificate revoked".to_string()))
                }
                other => (
                    Verdict::Other,
                    Some(format!("certificate not accepted: {other}")),
                ),
            }
        }
        other => (
            Verdict::Other,
            Some(format!("certificate not accepted: {other}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_in_words() {
        let leaf = Leaf {
            subject: Some("CN=mx.test".into()),
            issuer: Some("CN=Private CA".into()),
            san: vec!["mx.test".into()],
            not_before: Some(0),
            not_after: Some(86_400),
        };
        let err = |e: CertificateError| Err(rustls::Error::InvalidCertificate(e));
        let (v, r) = judge(
            &err(CertificateError::UnknownIssuer),
            &leaf,
            "mx.test",
            Some(1),
        );
        assert_eq!(v, Verdict::UnknownIssuer);
        assert!(r
            .unwrap()
            .contains("unknown issuer: CN=Private CA is not a trusted CA"));
        let (v, r) = judge(&err(CertificateError::Expired), &leaf, "mx.test", Some(-3));
        assert_eq!(v, Verdict::Expired);
        assert_eq!(
            r.unwrap(),
            "certificate expired on 1970-01-02T00:00:00Z (3 days ago)"
        );
        let (v, r) = judge(
            &err(CertificateError::NotValidForName),
            &leaf,
            "other.test",
            None,
        );
        assert_eq!(v, Verdict::NameMismatch);
        assert_eq!(
            r.unwrap(),
            "certificate not valid for other.test: it is for mx.test"
        );
        assert_eq!(
            judge(&Ok(()), &leaf, "mx.test", None),
            (Verdict::Trusted, None)
        );
    }

    #[test]
    fn tls_name_is_checked() {
        assert!(TlsOptions::new(Policy::Off, None, Some("mx.example.com"), false).is_ok());
        assert!(TlsOptions::new(Policy::Off, None, Some("192.0.2.1"), false).is_ok());
        assert!(TlsOptions::new(Policy::Off, None, Some("bad name\r\n"), false).is_err());
    }

    #[test]
    fn roots_load_only_when_asked() {
        let opts = TlsOptions::new(Policy::Opportunistic, None, None, false).unwrap();
        assert!(!opts.roots.is_loaded());
        let copy = opts.clone();
        assert!(!copy.roots.store().is_empty());
        assert!(opts.roots.is_loaded(), "clones share the loaded store");
        // A bad --ca is still found before any connection; with TLS off it is not read.
        let missing = Path::new("/nonexistent/ca.pem");
        assert!(TlsOptions::new(Policy::Opportunistic, Some(missing), None, false).is_err());
        assert!(TlsOptions::new(Policy::Off, Some(missing), None, false).is_ok());
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let missing = Path::new("/nonexistent/ca.pem");
        let err = TlsOptions::new(Policy::Required, Some(missing), None, false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert_eq!(err.exit(), crate::exit::Exit::BadInput);
    }
}
