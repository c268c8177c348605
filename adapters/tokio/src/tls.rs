//! TLS for `wss://` with rustls (features `rustls-native-roots` and/or
//! `rustls-webpki-roots`): which certificates a client trusts, and a server's
//! certificate.
//!
//! Why rustls with the *ring* provider: no system OpenSSL to match at build or run
//! time, and no cmake/NASM build step as aws-lc-rs needs; tokio-tungstenite drives
//! it through its own rustls integration. Roots come from the operating system's
//! store (`rustls-native-roots`, what curl and browsers trust) or from Mozilla's
//! list compiled into the binary (`rustls-webpki-roots`, for containers without a
//! CA store); with both features, both are trusted.

use core::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why a TLS configuration could not be built; the text names the file or item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// What a `wss://` client trusts: built once, shared by every reconnect of a
/// [`ConnectRequest`](crate::ConnectRequest) (see [`ConnectRequest::tls`](crate::ConnectRequest::tls)).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    /// Whether certificates are checked at all (false after [`insecure`](Self::insecure)).
    verified: bool,
}

impl TlsConfig {
    /// Trusts the roots this build was compiled for (see the module docs).
    pub fn new() -> TlsConfig {
        Self::with_roots(default_roots())
    }

    /// Trusts the default roots plus every certificate in the PEM file at `path`
    /// (a private CA, a self-signed server).
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<TlsConfig, TlsError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| TlsError(format!("cannot read CA file {}: {e}", path.display())))?;
        Self::with_ca_pem(&pem).map_err(|e| TlsError(format!("{}: {e}", path.display())))
    }

    /// Trusts the default roots plus every certificate in `pem`.
    pub fn with_ca_pem(pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let mut roots = default_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError(format!("not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TlsError(format!("unusable CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError("no PEM certificate found".into()));
        }
        Ok(Self::with_roots(roots))
    }

    /// Accepts any certificate, verifying only that the handshake is signed by the
    /// key it presents. Encrypts but authenticates nothing: for a test server or a
    /// first look at a self-signed endpoint, never for production.
    pub fn insecure() -> TlsConfig {
        let verifier = Arc::new(AcceptAny(provider()));
        let config = client_builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        TlsConfig {
            config: Arc::new(config),
            verified: false,
        }
    }

    /// Uses a rustls configuration built elsewhere (client certificates, pinned
    /// keys, another crypto provider).
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            config,
            verified: true,
        }
    }

    /// Whether server certificates are verified (false only for [`insecure`](Self::insecure)).
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The rustls configuration.
    pub fn into_rustls(self) -> Arc<ClientConfig> {
        self.config
    }

    fn with_roots(roots: RootCertStore) -> TlsConfig {
        let config = client_builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConfig {
            config: Arc::new(config),
            verified: true,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig::new()
    }
}

/// A `wss://` server's certificate chain and key, ready to accept TLS.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// Loads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTls, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError(format!("cannot read {}: {e}", p.display())))
        };
        Self::from_pem(&read(cert)?, &read(key)?)
    }

    /// [`from_pem_files`](Self::from_pem_files) from bytes.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError(format!("certificate: not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError("certificate: no PEM certificate found".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError(format!("private key: {e}")))?;
        let config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(format!("certificate and key: {e}")))?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The TLS handshake on an accepted socket (sets `TCP_NODELAY` first). Bound it
    /// with a timeout: a client that connects and says nothing holds it open.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        crate::net::set_nodelay(&stream)?;
        self.acceptor.accept(stream).await
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

/// The peer address of a TLS stream over TCP, for logs.
pub fn peer_addr(stream: &TlsStream<TcpStream>) -> Option<SocketAddr> {
    stream.get_ref().0.peer_addr().ok()
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    #[allow(clippy::expect_used)]
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        // Invariant: ring's provider supports the safe defaults, TLS 1.2 and 1.3.
        .expect("ring supports the default TLS versions")
}

/// The roots of the enabled features: the OS store and/or Mozilla's list.
fn default_roots() -> RootCertStore {
    #[allow(unused_mut)]
    let mut roots = RootCertStore::empty();
    #[cfg(feature = "rustls-native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "while loading the system's CA certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system CA certificates");
    }
    #[cfg(feature = "rustls-webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// The verifier behind [`TlsConfig::insecure`]: any certificate, but a handshake
/// signature that is really made by that certificate's key.
#[derive(Debug)]
struct AcceptAny(CryptoProvider);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
