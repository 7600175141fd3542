//! Transport security: TLS with rustls (ring provider) and mTLS between the mesh's workloads,
//! whose identities are SPIFFE IDs ([`SpiffeId`]) in their X.509 certificates' URI SAN
//! (X.509-SVID: exactly one URI SAN).
//!
//! - [`MeshTls`]: one workload's view of the mesh — the mesh CA (trust anchors), its own
//!   certificate chain and key (PEM files, re-read when they change, no restart), and the
//!   trust domain (the one of its own SPIFFE ID).
//!   - [`MeshTls::server_config`]: an agent server's rustls config; every client must present
//!     a certificate chaining to the mesh CA (`WebPkiClientVerifier`) whose single URI SAN is
//!     a SPIFFE ID of the mesh's trust domain; plain text and other CAs are refused.
//!   - [`MeshTls::client`]: a client's [`ClientTls`]; it presents the workload's certificate and
//!     verifies the server **by SPIFFE ID, not by DNS name**: the chain must lead to the mesh
//!     CA and the leaf's single URI SAN must be a SPIFFE ID of the trust domain. The host name
//!     or IP address dialed is not compared with the certificate (addresses come from the
//!     registry, which the mesh configures; the SPIFFE ID is the identity), so the same
//!     certificate works behind any address, DNS name or Kubernetes Service.
//! - [`edge_server_config`]: the gateway's public HTTPS edge (no client certificates), also
//!   reloaded when its files change.
//! - [`dev`]: the development CA and certificates `switchyard up` creates (rcgen, ECDSA P-256).
//! - [`default_client`]: the process-wide client identity read once from
//!   `SWITCHYARD_TLS_CA`, `SWITCHYARD_TLS_CERT` and `SWITCHYARD_TLS_KEY` (all three, or none:
//!   plain text), used by [`Client`](crate::Client) and registries that were not given one.
//!
//! Certificate rotation: the certificate and key files are checked (modification time, size
//! and inode) on every handshake and re-read when they changed; a pair that does not parse or
//! whose key does not match the certificate is logged and the previous pair kept, so a
//! half-written rotation never stops the server. The CA file (trust bundle) is checked and
//! re-read the same way ([`ReloadingRoots`]): to rotate the CA, first distribute a bundle with
//! the old and the new CA, then the certificates of the new CA, then the new CA alone. A
//! connection (or a resumed TLS session) made before a change keeps its session.

pub mod dev;
mod reload;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use rustls::{
    DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _},
    server::ParsedCertificate,
};

use crate::identity::{PeerIdentity, SpiffeId};

pub use reload::{ReloadingCert, ReloadingClientVerifier, ReloadingRoots};

/// Environment variable naming the mesh CA's PEM file (the trust anchors).
pub const ENV_CA: &str = "SWITCHYARD_TLS_CA";
/// Environment variable naming this workload's certificate chain PEM file (leaf first).
pub const ENV_CERT: &str = "SWITCHYARD_TLS_CERT";
/// Environment variable naming this workload's private key PEM file (PKCS#8, SEC1 or PKCS#1).
pub const ENV_KEY: &str = "SWITCHYARD_TLS_KEY";

/// ALPN protocols offered and accepted: HTTP/2 first, then HTTP/1.1.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why TLS material could not be loaded or a peer's certificate is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file should hold (`CA certificate`, `certificate`, `private key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. `no CERTIFICATE block`.
        reason: String,
    },
    /// A certificate carries no acceptable SPIFFE ID.
    #[error("certificate has no valid SPIFFE ID: {0}")]
    Spiffe(String),
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// Only some of the `SWITCHYARD_TLS_*` variables are set.
    #[error("set all of {ENV_CA}, {ENV_CERT} and {ENV_KEY}, or none of them (missing: {0})")]
    PartialEnv(String),
}

/// The ring crypto provider every TLS config here uses (STACK.md).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Where one workload's TLS material lives: PEM files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    /// The mesh CA certificate(s): the trust anchors peers are verified against.
    pub ca: PathBuf,
    /// This workload's certificate chain, leaf first.
    pub cert: PathBuf,
    /// This workload's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files named by [`ENV_CA`], [`ENV_CERT`] and [`ENV_KEY`]; `None` when none is set.
    ///
    /// # Errors
    /// [`TlsError::PartialEnv`] when only some are set.
    pub fn from_env() -> Result<Option<Self>, TlsError> {
        let get = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match (get(ENV_CA), get(ENV_CERT), get(ENV_KEY)) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => Ok(Some(Self { ca, cert, key })),
            (ca, cert, key) => {
                let missing: Vec<_> = [(ENV_CA, ca.is_none()), (ENV_CERT, cert.is_none())]
                    .into_iter()
                    .chain([(ENV_KEY, key.is_none())])
                    .filter(|(_, m)| *m)
                    .map(|(k, _)| k)
                    .collect();
                Err(TlsError::PartialEnv(missing.join(", ")))
            }
        }
    }
}

