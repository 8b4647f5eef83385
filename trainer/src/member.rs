//! One job's side of a training loop: its optimizer, gradient accumulator, data sampler, noise
//! scale averages, early-stopping memory, checkpoints and events. A single run has one member; a
//! fused run (several jobs of one shape trained as one batched model) has one per job, each
//! holding views of the stacked parameters, so every member's arithmetic is its own.
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::accounting::Accounting;
use crate::checkpoint::{self, TrainState};
use crate::config::Job;
use crate::data::Sampler;
use crate::error::{Result, TrainerError};
use crate::events::{Event, MetricPoint, RunInfo, StopReason};
use crate::gns::{GnsEma, GnsSample, GradAccumulator};
use crate::model::decays;
use crate::optim::{AdamW, AdamWConfig, clip_grad_norm};
use crate::outcome::Outcome;
use ladder_core::schedule::LrSchedule;

/// The host-side figures of one step: mean train loss, mean |G_small|², |G_big|².
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    pub train_loss: f64,
    pub small_sq: f64,
    pub big_sq: f64,
}

pub struct Member<'a> {
    pub job: &'a Job,
    pub fingerprint: String,
    pub names: Vec<String>,
    /// Live parameters in name order: the model's own tensors, or views into a fused stack.
    pub named: Vec<(String, Tensor)>,
    pub opt: AdamW,
    pub acc: GradAccumulator,
    pub sampler: Sampler,
    pub gns: GnsEma,
    pub step: u64,
    pub tokens: u64,
    best_val: Option<f64>,
    evals_since_best: u64,
    last_val: Option<f64>,
    acct: Accounting,
    ckpt_root: PathBuf,
    /// Training tokens this member draws from (its first D).
    pub train: &'a [u16],
    pub resumed_from_step: Option<u64>,
    schedule: LrSchedule,
}

impl<'a> Member<'a> {
    /// A fresh member over `named` (which must already hold the seeded initial weights).
    pub fn new(job: &'a Job, fingerprint: String, named: Vec<(String, Tensor)>, train: &'a [u16]) -> Result<Self> {
        let t = &job.config.train;
        let names = named.iter().map(|(n, _)| n.clone()).collect();
        let params: Vec<Tensor> = named.iter().map(|(_, p)| p.shallow_clone()).collect();
        let decay = params.iter().map(decays).collect();
        let acc = GradAccumulator::new(&params)?;
        let acc = if job.config.gns { acc } else { acc.without_noise_scale() };
        let cfg = AdamWConfig { beta1: t.beta1, beta2: t.beta2, eps: t.eps, weight_decay: t.weight_decay };
        let opt = AdamW::new(params, decay, cfg)?;
        Ok(Self {
            job,
            fingerprint,
            names,
            named,
            opt,
            acc,
            sampler: Sampler::new(t.seed),
            gns: GnsEma::new(t.gns_ema),
            step: 0,
            tokens: 0,
            best_val: None,
            evals_since_best: 0,
            last_val: None,
            acct: Accounting::of(&job.shape),
            ckpt_root: job.config.checkpoint.dir.clone(),
            train,
            resumed_from_step: None,
            schedule: LrSchedule::of(job),
        })
    }

    /// Loads the checkpoint in `dir` into the live tensors and state.
    pub fn resume(&mut self, dir: &Path) -> Result<()> {
        let ck = checkpoint::load(dir)?;
        if ck.state.fingerprint != self.fingerprint {
            return Err(TrainerError::checkpoint(
                dir,
                "written by a different job config or dataset (fingerprint differs)",
            ));
        }
        let (best_val, evals_since_best) = (ck.state.best_val, ck.state.evals_since_best);
        self.restore(dir, ck)?;
        self.best_val = best_val;
        self.evals_since_best = evals_since_best;
        Ok(())
    }

