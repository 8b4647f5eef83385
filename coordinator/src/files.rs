//! Checkpoint bytes, kept as files beside the database (`checkpoints/<job>/<name>.tar` in the
//! store's folder), their records in redb ([`crate::tables::CHECKPOINTS`]): deleting one gives
//! its space back to the filesystem at once, which redb, whose file never shrinks while open,
//! cannot.
//!
//! The order of writes keeps the two consistent through any crash:
//! - an upload is written to `staging/`, synced, and renamed into place (the folder synced)
//!   before the record that names it commits;
//! - a record leaves in the same commit that lists its file in
//!   [`crate::tables::DOOMED_FILES`]; the file is unlinked after, and then struck from that list.
//!
//! So a crash leaves at most files that no record names, which [`Files::orphans`] finds at
//! start, never a record without its file. Every name is checked to stay under the folder.
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{CoordError, Result};

/// Where checkpoint files live.
#[derive(Debug)]
pub struct Files {
    root: PathBuf,
    /// Held for a store in memory: its files live as long as it does.
    _temp: Option<tempfile::TempDir>,
    next_upload: AtomicU64,
}

fn io(what: impl std::fmt::Display, e: std::io::Error) -> CoordError {
    CoordError::Storage(format!("{what}: {e}"))
}

/// Syncs a folder, so a rename or unlink in it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(format!("syncing {}", dir.display()), e))
}

impl Files {
    /// The files of the store in `dir`.
    pub fn at(dir: &Path) -> Result<Self> {
        let root = dir.to_path_buf();
        for sub in ["checkpoints", "staging"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|e| io(format!("creating {}", root.join(sub).display()), e))?;
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0));
        Ok(Self { root, _temp: None, next_upload: AtomicU64::new(seed) })
    }

    /// Files in a temporary folder, removed with them (a store held in memory).
    pub fn temporary() -> Result<Self> {
        let temp = tempfile::tempdir().map_err(|e| io("creating a folder for checkpoint files", e))?;
        let mut f = Self::at(temp.path())?;
        f._temp = Some(temp);
        Ok(f)
    }

    /// The folder the files are under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh name for a checkpoint of `job` at `step` from `attempt`: unique per upload, so a
    /// refused upload can delete its own file without touching a stored one.
    pub fn name(&self, job: u64, step: u64, attempt: u32) -> String {
        let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
        format!("{job}/{step:012}-a{attempt}-{n:x}.tar")
    }

    /// The path of a stored file; refused for a name that would leave the folder.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        let rel = Path::new(name);
        let plain = !name.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(CoordError::storage(format!("checkpoint file name {name:?} leaves the store's folder")));
        }
        Ok(self.root.join("checkpoints").join(rel))
    }

    /// A new staging file for an upload, and its path.
    pub fn stage(&self) -> Result<(PathBuf, std::fs::File)> {
        let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join("staging").join(format!("{n:x}.partial"));
        let f = std::fs::File::create(&path).map_err(|e| io(format!("creating {}", path.display()), e))?;
        Ok((path, f))
    }

    /// Moves a synced staging file into place as `name`, durably (blocking).
    pub fn place(&self, staged: &Path, name: &str) -> Result<()> {
        let to = self.path(name)?;
        let dir = to.parent().ok_or_else(|| CoordError::storage(format!("{} has no folder", to.display())))?;
        std::fs::create_dir_all(dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
        std::fs::rename(staged, &to).map_err(|e| io(format!("moving {} into place", staged.display()), e))?;
        sync_dir(dir)
    }

    /// Writes `bytes` as the file `name`, durably (the migration from checkpoints kept in redb).
    pub fn write(&self, name: &str, chunks: impl IntoIterator<Item = Vec<u8>>) -> Result<()> {
        let (staged, mut f) = self.stage()?;
        for c in chunks {
            f.write_all(&c).map_err(|e| io(format!("writing {}", staged.display()), e))?;
        }
        f.sync_all().map_err(|e| io(format!("syncing {}", staged.display()), e))?;
        self.place(&staged, name)
    }

    /// Deletes the file `name`; one already gone is no error.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("deleting {}", path.display()), e)),
        }
    }

    /// Every checkpoint file's name.
    pub fn names(&self) -> Result<Vec<String>> {
        let top = self.root.join("checkpoints");
        let mut out = Vec::new();
        for job in std::fs::read_dir(&top).map_err(|e| io(format!("listing {}", top.display()), e))? {
            let job = job.map_err(|e| io(format!("listing {}", top.display()), e))?;
            if !job.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = job.path();
            for f in std::fs::read_dir(&dir).map_err(|e| io(format!("listing {}", dir.display()), e))? {
                let f = f.map_err(|e| io(format!("listing {}", dir.display()), e))?;
                if let (Some(j), Some(n)) = (job.file_name().to_str(), f.file_name().to_str()) {
                    out.push(format!("{j}/{n}"));
                }
            }
        }
        Ok(out)
    }

    /// Deletes every staging file (their uploads died with the previous process); returns how
    /// many.
    pub fn clear_staging(&self) -> Result<usize> {
        let dir = self.root.join("staging");
        let mut n = 0;
        for f in std::fs::read_dir(&dir).map_err(|e| io(format!("listing {}", dir.display()), e))? {
            let f = f.map_err(|e| io(format!("listing {}", dir.display()), e))?;
            if std::fs::remove_file(f.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Bytes the checkpoint files take.
    pub fn bytes(&self) -> u64 {
        self.names()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| self.path(n).ok().and_then(|p| std::fs::metadata(p).ok()))
            .map(|m| m.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_folder_and_files_move_into_place() {
        let f = Files::temporary().expect("files");
        for bad in ["../x", "/etc/passwd", "", "a/../../b", "./a"] {
            assert!(f.path(bad).is_err(), "{bad:?} must be refused");
        }
        let name = f.name(7, 100, 2);
        assert!(name.starts_with("7/000000000100-a2-"), "{name}");
        assert_ne!(name, f.name(7, 100, 2), "each upload its own name");
        f.write(&name, [b"abc".to_vec(), b"def".to_vec()]).expect("write");
        assert_eq!(std::fs::read(f.path(&name).expect("path")).expect("read"), b"abcdef");
        assert_eq!(f.names().expect("names"), vec![name.clone()]);
        assert_eq!(f.bytes(), 6);
        f.remove(&name).expect("remove");
        f.remove(&name).expect("removing again is no error");
        assert!(f.names().expect("names").is_empty());
        let _ = f.stage().expect("stage");
        assert_eq!(f.clear_staging().expect("clear"), 1);
    }
}
