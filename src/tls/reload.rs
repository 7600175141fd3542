//! [`ReloadingCert`]: a certificate and key read from PEM files and read again when the files
//! change, for servers ([`ResolvesServerCert`]) and clients ([`ResolvesClientCert`]);
//! [`ReloadingRoots`]: the mesh CA file (trust bundle), read again when it changes, for
//! servers' client verification ([`ReloadingClientVerifier`]) and clients' server
//! verification.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
    client::{ResolvesClientCert, danger::HandshakeSignatureValid},
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject as _},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

use super::TlsError;

/// What identifies one version of a file: modification time, size and inode.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// A certificate chain and private key from two PEM files, checked on every handshake and
/// re-read when either file changed. A new pair that fails to load (half-written, key not
/// matching) is logged at WARN and the previous pair stays in use until the files are fixed.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    current: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
}

impl ReloadingCert {
    /// Loads the pair.
    ///
    /// # Errors
    /// [`TlsError`] naming the file and the problem (unreadable, no PEM block, key not
    /// matching the certificate).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let stamps = (stamp(cert), stamp(key));
        let current = Arc::new(read_pair(cert, key)?);
        Ok(Self {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            state: Mutex::new(State { current, stamps }),
        })
    }

    /// The pair in use, after re-reading the files if they changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        if stamps != state.stamps {
            match read_pair(&self.cert_path, &self.key_path) {
                Ok(pair) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                    state.current = Arc::new(pair);
                    state.stamps = stamps;
                }
                Err(e) => {
                    // Not recorded as seen: retried on the next handshake.
                    tracing::warn!(error = %e, "TLS certificate files changed but cannot be loaded; keeping the previous certificate");
                }
            }
        }
        state.current.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadingCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The mesh CA certificates (trust bundle) from a PEM file, checked on every handshake and
/// re-read when the file changed (modification time, size, inode), so a CA rotation — first a
/// bundle with the old and the new CA, later the new one alone — needs no restart. A new file
/// that fails to load (half-written, no certificate) is logged at WARN and the previous bundle
/// stays in use until the file is fixed.
#[derive(Debug)]
pub struct ReloadingRoots {
    path: PathBuf,
    state: Mutex<RootsState>,
}

#[derive(Debug)]
struct RootsState {
    roots: Arc<RootCertStore>,
    verifier: Arc<dyn ClientCertVerifier>,
    stamp: Stamp,
}

impl ReloadingRoots {
    /// Loads the bundle.
    ///
    /// # Errors
    /// [`TlsError`] naming the file and the problem (unreadable, no or a bad CERTIFICATE
    /// block, no usable trust anchor).
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let stamp = stamp(path);
        let (roots, verifier) = read_roots(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(RootsState {
                roots,
                verifier,
                stamp,
            }),
        })
    }

    /// The trust anchors in use and the client-certificate verifier built on them, after
    /// re-reading the file if it changed.
    pub fn current(&self) -> (Arc<RootCertStore>, Arc<dyn ClientCertVerifier>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = stamp(&self.path);
        if stamp != state.stamp {
            match read_roots(&self.path) {
                Ok((roots, verifier)) => {
                    tracing::info!(ca = %self.path.display(), anchors = roots.len(), "TLS CA bundle reloaded");
                    state.roots = roots;
                    state.verifier = verifier;
                    state.stamp = stamp;
                }
                Err(e) => {
                    // Not recorded as seen: retried on the next handshake.
                    tracing::warn!(error = %e, "TLS CA file changed but cannot be loaded; keeping the previous CA bundle");
                }
            }
        }
        (state.roots.clone(), state.verifier.clone())
    }
}

fn read_roots(path: &Path) -> Result<(Arc<RootCertStore>, Arc<dyn ClientCertVerifier>), TlsError> {
    let roots = Arc::new(super::load_roots(path)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), super::provider())
        .build()
        .map_err(|e| TlsError::Config(format!("{}: {e}", path.display())))?;
    Ok((roots, verifier))
}

/// The mandatory client-certificate verification of a mesh server: rustls' WebPKI verifier
/// over the current [`ReloadingRoots`] (rebuilt when the CA file changes). It sends no CA
/// names in its certificate request (a workload has one certificate to present).
#[derive(Debug)]
pub struct ReloadingClientVerifier(pub Arc<ReloadingRoots>);

impl ClientCertVerifier for ReloadingClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .current()
            .1
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &super::provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &super::provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        super::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads and checks one certificate chain and key.
fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem = read("certificate", cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let pem = read("private key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        reason: format!("no usable PRIVATE KEY block: {e}"),
    })?;
    let pair = CertifiedKey::from_der(chain, key_der, &super::provider())
        .map_err(|e| TlsError::Config(format!("{} with {}: {e}", cert.display(), key.display())))?;
    Ok(pair)
}