    /// What a resume and a branch both carry over from checkpoint `ck` (read from `dir`):
    /// weights, optimizer state, data position, noise-scale averages, step and token counts.
    fn restore(&mut self, dir: &Path, ck: checkpoint::Loaded) -> Result<()> {
        checkpoint::restore_into(dir, "model.safetensors", &mut self.named, &ck.model)?;
        let mut live_opt = self.opt.state(&self.names);
        checkpoint::restore_into(dir, "optimizer.safetensors", &mut live_opt, &ck.optimizer)?;
        let s = ck.state;
        self.opt.set_step(s.adam_step)?;
        self.sampler = s.sampler;
        self.gns = s.gns;
        self.step = s.step;
        self.tokens = s.tokens;
        self.resumed_from_step = Some(s.step);
        Ok(())
    }

    /// Starts a branch from its parent's checkpoint in `dir`: weights, optimizer state, data
    /// position, noise-scale averages, step and token counts carry over; early stopping starts
    /// afresh. The parent's fingerprint is not this job's, so it is not checked; every tensor's
    /// name and shape are, and the checkpoint must be at the branch point.
    pub fn branch_from(&mut self, dir: &Path, at_step: u64) -> Result<()> {
        let ck = checkpoint::load(dir)?;
        if ck.state.step != at_step {
            return Err(TrainerError::checkpoint(
                dir,
                format!("is at step {}, the branch starts at step {at_step}", ck.state.step),
            ));
        }
        self.restore(dir, ck)
    }

    pub fn run_info(&self, device: String, dataset_tokens_available: u64) -> RunInfo {
        let job = self.job;
        RunInfo {
            shape: job.shape,
            accounting: self.acct,
            batch_tokens: job.batch_tokens(),
            micro_batch_seqs: job.micro_seqs,
            accumulation: job.accumulation(),
            total_steps: job.total_steps,
            peak_lr: job.peak_lr,
            device,
            dataset_tokens: self.train.len() as u64,
            dataset_tokens_available,
            resumed_from_step: self.resumed_from_step,
            fingerprint: self.fingerprint.clone(),
        }
    }

    pub fn done(&self) -> bool {
        self.step >= self.job.total_steps
    }

    /// The learning rate of the step about to run.
    pub fn lr(&self) -> f64 {
        self.schedule.at(self.step)
    }

    /// B_small; equal to B_big when the noise scale is not measured (B_simple is then undefined).
    pub fn b_small(&self) -> u64 {
        if !self.acc.measures() {
            return self.job.batch_tokens();
        }
        self.job.micro_seqs * self.job.shape.n_ctx as u64
    }

    /// One micro-batch of windows: inputs and targets, flattened row-major.
    pub fn next_inputs(&mut self) -> (Vec<i64>, Vec<i64>) {
        let (micro, n_ctx) = (self.job.micro_seqs as usize, self.job.shape.n_ctx as usize);
        self.sampler.next_batch(self.train, micro, n_ctx)
    }

    /// Ends the accumulation: mean gradient, its norms, clipping and the AdamW update.
    /// Returns (mean |G_small|², |G_big|²) as device scalars.
    pub fn update(&mut self, lr: f64) -> Result<(Tensor, Tensor)> {
        let (small_sq, big_sq) = self.acc.finish()?;
        clip_grad_norm(self.acc.grads(), &big_sq, self.job.config.train.grad_clip)?;
        self.opt.update(self.acc.grads(), lr)?;
        self.step += 1;
        self.tokens += self.job.batch_tokens();
        Ok((small_sq, big_sq))
    }

    /// The device half of [`Member::update`] on CUDA with the fused optimizer: accumulation's end,
    /// norms, clipping and AdamW, touching no host state (so it can be captured and replayed).
    /// Returns (mean |G_small|², |G_big|²) as device scalars.
    pub fn update_device(&mut self) -> Result<(Tensor, Tensor)> {
        let (small_sq, big_sq) = self.acc.finish()?;
        clip_grad_norm(self.acc.grads(), &big_sq, self.job.config.train.grad_clip)?;
        self.opt.update_device(self.acc.grads())?;
        Ok((small_sq, big_sq))
    }

    /// The host half: counts the step [`Member::update_device`] (or its replay) ran.
    pub fn advance(&mut self) {
        self.opt.step += 1;
        self.step += 1;
        self.tokens += self.job.batch_tokens();
    }

    /// Whether this step is evaluated: every `eval.every` steps and at the last.
    pub fn eval_due(&self) -> bool {
        self.step % self.job.config.eval.every == 0 || self.step == self.job.total_steps
    }

