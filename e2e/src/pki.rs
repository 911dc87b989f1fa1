//! Credentials for a throwaway cluster, made with the `openssl` command line tool: a CA, the
//! apiserver's serving certificate (for 127.0.0.1 and localhost), the service-account signing
//! key, a static admin bearer token (group `system:masters`), and the admin kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The static bearer token of the admin user (a throwaway cluster on loopback only).
pub const ADMIN_TOKEN: &str = "hubpack-e2e-admin-token";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("could not run openssl (install it, e.g. `apt-get install -y openssl`): {0}")]
    Spawn(std::io::Error),
    #[error("openssl {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("state dir path is not UTF-8: {0}")]
    NonUtf8Path(PathBuf),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Paths of the generated credential files.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub sa_key: PathBuf,
    pub tokens: PathBuf,
}

impl Pki {
    /// The file layout under `dir` (nothing is generated).
    pub fn at(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("apiserver.crt"),
            server_key: dir.join("apiserver.key"),
            sa_key: dir.join("sa.key"),
            tokens: dir.join("tokens.csv"),
        }
    }

    /// Generates every file under `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Pki, PkiError> {
        let pki = Pki::at(dir);
        write(dir, &dir.join(".keep"), "")?;
        let ca_key = dir.join("ca.key");
        let csr = dir.join("apiserver.csr");
        let ext = dir.join("san.ext");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=hubpack-e2e-ca",
            "-keyout",
            s(&ca_key)?,
            "-out",
            s(&pki.ca_cert)?,
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kube-apiserver",
            "-keyout",
            s(&pki.server_key)?,
            "-out",
            s(&csr)?,
        ])?;
        write(
            dir,
            &ext,
            "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n\
             extendedKeyUsage=serverAuth\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-days",
            "3650",
            "-in",
            s(&csr)?,
            "-CA",
            s(&pki.ca_cert)?,
            "-CAkey",
            s(&ca_key)?,
            "-CAcreateserial",
            "-extfile",
            s(&ext)?,
            "-out",
            s(&pki.server_cert)?,
        ])?;
        openssl(&["genrsa", "-out", s(&pki.sa_key)?, "2048"])?;
        write(
            dir,
            &pki.tokens,
            &format!("{ADMIN_TOKEN},admin,admin-uid,\"system:masters\"\n"),
        )?;
        Ok(pki)
    }

    /// Writes an admin kubeconfig for the apiserver at `https://127.0.0.1:{port}`.
    pub fn write_kubeconfig(&self, path: &Path, api_port: u16) -> Result<(), PkiError> {
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: hubpack-e2e\n  cluster:\n    server: https://127.0.0.1:{api_port}\n    certificate-authority: {ca}\n\
             users:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\n\
             contexts:\n- name: hubpack-e2e\n  context:\n    cluster: hubpack-e2e\n    user: admin\n\
             current-context: hubpack-e2e\n",
            ca = self.ca_cert.display(),
        );
        write(&self.dir, path, &text)
    }
}

/// A path as an openssl argument; the harness makes its paths from a UTF-8 state dir.
fn s(path: &Path) -> Result<&str, PkiError> {
    path.to_str()
        .ok_or_else(|| PkiError::NonUtf8Path(path.to_path_buf()))
}

fn write(dir: &Path, path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(path, text))
        .map_err(|source| PkiError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn openssl(args: &[&str]) -> Result<(), PkiError> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(PkiError::Spawn)?;
    if !out.status.success() {
        return Err(PkiError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_signed_server_certificate_for_loopback() {
        let dir = std::env::temp_dir().join(format!("hubpack-pki-test-{}", std::process::id()));
        let pki = Pki::generate(&dir).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&pki.ca_cert)
            .arg(&pki.server_cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&pki.server_cert)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&text.stdout).contains("IP Address:127.0.0.1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
