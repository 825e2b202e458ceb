//! The daemon's ed25519 host key: loaded from its file, or created there (mode 0600) on first start.

use anyhow::{Context, Result, bail};
use russh::keys::{Algorithm, PrivateKey, ssh_key::LineEnding};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Loads the host key at `path`, creating a new one if the file does not exist.
/// Returns the key and whether it was just created.
pub fn load_or_create(path: &Path) -> Result<(PrivateKey, bool)> {
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "host key {} is readable by others (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
        let key = russh::keys::load_secret_key(path, None)
            .with_context(|| format!("cannot load host key {}", path.display()))?;
        return Ok((key, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .context("cannot generate a host key")?;
    let text = key
        .to_openssh(LineEnding::LF)
        .context("cannot encode the host key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create host key {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok((key, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_then_reloads_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/host_key");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.public_key(), second.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
