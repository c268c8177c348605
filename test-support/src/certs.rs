//! Throwaway TLS certificates made by the test that uses them: a CA, and a server
//! certificate it signed for `127.0.0.1` and `localhost`, written as PEM files in a
//! fresh temporary directory (removed on drop). Nothing here is ever committed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a server certificate signed by it, as PEM files.
pub struct TestCerts {
    dir: PathBuf,
    /// The CA certificate (what a client is told to trust).
    pub ca: PathBuf,
    /// The server's certificate (for `127.0.0.1` and `localhost`).
    pub cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub key: PathBuf,
}

impl TestCerts {
    /// A fresh CA and server certificate, written under the system temp directory.
    pub fn new() -> std::io::Result<TestCerts> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "heartbeat-certs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let (ca_pem, cert_pem, key_pem) = generate().map_err(std::io::Error::other)?;
        let write = |name: &str, pem: &str| -> std::io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        Ok(TestCerts {
            ca: write("ca.pem", &ca_pem)?,
            cert: write("cert.pem", &cert_pem)?,
            key: write("key.pem", &key_pem)?,
            dir,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (CA PEM, server certificate PEM, server key PEM).
fn generate() -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "heartbeat throwaway test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_are_pem_and_vanish_on_drop() {
        let certs = TestCerts::new().unwrap();
        for f in [&certs.ca, &certs.cert] {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
        }
        let key = std::fs::read_to_string(&certs.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let dir = certs.dir().to_owned();
        drop(certs);
        assert!(!dir.exists());
    }
}