/// One workload's mTLS material: the mesh CA, its own reloading certificate and its SPIFFE
/// ID. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MeshTls {
    roots: Arc<ReloadingRoots>,
    cert: Arc<ReloadingCert>,
    id: SpiffeId,
    files: TlsFiles,
}

impl MeshTls {
    /// Loads `files`: the CA, the certificate chain and the key, which must match; the
    /// certificate's single URI SAN must be a SPIFFE ID (its trust domain is the mesh's).
    ///
    /// # Errors
    /// [`TlsError`] naming the file and what is wrong with it.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let roots = Arc::new(ReloadingRoots::load(&files.ca)?);
        let cert = Arc::new(ReloadingCert::load(&files.cert, &files.key)?);
        let id = spiffe_id_of(&cert.current().cert[0])?;
        Ok(Self {
            roots,
            cert,
            id,
            files: files.clone(),
        })
    }

    /// [`load`](Self::load) of the files named by the `SWITCHYARD_TLS_*` variables; `None`
    /// when none is set.
    ///
    /// # Errors
    /// As [`TlsFiles::from_env`] and [`load`](Self::load).
    pub fn from_env() -> Result<Option<Self>, TlsError> {
        TlsFiles::from_env()?.map(|f| Self::load(&f)).transpose()
    }

    /// This workload's SPIFFE ID (from its certificate at load).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The mesh's trust domain: the one of [`spiffe_id`](Self::spiffe_id).
    pub fn trust_domain(&self) -> &str {
        self.id.trust_domain()
    }

    /// The files this was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The rustls config of an agent server: TLS 1.2/1.3, ALPN `h2` then `http/1.1`, the
    /// (reloading) certificate, and mandatory client certificates verified against the
    /// (reloading) mesh CA. The SPIFFE ID of the verified client is checked after the handshake
    /// ([`peer_identity`]).
    ///
    /// # Errors
    /// [`TlsError::Config`] when rustls refuses the configuration.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let verifier = Arc::new(ReloadingClientVerifier(self.roots.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.cert.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// The client side: presents this workload's (reloading) certificate and verifies
    /// servers by SPIFFE ID (see the module docs).
    ///
    /// # Errors
    /// [`TlsError::Config`] when rustls refuses the configuration.
    pub fn client(&self) -> Result<ClientTls, TlsError> {
        let verifier = Arc::new(SpiffeServerVerifier {
            roots: self.roots.clone(),
            trust_domain: self.trust_domain().to_owned(),
            provider: provider(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(self.cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ClientTls {
            config: Arc::new(config),
            id: self.id.clone(),
            ca: self.files.ca.clone(),
        })
    }
}

/// The rustls config of a public HTTPS edge (the gateway): the certificate chain and key in
/// `cert` and `key` (PEM), re-read when the files change, no client certificates, ALPN `h2`
/// then `http/1.1`.
///
/// # Errors
/// [`TlsError`] naming the file and what is wrong with it.
pub fn edge_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = Arc::new(ReloadingCert::load(cert, key)?);
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How a server listener speaks TLS.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The rustls config (from [`MeshTls::server_config`] or [`edge_server_config`]).
    pub config: Arc<rustls::ServerConfig>,
    /// `Some(trust domain)`: mTLS — every connection must present a certificate whose SPIFFE
    /// ID is in this trust domain, and requests carry its [`PeerIdentity`]. `None`: an edge
    /// without client certificates.
    pub peer_trust_domain: Option<String>,
}

impl ServerTls {
    /// The mTLS listener settings of a mesh workload.
    ///
    /// # Errors
    /// As [`MeshTls::server_config`].
    pub fn mesh(tls: &MeshTls) -> Result<Self, TlsError> {
        Ok(Self {
            config: tls.server_config()?,
            peer_trust_domain: Some(tls.trust_domain().to_owned()),
        })
    }

    /// An edge listener (no client certificates) with the certificate and key in these files.
    ///
    /// # Errors
    /// As [`edge_server_config`].
    pub fn edge(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            config: edge_server_config(cert, key)?,
            peer_trust_domain: None,
        })
    }
}

