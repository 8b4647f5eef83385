//! A checkpoint folder as one blob: for each regular file, sorted by name,
//! `u32 name length, name, u64 size, bytes` (little-endian). Unpacking refuses names that are
//! not plain file names, so a blob can never write outside its folder.
use std::path::Path;

use crate::error::{Result, WorkerError};

pub fn pack(dir: &Path) -> Result<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| WorkerError::io(format!("listing {}", dir.display()), e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).map_err(|e| WorkerError::io(format!("reading {name}"), e))?;
        out.extend((name.len() as u32).to_le_bytes());
        out.extend(name.as_bytes());
        out.extend((bytes.len() as u64).to_le_bytes());
        out.extend(bytes);
    }
    Ok(out)
}

pub fn unpack(blob: &[u8], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
    let corrupt = |m: &str| WorkerError::Corrupt(format!("checkpoint archive: {m}"));
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = blob.get(at..at + n).ok_or_else(|| corrupt("truncated"))?;
        at += n;
        Ok(s)
    };
    loop {
        let Ok(len) = take(4) else { break };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let name = std::str::from_utf8(take(len)?).map_err(|_| corrupt("file name is not UTF-8"))?.to_string();
        if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
            return Err(corrupt(&format!("refusing file name {name:?}")));
        }
        let size = take(8)?;
        let size = u64::from_le_bytes(size.try_into().map_err(|_| corrupt("bad size"))?) as usize;
        let bytes = take(size)?;
        std::fs::write(dir.join(&name), bytes).map_err(|e| WorkerError::io(format!("writing {name}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_escapes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("a.json"), b"{}").expect("write");
        std::fs::write(src.join("model.safetensors"), vec![7u8; 1000]).expect("write");
        let blob = pack(&src).expect("pack");
        let dst = tmp.path().join("dst");
        unpack(&blob, &dst).expect("unpack");
        assert_eq!(std::fs::read(dst.join("model.safetensors")).expect("read"), vec![7u8; 1000]);
        assert_eq!(std::fs::read(dst.join("a.json")).expect("read"), b"{}");

        let mut evil = Vec::new();
        evil.extend(5u32.to_le_bytes());
        evil.extend(b"../x1");
        evil.extend(1u64.to_le_bytes());
        evil.push(0);
        let e = unpack(&evil, &tmp.path().join("evil")).expect_err("refused").to_string();
        assert!(e.contains("refusing file name \"../x1\""), "{e}");
        assert!(unpack(&blob[..blob.len() - 3], &tmp.path().join("cut")).is_err());
    }
}
