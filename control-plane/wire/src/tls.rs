//! TLS with rustls and the ring crypto provider: which certificate authorities a client trusts
//! ([`Trust`]: a CA file, else the operating system's store), a server's certificate and key
//! ([`ServerTls`], feature `server`), and a throwaway CA with a `localhost` certificate for
//! development ([`dev_certs`], feature `dev-certs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (or written).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The development certificates could not be made.
    #[cfg(feature = "dev-certs")]
    #[error("generating development certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The one crypto provider (ring), named explicitly so that nothing depends on a process-wide
/// default being installed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The certificates of a PEM file, in order.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: "holds no `BEGIN CERTIFICATE` block".into(),
        });
    }
    Ok(certs)
}

/// A hyper connector for `http://` and `https://` URLs ([`Trust::connector`]).
pub type Connector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Which certificate authorities a client trusts for `https://` URLs (plain `http://` URLs need
/// none). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Trust(Arc<rustls::ClientConfig>);

impl Trust {
    /// Only the CA certificates in the PEM file at `path`.
    pub fn ca_file(path: &Path) -> Result<Trust, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: path.to_owned(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
        Trust::roots(roots)
    }

    /// The operating system's trust store (with `rustls-native-certs`: `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR` if set, else the platform's store), loaded once per process. Certificates
    /// that do not load are skipped (and logged); with none, every https peer is refused as
    /// `UnknownIssuer`.
    pub fn platform() -> Trust {
        static PLATFORM: OnceLock<Trust> = OnceLock::new();
        PLATFORM
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::warn!(error = %e, "loading the platform's CA certificates");
                }
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(found.certs);
                if ignored > 0 || added == 0 {
                    tracing::warn!(added, ignored, "platform CA certificates");
                }
                Trust::roots(roots).expect("the ring provider supports the default protocols")
            })
            .clone()
    }

    /// The CA file if given, else the platform's store.
    pub fn ca_file_or_platform(path: Option<&Path>) -> Result<Trust, TlsError> {
        match path {
            Some(path) => Trust::ca_file(path),
            None => Ok(Trust::platform()),
        }
    }

    /// What a client for `base_url` trusts by default: the platform's store for an `https://`
    /// URL; for a plain one nothing (the store is never read).
    pub fn for_url(base_url: &str) -> Trust {
        if base_url.starts_with("https://") {
            Trust::platform()
        } else {
            static NONE: OnceLock<Trust> = OnceLock::new();
            NONE.get_or_init(|| {
                Trust::roots(rustls::RootCertStore::empty())
                    .expect("the ring provider supports the default protocols")
            })
            .clone()
        }
    }

    fn roots(roots: rustls::RootCertStore) -> Result<Trust, TlsError> {
        // ALPN (http/1.1) is set by the connector.
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust(Arc::new(config)))
    }

    /// A hyper connector for `http://` and `https://` URLs with this trust (TCP_NODELAY, the
    /// given connect timeout).
    pub fn connector(&self, connect_timeout: std::time::Duration) -> Connector {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        // hyper-rustls refuses `https://` URLs unless the inner connector lets them through.
        http.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.0).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    }
}

/// A server's certificate chain and private key, ready for the accept loop. Cheap to clone.
#[cfg(feature = "server")]
#[derive(Clone, Debug)]
pub struct ServerTls(pub(crate) Arc<rustls::ServerConfig>);

#[cfg(feature = "server")]
impl ServerTls {
    /// From PEM files: `cert` holds the chain (leaf first), `key` the private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let chain = certificates(cert)?;
        let key_pem = read(key)?;
        let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            TlsError::Pem {
                path: key.to_owned(),
                message: format!("holds no usable private key: {e}"),
            }
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls(Arc::new(config)))
    }
}

/// Where [`dev_certs`] put its files.
#[cfg(feature = "dev-certs")]
#[derive(Clone, Debug)]
pub struct DevCerts {
    /// The CA certificate (PEM): what clients trust (`curl --cacert`, `--ca-file`).
    pub ca: PathBuf,
    /// The server's certificate chain (PEM): the leaf for `localhost` and `127.0.0.1`.
    pub cert: PathBuf,
    /// The leaf's private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// A throwaway CA and a leaf certificate for `localhost`, `127.0.0.1` and `::1` in `dir`
/// (`ca.pem`, `cert.pem`, `key.pem`; the key files are mode 0600). Files already there are
/// kept, so a CA a developer chose to trust stays valid across runs. The CA's key is not kept:
/// when any file is missing, all are made anew.
#[cfg(feature = "dev-certs")]
pub fn dev_certs(dir: &Path) -> Result<DevCerts, TlsError> {
    let certs = DevCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if certs.ca.is_file() && certs.cert.is_file() && certs.key.is_file() {
        return Ok(certs);
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Latchkey dev CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;

    let mut leaf_params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;

    write_private(&certs.key, leaf_key.serialize_pem().as_bytes())?;
    std::fs::write(&certs.cert, leaf.pem()).map_err(io(&certs.cert))?;
    std::fs::write(&certs.ca, ca.pem()).map_err(io(&certs.ca))?;
    Ok(certs)
}

/// Writes `bytes` to a file only its owner can read (created with mode 0600 on Unix).
#[cfg(feature = "dev-certs")]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