/// A client's TLS settings: the rustls config (own certificate, SPIFFE verification of the
/// server) and the workload's own SPIFFE ID. Cheap to clone; equal when they share the config.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    id: SpiffeId,
    /// The mesh CA file it trusts (the `ca` of the files it was loaded from).
    ca: PathBuf,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl ClientTls {
    /// The rustls config.
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// The SPIFFE ID this client presents.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The mesh CA file this client trusts ([`TlsFiles::ca`]).
    pub(crate) fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// Opens a TCP connection to `host:port` and completes the TLS handshake.
    ///
    /// # Errors
    /// The connection's or the handshake's I/O error (a refused certificate is
    /// `InvalidData` with rustls' reason).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        let _ = tcp.set_nodelay(true);
        // The name is not verified (SPIFFE ID instead); it is sent as SNI when it is a name.
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .unwrap_or_else(|_| ServerName::try_from("switchyard.invalid").expect("valid name"));
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
    }
}

/// The process-wide client identity: loaded once from the `SWITCHYARD_TLS_*` variables (see
/// the module docs) unless [`set_default_client`] came first. `Ok(None)`: plain text.
///
/// # Errors
/// The reason the variables' files could not be loaded (every connection then fails with it:
/// a misconfigured mesh never falls back to plain text).
pub fn default_client() -> Result<Option<ClientTls>, String> {
    default_cell()
        .get_or_init(|| {
            MeshTls::from_env()
                .and_then(|t| t.map(|t| t.client()).transpose())
                .map_err(|e| format!("mesh TLS from {ENV_CA}/{ENV_CERT}/{ENV_KEY}: {e}"))
        })
        .clone()
}

/// Sets the process-wide client identity (before the first connection; later calls and a
/// call after [`default_client`] has read the environment have no effect). Returns whether it
/// was set.
pub fn set_default_client(tls: Option<ClientTls>) -> bool {
    default_cell().set(Ok(tls)).is_ok()
}

fn default_cell() -> &'static OnceLock<Result<Option<ClientTls>, String>> {
    static CELL: OnceLock<Result<Option<ClientTls>, String>> = OnceLock::new();
    &CELL
}

/// The SPIFFE ID of a certificate: its only URI SAN, which must be a valid SPIFFE ID
/// (X.509-SVID §2).
///
/// # Errors
/// [`TlsError::Spiffe`]: not a certificate, no URI SAN, several, or not a SPIFFE ID.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, TlsError> {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| TlsError::Spiffe(format!("unparsable certificate: {e}")))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| TlsError::Spiffe(format!("bad subjectAltName: {e}")))?;
    let uris: Vec<&str> = san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [one] => SpiffeId::parse(one).map_err(|e| TlsError::Spiffe(e.to_string())),
        [] => Err(TlsError::Spiffe("no URI SAN".into())),
        more => Err(TlsError::Spiffe(format!(
            "{} URI SANs (an X.509-SVID has exactly one)",
            more.len()
        ))),
    }
}

/// The [`PeerIdentity`] of a completed server-side handshake: the SPIFFE ID of the verified
/// client certificate, which must be in `trust_domain`.
///
/// # Errors
/// [`TlsError::Spiffe`] when the client sent no certificate or its SPIFFE ID is missing,
/// invalid or of another trust domain.
pub fn peer_identity(
    conn: &rustls::ServerConnection,
    trust_domain: &str,
) -> Result<PeerIdentity, TlsError> {
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| TlsError::Spiffe("the client presented no certificate".into()))?;
    let id = spiffe_id_of(leaf)?;
    check_domain(&id, trust_domain)?;
    Ok(PeerIdentity(id))
}

fn check_domain(id: &SpiffeId, trust_domain: &str) -> Result<(), TlsError> {
    if id.trust_domain() == trust_domain {
        Ok(())
    } else {
        Err(TlsError::Spiffe(format!(
            "{id} is not in the trust domain {trust_domain}"
        )))
    }
}

/// Reads the CA certificates of `path` into a root store.
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        what: "CA certificate",
        path: path.to_owned(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(roots)
}

/// Verifies a server by SPIFFE ID: chain to the mesh CA, single URI SAN in the trust domain;
/// the dialed name is not compared (module docs).
#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: Arc<ReloadingRoots>,
    trust_domain: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots.current().0,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let id = spiffe_id_of(end_entity)
            .map_err(|e| rustls::Error::General(format!("server certificate: {e}")))?;
        check_domain(&id, &self.trust_domain)
            .map_err(|e| rustls::Error::General(format!("server certificate: {e}")))?;
        Ok(ServerCertVerified::assertion())
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
