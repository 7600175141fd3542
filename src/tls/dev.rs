//! The development CA of `switchyard up`: a self-signed ECDSA P-256 CA and per-workload
//! certificates (ECDSA P-256, the workload's SPIFFE ID as the single URI SAN, DNS SAN
//! `localhost` and IP SANs 127.0.0.1 and ::1, usable as both server and client certificate),
//! written as PEM files in one directory and reused on the next start.
//!
//! Files in the directory: `ca.pem` and `ca.key` (10 years), and `<name>.pem` /
//! `<name>.key` per workload (90 days, re-issued when less than 30 days are left, when they
//! were signed by another CA or carry another SPIFFE ID). Keys are written with mode 0600;
//! every file is written atomically (temporary file, then rename), so a running server that
//! re-reads them never sees half a file.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::{CertificateDer, UnixTime, pem::PemObject as _};

use super::{TlsError, TlsFiles};
use crate::identity::SpiffeId;

/// Lifetime of a workload certificate.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// A workload certificate with less than this left is re-issued at the next start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Lifetime of the development CA.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A development CA in a directory.
#[derive(Debug)]
pub struct DevCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
}

fn tls_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn write(path: &Path, body: &str, secret: bool) -> Result<(), TlsError> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let tmp = path.with_extension("tmp");
    let io = |source| TlsError::Read {
        what: "TLS file (write)",
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(body.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: clocks of peers on one machine or cluster differ a little.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + lifetime;
}

impl DevCa {
    /// Opens the CA in `dir` (`ca.pem`, `ca.key`), creating the directory and a new CA when
    /// there is none or the old one has less than a year left. `trust_domain` names the CA.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be read, parsed or written.
    pub fn ensure(dir: &Path, trust_domain: &str) -> Result<Self, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
            what: "certificate directory",
            path: dir.to_owned(),
            source,
        })?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            let cert_pem =
                std::fs::read_to_string(&cert_path).map_err(|e| tls_err(&cert_path, e))?;
            let key = KeyPair::from_pem(
                &std::fs::read_to_string(&key_path).map_err(|e| tls_err(&key_path, e))?,
            )
            .map_err(|e| tls_err(&key_path, e))?;
            let ca_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
                .map_err(|e| tls_err(&cert_path, e))?;
            if time_left(&ca_der).is_some_and(|left| left > Duration::from_secs(365 * 24 * 3600)) {
                let issuer =
                    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| tls_err(&cert_path, e))?;
                return Ok(Self {
                    dir: dir.to_owned(),
                    issuer,
                    ca_der,
                });
            }
            tracing::warn!(path = %cert_path.display(), "the development CA expires within a year: creating a new one");
        }
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| tls_err(&key_path, e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Switchyard");
        dn.push(
            DnType::CommonName,
            format!("Switchyard development CA ({trust_domain})"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, CA_VALIDITY);
        let cert = params
            .self_signed(&key)
            .map_err(|e| tls_err(&cert_path, e))?;
        write(&key_path, &key.serialize_pem(), true)?;
        write(&cert_path, &cert.pem(), false)?;
        Ok(Self {
            dir: dir.to_owned(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The files of workload `name` with SPIFFE ID `id`: the existing `<name>.pem` /
    /// `<name>.key` when they are this CA's, carry `id` and have more than [`RENEW_BEFORE`]
    /// left; otherwise newly issued ones.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be written.
    pub fn issue(&self, name: &str, id: &SpiffeId) -> Result<TlsFiles, TlsError> {
        let files = self.files(name);
        if self.reusable(&files, id) {
            return Ok(files);
        }
        self.issue_new(name, id)
    }

    /// Always issues a new certificate and key for `name` (replacing the files atomically,
    /// as a rotation does).
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be written.
    pub fn issue_new(&self, name: &str, id: &SpiffeId) -> Result<TlsFiles, TlsError> {
        let files = self.files(name);
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| tls_err(&files.key, e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Switchyard");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::URI(
                id.as_str()
                    .try_into()
                    .map_err(|e| tls_err(&files.cert, e))?,
            ),
            SanType::DnsName(
                "localhost"
                    .try_into()
                    .map_err(|e| tls_err(&files.cert, e))?,
            ),
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_VALIDITY);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| tls_err(&files.cert, e))?;
        // Key first: a reader that sees the new certificate with the old key retries later.
        write(&files.key, &key.serialize_pem(), true)?;
        write(&files.cert, &cert.pem(), false)?;
        Ok(files)
    }

    fn files(&self, name: &str) -> TlsFiles {
        TlsFiles {
            ca: self.ca_path(),
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    fn reusable(&self, files: &TlsFiles, id: &SpiffeId) -> bool {
        let Ok(pem) = std::fs::read(&files.cert) else {
            return false;
        };
        let Ok(der) = CertificateDer::from_pem_slice(&pem) else {
            return false;
        };
        let mut roots = rustls::RootCertStore::empty();
        if roots.add(self.ca_der.clone()).is_err() {
            return false;
        }
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(&der) else {
            return false;
        };
        let signed = rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &[],
            UnixTime::now(),
            super::provider().signature_verification_algorithms.all,
        )
        .is_ok();
        signed
            && files.key.exists()
            && super::spiffe_id_of(&der).is_ok_and(|got| &got == id)
            && time_left(&der).is_some_and(|left| left > RENEW_BEFORE)
    }
}

/// Time until the certificate expires; `None` when unparsable or expired.
fn time_left(der: &CertificateDer<'_>) -> Option<Duration> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let (_, c) = X509Certificate::from_der(der.as_ref()).ok()?;
    let left = c.validity().time_to_expiration()?;
    Duration::try_from(left).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_reused_until_they_belong_to_another_ca_or_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = SpiffeId::parse("spiffe://td.test/agent/echo").expect("id");
        let ca = DevCa::ensure(dir.path(), "td.test").expect("CA");
        let files = ca.issue("echo", &id).expect("issue");
        let first = std::fs::read(&files.cert).expect("cert");
        assert_eq!(
            super::super::spiffe_id_of(&CertificateDer::from_pem_slice(&first).expect("pem"))
                .expect("id"),
            id
        );

        // The next start: same CA, same certificate.
        let again = DevCa::ensure(dir.path(), "td.test").expect("CA again");
        assert_eq!(
            std::fs::read(again.ca_path()).ok(),
            std::fs::read(ca.ca_path()).ok()
        );
        again.issue("echo", &id).expect("reuse");
        assert_eq!(std::fs::read(&files.cert).expect("cert"), first, "reused");

        // Another SPIFFE ID for the name: re-issued.
        let other = SpiffeId::parse("spiffe://td.test/agent/other").expect("id");
        again.issue("echo", &other).expect("reissue");
        assert_ne!(std::fs::read(&files.cert).expect("cert"), first);

        // A certificate of another CA: re-issued.
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let foreign = DevCa::ensure(elsewhere.path(), "td.test").expect("other CA");
        let theirs = foreign.issue("echo", &id).expect("issue");
        std::fs::copy(&theirs.cert, &files.cert).expect("copy");
        std::fs::copy(&theirs.key, &files.key).expect("copy");
        let copied = std::fs::read(&files.cert).expect("cert");
        again.issue("echo", &id).expect("reissue");
        assert_ne!(std::fs::read(&files.cert).expect("cert"), copied);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private keys are not readable by others: {mode:o}"
        );
    }
}
