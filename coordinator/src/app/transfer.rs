//! The byte streams: datasets registered by users and checkpoints uploaded by workers, each
//! received chunk by chunk into staging and moved into place by one last operation; and the
//! downloads of both, one chunk at a time from a read transaction. The streams are domain
//! values ([`CheckpointPart`], [`DatasetPart`], [`Chunk`]): the services convert the wire's.
use std::pin::Pin;

use ladder_core::dataset::DatasetHeader;
use ladder_core::status::{CheckpointInfo, DatasetInfo};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use super::blobs::{self, CheckpointKey};
use super::{App, registry};
use crate::error::{CoordError, Result};
use crate::records::{DatasetRecord, JobRecord};
use crate::store::Read;
use crate::tables::{CHUNK, next_id};

/// A piece of a blob being downloaded; every piece carries the whole blob's size and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub total_bytes: u64,
    pub sha256: String,
    pub data: Vec<u8>,
}

/// A download: its chunks in order, or the error that ended it.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk>> + Send>>;

/// What a checkpoint upload announces before its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointHeader {
    pub worker_id: String,
    pub job_id: u64,
    pub attempt: u32,
    pub step: u64,
    pub total_bytes: u64,
    pub sha256: String,
}

/// A message of a checkpoint upload: the header first, then the bytes in order.
#[derive(Debug, Clone)]
pub enum CheckpointPart {
    Header(CheckpointHeader),
    Data(Vec<u8>),
}

/// A message of a dataset registration: the header first, then the bytes of train.bin, then of
/// val.bin, each named by its file ("train" or "val").
#[derive(Debug, Clone)]
pub enum DatasetPart {
    Header(DatasetHeader),
    Bytes { file: String, data: Vec<u8> },
}

