//! The connection to the API server: kube's `Client` over a rustls connector built here
//! instead of kube's `rustls-tls` feature. That feature brings rustls-platform-verifier and the
//! native root store, which link Security.framework and CoreFoundation on macOS, so the
//! plugin could not be built for macOS without Apple's SDK (docs/deploy.md).
//!
//! Trust is what kubectl uses: the kubeconfig's `certificate-authority(-data)` where it names
//! one, else public roots (webpki-roots, Mozilla's list: EKS, GKE and AKS endpoints);
//! `insecure-skip-tls-verify` and `tls-server-name` are honoured. Client certificates come
//! from the kubeconfig; tokens, token files and exec plugins that return a token go through
//! kube's own auth layer, which needs no TLS feature.
use std::sync::Arc;

use base64::Engine as _;
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use kube::{Client, Config, client::ConfigExt as _};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject as _},
};

use crate::error::Error;

/// A kubeconfig entry (`what`) that cannot be used, and why.
fn bad(what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Kubeconfig(format!("{what}: {e}"))
}

/// A client for `config`'s cluster.
pub fn client(config: Config) -> Result<Client, Error> {
    let tls = tls_config(&config)?;
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = ServerName::try_from(name.clone()).map_err(|e| bad("tls-server-name", &e))?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let mut connector =
        hyper_timeout::TimeoutConnector::new(builder.enable_http1().wrap_connector(http));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, kube::client::Body>(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(|e| bad("credentials", &e))?)
        .layer(
            config
                .extra_headers_layer()
                .map_err(|e| bad("headers", &e))?,
        )
        // The auth layer's errors are boxed; both arms of `option_layer` must agree.
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(Client::new(service, config.default_namespace))
}

/// rustls's configuration for `config`: its roots, its client certificate, its verification.
pub fn tls_config(config: &Config) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &config.root_cert {
        Some(certs) => {
            for der in certs {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| bad("certificate-authority", &e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_root_certificates(roots);
    let mut tls = match identity(config)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("client-certificate", &e))?,
        None => builder.with_no_client_auth(),
    };
    if config.accept_invalid_certs {
        tls.dangerous()
            .set_certificate_verifier(Arc::new(AcceptAny(provider)));
    }
    Ok(tls)
}

/// The kubeconfig's client certificate chain and key (inline base64 or files), if it has one.
fn identity(
    config: &Config,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, Error> {
    use secrecy::ExposeSecret as _;
    let auth = &config.auth_info;
    let cert = load(
        "client-certificate",
        auth.client_certificate_data.as_deref(),
        auth.client_certificate.as_deref(),
    )?;
    let key = load(
        "client-key",
        auth.client_key_data.as_ref().map(|k| k.expose_secret()),
        auth.client_key.as_deref(),
    )?;
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(Error::Kubeconfig(
                "the user has a client-certificate but no client-key".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Kubeconfig(
                "the user has a client-key but no client-certificate".into(),
            ));
        }
    };
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Kubeconfig(format!("client-certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| Error::Kubeconfig(format!("client-key: {e}")))?;
    Ok(Some((chain, key)))
}

/// Inline base64 data, else the file's contents; `None` if neither is set.
fn load(what: &str, data: Option<&str>, file: Option<&str>) -> Result<Option<Vec<u8>>, Error> {
    if let Some(data) = data {
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| Error::Kubeconfig(format!("{what}-data is not base64: {e}")));
    }
    file.map(|path| {
        std::fs::read(path).map_err(|e| Error::Kubeconfig(format!("{what} {path}: {e}")))
    })
    .transpose()
}

/// `insecure-skip-tls-verify: true`: any server certificate, as kubectl then accepts.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
