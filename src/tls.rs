//! TLS for the session: trust roots, a certificate verifier that records its verdict instead of
//! aborting the handshake, and the TLS facts for the report.
//!
//! The verifier always lets the handshake complete (a bad handshake signature still aborts it: that
//! is an attack or a broken server, not a certificate verdict), so an opportunistic session can
//! report "unknown issuer" and continue encrypted, as real MTAs do. Before the CA check it looks
//! for a pin: a `--ca` certificate byte-identical to the server's, or a `--tls-pin` matching its
//! public key. The verdict is one word of [`Verdict`] with a sentence saying what is wrong and what
//! to do, never a library's error text. The session then decides from [`TlsInfo::verified`] and the
//! [`Policy`] whether to go on. The handshake itself runs in [`crate::session`], the only code that
//! touches sockets.

use crate::error::Error;
use crate::transcript::Policy;
use crate::transcript::{BreakKind, TlsInfo, Verdict};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use std::path::{Path, PathBuf};
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
    /// Pins: the `--ca` certificates themselves, and the `--tls-pin` key hashes.
    pub pins: Arc<Pins>,
    /// `--cert-warn-days`: warn when the certificate expires within this many days.
    pub warn_days: u32,
    /// `--tls-save-chain`: write the chain the server presented to this file (PEM).
    pub save_chain: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`: the client certificate offered when the server asks.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate chain and its private key (`--tls-cert`, `--tls-key`).
#[derive(Clone)]
pub struct ClientCert {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: Arc<rustls::pki_types::PrivateKeyDer<'static>>,
    /// The leaf certificate's subject (`CN=reports.example.com`), for the report.
    pub subject: String,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCert({}, key redacted)", self.subject)
    }
}

/// The most read from `--tls-cert` or `--tls-key`.
const MAX_CLIENT_PEM: u64 = 1024 * 1024;

/// Reads `--tls-cert` (PEM, leaf first) and `--tls-key` (PEM, PKCS#8, PKCS#1 or SEC1) and checks
/// that the key belongs to the certificate; the key's content is never shown.
pub fn load_client_cert(cert: &Path, key: &Path) -> Result<ClientCert, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &Path, flag: &str, why: String| Error::ClientCert {
        why: format!("cannot use {flag} {}: {why}", path.display()),
    };
    let pem = crate::files::read_bounded(cert, MAX_CLIENT_PEM)
        .map_err(|why| fail(cert, "--tls-cert", why))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(cert, "--tls-cert", format!("it is not PEM ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(fail(cert, "--tls-cert", "it holds no CERTIFICATE".into()));
    };
    let subject = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map(|(_, c)| c.subject().to_string())
        .map_err(|_| {
            fail(
                cert,
                "--tls-cert",
                "its first certificate cannot be parsed".into(),
            )
        })?;
    let key_pem = zeroize::Zeroizing::new(
        crate::files::read_bounded(key, MAX_CLIENT_PEM)
            .map_err(|why| fail(key, "--tls-key", why))?,
    );
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| fail(key, "--tls-key", "it holds no PEM private key".into()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(private.clone_key())
        .map_err(|e| fail(key, "--tls-key", format!("the key cannot be used ({e})")))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    certified.keys_match().map_err(|_| {
        fail(
            key,
            "--tls-key",
            format!(
                "the key does not belong to the certificate in {}",
                cert.display()
            ),
        )
    })?;
    Ok(ClientCert {
        chain,
        key: Arc::new(private),
        subject,
    })
}

/// The default of `--cert-warn-days`.
pub const DEFAULT_WARN_DAYS: u32 = 14;

/// What a server certificate is trusted by without a CA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// The DER of every certificate of the `--ca` file: one byte-identical to the server's
    /// certificate is trusted whatever its basicConstraints.
    pub certificates: Vec<Vec<u8>>,
    /// `--tls-pin`: SHA-256 hashes of SubjectPublicKeyInfo.
    pub keys: Vec<[u8; 32]>,
}

/// How a certificate matched the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMatch {
    /// No `--tls-pin` and not a `--ca` certificate: the CA check decides.
    None,
    /// Byte-identical to a `--ca` certificate.
    Certificate,
    /// Its key matches a `--tls-pin`.
    Key,
    /// `--tls-pin` was given and nothing matches.
    Mismatch,
}

impl Pins {
    /// How the end-entity certificate `der` (whose SPKI hash is `spki`) matches.
    pub fn check(&self, der: &[u8], spki: Option<[u8; 32]>) -> PinMatch {
        if spki.is_some_and(|k| self.keys.contains(&k)) {
            return PinMatch::Key;
        }
        if self.certificates.iter().any(|c| c == der) {
            return PinMatch::Certificate;
        }
        if self.keys.is_empty() {
            PinMatch::None
        } else {
            PinMatch::Mismatch
        }
    }
}

/// Parses a `--tls-pin` value: `sha256:` followed by the base64 SHA-256 of a SubjectPublicKeyInfo
/// (curl's `sha256//` prefix is accepted too).
pub fn parse_pin(value: &str) -> Result<[u8; 32], Error> {
    use base64::Engine as _;
    let bad = |why: &str| Error::BadTlsPin {
        value: crate::error::show(value),
        why: why.to_string(),
    };
    let b64 = value
        .trim()
        .strip_prefix("sha256:")
        .or_else(|| value.trim().strip_prefix("sha256//"))
        .ok_or_else(|| bad("it must start with sha256:"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("the part after sha256: is not base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad("a SHA-256 hash is 32 bytes (44 base64 characters)"))
}

/// The SHA-256 of the SubjectPublicKeyInfo of a DER certificate.
pub fn spki_sha256(der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    <[u8; 32]>::try_from(digest.as_ref()).ok()
}

/// A certificate chain as PEM text.
pub fn chain_pem(chain: &[Vec<u8>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for der in chain {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

impl Default for TlsOptions {
    /// TLS off.
    fn default() -> Self {
        TlsOptions {
            policy: Policy::Off,
            roots: Roots::default(),
            name: None,
            insecure: false,
            pins: Arc::default(),
            warn_days: DEFAULT_WARN_DAYS,
            save_chain: None,
            client_cert: None,
        }
    }
}

impl TlsOptions {
    /// Settings for `policy`; `ca` is read and checked now unless TLS is off (a bad file is bad
    /// input, before any connection), the other trust roots when a handshake needs them; `name`
    /// is checked to be a DNS name or an IP address. Its certificates are also pins. `--tls-pin`,
    /// `--cert-warn-days` and `--tls-save-chain` are set on the result.
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
        let (extra, certificates) = match ca {
            Some(path) if policy != Policy::Off => read_ca(path)?,
            _ => (RootCertStore::empty(), Vec::new()),
        };
        Ok(TlsOptions {
            policy,
            roots: Roots::with_extra(extra),
            name: name.map(str::to_string),
            insecure,
            pins: Arc::new(Pins {
                certificates,
                keys: Vec::new(),
            }),
            warn_days: DEFAULT_WARN_DAYS,
            save_chain: None,
            client_cert: None,
        })
    }

    /// Adds `--tls-pin` values (checked now: bad input before any connection).
    pub fn with_pins(mut self, pins: &[String]) -> Result<TlsOptions, Error> {
        let keys = pins
            .iter()
            .map(|p| parse_pin(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut all = (*self.pins).clone();
        all.keys.extend(keys);
        self.pins = Arc::new(all);
        Ok(self)
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

    /// The built-in and system roots plus the certificates of the `--ca` file at `path`, read
    /// and checked now: the token endpoints' roots when the SMTP session has TLS off (and so did
    /// not read `--ca`).
    pub fn with_ca(path: &Path) -> Result<Roots, Error> {
        read_ca(path).map(|(extra, _)| Roots::with_extra(extra))
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

/// The trust anchors of a `--ca` PEM file and its certificates (pins); an unreadable file, bad
/// PEM, no certificate, or none usable either as a trust anchor or as a pin is an error naming the
/// file.
fn read_ca(path: &Path) -> Result<(RootCertStore, Vec<Vec<u8>>), Error> {
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
    let pins: Vec<Vec<u8>> = certs
        .iter()
        .filter(|c| x509_parser::parse_x509_certificate(c.as_ref()).is_ok())
        .map(|c| c.as_ref().to_vec())
        .collect();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 && pins.is_empty() {
        return Err(fail(format!(
            "none of its {ignored} certificate(s) can be parsed"
        )));
    }
    Ok((roots, pins))
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
    /// How the end-entity certificate matched the pins.
    pub pin: PinMatch,
    /// The SHA-256 of its SubjectPublicKeyInfo.
    pub spki: Option<[u8; 32]>,
}

/// A verifier that checks like rustls's own WebPKI verifier, records the result and lets the
/// handshake go on. Handshake signatures are still checked for real.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Arc<Pins>,
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
        let spki = spki_sha256(end_entity.as_ref());
        let pin = self.pins.check(end_entity.as_ref(), spki);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Seen {
                result,
                name_matched,
                chain_length: 1 + intermediates.len(),
                pin,
                spki,
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
        .map_err(|_| {
            "cannot set up certificate verification (no usable trust anchor)".to_string()
        })?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        pins: opts.pins.clone(),
        seen: Mutex::new(None),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| "cannot set up TLS: no protocol version available".to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let config = match &opts.client_cert {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .map_err(|e| format!("cannot use the client certificate (--tls-cert): {e}"))?,
        None => builder.with_no_client_auth(),
    };
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
    /// basicConstraints CA:TRUE.
    is_ca: bool,
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
        is_ca: cert.is_ca(),
    }
}

/// How the session is checking the certificate (for the verdict and its sentence).
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// `--tls`.
    pub mode: Policy,
    /// The name checked: `--tls-name`, else the host name.
    pub name: &'a str,
    /// `--insecure`.
    pub insecure: bool,
    /// Now, in Unix seconds.
    pub now_unix: i64,
}

/// The TLS facts of an established connection, with the verdict the verifier recorded.
pub fn describe(conn: &ClientConnection, seen: Option<Seen>, check: Check<'_>) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("0x{:04x}", u16::from(v)),
        None => "unknown".to_string(),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("0x{:04x}", u16::from(suite)))
        })
        .unwrap_or_else(|| "unknown".to_string());
    let chain: Vec<Vec<u8>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
        .unwrap_or_default();
    let leaf = chain.first().map(|c| parse_leaf(c)).unwrap_or_default();
    let days_left = leaf
        .not_after
        .map(|t| (t - check.now_unix).div_euclid(86_400));
    let spki = seen.as_ref().and_then(|s| s.spki).map(|k| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(k)
    });
    let words = match &seen {
        None => Words {
            verdict: Verdict::InvalidCertificate,
            reason: Some("the server sent no certificate".to_string()),
            advice: Some("configure a certificate on the server".to_string()),
        },
        Some(s) => judge(s, &leaf, check, days_left, spki.as_deref()),
    };
    TlsInfo {
        mode: check.mode,
        version,
        cipher_suite,
        name: check.name.to_string(),
        subject: leaf.subject,
        san: leaf.san,
        issuer: leaf.issuer,
        not_before: leaf.not_before.map(crate::time::rfc3339),
        not_after: leaf.not_after.map(crate::time::rfc3339),
        days_left,
        chain_length: seen.as_ref().map_or(0, |s| s.chain_length),
        verified: words.verdict.trusted(),
        verdict: words.verdict,
        reason: words.reason,
        advice: words.advice,
        name_matched: seen.as_ref().is_some_and(|s| s.name_matched),
        spki_sha256: spki,
        client_certificate: None,
        chain,
    }
}

/// A verdict with its sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Words {
    verdict: Verdict,
    reason: Option<String>,
    advice: Option<String>,
}

impl Words {
    fn new(verdict: Verdict, reason: String, advice: String) -> Words {
        Words {
            verdict,
            reason: Some(reason),
            advice: Some(advice),
        }
    }
}

/// The verdict and its sentences: a pin first, then the CA check; with `--insecure` a problem is
/// `not-checked` (its sentence kept).
fn judge(
    seen: &Seen,
    leaf: &Leaf,
    check: Check<'_>,
    days_left: Option<i64>,
    spki: Option<&str>,
) -> Words {
    let pin_flag = spki.map_or("--tls-pin sha256:...".to_string(), |k| {
        format!("--tls-pin sha256:{k}")
    });
    match seen.pin {
        PinMatch::Certificate => {
            return Words {
                verdict: Verdict::Pinned,
                reason: Some("trusted as a pin: the certificate is byte for byte the one given with --ca (its issuer, name and basicConstraints are not checked)".into()),
                advice: None,
            }
        }
        PinMatch::Key => {
            return Words {
                verdict: Verdict::Pinned,
                reason: Some("trusted as a pin: its public key matches --tls-pin (its issuer and name are not checked)".into()),
                advice: None,
            }
        }
        PinMatch::Mismatch => {
            let key = spki.unwrap_or("unknown");
            let w = Words::new(
                Verdict::PinMismatch,
                format!("the server's public key (sha256:{key}) matches no --tls-pin value: this may not be the server you pinned"),
                "check the --tls-pin value; if the server's key was changed on purpose, pin the new one".into(),
            );
            return not_checked(w, check.insecure);
        }
        PinMatch::None => {}
    }
    let Err(e) = &seen.result else {
        return Words {
            verdict: Verdict::Verified,
            reason: None,
            advice: None,
        };
    };
    let name = check.name;
    let w = problem(e, leaf, name, days_left, seen.chain_length, &pin_flag);
    not_checked(w, check.insecure)
}

/// Under `--insecure`, a problem becomes `not-checked` with its sentence kept.
fn not_checked(w: Words, insecure: bool) -> Words {
    if !insecure {
        return w;
    }
    Words {
        verdict: Verdict::NotChecked,
        reason: Some(format!(
            "not checked because of --insecure; verification found: {} ({})",
            w.reason.unwrap_or_default(),
            w.verdict.as_str()
        )),
        advice: w.advice,
    }
}

/// What is wrong with the certificate, from the verifier's error, in words.
fn problem(
    e: &rustls::Error,
    leaf: &Leaf,
    name: &str,
    days_left: Option<i64>,
    chain_length: usize,
    pin_flag: &str,
) -> Words {
    let subject = leaf.subject.as_deref().unwrap_or("(unknown subject)");
    let issuer = leaf.issuer.as_deref().unwrap_or("its issuer");
    let self_signed = leaf.issuer.is_some() && leaf.issuer == leaf.subject;
    let names = if leaf.san.is_empty() {
        "no subject alternative names".to_string()
    } else {
        leaf.san.join(", ")
    };
    let trust_it = format!("trust this very certificate with --ca FILE (--tls-save-chain FILE saves it) or pin its key with {pin_flag}");
    let rustls::Error::InvalidCertificate(ce) = e else {
        return Words::new(
            Verdict::InvalidCertificate,
            "the certificate could not be checked".into(),
            "reissue the certificate for TLS server use".into(),
        );
    };
    match ce {
        CertificateError::UnknownIssuer if self_signed => Words::new(
            Verdict::SelfSigned,
            format!("the certificate is self-signed ({subject}): no trusted CA vouches for it"),
            format!("{trust_it}, or have it issued by a CA you trust"),
        ),
        CertificateError::UnknownIssuer => Words::new(
            Verdict::UnknownIssuer,
            format!("{issuer} is not a trusted CA, or the server does not send the intermediate certificate(s) (it sent {chain_length})"),
            format!("trust a private CA with --ca CA.pem; for a public CA, make the server send its intermediate certificates; or pin the key with {pin_flag}"),
        ),
        CertificateError::Other(_) if leaf.is_ca => Words::new(
            Verdict::CaCertificateAsServer,
            format!("the server presents a CA certificate (basicConstraints CA:TRUE, {subject}) as its own, which TLS clients refuse for a server; `openssl req -x509` makes such certificates by default"),
            format!("reissue it with basicConstraints CA:FALSE (openssl req -x509 -addext basicConstraints=critical,CA:FALSE ...), or {trust_it}"),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = match (leaf.not_after.map(crate::time::rfc3339), days_left) {
                (Some(t), Some(d)) if d < 0 => format!(" on {t} ({} days ago)", -d),
                (Some(t), _) => format!(" (not after {t})"),
                _ => String::new(),
            };
            Words::new(
                Verdict::Expired,
                format!("the certificate (or one in its chain) expired{when}"),
                "renew the certificate on the server".into(),
            )
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let when = leaf
                .not_before
                .map(|t| format!(": not before {}", crate::time::rfc3339(t)))
                .unwrap_or_default();
            Words::new(
                Verdict::NotYetValid,
                format!("the certificate (or one in its chain) is not valid yet{when}"),
                "check the clocks of this machine and of the server; reissue the certificate if its start date is wrong".into(),
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Words::new(
                Verdict::NameMismatch,
                format!("the certificate is not valid for {name}: it is for {names}"),
                format!("connect with a name the certificate is for, or check it against that name with --tls-name; otherwise reissue it to include {name}"),
            )
        }
        CertificateError::BadSignature => Words::new(
            Verdict::BadSignature,
            format!("a signature in the certificate chain does not verify: the certificate was not issued by the {issuer} you trust, or it was altered"),
            "check that the server sends the right certificate and that --ca holds the CA that issued it".into(),
        ),
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => Words::new(
            Verdict::UnsupportedAlgorithm,
            "the certificate chain uses a signature or key algorithm that is not accepted (for example SHA-1, or an RSA key under 2048 bits)".into(),
            format!("reissue it with RSA 2048+ and SHA-256, ECDSA P-256/P-384 or Ed25519; or pin its key with {pin_flag}"),
        ),
        CertificateError::Revoked => Words::new(
            Verdict::Revoked,
            "the certificate was revoked by its issuer".into(),
            "install a new certificate on the server".into(),
        ),
        _ => Words::new(
            Verdict::InvalidCertificate,
            "the certificate cannot be used by a TLS server (malformed, not for server authentication, or with a critical extension that is not understood)".into(),
            format!("reissue it for TLS server use (extendedKeyUsage serverAuth), or {trust_it}"),
        ),
    }
}

/// What a failed handshake means, in words (never a library's error text): `first` holds the
/// first bytes the server sent, when any. The flag is `true` when the server answered in plain
/// SMTP.
pub fn handshake_failure(e: &std::io::Error, first: &[u8]) -> (BreakKind, String, bool) {
    if looks_like_smtp(first) {
        let end = first
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(first.len());
        let said = crate::smtp::codec::escape_line(&first[..end]);
        return (
            BreakKind::Protocol,
            format!("the server answered in plain text (\"{said}\"): this port speaks plain SMTP, not TLS"),
            true,
        );
    }
    let (kind, why) = handshake_words(e);
    (kind, why, false)
}

/// A failed handshake in words, from the error.
fn handshake_words(e: &std::io::Error) -> (BreakKind, String) {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let why = match tls {
        Some(rustls::Error::AlertReceived(a)) => {
            format!("the server ended the handshake with the TLS alert {}", alert_words(*a))
        }
        Some(rustls::Error::PeerIncompatible(_)) => {
            "the server has no TLS version, cipher suite, key exchange group or signature scheme in common with smtpcheck (TLS 1.2 or 1.3 with modern ciphers)".into()
        }
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. })
        | Some(rustls::Error::InappropriateHandshakeMessage { .. }) => {
            "the server did not answer with valid TLS: it may not speak TLS on this port".into()
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            "the server's handshake signature does not verify with its certificate's key".into()
        }
        Some(rustls::Error::PeerMisbehaved(_)) => "the server broke the TLS protocol".into(),
        Some(rustls::Error::DecryptError) => "the server's encrypted data could not be decrypted".into(),
        Some(_) => "the TLS handshake could not be completed".into(),
        None => {
            return match e.kind() {
                std::io::ErrorKind::UnexpectedEof => (
                    BreakKind::Closed,
                    "the server closed the connection during the handshake".to_string(),
                ),
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => (
                    BreakKind::Closed,
                    "the server reset the connection during the handshake".to_string(),
                ),
                std::io::ErrorKind::InvalidData => (
                    BreakKind::Protocol,
                    "the server did not answer with valid TLS".to_string(),
                ),
                _ => (BreakKind::Io, "a network error broke the handshake".to_string()),
            }
        }
    };
    (BreakKind::Protocol, why)
}

/// `true` when `bytes` start like an SMTP reply (three digits, then a space, a dash or the end).
fn looks_like_smtp(bytes: &[u8]) -> bool {
    bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && matches!(bytes.get(3), None | Some(b' ' | b'-' | b'\r'))
}

/// A TLS alert in words.
fn alert_words(a: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let words = match a {
        A::HandshakeFailure => "handshake_failure (no acceptable parameters in common)",
        A::ProtocolVersion => "protocol_version (no TLS version in common)",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error (a problem on the server)",
        A::UnrecognisedName => "unrecognized_name (the server has no certificate for that name)",
        A::IllegalParameter => "illegal_parameter",
        A::DecodeError => "decode_error",
        A::UnexpectedMessage => "unexpected_message",
        A::AccessDenied => "access_denied",
        A::CertificateRequired => "certificate_required (the server wants a client certificate)",
        _ => return format!("number {}", u8::from(a)),
    };
    words.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(issuer: &str, is_ca: bool) -> Leaf {
        Leaf {
            subject: Some("CN=mx.test".into()),
            issuer: Some(issuer.into()),
            san: vec!["mx.test".into()],
            not_before: Some(0),
            not_after: Some(86_400),
            is_ca,
        }
    }

    fn seen(result: Result<(), rustls::Error>, pin: PinMatch) -> Seen {
        Seen {
            result,
            name_matched: true,
            chain_length: 1,
            pin,
            spki: None,
        }
    }

    fn check(insecure: bool) -> Check<'static> {
        Check {
            mode: Policy::Required,
            name: "mx.test",
            insecure,
            now_unix: 0,
        }
    }

    /// Every word of the vocabulary, from the verifier's result, with its sentences: no library
    /// text, the checked name named, advice for every problem.
    #[test]
    #[allow(deprecated)]
    fn every_verdict_in_words() {
        use CertificateError as C;
        let err = |e: CertificateError| Err(rustls::Error::InvalidCertificate(e));
        let other = || {
            let e: std::sync::Arc<dyn std::error::Error + Send + Sync> =
                std::sync::Arc::new(std::io::Error::other("CaUsedAsEndEntity"));
            C::Other(rustls::OtherError(e))
        };
        let private = leaf("CN=Private CA", false);
        let own = leaf("CN=mx.test", false);
        let ca = leaf("CN=mx.test", true);
        #[allow(deprecated)]
        // (what the verifier saw, the leaf, --insecure, verdict, in the reason, in the advice)
        type Case<'a> = (Seen, &'a Leaf, bool, Verdict, &'a str, Option<&'a str>);
        let table: Vec<Case> = vec![
            (seen(Ok(()), PinMatch::None), &private, false, Verdict::Verified, "", None),
            (seen(err(C::UnknownIssuer), PinMatch::Certificate), &ca, false, Verdict::Pinned, "byte for byte the one given with --ca", None),
            (seen(err(C::UnknownIssuer), PinMatch::Key), &own, false, Verdict::Pinned, "matches --tls-pin", None),
            (seen(Ok(()), PinMatch::Mismatch), &private, false, Verdict::PinMismatch, "matches no --tls-pin", Some("check the --tls-pin value")),
            (seen(err(C::UnknownIssuer), PinMatch::None), &own, false, Verdict::SelfSigned, "self-signed (CN=mx.test)", Some("--ca FILE")),
            (seen(err(other()), PinMatch::None), &ca, false, Verdict::CaCertificateAsServer, "CA certificate (basicConstraints CA:TRUE", Some("CA:FALSE")),
            (seen(err(C::UnknownIssuer), PinMatch::None), &private, false, Verdict::UnknownIssuer, "CN=Private CA is not a trusted CA", Some("--ca CA.pem")),
            (seen(err(C::NotValidForName), PinMatch::None), &private, false, Verdict::NameMismatch, "not valid for mx.test: it is for mx.test", Some("--tls-name")),
            (seen(err(C::Expired), PinMatch::None), &private, false, Verdict::Expired, "expired on 1970-01-02T00:00:00Z (3 days ago)", Some("renew")),
            (seen(err(C::NotValidYet), PinMatch::None), &private, false, Verdict::NotYetValid, "not valid yet: not before 1970-01-01T00:00:00Z", Some("clocks")),
            (seen(err(C::BadSignature), PinMatch::None), &private, false, Verdict::BadSignature, "does not verify", Some("--ca")),
            (seen(err(C::UnsupportedSignatureAlgorithm), PinMatch::None), &private, false, Verdict::UnsupportedAlgorithm, "algorithm that is not accepted", Some("reissue")),
            (seen(err(C::Revoked), PinMatch::None), &private, false, Verdict::Revoked, "revoked", Some("new certificate")),
            (seen(err(C::BadEncoding), PinMatch::None), &private, false, Verdict::InvalidCertificate, "cannot be used by a TLS server", Some("serverAuth")),
            (seen(err(other()), PinMatch::None), &private, false, Verdict::InvalidCertificate, "cannot be used by a TLS server", Some("serverAuth")),
            (seen(err(C::UnknownIssuer), PinMatch::None), &own, true, Verdict::NotChecked, "not checked because of --insecure; verification found: the certificate is self-signed", Some("--ca FILE")),
            (seen(Ok(()), PinMatch::None), &private, true, Verdict::Verified, "", None),
        ];
        for (seen, leaf, insecure, verdict, reason, advice) in table {
            let w = judge(&seen, leaf, check(insecure), Some(-3), None);
            assert_eq!(w.verdict, verdict, "{w:?}");
            match &w.reason {
                Some(r) => assert!(r.contains(reason), "{verdict:?}: {r}"),
                None => assert!(reason.is_empty(), "{verdict:?} needs a reason"),
            }
            match (advice, &w.advice) {
                (Some(want), Some(a)) => assert!(a.contains(want), "{verdict:?}: {a}"),
                (None, None) => {}
                (want, got) => panic!("{verdict:?}: advice {got:?}, wanted {want:?}"),
            }
            let all = format!("{:?} {:?}", w.reason, w.advice);
            for library in [
                "Other(",
                "OtherError",
                "CaUsedAsEndEntity",
                "InvalidCertificate",
                "Context",
            ] {
                assert!(!all.contains(library), "{verdict:?}: {all}");
            }
        }
    }

    #[test]
    fn pins_parse_and_match() {
        let key = [7u8; 32];
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(parse_pin(&format!("sha256:{b64}")).unwrap(), key);
        assert_eq!(parse_pin(&format!("sha256//{b64}")).unwrap(), key);
        for bad in ["", "md5:abc", "sha256:not base64!", "sha256:AAAA"] {
            let e = parse_pin(bad).unwrap_err();
            assert_eq!(e.exit(), crate::exit::Exit::BadInput);
            assert!(e.to_string().contains("--tls-pin"), "{e}");
        }
        let pins = Pins {
            certificates: vec![b"cert".to_vec()],
            keys: vec![],
        };
        assert_eq!(pins.check(b"cert", Some(key)), PinMatch::Certificate);
        assert_eq!(pins.check(b"other", Some(key)), PinMatch::None);
        let pins = Pins {
            certificates: vec![],
            keys: vec![key],
        };
        assert_eq!(pins.check(b"x", Some(key)), PinMatch::Key);
        assert_eq!(pins.check(b"x", Some([0; 32])), PinMatch::Mismatch);
        assert_eq!(pins.check(b"x", None), PinMatch::Mismatch);
    }

    #[test]
    fn plain_smtp_answer_to_a_handshake_is_recognised() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "x");
        let (kind, why, plain) = handshake_failure(&e, b"220 mx.test ESMTP\r\n");
        assert_eq!((kind, plain), (BreakKind::Protocol, true));
        assert_eq!(
            why,
            "the server answered in plain text (\"220 mx.test ESMTP\"): this port speaks plain SMTP, not TLS"
        );
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        let (_, why, plain) = handshake_failure(&tls, b"\x15\x03\x03");
        assert!(!plain);
        assert!(why.contains("handshake_failure"), "{why}");
        assert!(!why.contains("AlertReceived"), "{why}");
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(handshake_failure(&eof, b"").0, BreakKind::Closed);
    }

    #[test]
    fn chain_pem_round_trips() {
        let pem = chain_pem(&[vec![1, 2, 3], vec![4; 100]]);
        let back: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.unwrap().as_ref().to_vec())
            .collect();
        assert_eq!(back, vec![vec![1, 2, 3], vec![4; 100]]);
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
