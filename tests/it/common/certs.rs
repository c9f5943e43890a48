//! Test certificates for the sink's TLS (rcgen): a private CA issuing leaf certificates, and
//! self-signed ones.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use smtpcheck_sink::SinkTls;

/// A test CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed CA certificate with the common name `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate in PEM (for `--ca`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), valid now unless `expired`.
    pub fn leaf(&self, names: &[&str], expired: bool) -> SinkTls {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        SinkTls::from_pem(&cert.pem(), &key.serialize_pem()).unwrap()
    }
}

/// A self-signed certificate for `name` (no CA verifies it: use `--insecure`).
pub fn self_signed(name: &str) -> SinkTls {
    let key = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    SinkTls::from_pem(&key.cert.pem(), &key.signing_key.serialize_pem()).unwrap()
}

/// A certificate for `names`, valid from `not_before` to `not_after` ((year, month, day)).
impl Ca {
    pub fn leaf_valid(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> SinkTls {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        SinkTls::from_pem(&cert.pem(), &key.serialize_pem()).unwrap()
    }
}

/// A self-signed certificate for `name` and its PEM (for `--ca`); with `ca`, it says
/// basicConstraints CA:TRUE, as `openssl req -x509` makes them.
pub fn self_signed_pem(name: &str, ca: bool) -> (SinkTls, String) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let tls = SinkTls::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
    (tls, cert.pem())
}

impl Ca {
    /// A leaf for `names` whose server asks for a client certificate issued by this CA.
    pub fn leaf_asking_for_client_cert(&self, names: &[&str]) -> SinkTls {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        SinkTls::with_client_auth(&cert.pem(), &key.serialize_pem(), &self.pem()).unwrap()
    }

    /// A client certificate with the common name `cn`, issued by this CA: (certificate PEM, key
    /// PEM).
    pub fn client_cert(&self, cn: &str) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