    /// Records a validation loss; a non-finite one ends the member as diverged.
    pub fn record_eval(&mut self, v: f64) -> Option<Outcome> {
        if !v.is_finite() {
            return Some(Outcome::Diverged { step: self.step, train_loss: v });
        }
        self.last_val = Some(v);
        if self.best_val.is_none_or(|b| v < b) {
            self.best_val = Some(v);
            self.evals_since_best = 0;
        } else {
            self.evals_since_best += 1;
        }
        None
    }

    /// Emits the step's metric point, checkpoints where a rule says so, and returns how the
    /// member ended if it did. `stop` is the preemption request.
    pub fn report(
        &mut self,
        stats: StepStats,
        val_loss: Option<f64>,
        lr: f64,
        step_secs: f64,
        stop: bool,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<Option<Outcome>> {
        let (step, tokens) = (self.step, self.tokens);
        let (b_small, b_big) = (self.b_small(), self.job.batch_tokens());
        let sample =
            GnsSample { small_sq: stats.small_sq, big_sq: stats.big_sq, b_small: b_small as f64, b_big: b_big as f64 };
        let b_simple = self.gns.update(&sample);
        emit(&Event::Metrics(MetricPoint {
            step,
            tokens,
            flops: self.acct.compute_kaplan(tokens),
            flops_exact: self.acct.compute_exact(tokens),
            train_loss: stats.train_loss,
            val_loss,
            lr,
            grad_norm: stats.big_sq.sqrt(),
            gns_small_sq: stats.small_sq,
            gns_big_sq: stats.big_sq,
            b_small,
            b_big,
            b_simple,
            tokens_per_s: b_big as f64 / step_secs,
        }));
        let cfg = &self.job.config;
        let last = step == self.job.total_steps;
        let hit_target = matches!((val_loss, cfg.stop.target_val_loss), (Some(v), Some(target)) if v <= target);
        let stalled = val_loss.is_some() && cfg.stop.patience.is_some_and(|p| self.evals_since_best >= p) && !last;
        let periodic =
            (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || cfg.checkpoint.at.contains(&step);
        let preempted = stop && !last && !hit_target && !stalled;
        if periodic || last || hit_target || stalled || preempted {
            self.save(emit)?;
        }
        Ok(if hit_target {
            Some(Outcome::Finished { step, reason: StopReason::TargetLoss, val_loss })
        } else if stalled {
            Some(Outcome::Finished { step, reason: StopReason::EarlyStopped, val_loss })
        } else if preempted {
            Some(Outcome::Preempted { step })
        } else if last {
            Some(self.finished())
        } else {
            None
        })
    }

    /// The outcome of a member that ran all its steps.
    pub fn finished(&self) -> Outcome {
        let job = self.job;
        let cfg = &job.config;
        let by_tokens = cfg.stop.tokens.is_some_and(|tk| job.total_steps.saturating_mul(job.batch_tokens()) >= tk)
            && cfg.stop.steps.is_none_or(|s| s > job.total_steps);
        let reason = if by_tokens { StopReason::Tokens } else { StopReason::Steps };
        Outcome::Finished { step: self.step, reason, val_loss: self.last_val }
    }

    /// Writes a checkpoint of the current state and reports it.
    pub fn save(&self, emit: &mut dyn FnMut(&Event)) -> Result<()> {
        let root = &self.ckpt_root;
        std::fs::create_dir_all(root).map_err(|e| TrainerError::io(format!("creating {}", root.display()), e))?;
        let state = TrainState {
            format_version: checkpoint::FORMAT_VERSION,
            fingerprint: self.fingerprint.clone(),
            step: self.step,
            tokens: self.tokens,
            sampler: self.sampler,
            gns: self.gns,
            adam_step: self.opt.step,
            best_val: self.best_val,
            evals_since_best: self.evals_since_best,
        };
        let (path, bytes) = checkpoint::save(root, &state, &self.named, &self.opt.state(&self.names))?;
        checkpoint::prune(root, self.job.config.checkpoint.keep, &self.job.config.checkpoint.at)?;
        emit(&Event::Checkpoint { step: self.step, path: path.display().to_string(), bytes });
        Ok(())
    }
}
