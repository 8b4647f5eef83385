//! Sweep specs (TOML): parsed strictly, validated with the line and key of every error, and
//! expanded into one trainer [`JobConfig`] per grid point: shapes × D × B × learning rates × seeds.
//!
//! A spec may hold several `[[grid]]` blocks instead of one cross product: each names the axes
//! it sweeps (the rest default to `[model]` and `[train]`), and the sweep is the union of their
//! products with duplicates dropped. That is how a scaling study is laid out: an N axis, a batch
//! size axis at a few sizes, a data axis at a few sizes.
//!
//! - [`raw`]: the TOML as written, with spans;
//! - [`axes`]: each block's axes, validated, and the job count checked before expansion;
//! - [`expand`]: the cross products, deduplicated, into [`JobPlan`]s;
//! - [`branch`]: `[[branch]]` blocks: jobs forked from a named block's jobs at given points.
mod axes;
mod branch;
mod expand;
mod raw;

use crate::accounting::Accounting;
use crate::error::{DomainError, Result};
use crate::job::{EvalSpec, JobConfig, LrSpec};
use crate::limits::{MAX_FUSE, MAX_N_CTX};
use crate::shape::Shape;

use axes::{ShapeRule, Source};
use raw::RawSpec;

pub use crate::limits::{MAX_JOBS, MAX_N_TOTAL};

/// A validated sweep: its metadata and its jobs in expansion order.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub name: String,
    pub dataset: String,
    pub max_restarts: u32,
    /// Most jobs per fused model (1 = no fusing).
    pub fuse: u32,
    /// Which checkpoints each job keeps.
    pub retention: crate::retention::Retention,
    pub jobs: Vec<JobPlan>,
}

/// One grid point, with every fact derived from its config computed here, once.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The trainer config; `data.dir` and `checkpoint.dir` are filled in by the worker.
    pub config: JobConfig,
    pub shape: Shape,
    pub accounting: Accounting,
    pub total_steps: u64,
    pub lr: f64,
    /// D; None = all tokens.
    pub dataset_tokens: Option<u64>,
    /// Sequences per micro-batch.
    pub micro_seqs: u64,
    /// Training FLOPs the whole job runs (3 × exact forward FLOPs per token × tokens).
    pub cost_flops: f64,
    /// Device memory one attempt needs, by estimate (`crate::memory`).
    pub memory_bytes: u64,
    /// Jobs of one sweep with the same class may be fused: the same config but for seed and
    /// learning rate. None when the sweep does not fuse.
    pub fuse_class: Option<u64>,
    /// A branch: the index of its parent in [`SweepPlan::jobs`] (always earlier), and where and
    /// how it forks (its `parent` field unused until the coordinator assigns ids).
    pub parent: Option<usize>,
    pub branch: Option<crate::branch::BranchOf>,
    /// A sealed target: stored, but withheld from the fits until the predictions are locked.
    pub sealed: bool,
}

/// FNV-1a, 64 bits: a stable hash for grouping (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The fusing class of a job config: its identity with the seed and learning rate blanked.
pub fn fuse_class(config: &JobConfig) -> Result<u64> {
    let mut c = config.clone();
    c.train.seed = 0;
    c.train.lr = LrSpec::Value(0.0);
    Ok(fnv1a(c.identity()?.as_bytes()))
}

/// What the coordinator knows of the named dataset.
#[derive(Debug, Clone, Copy)]
pub struct DatasetFacts {
    pub vocab: i64,
    pub train_tokens: u64,
}

/// The name a spec gives its sweep, read leniently (nothing else validated); None when the text
/// has no name.
pub fn spec_name(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    toml::from_str::<Name>(text).ok().map(|n| n.name.trim().to_string())
}

/// The dataset a spec names, read leniently; None when the text names none.
pub fn spec_dataset(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Dataset {
        dataset: String,
    }
    toml::from_str::<Dataset>(text).ok().map(|d| d.dataset.trim().to_string())
}

/// The line of a byte offset, 1-based.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key whose line holds byte `offset`, with its table: `model.n_ctx`, `grid[1].tokens` (the
/// second `[[grid]]`); empty where that line assigns no key.
pub fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else { return String::new() };
    let key = key.trim().trim_matches('"');
    // A header line without its comment.
    let bare = |l: &str| l.split('#').next().unwrap_or("").trim().to_string();
    let header = text[..start].lines().rev().map(bare).find(|l| l.starts_with('['));
    let table = match header {
        Some(h) if h.starts_with("[[") => {
            let name = h.trim_start_matches('[').trim_end_matches(']').trim();
            let nth = text[..start].lines().filter(|l| bare(l) == h).count();
            format!("{name}[{}].", nth.saturating_sub(1))
        }
        Some(h) => format!("{}.", h.trim_start_matches('[').trim_end_matches(']').trim()),
        None => String::new(),
    };
    format!("{table}{key}")
}

