//! Token data: `prepare` turns text into nanoGPT-style `train.bin`/`val.bin` (uint16, little-endian)
//! plus `meta.json`; a [`Dataset`] loads and checks them; a [`Sampler`] draws seeded windows.
use std::path::{Path, PathBuf};

use ladder_core::dataset::{DatasetMeta, DatasetSource};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainerError};
use crate::rng::SplitMix64;
use crate::tokenizer::Tokenizer;

pub const TRAIN_FILE: &str = "train.bin";
pub const VAL_FILE: &str = "val.bin";
pub const META_FILE: &str = "meta.json";

/// Tokenizes `inputs` into `out/`. Each file gives its last `val_fraction` of tokens to validation,
/// so every source is represented in both splits. `lossy` replaces invalid UTF-8 for GPT-2.
pub fn prepare(
    inputs: &[PathBuf],
    tokenizer: &Tokenizer,
    val_fraction: f64,
    lossy: bool,
    out: &Path,
) -> Result<DatasetMeta> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(TrainerError::invalid("val_fraction", format!("{val_fraction} is outside (0, 1)")));
    }
    if inputs.is_empty() {
        return Err(TrainerError::invalid("inputs", "no text files given"));
    }
    let (mut train, mut val) = (Vec::<u16>::new(), Vec::<u16>::new());
    let mut sources = Vec::new();
    for path in inputs {
        let bytes = std::fs::read(path).map_err(|e| TrainerError::io(format!("reading {}", path.display()), e))?;
        let mut ids = tokenizer.encode_bytes(&bytes, lossy).map_err(|e| TrainerError::data(path, e.to_string()))?;
        if ids.is_empty() {
            return Err(TrainerError::data(path, "the file is empty"));
        }
        ids.extend(tokenizer.eot());
        let n_val = ((ids.len() as f64 * val_fraction).round() as usize).clamp(1, ids.len() - 1);
        let split = ids.len() - n_val;
        // Ids come from the tokenizer, whose vocab fits uint16 (checked by Shape::validate's bound).
        train.extend(ids[..split].iter().map(|&i| i as u16));
        val.extend(ids[split..].iter().map(|&i| i as u16));
        sources.push(DatasetSource {
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(format!("creating {}", out.display()), e))?;
    let train_bytes = to_le_bytes(&train);
    let val_bytes = to_le_bytes(&val);
    let mut h = Sha256::new();
    h.update(&train_bytes);
    h.update(&val_bytes);
    let meta = DatasetMeta {
        tokenizer: tokenizer.name().to_string(),
        vocab_size: tokenizer.vocab_size(),
        dtype: "uint16".into(),
        train_tokens: train.len() as u64,
        val_tokens: val.len() as u64,
        sha256: hex::encode(h.finalize()),
        sources,
    };
    write_atomic(&out.join(TRAIN_FILE), &train_bytes)?;
    write_atomic(&out.join(VAL_FILE), &val_bytes)?;
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| TrainerError::Json { context: "encoding meta.json".into(), source: e })?;
    write_atomic(&out.join(META_FILE), &json)?;
    Ok(meta)
}

fn to_le_bytes(ids: &[u16]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("partial");
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = std::fs::File::create(&tmp).map_err(|e| TrainerError::io(ctx("creating"), e))?;
    f.write_all(bytes).map_err(|e| TrainerError::io(ctx("writing"), e))?;
    f.sync_all().map_err(|e| TrainerError::io(ctx("syncing"), e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainerError::io(format!("renaming to {}", path.display()), e))
}

/// Reads a uint16 token file, checking every id against `vocab`.
pub fn read_tokens(path: &Path, vocab: i64) -> Result<Vec<u16>> {
    let bytes = std::fs::read(path).map_err(|e| TrainerError::io(format!("reading {}", path.display()), e))?;
    if bytes.len() % 2 != 0 {
        return Err(TrainerError::data(
            path,
            format!("{} bytes is not a whole number of uint16 tokens (truncated?)", bytes.len()),
        ));
    }
    let tokens: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    if let Some(position) = tokens.iter().position(|&t| i64::from(t) >= vocab) {
        return Err(TrainerError::TokenOutOfRange {
            path: path.to_path_buf(),
            id: u32::from(tokens[position]),
            position,
            vocab,
        });
    }
    Ok(tokens)
}

/// Reads `meta.json` if the folder has one.
pub fn read_meta(dir: &Path) -> Result<Option<DatasetMeta>> {
    let path = dir.join(META_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&path).map_err(|e| TrainerError::io(format!("reading {}", path.display()), e))?;
    let text = String::from_utf8(text).map_err(|e| TrainerError::data(&path, format!("not UTF-8: {e}")))?;
    DatasetMeta::parse(&text, &path.display().to_string()).map(Some).map_err(TrainerError::from)
}

/// A loaded dataset, its training part cut to the first D tokens.
pub struct Dataset {
    pub train: Vec<u16>,
    pub val: Vec<u16>,
    /// Training tokens in the file, before the D limit.
    pub train_tokens_available: u64,
}

impl Dataset {
    pub fn open(dir: &Path, vocab: i64, n_ctx: i64, max_tokens: Option<u64>) -> Result<Self> {
        let need = n_ctx as usize + 1;
        let mut train = read_tokens(&dir.join(TRAIN_FILE), vocab)?;
        let val = read_tokens(&dir.join(VAL_FILE), vocab)?;
        let available = train.len() as u64;
        if let Some(d) = max_tokens {
            train.truncate(d.min(available) as usize);
        }
        for (name, toks) in [(TRAIN_FILE, &train), (VAL_FILE, &val)] {
            if toks.len() < need {
                return Err(TrainerError::data(
                    dir.join(name),
                    format!("{} tokens (after the D limit) is fewer than one window of n_ctx + 1 = {need}", toks.len()),
                ));
            }
        }
        Ok(Self { train, val, train_tokens_available: available })
    }

    /// The fixed held-out windows: up to `n` evenly spaced starts in the validation split.
    pub fn eval_starts(&self, n: u64, n_ctx: i64) -> Vec<usize> {
        let span = self.val.len() - n_ctx as usize - 1; // last valid start
        let n = (n as usize).min(span + 1);
        (0..n).map(|i| if n == 1 { 0 } else { i * span / (n - 1) }).collect()
    }
}

/// Seeded draws of training windows; its state is the data position a checkpoint saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampler {
    pub rng: SplitMix64,
    /// Windows drawn so far.
    pub windows: u64,
}

impl Sampler {
    pub fn new(seed: u64) -> Self {
        // Decorrelate from the init seed.
        Self { rng: SplitMix64::new(seed ^ 0x6C61_6464_6572_0001), windows: 0 }
    }

    /// Inputs and targets, `n_seqs` windows of `n_ctx` tokens each, flattened row-major.
    pub fn next_batch(&mut self, tokens: &[u16], n_seqs: usize, n_ctx: usize) -> (Vec<i64>, Vec<i64>) {
        let starts = (tokens.len() - n_ctx) as u64; // start s needs tokens s..=s+n_ctx
        let mut x = Vec::with_capacity(n_seqs * n_ctx);
        let mut y = Vec::with_capacity(n_seqs * n_ctx);
        for _ in 0..n_seqs {
            let s = self.rng.below(starts) as usize;
            x.extend(tokens[s..s + n_ctx].iter().map(|&t| i64::from(t)));
            y.extend(tokens[s + 1..s + n_ctx + 1].iter().map(|&t| i64::from(t)));
        }
        self.windows += n_seqs as u64;
        (x, y)
    }
}
