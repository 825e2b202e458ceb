//! Staged file changes that can be rolled back: the "write beside, swap, restore" of an apply.
//!
//! A new version of a file is written beside it (`<file>.vipanel-new`), synced, and renamed
//! over the old one, so a reader never sees half a file. The previous bytes are kept in memory
//! until the apply ends; rolling back writes them back the same way (or removes a file that
//! did not exist). Nothing here reloads anything: the running nginx keeps its configuration
//! until the apply has validated the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The suffix of a file being written; `host reconcile` removes strays a crash left.
pub const NEW_SUFFIX: &str = ".vipanel-new";

#[derive(Debug)]
struct Change {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

/// The changes made so far, oldest first.
#[derive(Debug, Default)]
pub struct Stage {
    changes: Vec<Change>,
}

/// A point to roll back to (`Mark::default()`: the very start).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mark(usize);

impl Stage {
    /// Makes `path` hold `content` (or not exist for `None`); whether anything changed.
    pub fn set(&mut self, path: &Path, content: Option<&str>) -> io::Result<bool> {
        let before = read_if_exists(path)?;
        if before.as_deref() == content.map(str::as_bytes) {
            return Ok(false);
        }
        match content {
            Some(text) => write_atomically(path, text.as_bytes())?,
            None => remove_if_exists(path)?,
        }
        self.changes.push(Change {
            path: path.to_path_buf(),
            before,
        });
        Ok(true)
    }

    pub fn mark(&self) -> Mark {
        Mark(self.changes.len())
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Puts back every file changed after `mark`, newest change first. Errors are collected:
    /// a file that cannot be restored is named, the others are still restored.
    pub fn rollback_to(&mut self, mark: Mark) -> Result<(), String> {
        let mut failed = Vec::new();
        while self.changes.len() > mark.0 {
            let change = self.changes.pop().expect("len checked");
            let restored = match &change.before {
                Some(bytes) => write_atomically(&change.path, bytes),
                None => remove_if_exists(&change.path),
            };
            if let Err(e) = restored {
                failed.push(format!("{}: {e}", change.path.display()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "could not restore the previous files: {}",
                failed.join("; ")
            ))
        }
    }
}

fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `<path>.vipanel-new` (0644), syncs it and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut beside = path.as_os_str().to_owned();
    beside.push(NEW_SUFFIX);
    let beside = PathBuf::from(beside);
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&beside)?;
    file.write_all(bytes)?;
    // Explicitly: the mode above is cut by the umask (systemd's unit sets 0077).
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.sync_all()?;
    drop(file);
    fs::rename(&beside, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_bytes_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("a.conf");
        let added = dir.path().join("sub/b.conf");
        let removed = dir.path().join("c.conf");
        fs::write(&kept, "old a").unwrap();
        fs::write(&removed, "old c").unwrap();
        let mut stage = Stage::default();
        let start = stage.mark();
        assert!(
            !stage.set(&kept, Some("old a")).unwrap(),
            "same bytes: no change"
        );
        assert!(stage.set(&kept, Some("new a")).unwrap());
        assert!(stage.set(&added, Some("new b")).unwrap());
        assert!(stage.set(&removed, None).unwrap());
        assert_eq!(fs::read_to_string(&kept).unwrap(), "new a");
        assert!(!removed.exists());
        assert_eq!(stage.len(), 3);
        stage.rollback_to(start).unwrap();
        assert_eq!(fs::read_to_string(&kept).unwrap(), "old a");
        assert!(!added.exists());
        assert_eq!(fs::read_to_string(&removed).unwrap(), "old c");
        let strays: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(NEW_SUFFIX))
            .collect();
        assert!(strays.is_empty());
        assert_eq!(stage.len(), 0);
    }
}