/// Parses, validates and expands a spec. `dataset` answers for the dataset the spec names
/// (None = unknown dataset).
pub fn plan(text: &str, origin: &str, mut dataset: impl FnMut(&str) -> Option<DatasetFacts>) -> Result<SweepPlan> {
    let src = Source { origin, text };
    let raw: RawSpec = toml::from_str(text).map_err(|e| DomainError::Spec {
        origin: origin.to_string(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
        key: e.span().map(|s| key_at(text, s.start)).unwrap_or_default(),
        message: e.message().trim_end().to_string(),
    })?;
    let name = raw.name.get_ref().trim().to_string();
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.chars().all(|c| c.is_ascii_digit());
    if !name_ok {
        return Err(src.err(raw.name.span(), "name", "use 1-128 of [A-Za-z0-9._-], not all digits"));
    }
    let ds_name = raw.dataset.get_ref().clone();
    let facts = dataset(&ds_name).ok_or_else(|| {
        src.err(
            raw.dataset.span(),
            "dataset",
            format!("unknown dataset {ds_name:?}: register it with `ladder data add`"),
        )
    })?;
    let m = &raw.model;
    let n_ctx = *m.n_ctx.get_ref();
    if n_ctx <= 0 || n_ctx > MAX_N_CTX {
        return Err(src.err(m.n_ctx.span(), "model.n_ctx", format!("{n_ctx} is outside 1..={MAX_N_CTX}")));
    }
    let ff_mult = m.ff_mult.as_ref().map_or(4, |f| *f.get_ref());
    if ff_mult <= 0 {
        let span = m.ff_mult.as_ref().map_or(0..0, |f| f.span());
        return Err(src.err(span, "model.ff_mult", "must be positive"));
    }
    let rule = ShapeRule { model: m, n_ctx, ff_mult, vocab: facts.vocab };
    let common = common(&src, &raw, n_ctx, facts.vocab)?;
    let blocks = axes::blocks(&src, &raw, &rule, facts.train_tokens)?;
    let (mut jobs, groups) = expand::expand(&src, &common, &blocks)?;
    branch::plan(&src, &raw, &rule, &common, groups, &mut jobs)?;
    let max_restarts = raw.resources.as_ref().and_then(|r| r.max_restarts).unwrap_or(3);
    let retention = retention(&src, raw.retention.as_ref())?;
    Ok(SweepPlan { name, dataset: ds_name, max_restarts, fuse: common.fuse, retention, jobs })
}

/// The `[retention]` policy, checked: a job keeps at least its newest checkpoint.
fn retention(
    src: &Source<'_>,
    raw: Option<&toml::Spanned<crate::retention::Retention>>,
) -> Result<crate::retention::Retention> {
    use crate::retention::Retention;
    let Some(r) = raw else { return Ok(Retention::default()) };
    let p = *r.get_ref();
    if p.keep_latest == 0 {
        return Err(src.err(r.span(), "retention.keep_latest", "must be at least 1: a resume needs a checkpoint"));
    }
    if p.keep_latest > Retention::MAX_KEPT || p.keep_best > Retention::MAX_KEPT {
        return Err(src.err(
            r.span(),
            "retention",
            format!("keeps at most {} checkpoints per job", Retention::MAX_KEPT),
        ));
    }
    Ok(p)
}

/// What every job of the sweep shares, from `[model]`, `[train]` and `[resources]`.
fn common(src: &Source<'_>, raw: &RawSpec, n_ctx: i64, vocab: i64) -> Result<expand::Common> {
    let t = &raw.train;
    let res = raw.resources.as_ref();
    let device = match res.and_then(|r| r.device.as_ref()) {
        Some(d) => {
            d.get_ref().parse().map_err(|e: DomainError| src.err(d.span(), "resources.device", e.to_string()))?
        }
        None => crate::job::DeviceRequest::Auto,
    };
    let fuse = match res.and_then(|r| r.fuse.as_ref()) {
        None => 1,
        Some(f) => match u32::try_from(*f.get_ref()) {
            Ok(k) if (1..=MAX_FUSE).contains(&k) => k,
            _ => {
                return Err(src.err(
                    f.span(),
                    "resources.fuse",
                    format!("expected 1..={MAX_FUSE} jobs per fused model"),
                ));
            }
        },
    };
    let defaults = EvalSpec::default();
    Ok(expand::Common {
        n_ctx,
        vocab,
        micro: src.count(&t.micro_batch, "train.micro_batch")?,
        eval: EvalSpec {
            every: src.count(&t.eval_every, "train.eval_every")?.unwrap_or(defaults.every),
            windows: src.count(&t.eval_windows, "train.eval_windows")?.unwrap_or(defaults.windows),
        },
        checkpoint_every: src.count(&t.checkpoint_every, "train.checkpoint_every")?.unwrap_or(0),
        warmup: src.count(&t.warmup_steps, "train.warmup_steps")?.unwrap_or(0),
        schedule: t.schedule.unwrap_or(crate::job::Schedule::Cosine),
        weight_decay: t.weight_decay.unwrap_or(0.1),
        grad_clip: t.grad_clip.unwrap_or(1.0),
        target_val_loss: t.target_val_loss,
        device,
        threads: res.and_then(|r| r.threads),
        cuda_graphs: res.and_then(|r| r.cuda_graphs).unwrap_or(true),
        fuse,
    })
}

/// The message of an InvalidConfig without its own key prefix.
fn strip_invalid(e: DomainError) -> String {
    match e {
        DomainError::InvalidConfig { key, message } => format!("{message} ({key})"),
        other => other.to_string(),
    }
}
