//! The cross product of each block's axes into job plans, in a fixed order (shapes, D, B,
//! learning rates, seeds), a point two blocks share kept once.
use std::collections::HashMap;
use std::path::PathBuf;

use super::axes::{Axes, Source};
use super::{JobPlan, fuse_class, strip_invalid};
use crate::error::Result;
use crate::job::{CheckpointSpec, DataSpec, EvalSpec, JobConfig, LrSpec, ModelSpec, Schedule, StopRule, TrainSpec};
use crate::memory::MemoryEstimate;
use crate::shape::Shape;

/// What every job of a sweep shares.
pub(super) struct Common {
    pub n_ctx: i64,
    pub vocab: i64,
    pub micro: Option<u64>,
    pub eval: EvalSpec,
    pub checkpoint_every: u64,
    pub warmup: u64,
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub target_val_loss: Option<f64>,
    pub device: crate::job::DeviceRequest,
    pub threads: Option<i32>,
    pub cuda_graphs: bool,
    pub fuse: u32,
}

/// One point of a block.
struct Point<'a> {
    shape: &'a Shape,
    d: Option<u64>,
    b: u64,
    lr: LrSpec,
    seed: u64,
}

impl Common {
    fn config(&self, axes: &Axes, p: &Point<'_>) -> JobConfig {
        let s = p.shape;
        JobConfig {
            model: ModelSpec {
                n_layer: s.n_layer,
                d_model: s.d_model,
                n_heads: Some(s.n_heads),
                d_head: None,
                d_ff: Some(s.d_ff),
                n_ctx: self.n_ctx,
                vocab: Some(self.vocab),
            },
            data: DataSpec { dir: PathBuf::new(), max_tokens: p.d },
            train: TrainSpec {
                batch_tokens: p.b,
                micro_batch: self.micro,
                lr: p.lr,
                warmup_steps: self.warmup,
                schedule: axes.schedule.unwrap_or(self.schedule),
                min_lr_ratio: 0.1,
                weight_decay: self.weight_decay,
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                grad_clip: self.grad_clip,
                seed: p.seed,
                gns_ema: crate::job::DEFAULT_GNS_EMA,
                decay_start: None,
                decay_shape: None,
                rewarmup_steps: None,
                rewarmup_from_lr: None,
            },
            stop: StopRule {
                steps: axes.steps,
                tokens: axes.tokens,
                target_val_loss: self.target_val_loss,
                patience: axes.patience,
            },
            eval: self.eval.clone(),
            checkpoint: CheckpointSpec { every: self.checkpoint_every, dir: PathBuf::new(), keep: 2, at: Vec::new() },
            device: self.device,
            threads: self.threads,
            cuda_graphs: self.cuda_graphs,
            gns: true,
            branch: None,
        }
    }
}

/// Each named block's jobs, as indices into the plan.
pub(super) type Groups = Vec<(String, Vec<usize>)>;

/// Every block's cross product, in order; a config two blocks share is planned once. Also
/// returns, for each named block, the indices of its jobs (a shared job in each block's list).
pub(super) fn expand(src: &Source<'_>, common: &Common, blocks: &[Axes]) -> Result<(Vec<JobPlan>, Groups)> {
    let total = blocks.iter().map(Axes::jobs).fold(0usize, usize::saturating_add);
    let mut jobs: Vec<JobPlan> = Vec::with_capacity(total);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut groups = Vec::new();
    for axes in blocks {
        let mut mine = Vec::new();
        for (shape, acct) in &axes.shapes {
            for &d in &axes.d_list {
                for (bi, &b) in axes.batches.iter().enumerate() {
                    for &lr in &axes.lrs {
                        for &seed in &axes.seeds {
                            let config = common.config(axes, &Point { shape, d, b, lr, seed });
                            let text = config.identity()?;
                            if let Some(&i) = seen.get(&text) {
                                if jobs[i].sealed != axes.sealed.is_some() {
                                    let key = axes.sealed.clone().unwrap_or_else(|| axes.key_batch.clone());
                                    return Err(src.err(
                                        0..0,
                                        &key,
                                        format!(
                                            "job {} ({}x{}, seed {seed}) is both a sealed target and a fitted run: a target must be a run no fit sees",
                                            i + 1,
                                            shape.n_layer,
                                            shape.d_model
                                        ),
                                    ));
                                }
                                mine.push(i);
                                continue;
                            }
                            seen.insert(text, jobs.len());
                            mine.push(jobs.len());
                            let key = format!("{}[{bi}]", axes.key_batch);
                            let mut plan = job_plan(src, common.vocab, common.fuse, config, shape, acct, &key)?;
                            plan.sealed = axes.sealed.is_some();
                            jobs.push(plan);
                        }
                    }
                }
            }
        }
        if let Some(name) = &axes.name {
            groups.push((name.clone(), mine));
        }
    }
    Ok((jobs, groups))
}

/// A config resolved into its plan: steps, learning rate, micro-batch, cost and memory. A
/// branch's cost counts its own steps only.
pub(super) fn job_plan(
    src: &Source<'_>,
    vocab: i64,
    fuse: u32,
    config: JobConfig,
    shape: &Shape,
    acct: &crate::accounting::Accounting,
    key: &str,
) -> Result<JobPlan> {
    let job = config.resolve(Some(vocab)).map_err(|e| src.err(0..0, key, strip_invalid(e)))?;
    // The job runs at the rate planned here, whatever rule gave it.
    let mut config = config;
    config.train.lr = crate::job::LrSpec::Value(job.peak_lr);
    let own_steps = job.total_steps - config.branch.as_ref().map_or(0, |b| b.step);
    let cost_flops = 3.0 * acct.fwd_flops_per_token_exact * own_steps as f64 * config.train.batch_tokens as f64;
    Ok(JobPlan {
        fuse_class: if fuse > 1 && config.branch.is_none() { Some(fuse_class(&config)?) } else { None },
        dataset_tokens: config.data.max_tokens,
        micro_seqs: job.micro_seqs,
        memory_bytes: MemoryEstimate::training(shape, job.micro_seqs, 1).total(),
        cost_flops,
        shape: *shape,
        accounting: *acct,
        total_steps: job.total_steps,
        lr: job.peak_lr,
        config,
        parent: None,
        branch: None,
        sealed: false,
    })
}
