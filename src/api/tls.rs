//! TLS for the API client when `[isymphony] ca_file` is set: the file's certificates are both
//! pinned server certificates and trust anchors.
//!
//! iSymphony servers usually present a self-signed certificate, typically made with
//! `openssl req -x509`, which marks it `CA:TRUE`. A standard verifier (webpki) refuses a CA
//! certificate as a server's own certificate even when it is the trust anchor, which pushed
//! administrators to `tls_verify = false`. So a certificate the server presents that is
//! byte-for-byte one of the certificates in `ca_file` is accepted as that server's identity
//! (pinning, as with an SSH host key: names and dates are not checked, since no one vouches
//! for them but the file's owner). Any other certificate must chain to a certificate in
//! `ca_file` as a CA, with the usual name and date checks. The handshake signatures are
//! always verified, so a server has to hold the private key of the certificate it presents.
//!
//! [`certificate_hint`] turns a certificate error into a message saying what to put in
//! `ca_file`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Pinned certificates first, then chains to the `ca_file` CAs.
#[derive(Debug)]
struct CaFileVerifier {
    pinned: Vec<CertificateDer<'static>>,
    /// None when no certificate in the file can serve as a trust anchor.
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CaFileVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why `[isymphony] ca_file` cannot be used; each message names the file and what it must hold.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read [isymphony] ca_file {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid [isymphony] ca_file {}: {source} (it must hold PEM certificates, -----BEGIN CERTIFICATE----- blocks)", path.display())]
    Pem {
        path: std::path::PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("[isymphony] ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE----- block)", path.display())]
    Empty { path: std::path::PathBuf },
    #[error("[isymphony] ca_file {}: {source}", path.display())]
    Anchors {
        path: std::path::PathBuf,
        source: rustls::client::VerifierBuilderError,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
}

/// A rustls client configuration trusting the certificates of `ca_file` (PEM) as described in
/// the module docs. Errors name the file and say what it must hold.
pub fn ca_file_config(ca_file: &Path) -> Result<rustls::ClientConfig, CaFileError> {
    let file = || ca_file.to_path_buf();
    let pem = std::fs::read(ca_file).map_err(|source| CaFileError::Read {
        path: file(),
        source,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|source| CaFileError::Pem {
            path: file(),
            source,
        })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty { path: file() });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    // Certificates webpki cannot use as anchors are still pinned.
    let (_added, _skipped) = roots.add_parsable_certificates(certs.iter().cloned());
    let chain = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|source| CaFileError::Anchors {
                    path: file(),
                    source,
                })?,
        )
    };
    let verifier = CaFileVerifier {
        pinned: certs,
        chain,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(CaFileError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

/// The rustls error somewhere in an error's source chain. It hides inside `io::Error`s
/// (nested ones, too), whose `source()` skips the error they wrap, so those are opened.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(r) = rustls_error(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// For a request that failed because the server's certificate was refused: what is wrong and
/// what to put in `ca_file` (with the commands that fetch the certificate). `None` for every
/// other error.
pub fn certificate_hint(
    e: &(dyn std::error::Error + 'static),
    base: &reqwest::Url,
    ca_file: Option<&Path>,
) -> Option<String> {
    let rustls::Error::InvalidCertificate(why) = rustls_error(e)? else {
        return None;
    };
    let host = base.host_str().unwrap_or("HOST");
    let port = base.port_or_known_default().unwrap_or(443);
    let fetch = format!(
        "openssl s_client -connect {host}:{port} -servername {host} </dev/null 2>/dev/null \
         | openssl x509 > /etc/isymphony-sync/isymphony.pem"
    );
    let hint = match ca_file {
        None => format!(
            "the server's TLS certificate is not trusted ({why}). If iSymphony uses its own \
             (self-signed) certificate, save that certificate, or the CA certificate that \
             signed it, as a PEM file and name it in [isymphony] ca_file; to fetch it: {fetch} \
             (compare `openssl x509 -noout -fingerprint -sha256 -in FILE` with the server's). \
             tls_verify = false is not needed"
        ),
        Some(f) => format!(
            "the server's TLS certificate is neither in [isymphony] ca_file {} nor signed by a \
             CA certificate in it ({why}). Put the certificate the server presents now (or the \
             CA that signed it) into that file; to fetch it: {fetch} (compare \
             `openssl x509 -noout -fingerprint -sha256 -in FILE` with the server's)",
            f.display()
        ),
    };
    Some(hint)
}
