//! Tokenizers: byte-level (vocab 256) and GPT-2 r50k BPE (vocab 50257, offline via tiktoken-rs).
use tiktoken_rs::CoreBPE;

use crate::error::{Result, TrainerError};

pub enum Tokenizer {
    Byte,
    Gpt2(Box<CoreBPE>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.name())
    }
}

/// GPT-2's `<|endoftext|>`.
pub const GPT2_EOT: u32 = 50256;

impl Tokenizer {
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "byte" => Ok(Self::Byte),
            "gpt2" | "r50k" => tiktoken_rs::r50k_base()
                .map(|b| Self::Gpt2(Box::new(b)))
                .map_err(|e| TrainerError::Tokenizer(format!("loading GPT-2 BPE: {e}"))),
            other => Err(TrainerError::Tokenizer(format!("unknown tokenizer {other:?}: expected byte or gpt2"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Byte => "byte",
            Self::Gpt2(_) => "gpt2",
        }
    }

    pub fn vocab_size(&self) -> i64 {
        match self {
            Self::Byte => 256,
            Self::Gpt2(_) => 50257,
        }
    }

    /// The separator written between documents, if the vocabulary has one.
    pub fn eot(&self) -> Option<u32> {
        match self {
            Self::Byte => None,
            Self::Gpt2(_) => Some(GPT2_EOT),
        }
    }

    /// Encodes raw bytes. GPT-2 needs UTF-8: invalid sequences are an error naming the byte,
    /// or, with `lossy`, become U+FFFD.
    pub fn encode_bytes(&self, bytes: &[u8], lossy: bool) -> Result<Vec<u32>> {
        match self {
            Self::Byte => Ok(bytes.iter().map(|&b| u32::from(b)).collect()),
            Self::Gpt2(bpe) => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(bpe.encode_ordinary(text)),
                Err(_) if lossy => Ok(bpe.encode_ordinary(&String::from_utf8_lossy(bytes))),
                Err(e) => Err(TrainerError::Tokenizer(format!(
                    "text is not UTF-8 at byte {} (use --lossy-utf8 to replace invalid bytes)",
                    e.valid_up_to()
                ))),
            },
        }
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Self::Byte => text.bytes().map(u32::from).collect(),
            Self::Gpt2(bpe) => bpe.encode_ordinary(text),
        }
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&i| i64::from(i) >= self.vocab_size()) {
            return Err(TrainerError::Tokenizer(format!(
                "token id {bad} is out of range for the {} vocabulary of {}",
                self.name(),
                self.vocab_size()
            )));
        }
        match self {
            Self::Byte => {
                let bytes: Vec<u8> = ids.iter().map(|&i| i as u8).collect();
                String::from_utf8(bytes).map_err(|e| TrainerError::Tokenizer(format!("bytes are not UTF-8: {e}")))
            }
            Self::Gpt2(bpe) => bpe.decode(ids).map_err(|e| TrainerError::Tokenizer(format!("decoding: {e}"))),
        }
    }
}
