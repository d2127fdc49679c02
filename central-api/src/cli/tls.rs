//! `central-api tls init --name HOST [--name HOST2 ...] [--dir DIR]`: a small private CA and a server certificate
//! signed by it, for HTTPS between agents and central without a public CA.
//!
//! Why a CA and not one self-signed certificate: rustls (the agent's TLS) refuses a certificate that is its own CA as
//! the server's (`CaUsedAsEndEntity`), which is what `openssl req -x509` makes. So: `ca.pem` (CA:true, keyCertSign,
//! 10 years, never leaves as a key), `server.pem` (the server certificate, names from `--name`, IP addresses as IP
//! SANs, serverAuth, 5 years, followed by the CA so an agent that pins the CA's fingerprint receives it), and their
//! keys `ca.key` and `server.key` written with mode 0600. Existing files are never overwritten.
//!
//! It prints the `[tls]` lines for central's configuration, the CA file to copy to agents (`central.ca_file`) and the
//! CA's SHA-256 fingerprint (`central.ca_fingerprint`, the alternative that needs no file).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

/// `tls init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// A host name or IP address agents use to reach central (repeat for several).
    #[arg(long = "name", required = true)]
    pub names: Vec<String>,
    /// Where to write the files; default `<data_dir>/tls`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The files written and the CA's fingerprint.
#[derive(Debug)]
pub struct Made {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// SHA-256 of the CA certificate's DER, upper-case hex pairs joined by colons.
    pub ca_fingerprint: String,
}

/// Makes the CA and the server certificate in `dir`.
///
/// # Errors
/// A name that is not a DNS name or IP address, a file that already exists, or the file system.
pub fn init(names: &[String], dir: &Path) -> anyhow::Result<Made> {
    for name in names {
        if name.trim().is_empty() || name.len() > 253 {
            bail!("--name {name:?} is not a host name or IP address");
        }
    }
    let year = chrono::Utc::now().year();
    let month = u8::try_from(chrono::Utc::now().month()).unwrap_or(1);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, format!("attendance central CA ({})", names[0]));
    ca_params.distinguished_name = ca_name;
    ca_params.not_before = rcgen::date_time_ymd(year - 1, month, 1);
    ca_params.not_after = rcgen::date_time_ymd(year + 10, month, 1);
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA certificate")?;

    let mut params = CertificateParams::new(names.to_vec())
        .with_context(|| format!("--name {names:?}: each must be a DNS name or an IP address"))?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, names[0].clone());
    params.distinguished_name = name;
    params.not_before = rcgen::date_time_ymd(year - 1, month, 1);
    params.not_after = rcgen::date_time_ymd(year + 5, month, 1);
    let key = KeyPair::generate().context("generating the server key")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let made = Made {
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
        ca_fingerprint: fingerprint(ca_cert.der()),
    };
    let ca_key_file = dir.join("ca.key");
    for path in [&made.ca_file, &made.cert_file, &made.key_file, &ca_key_file] {
        if path.exists() {
            bail!("{} already exists; remove the old files or choose another --dir", path.display());
        }
    }
    write(&made.ca_file, ca_cert.pem().as_bytes(), 0o644)?;
    write(&ca_key_file, issuer.key().serialize_pem().as_bytes(), 0o600)?;
    write(&made.cert_file, format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(), 0o644)?;
    write(&made.key_file, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(made)
}

/// SHA-256 of DER bytes as upper-case hex pairs joined by colons (what `openssl x509 -fingerprint -sha256` shows).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("writing {}", path.display()))
}

/// Runs `tls init` and prints what to configure.
///
/// # Errors
/// As [`init`].
pub fn run(args: &InitArgs, data_dir: &Path) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| data_dir.join("tls"));
    let made = init(&args.names, &dir)?;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    println!("# central-api configuration (central-api.toml):");
    println!("[tls]");
    println!("cert_file = {:?}", absolute(&made.cert_file).display().to_string());
    println!("key_file = {:?}", absolute(&made.key_file).display().to_string());
    println!();
    println!("# each agent (edge-agent.toml, [central]): copy the CA file and set");
    println!("ca_file = {:?}", absolute(&made.ca_file).display().to_string());
    println!("# or, without copying a file, pin the CA by its SHA-256 fingerprint:");
    println!("ca_fingerprint = \"{}\"", made.ca_fingerprint);
    eprintln!(
        "made a CA and a certificate for {} in {}; keys are mode 0600 (ca.key is only needed to make another \
         certificate: keep it offline)",
        args.names.join(", "),
        dir.display()
    );
    Ok(())
}
