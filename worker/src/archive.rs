//! A checkpoint folder as one tar file: its regular files, sorted by name, with fixed metadata
//! (so the same folder packs to the same bytes). Unpacking takes only plain file names and regular
//! files, so an archive can never write outside its folder.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use crate::error::{Result, WorkerError};

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Packs the regular files of `dir` into the tar file `out`; returns its size and sha256.
pub fn pack(dir: &Path, out: &Path) -> Result<(u64, String)> {
    let io = |what: String| move |e| WorkerError::io(what, e);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io(format!("listing {}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let file = File::create(out).map_err(io(format!("creating {}", out.display())))?;
    let mut tar = tar::Builder::new(Hashing { inner: BufWriter::new(file), sha: Sha256::new(), bytes: 0 });
    tar.mode(tar::HeaderMode::Deterministic);
    for name in names {
        let path = dir.join(&name);
        let mut f = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
        let len = f.metadata().map_err(io(format!("reading {}", path.display())))?.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &name, &mut f).map_err(io(format!("packing {name}")))?;
    }
    let mut h = tar.into_inner().map_err(io(format!("finishing {}", out.display())))?;
    h.flush().map_err(io(format!("writing {}", out.display())))?;
    h.inner.get_ref().sync_all().map_err(io(format!("syncing {}", out.display())))?;
    Ok((h.bytes, hex::encode(h.sha.finalize())))
}

/// Unpacks the tar file `archive` into `dir`, refusing anything but plain files with plain names.
pub fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let corrupt = |m: String| WorkerError::Corrupt(format!("checkpoint archive {}: {m}", archive.display()));
    std::fs::create_dir_all(dir).map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
    let file = File::open(archive).map_err(|e| WorkerError::io(format!("opening {}", archive.display()), e))?;
    let mut tar = tar::Archive::new(file);
    let entries = tar.entries().map_err(|e| corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let path = entry.path().map_err(|e| corrupt(e.to_string()))?.into_owned();
        let mut parts = path.components();
        let name = match (parts.next(), parts.next()) {
            (Some(Component::Normal(n)), None) => n.to_owned(),
            _ => return Err(corrupt(format!("refusing entry {:?}", path.display().to_string()))),
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(corrupt(format!("refusing {:?}: not a regular file", path.display().to_string())));
        }
        let to = dir.join(&name);
        let mut out = File::create(&to).map_err(|e| WorkerError::io(format!("writing {}", to.display()), e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        out.sync_all().map_err(|e| WorkerError::io(format!("syncing {}", to.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_deterministically_and_refuses_escapes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("a.json"), b"{}").expect("write");
        std::fs::write(src.join("model.safetensors"), vec![7u8; 1000]).expect("write");
        let (n1, sha1) = pack(&src, &tmp.path().join("one.tar")).expect("pack");
        let (n2, sha2) = pack(&src, &tmp.path().join("two.tar")).expect("pack");
        assert_eq!((n1, &sha1), (n2, &sha2), "the same folder packs to the same bytes");
        let dst = tmp.path().join("dst");
        unpack(&tmp.path().join("one.tar"), &dst).expect("unpack");
        assert_eq!(std::fs::read(dst.join("model.safetensors")).expect("read"), vec![7u8; 1000]);
        assert_eq!(std::fs::read(dst.join("a.json")).expect("read"), b"{}");

        // An entry named ../x, written by hand (tar::Builder itself refuses such names).
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        {
            let name = b"../x1";
            let raw = header.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name);
        }
        header.set_cksum();
        let mut evil = Vec::new();
        evil.extend_from_slice(header.as_bytes());
        evil.extend_from_slice(&[0u8; 512]);
        evil.extend_from_slice(&[0u8; 1024]);
        let evil_path = tmp.path().join("evil.tar");
        std::fs::write(&evil_path, evil).expect("write");
        let e = unpack(&evil_path, &tmp.path().join("evil")).expect_err("refused").to_string();
        assert!(e.contains("refusing entry \"../x1\""), "{e}");
        assert!(!tmp.path().join("x1").exists());
        let bytes = std::fs::read(tmp.path().join("one.tar")).expect("read");
        std::fs::write(tmp.path().join("cut.tar"), &bytes[..700]).expect("write");
        assert!(unpack(&tmp.path().join("cut.tar"), &tmp.path().join("cut")).is_err(), "a truncated archive fails");
    }
}
