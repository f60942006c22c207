//! The plugin's own TLS (src/https.rs, not kube's rustls-tls feature) against an API server
//! that speaks HTTPS and requires a client certificate, as kubeadm's do: the kubeconfig's CA
//! and client certificate work; another CA, a missing certificate and a certificate for
//! another name each fail with one line; `insecure-skip-tls-verify` and `tls-server-name` do
//! what kubectl does with them.
mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::FakeApi;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::WebPkiClientVerifier,
};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca");
        Ca { cert, key }
    }

    /// A certificate for `names` signed by this CA: (cert PEM, key PEM).
    fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A server whose certificate names `names` (signed by `server_ca`) and which requires client
/// certificates signed by `client_ca`.
fn server_config(server_ca: &Ca, names: &[&str], client_ca: &Ca) -> ServerConfig {
    let (cert, key) = server_ca.issue(names);
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(client_ca.cert.der().to_vec()))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("chain"),
            PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
        )
        .expect("server config")
}

/// The fake API's kubeconfig with its cluster and user replaced.
fn kubeconfig(api: &FakeApi, cluster: &str, user: &str) -> std::path::PathBuf {
    let path = api.kubeconfig.with_file_name("kubeconfig-tls");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://{addr}\n{cluster}\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: alice\n    namespace: prod\n\
         current-context: fake\nusers:\n- name: alice\n  user:\n{user}",
        addr = api.addr,
    );
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

/// `cleanup` (one list call) with that kubeconfig: (exit code, stdout, stderr).
fn cleanup(kubeconfig: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["cleanup", "-n", "prod"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("plugin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_kubeconfigs_ca_and_client_certificate_reach_an_https_api_server() {
    let ca = Ca::new("cluster-ca");
    let api = FakeApi::start_tls(
        vec![],
        server_config(&ca, &["127.0.0.1", "kubernetes"], &ca),
    );
    let (client_cert, client_key) = ca.issue(&["alice"]);
    let ca_data = format!("    certificate-authority-data: {}\n", b64(&ca.cert.pem()));
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&client_cert),
        b64(&client_key)
    );

    let (code, out, err) = cleanup(&kubeconfig(&api, &ca_data, &user));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tracer pod(s) deleted"), "{out}");
    assert!(
        api.calls()
            .iter()
            .any(|c| c.contains("/api/v1/namespaces/prod/pods")),
        "{:?}",
        api.calls()
    );

    // The certificate names "kubernetes", not the address: tls-server-name says which to check.
    let named = format!("{ca_data}    tls-server-name: kubernetes\n");
    let (code, _, err) = cleanup(&kubeconfig(&api, &named, &user));
    assert_eq!(code, 0, "{err}");

    // insecure-skip-tls-verify: no CA needed.
    let (code, _, err) = cleanup(&kubeconfig(
        &api,
        "    insecure-skip-tls-verify: true\n",
        &user,
    ));
    assert_eq!(code, 0, "{err}");

    // Each refusal is one line that names the cause.
    let other = Ca::new("someone-else");
    let other_ca = format!(
        "    certificate-authority-data: {}\n",
        b64(&other.cert.pem())
    );
    let (code, _, err) = cleanup(&kubeconfig(&api, &other_ca, &user));
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("certificate is not trusted") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert_eq!(code, 4, "{err}");

    let wrong_name = format!("{ca_data}    tls-server-name: elsewhere\n");
    let (code, _, err) = cleanup(&kubeconfig(&api, &wrong_name, &user));
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    let (code, _, err) = cleanup(&kubeconfig(&api, &ca_data, "    token: t0k3n\n"));
    assert_ne!(code, 0, "the server requires a client certificate");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, _, err) = cleanup(&kubeconfig(
        &api,
        &ca_data,
        &format!("    client-certificate-data: {}\n", b64(&client_cert)),
    ));
    assert_ne!(code, 0);
    assert!(err.contains("client-key"), "{err}");
}
