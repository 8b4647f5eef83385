//! A dataset's `meta.json`, as `ladder-train prepare` writes it: the tokenizer, the vocabulary,
//! the token counts and the content hash. The trainer reads it to size the model; the
//! coordinator reads it when a dataset is registered.
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// `meta.json`; optional for plain nanoGPT folders.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetMeta {
    pub tokenizer: String,
    pub vocab_size: i64,
    pub dtype: String,
    pub train_tokens: u64,
    pub val_tokens: u64,
    /// sha256 of train.bin then val.bin: the dataset's content identity.
    pub sha256: String,
    pub sources: Vec<DatasetSource>,
}

/// One text file a dataset was made from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetSource {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl DatasetMeta {
    /// Parses `meta.json` text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, DomainError> {
        serde_json::from_str(text).map_err(|e| DomainError::message(origin, format!("not a valid meta.json: {e}")))
    }
}

/// What an upload announces before its bytes: the name, `meta.json` (parsed, and as written),
/// the two files' sizes and the vocabulary (from `meta.json`, else given).
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetHeader {
    pub name: String,
    pub meta: Option<DatasetMeta>,
    /// `meta.json` as written, served to workers byte for byte; empty for plain nanoGPT files.
    pub meta_json: String,
    pub train_bytes: u64,
    pub val_bytes: u64,
    pub vocab: u32,
}