/// Streams a file of `total` bytes in chunks of [`CHUNK`]; one that ends early is an error.
fn file_stream(mut file: tokio::fs::File, total: u64, sha256: String) -> ChunkStream {
    use tokio::io::AsyncReadExt;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut offset = 0u64;
        while offset < total {
            let want = usize::try_from((total - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
            let mut data = vec![0u8; want];
            let item = match file.read_exact(&mut data).await {
                Ok(_) => Ok(Chunk { offset, total_bytes: total, sha256: sha256.clone(), data }),
                Err(e) => Err(CoordError::storage(format!("reading a checkpoint at byte {offset} of {total}: {e}"))),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
            offset += want as u64;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Streams `n` chunks, each read in a read transaction of its own: a client that stops reading
/// holds none open (one held would keep freed pages from being reused).
fn chunk_stream<F>(store: crate::store::Store, total: u64, sha256: String, n: u32, read: F) -> ChunkStream
where
    F: Fn(&Read, u32) -> Result<Vec<u8>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut offset = 0u64;
        for i in 0..n {
            let item = store.read().and_then(|r| read(&r, i)).map(|data| {
                let c = Chunk { offset, total_bytes: total, sha256: sha256.clone(), data };
                offset += c.data.len() as u64;
                c
            });
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn bad_dataset(name: &str, m: impl std::fmt::Display) -> CoordError {
    CoordError::invalid("dataset", format!("{name:?}: {m}"))
}

impl App {
    /// A checkpoint's chunks; `step` 0 = the newest. The file is opened here: retention may
    /// delete it meanwhile, and what is open stays readable until the stream ends.
    pub fn checkpoint_stream(&self, job_id: u64, step: u64) -> Result<ChunkStream> {
        let c = blobs::checkpoint(&self.store.read()?, job_id, step)?;
        let path = self.store.files().path(&c.file)?;
        let file = std::fs::File::open(&path).map_err(|e| {
            CoordError::storage(format!("checkpoint of job {job_id} at step {}: {}: {e}", c.info.step, path.display()))
        })?;
        Ok(file_stream(tokio::fs::File::from_std(file), c.info.bytes, c.info.sha256))
    }

    /// One file of a dataset: "train", "val" or "meta".
    pub fn dataset_stream(&self, sha256: &str, file: &str) -> Result<ChunkStream> {
        let rec = blobs::dataset_by_sha(&self.store.read()?, sha256)?
            .ok_or_else(|| CoordError::NotFound(format!("dataset {sha256}")))?;
        let (file, bytes) = match file {
            "train" => (0u8, rec.train_bytes),
            "val" => (1u8, rec.val_bytes),
            "meta" => {
                let meta = rec.meta_json.clone().into_bytes();
                let sha = hex::encode(Sha256::digest(&meta));
                let chunk = Chunk { offset: 0, total_bytes: meta.len() as u64, sha256: sha, data: meta };
                return Ok(Box::pin(tokio_stream::iter([Ok(chunk)])));
            }
            other => return Err(CoordError::invalid("fetch_dataset.file", format!("unknown file {other:?}"))),
        };
        let sha = sha256.to_string();
        Ok(chunk_stream(self.store.clone(), bytes, String::new(), rec.chunks[file as usize], move |r, i| {
            blobs::dataset_chunk(r, &sha, file, i)
        }))
    }

    /// A dataset registration: the header, then the bytes of train.bin and val.bin in order.
    pub async fn register_dataset<S>(&self, mut stream: S) -> Result<DatasetInfo>
    where
        S: Stream<Item = Result<DatasetPart>> + Unpin + Send,
    {
        let header = match stream.next().await {
            Some(Ok(DatasetPart::Header(h))) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(CoordError::invalid("register_dataset", "the first message must be the header")),
        };
        let upload = self.store.write(|txn| next_id(txn, "next_upload_id")).await?;
        match self.dataset_bytes(&header, &mut stream, upload).await {
            Ok(rec) => {
                let info = rec.info();
                self.store.write(move |txn| blobs::commit_dataset(txn, upload, &rec)).await?;
                tracing::info!(name = %info.name, sha256 = %info.sha256, tokens = info.train_tokens, "dataset registered");
                Ok(info)
            }
            Err(e) => {
                let _ = self.store.write(move |txn| blobs::abandon_dataset(txn, upload)).await;
                Err(e)
            }
        }
    }

    /// Checks a dataset header: name, sizes, vocabulary.
    fn dataset_header(&self, h: &DatasetHeader) -> Result<()> {
        if h.name.is_empty()
            || h.name.len() > 128
            || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad_dataset(&h.name, "names use 1-128 of [A-Za-z0-9._-]"));
        }
        let total =
            h.train_bytes.checked_add(h.val_bytes).ok_or_else(|| bad_dataset(&h.name, "train + val bytes overflow"))?;
        if total > self.cfg.max_dataset_bytes {
            return Err(bad_dataset(
                &h.name,
                format!("{total} bytes exceed the limit of {}", self.cfg.max_dataset_bytes),
            ));
        }
        self.room_for(total)?;
        for (file, n) in [("train", h.train_bytes), ("val", h.val_bytes)] {
            if n == 0 || n % 2 != 0 {
                return Err(bad_dataset(&h.name, format!("{file}: {n} bytes is not a non-empty uint16 token file")));
            }
        }
        if h.vocab == 0 || h.vocab > 65536 {
            return Err(bad_dataset(&h.name, format!("vocab {} is outside 1..=65536", h.vocab)));
        }
        Ok(())
    }

    /// Receives a dataset's bytes (train first, then val) into staging, chunk by chunk.
    async fn dataset_bytes<S>(&self, h: &DatasetHeader, stream: &mut S, upload: u64) -> Result<DatasetRecord>
    where
        S: Stream<Item = Result<DatasetPart>> + Unpin + Send,
    {
        self.dataset_header(h)?;
        let want = [h.train_bytes, h.val_bytes];
        let mut d = DatasetIntake::new(h.vocab);
        while let Some(msg) = stream.next().await {
            let (file_name, data) = match msg? {
                DatasetPart::Bytes { file, data } => (file, data),
                DatasetPart::Header(_) => {
                    return Err(bad_dataset(&h.name, "expected bytes of file \"train\" or \"val\" after the header"));
                }
            };
            let file = match file_name.as_str() {
                "train" => 0u8,
                "val" => 1u8,
                other => return Err(bad_dataset(&h.name, format!("unknown file {other:?}"))),
            };
            if file < d.file {
                return Err(bad_dataset(&h.name, "train bytes must all come before val bytes"));
            }
            if file > d.file {
                if d.got[0] != want[0] {
                    let m = format!("val bytes after {} of {} train bytes", d.got[0], want[0]);
                    return Err(bad_dataset(&h.name, m));
                }
                self.flush_dataset(&mut d, upload, true).await?;
                d.file = file;
                d.tokens = 0;
            }
            let f = file as usize;
            d.got[f] = d.got[f].saturating_add(data.len() as u64);
            if d.got[f] > want[f] {
                let m = format!("more {file_name} bytes than the header announced ({})", want[f]);
                return Err(bad_dataset(&h.name, m));
            }
            d.check(&data, &h.name, &file_name)?;
            d.sha.update(&data);
            d.buf.extend_from_slice(&data);
            self.flush_dataset(&mut d, upload, false).await?;
        }
        self.flush_dataset(&mut d, upload, true).await?;
        if d.got != want {
            let m =
                format!("received {} + {} bytes, the header announced {} + {}", d.got[0], d.got[1], want[0], want[1]);
            return Err(bad_dataset(&h.name, m));
        }
        Ok(DatasetRecord {
            name: h.name.clone(),
            sha256: hex::encode(d.sha.finalize()),
            meta_json: h.meta_json.clone(),
            vocab: h.vocab,
            tokenizer: h.meta.as_ref().map(|m| m.tokenizer.clone()).unwrap_or_default(),
            train_bytes: want[0],
            val_bytes: want[1],
            chunks: d.chunks,
        })
    }

    /// Stages the buffer as the current file's next chunks; at the file's end, also its last,
    /// shorter chunk.
    async fn flush_dataset(&self, d: &mut DatasetIntake, upload: u64, end: bool) -> Result<()> {
        while d.buf.len() >= CHUNK || (end && !d.buf.is_empty()) {
            let rest = d.buf.split_off(d.buf.len().min(CHUNK));
            let data = std::mem::replace(&mut d.buf, rest);
            let (file, index) = (d.file, d.chunks[d.file as usize]);
            self.store.write(move |txn| blobs::stage_dataset_chunk(txn, upload, file, index, &data)).await?;
            d.chunks[d.file as usize] += 1;
        }
        Ok(())
    }

    /// A checkpoint upload: refused before its bytes are taken when the attempt is stale or the
    /// checkpoint is ahead of the stored curve; made the job's checkpoint once whole and verified.
    pub async fn upload_checkpoint<S>(&self, mut stream: S, credential: &str) -> Result<CheckpointInfo>
    where
        S: Stream<Item = Result<CheckpointPart>> + Unpin + Send,
    {
        let h = match stream.next().await {
            Some(Ok(CheckpointPart::Header(h))) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(CoordError::invalid("upload_checkpoint", "the first message must be the header")),
        };
        registry::check_credential(&self.store.read()?, &h.worker_id, credential)?;
        let k = CheckpointKey { job_id: h.job_id, attempt: h.attempt, step: h.step };
        blobs::check_checkpoint(&JobRecord::load(&self.store.read()?, h.job_id)?, &h.worker_id, k)?;
        if h.total_bytes > self.cfg.max_checkpoint_bytes {
            return Err(CoordError::invalid(
                "upload_checkpoint.total_bytes",
                format!(
                    "checkpoint of job {} is {} bytes, over the cap of {}",
                    h.job_id, h.total_bytes, self.cfg.max_checkpoint_bytes
                ),
            ));
        }
        self.room_for(h.total_bytes)?;
        let (staged, file) = self.store.files().stage()?;
        // The staging file goes whatever happens, unless it was moved into place.
        let mut guard = Staged(Some(staged.clone()));
        let (got, digest) = receive_file(&mut stream, tokio::fs::File::from_std(file), h.total_bytes).await?;
        if got != h.total_bytes || digest != h.sha256 {
            return Err(CoordError::DataLoss(format!(
                "checkpoint of job {} step {}: bytes do not match the announced size and sha256",
                h.job_id, h.step
            )));
        }
        let name = self.store.files().name(k.job_id, k.step, k.attempt);
        let (store, n) = (self.store.clone(), name.clone());
        tokio::task::spawn_blocking(move || store.files().place(&staged, &n))
            .await
            .map_err(|e| CoordError::Server(format!("placing a checkpoint: {e}")))??;
        guard.0 = None;
        let (w, n) = (h.worker_id.clone(), name.clone());
        let committed = self.store.write(move |txn| blobs::commit_checkpoint(txn, &w, k, got, &digest, &n)).await;
        let (stored, job, released) = match committed {
            Ok(c) => c,
            Err(e) => {
                // Refused (a stale attempt): the file is no checkpoint's.
                let _ = self.store.files().remove(&name);
                return Err(e);
            }
        };
        self.files_doomed();
        self.counters.checkpoint_bytes.fetch_add(got, std::sync::atomic::Ordering::Relaxed);
        self.publish(std::slice::from_ref(&job));
        self.publish(&released);
        Ok(stored.info)
    }
}

/// A staging file that is deleted when dropped (an upload that did not finish), unless it was
/// moved into place.
struct Staged(Option<std::path::PathBuf>);

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes a checkpoint upload's bytes to `file` as they arrive, refusing more than `total`, and
/// syncs it; returns the bytes received and their sha256.
async fn receive_file<S>(stream: &mut S, mut file: tokio::fs::File, total: u64) -> Result<(u64, String)>
where
    S: Stream<Item = Result<CheckpointPart>> + Unpin + Send,
{
    use tokio::io::AsyncWriteExt;
    let (mut sha, mut got) = (Sha256::new(), 0u64);
    let io = |e: std::io::Error| {
        App::out_of_space("writing a checkpoint upload", &e)
            .unwrap_or_else(|| CoordError::storage(format!("writing a checkpoint upload: {e}")))
    };
    while let Some(msg) = stream.next().await {
        match msg? {
            CheckpointPart::Data(d) => {
                got = got.saturating_add(d.len() as u64);
                if got > total {
                    return Err(CoordError::invalid("upload_checkpoint", "more bytes than announced"));
                }
                sha.update(&d);
                file.write_all(&d).await.map_err(io)?;
            }
            CheckpointPart::Header(_) => return Err(CoordError::invalid("upload_checkpoint", "a second header")),
        }
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok((got, hex::encode(sha.finalize())))
}

/// A dataset upload as it streams in: sizes, token ids below the vocabulary, the content hash.
struct DatasetIntake {
    vocab: u32,
    sha: Sha256,
    /// Bytes received per file, and the chunks staged.
    got: [u64; 2],
    chunks: [u32; 2],
    buf: Vec<u8>,
    file: u8,
    /// The first byte of a token split across messages.
    carry: Option<u8>,
    /// Tokens checked in the current file, for error messages.
    tokens: u64,
}

impl DatasetIntake {
    fn new(vocab: u32) -> Self {
        Self {
            vocab,
            sha: Sha256::new(),
            got: [0, 0],
            chunks: [0, 0],
            buf: Vec::new(),
            file: 0,
            carry: None,
            tokens: 0,
        }
    }

    /// Checks the token ids in `data`, which continues the current file.
    fn check(&mut self, data: &[u8], name: &str, file: &str) -> Result<()> {
        let mut i = 0;
        let check = |lo: u8, hi: u8, tokens: &mut u64| -> Result<()> {
            let id = u16::from_le_bytes([lo, hi]);
            if u32::from(id) >= self.vocab {
                return Err(bad_dataset(
                    name,
                    format!("{file}: token id {id} at position {} is out of range for vocab {}", *tokens, self.vocab),
                ));
            }
            *tokens += 1;
            Ok(())
        };
        let mut tokens = self.tokens;
        if let Some(lo) = self.carry.take() {
            match data.first() {
                Some(&hi) => {
                    check(lo, hi, &mut tokens)?;
                    i = 1;
                }
                None => {
                    self.carry = Some(lo);
                    return Ok(());
                }
            }
        }
        while i + 2 <= data.len() {
            check(data[i], data[i + 1], &mut tokens)?;
            i += 2;
        }
        if i < data.len() {
            self.carry = Some(data[i]);
        }
        self.tokens = tokens;
        Ok(())
    }
}
