//! TLS for tests: a throwaway CA with a server and a client certificate (made with the `openssl` command-line tool,
//! test-only), and a TLS listener for axum built on rustls, so the agent's HTTPS link is tested with a CA file and a
//! client certificate against a server that requires one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// PEM files of a test PKI in a directory.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running `openssl` (needed to make test certificates; apt-get install openssl)")?;
    if !output.status.success() {
        bail!("openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// Makes a CA, a server certificate for `localhost`/127.0.0.1 and a client certificate, all signed by the CA.
///
/// # Errors
/// When `openssl` is missing or fails.
pub fn make_pki(dir: &Path) -> anyhow::Result<TestPki> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &ca)?;
    for (name, usage, san) in
        [("server", "serverAuth", "DNS:localhost,IP:127.0.0.1"), ("client", "clientAuth", "DNS:test-agent")]
    {
        let mut req = vec!["req"];
        req.extend(ec);
        let (key, csr, pem, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=test"]);
        openssl(dir, &req)?;
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"),
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        )?;
    }
    Ok(TestPki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    })
}

/// A rustls server configuration presenting the PKI's server certificate and requiring a client certificate signed
/// by its CA.
///
/// # Errors
/// When the PEM files do not parse.
pub fn server_config(pki: &TestPki) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs =
        rustls_pemfile::certs(&mut std::fs::read(&pki.server_cert)?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(&pki.server_key)?.as_slice())?.context("server key")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut std::fs::read(&pki.ca)?.as_slice()) {
        roots.add(ca?)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?)
}

/// A rustls server configuration presenting the PKI's server certificate, without client certificates (a device's
/// web server).
///
/// # Errors
/// When the PEM files do not parse.
pub fn server_config_without_client_auth(pki: &TestPki) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs =
        rustls_pemfile::certs(&mut std::fs::read(&pki.server_cert)?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(&pki.server_key)?.as_slice())?.context("server key")?;
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// A listener for `axum::serve` that completes a TLS handshake on every connection; failed handshakes are dropped.
pub struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> Self {
        Self { listener, acceptor: TlsAcceptor::from(Arc::new(config)) }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else { continue };
            match self.acceptor.accept(stream).await {
                Ok(tls) => return (tls, addr),
                Err(e) => tracing::debug!(error = %e, "TLS handshake refused"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}
