//! `ladder checkpoints JOB --fetch STEP --out DIR`: a kept checkpoint downloaded, its sha256
//! checked against the coordinator's, and unpacked (plain files only) into a new or empty folder.
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{CliError, Result};

/// What a fetch unpacked.
pub struct Fetched {
    pub step: u64,
    pub bytes: u64,
    pub files: Vec<String>,
}

/// Downloads job `job`'s checkpoint at `step` (0: the newest kept) into `out`.
pub async fn checkpoint(client: &Client, job: u64, step: u64, out: &Path) -> Result<Fetched> {
    let step = if step == 0 {
        let list = client.checkpoints(job).await?;
        list.checkpoints
            .iter()
            .map(|c| c.step)
            .max()
            .ok_or_else(|| CliError::Input { what: format!("job {job}"), message: "keeps no checkpoint".into() })?
    } else {
        step
    };
    if out.exists()
        && std::fs::read_dir(out).map_err(|e| CliError::io(format!("reading {}", out.display()), e))?.next().is_some()
    {
        return Err(CliError::Input { what: format!("--out {}", out.display()), message: "is not empty".into() });
    }
    std::fs::create_dir_all(out).map_err(|e| CliError::io(format!("creating {}", out.display()), e))?;
    // The archive sits inside `out` while it downloads, so it never lands anywhere else.
    let tar = out.join(format!(".job-{job}-step-{step}.tar"));
    let fetched = download(client, job, step, &tar).await.and_then(|bytes| {
        ladder_worker::archive::unpack(&tar, out).map_err(|e| CliError::Other(format!("{e:#}")))?;
        Ok(bytes)
    });
    let _ = std::fs::remove_file(&tar);
    let bytes = fetched?;
    let mut files: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| CliError::io(format!("reading {}", out.display()), e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    Ok(Fetched { step, bytes, files })
}

/// Streams the archive into `to`; returns its size once its sha256 matches.
async fn download(client: &Client, job: u64, step: u64, to: &Path) -> Result<u64> {
    let mut chunks = client.fetch_checkpoint(job, step).await?;
    let mut file = std::fs::File::create(to).map_err(|e| CliError::io(format!("creating {}", to.display()), e))?;
    let (mut h, mut sha, mut bytes) = (Sha256::new(), String::new(), 0u64);
    while let Some(c) = tokio_stream::StreamExt::next(&mut chunks).await {
        let c = c?;
        if c.offset != bytes {
            return Err(CliError::Reply(format!("checkpoint chunk at offset {} after {bytes} bytes", c.offset)));
        }
        h.update(&c.data);
        file.write_all(&c.data).map_err(|e| CliError::io(format!("writing {}", to.display()), e))?;
        bytes += c.data.len() as u64;
        if !c.sha256.is_empty() {
            sha = c.sha256;
        }
    }
    file.sync_all().map_err(|e| CliError::io(format!("syncing {}", to.display()), e))?;
    if hex::encode(h.finalize()) != sha {
        return Err(CliError::Reply(format!("checkpoint of job {job} at step {step}: sha256 mismatch")));
    }
    Ok(bytes)
}
