//! Helpers shared by the trainer's integration tests.
#![allow(dead_code)]
use std::path::Path;

use ladder_trainer::JobConfig;
use ladder_trainer::rng::SplitMix64;

/// Writes uint16 little-endian tokens, as nanoGPT does.
pub fn write_tokens(path: &Path, tokens: &[u16]) {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write token file");
}

/// A random order-1 Markov chain over `vocab` states; each row puts its mass on 3 successors.
pub struct Markov {
    pub p: Vec<Vec<f64>>,
}

impl Markov {
    pub fn new(vocab: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let p = (0..vocab)
            .map(|_| {
                let mut row = vec![0.0; vocab];
                for _ in 0..3 {
                    row[rng.below(vocab as u64) as usize] += 0.2 + rng.unit();
                }
                let s: f64 = row.iter().sum();
                row.iter().map(|x| x / s).collect()
            })
            .collect();
        Self { p }
    }

    pub fn stationary(&self) -> Vec<f64> {
        let n = self.p.len();
        let mut pi = vec![1.0 / n as f64; n];
        for _ in 0..10_000 {
            let mut next = vec![0.0; n];
            for (i, row) in self.p.iter().enumerate() {
                for (j, pij) in row.iter().enumerate() {
                    next[j] += pi[i] * pij;
                }
            }
            pi = next;
        }
        pi
    }

    /// Entropy rate Σ_i π_i H(P_i), nats.
    pub fn entropy_rate(&self) -> f64 {
        let h = |row: &[f64]| -row.iter().filter(|&&x| x > 0.0).map(|x| x * x.ln()).sum::<f64>();
        self.stationary().iter().zip(&self.p).map(|(pi, row)| pi * h(row)).sum()
    }

    pub fn sample(&self, n: usize, seed: u64) -> Vec<u16> {
        let mut rng = SplitMix64::new(seed);
        let mut s = 0usize;
        (0..n)
            .map(|_| {
                let u = rng.unit();
                let mut acc = 0.0;
                let mut next = self.p[s].len() - 1;
                for (j, pj) in self.p[s].iter().enumerate() {
                    acc += pj;
                    if u < acc {
                        next = j;
                        break;
                    }
                }
                s = next;
                s as u16
            })
            .collect()
    }
}

/// Writes a Markov-chain dataset (no meta.json: the nanoGPT layout) into `dir`.
pub fn markov_dataset(dir: &Path, vocab: usize, train: usize, val: usize) -> Markov {
    let chain = Markov::new(vocab, 42);
    std::fs::create_dir_all(dir).expect("mkdir");
    write_tokens(&dir.join("train.bin"), &chain.sample(train, 1));
    write_tokens(&dir.join("val.bin"), &chain.sample(val, 2));
    chain
}

/// A small CPU job over `data_dir`; `extra` is appended TOML (later tables may add keys).
pub fn tiny_job(data_dir: &Path, ckpt_dir: &Path, vocab: usize, steps: u64, extra: &str) -> String {
    format!(
        r#"device = "cpu"
threads = 2

[model]
n_layer = 1
d_model = 32
n_heads = 2
n_ctx = 32
vocab = {vocab}

[data]
dir = "{data}"

[train]
batch_tokens = 1024
micro_batch = 8
lr = 0.01
warmup_steps = 10
seed = 3

[stop]
steps = {steps}

[checkpoint]
dir = "{ckpt}"
{extra}
"#,
        data = data_dir.display(),
        ckpt = ckpt_dir.display(),
    )
}

pub fn parse(text: &str) -> JobConfig {
    JobConfig::from_toml(text, "test.toml").expect("valid test config")
}
