//! TLS for a node's API port: its own certificate (`--tls-cert`,
//! `--tls-key`, PEM) or a self-signed one made on first start and kept in
//! `<data-dir>/tls/`. An enclave binds the certificate's SHA-256 in its
//! attestation and registers the certificate, so a client that pins it
//! (OpenGradient's SDK does) talks to the attested enclave only.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
};

/// The certificate a node serves (DER) and the server configuration.
pub struct NodeTls {
    /// The leaf certificate, DER: what an enclave attests and registers.
    pub certificate: Vec<u8>,
    /// For the API server.
    pub config: Arc<rustls::ServerConfig>,
}

/// Loads `cert` and `key` (PEM), or the self-signed pair under `dir`
/// (made for `hosts` if missing).
pub fn load(dir: &Path, files: Option<(&Path, &Path)>, hosts: &[String]) -> Result<NodeTls> {
    let (chain, key) = match files {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{}: not PEM certificates", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{}: not a PEM private key", key.display()))?;
            (chain, key)
        }
        None => self_signed(dir, hosts)?,
    };
    let leaf = chain
        .first()
        .context("the certificate file holds no certificate")?
        .to_vec();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the TLS certificate and key do not match")?;
    Ok(NodeTls {
        certificate: leaf,
        config: Arc::new(config),
    })
}

fn self_signed(
    dir: &Path,
    hosts: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert_path, key_path) = (dir.join("cert.der"), dir.join("key.der"));
    if !cert_path.exists() || !key_path.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let made = rcgen::generate_simple_self_signed(hosts.to_vec())
            .context("making a self-signed TLS certificate")?;
        // the key first: a certificate without its key is useless
        write_private(&key_path, made.key_pair.serialize_der().as_slice())?;
        std::fs::write(&cert_path, made.cert.der().as_ref())
            .with_context(|| format!("writing {}", cert_path.display()))?;
        tracing::info!(cert = %cert_path.display(), "made a self-signed TLS certificate");
    }
    let cert =
        std::fs::read(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
    let key =
        std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    Ok((
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::try_from(key).map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?,
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
