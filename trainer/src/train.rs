//! The training loop of one attempt: builds the model, optionally resumes, runs accumulated
//! steps with gradient-noise measurement, evaluates, checkpoints, and reports events.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::accounting::Accounting;
use crate::checkpoint::{self, TrainState};
use crate::config::Job;
use crate::data::{Dataset, Sampler, read_meta};
use crate::device::{autocast, configure_precision, select_device};
use crate::error::{Result, TrainerError};
use crate::events::{Event, MetricPoint, RunInfo, StopReason};
use crate::gns::{GnsEma, GnsSample, GradAccumulator};
use crate::model::{Gpt, decays};
use crate::optim::{AdamW, AdamWConfig, clip_grad_norm, lr_at};

/// How an attempt ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        step: u64,
        reason: StopReason,
        val_loss: Option<f64>,
    },
    /// The loss became NaN or infinite at this step.
    Diverged {
        step: u64,
        train_loss: f64,
    },
    /// `stop` was raised (SIGTERM): checkpointed at `step` and returned early.
    Preempted {
        step: u64,
    },
}

/// Loads a job config's dataset vocabulary and validates the job.
pub fn resolve_job(config: &crate::config::JobConfig) -> Result<Job> {
    let meta = read_meta(&config.data.dir)?;
    Ok(config.resolve(meta.map(|m| m.vocab_size))?)
}

/// Identity of everything that shapes the trajectory; a checkpoint resumes only the same job.
pub fn fingerprint(job: &Job, data_id: &str) -> String {
    let c = &job.config;
    let key = serde_json::json!({
        "shape": job.shape,
        "train": c.train,
        "max_tokens": c.data.max_tokens,
        "total_steps": job.total_steps,
        "data": data_id,
    });
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}

/// Windows of a token stream as (inputs, targets) tensors on the job's device.
pub(crate) struct Batches<'a> {
    pub(crate) device: Device,
    pub(crate) n_ctx: i64,
    pub(crate) tokens: &'a [u16],
}

/// The job's device, with its precision and thread count applied.
pub(crate) fn prepare_device(cfg: &crate::config::JobConfig) -> Result<Device> {
    let device = select_device(&cfg.device)?;
    configure_precision(device)?;
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t);
    }
    Ok(device)
}

/// A model initialised on the CPU generator and then moved, so that a seed gives the same
/// weights on every device; its variables in name order. The store must outlive the model.
pub(crate) fn build_model(shape: crate::model::Shape, device: Device) -> (VarStore, Gpt, Vec<(String, Tensor)>) {
    let mut vs = VarStore::new(Device::Cpu);
    let model = Gpt::new(&vs.root(), shape);
    vs.set_device(device);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    (vs, model, named)
}

impl Batches<'_> {
    pub(crate) fn tensors(&self, x: &[i64], y: &[i64]) -> Result<(Tensor, Tensor)> {
        let shape = [-1, self.n_ctx];
        let x = Tensor::f_from_slice(x)?.f_view(shape)?.f_to_device(self.device)?;
        let y = Tensor::f_from_slice(y)?.f_view(shape)?.f_to_device(self.device)?;
        Ok((x, y))
    }
}

/// Mean validation loss over the fixed held-out windows.
fn evaluate(model: &Gpt, data: &Dataset, starts: &[usize], chunk: usize, device: Device) -> Result<f64> {
    let _guard = tch::no_grad_guard();
    let n_ctx = model.shape.n_ctx as usize;
    let b = Batches { device, n_ctx: n_ctx as i64, tokens: &data.val };
    let mut parts = Vec::new();
    for group in starts.chunks(chunk.max(1)) {
        let mut x = Vec::with_capacity(group.len() * n_ctx);
        let mut y = Vec::with_capacity(group.len() * n_ctx);
        for &s in group {
            x.extend(b.tokens[s..s + n_ctx].iter().map(|&t| i64::from(t)));
            y.extend(b.tokens[s + 1..s + n_ctx + 1].iter().map(|&t| i64::from(t)));
        }
        let (xt, yt) = b.tensors(&x, &y)?;
        let loss = autocast(device, || model.loss(&xt, &yt))?;
        parts.push(loss.f_to_kind(Kind::Double)?.f_mul_scalar(group.len() as f64)?);
    }
    let total = Tensor::f_stack(&parts, 0)?.f_sum(Kind::Double)?.f_double_value(&[])?;
    Ok(total / starts.len() as f64)
}

/// Runs one attempt. `resume` names a checkpoint folder. Events go to `emit` as they happen.
pub fn run(job: &Job, resume: Option<&Path>, emit: &mut dyn FnMut(&Event)) -> Result<Outcome> {
    run_until(job, resume, &AtomicBool::new(false), emit)
}

/// [`run`], checking `stop` after every step: once raised, the attempt checkpoints and returns
/// [`Outcome::Preempted`], so a later attempt resumes exactly where this one stopped.
pub fn run_until(job: &Job, resume: Option<&Path>, stop: &AtomicBool, emit: &mut dyn FnMut(&Event)) -> Result<Outcome> {
    let cfg = &job.config;
    let device = prepare_device(cfg)?;
    let shape = job.shape;
    let meta = read_meta(&cfg.data.dir)?;
    let data = Dataset::open(&cfg.data.dir, shape.vocab, shape.n_ctx, cfg.data.max_tokens)?;
    let data_id = meta
        .map(|m| m.sha256)
        .unwrap_or_else(|| format!("train:{} val:{}", data.train_tokens_available, data.val.len()));
    let fingerprint = fingerprint(job, &data_id);
    let acct = Accounting::of(&shape);
    let t = &cfg.train;

    tch::manual_seed(t.seed as i64);
    let (_vs, model, mut named) = build_model(shape, device);
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let params: Vec<Tensor> = named.iter().map(|(_, p)| p.shallow_clone()).collect();
    let decay: Vec<bool> = params.iter().map(decays).collect();
    let mut acc = GradAccumulator::new(params.iter().map(Tensor::shallow_clone).collect())?;
    let adam_cfg = AdamWConfig { beta1: t.beta1, beta2: t.beta2, eps: t.eps, weight_decay: t.weight_decay };
    let mut opt = AdamW::new(params, decay, adam_cfg)?;
    let mut sampler = Sampler::new(t.seed);
    let mut gns = GnsEma::new(t.gns_ema);
    let (mut step, mut tokens) = (0u64, 0u64);
    let mut best_val: Option<f64> = None;
    let mut evals_since_best = 0u64;

    let mut resumed_from_step = None;
    if let Some(dir) = resume {
        let ck = checkpoint::load(dir)?;
        if ck.state.fingerprint != fingerprint {
            return Err(TrainerError::checkpoint(
                dir,
                "written by a different job config or dataset (fingerprint differs)",
            ));
        }
        checkpoint::restore_into(dir, "model.safetensors", &mut named, &ck.model)?;
        let mut live_opt = opt.state(&names);
        checkpoint::restore_into(dir, "optimizer.safetensors", &mut live_opt, &ck.optimizer)?;
        opt.step = ck.state.adam_step;
        sampler = ck.state.sampler;
        gns = ck.state.gns;
        step = ck.state.step;
        tokens = ck.state.tokens;
        best_val = ck.state.best_val;
        evals_since_best = ck.state.evals_since_best;
        resumed_from_step = Some(step);
    }

    emit(&Event::Started(RunInfo {
        shape,
        accounting: acct,
        batch_tokens: job.batch_tokens(),
        micro_batch_seqs: job.micro_seqs,
        accumulation: job.accumulation(),
        total_steps: job.total_steps,
        peak_lr: job.peak_lr,
        device: format!("{device:?}"),
        dataset_tokens: data.train.len() as u64,
        dataset_tokens_available: data.train_tokens_available,
        resumed_from_step,
        fingerprint: fingerprint.clone(),
    }));

    let n_ctx = shape.n_ctx as usize;
    let micro = job.micro_seqs as usize;
    let batches = Batches { device, n_ctx: shape.n_ctx, tokens: &data.train };
    let eval_starts = data.eval_starts(cfg.eval.windows, shape.n_ctx);
    let b_small = job.micro_seqs * shape.n_ctx as u64;
    let b_big = job.batch_tokens();
    let ckpt_root: PathBuf = cfg.checkpoint.dir.clone();
    let save = |step: u64,
                tokens: u64,
                sampler: Sampler,
                gns: GnsEma,
                (best_val, evals_since_best): (Option<f64>, u64),
                opt: &AdamW,
                emit: &mut dyn FnMut(&Event)|
     -> Result<()> {
        std::fs::create_dir_all(&ckpt_root)
            .map_err(|e| TrainerError::io(format!("creating {}", ckpt_root.display()), e))?;
        let state = TrainState {
            format_version: checkpoint::FORMAT_VERSION,
            fingerprint: fingerprint.clone(),
            step,
            tokens,
            sampler,
            gns,
            adam_step: opt.step,
            best_val,
            evals_since_best,
        };
        let (path, bytes) = checkpoint::save(&ckpt_root, &state, &named, &opt.state(&names))?;
        checkpoint::prune(&ckpt_root, cfg.checkpoint.keep)?;
        emit(&Event::Checkpoint { step, path: path.display().to_string(), bytes });
        Ok(())
    };

    let mut last_val = None;
    while step < job.total_steps {
        let started = Instant::now();
        let lr = lr_at(step, job.peak_lr, t.warmup_steps, job.total_steps, t.schedule, t.min_lr_ratio);
        let mut losses = Vec::with_capacity(job.accumulation() as usize);
        for _ in 0..job.accumulation() {
            let (x, y) = sampler.next_batch(batches.tokens, micro, n_ctx);
            let (xt, yt) = batches.tensors(&x, &y)?;
            let loss = autocast(device, || model.loss(&xt, &yt))?;
            loss.f_backward()?;
            losses.push(loss.f_detach()?.f_to_kind(Kind::Double)?);
            acc.absorb()?;
        }
        let (small_sq, big_sq) = acc.finish()?;
        clip_grad_norm(acc.grads(), &big_sq, t.grad_clip)?;
        opt.update(acc.grads(), lr)?;
        step += 1;
        tokens += b_big;

        // One host sync per step.
        let train_loss_t = Tensor::f_stack(&losses, 0)?.f_mean(Kind::Double)?;
        let stats = Tensor::f_stack(&[train_loss_t, small_sq, big_sq], 0)?.f_to_device(Device::Cpu)?;
        let stats: Vec<f64> = Vec::<f64>::try_from(&stats)?;
        let (train_loss, small, big) = (stats[0], stats[1], stats[2]);
        let step_secs = started.elapsed().as_secs_f64(); // training only, evaluation excluded
        if !train_loss.is_finite() {
            return Ok(Outcome::Diverged { step, train_loss });
        }
        let last = step == job.total_steps;
        let val_loss = if step % cfg.eval.every == 0 || last {
            let v = evaluate(&model, &data, &eval_starts, micro, device)?;
            if !v.is_finite() {
                return Ok(Outcome::Diverged { step, train_loss: v });
            }
            last_val = Some(v);
            if best_val.is_none_or(|b| v < b) {
                best_val = Some(v);
                evals_since_best = 0;
            } else {
                evals_since_best += 1;
            }
            Some(v)
        } else {
            None
        };
        let sample = GnsSample { small_sq: small, big_sq: big, b_small: b_small as f64, b_big: b_big as f64 };
        let b_simple = gns.update(&sample);
        emit(&Event::Metrics(MetricPoint {
            step,
            tokens,
            flops: acct.compute_kaplan(tokens),
            flops_exact: acct.compute_exact(tokens),
            train_loss,
            val_loss,
            lr,
            grad_norm: big.sqrt(),
            gns_small_sq: small,
            gns_big_sq: big,
            b_small,
            b_big,
            b_simple,
            tokens_per_s: b_big as f64 / step_secs,
        }));
        let hit_target = matches!((val_loss, cfg.stop.target_val_loss), (Some(v), Some(target)) if v <= target);
        let stalled = val_loss.is_some() && cfg.stop.patience.is_some_and(|p| evals_since_best >= p) && !last;
        let periodic = cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0;
        let preempted = stop.load(Ordering::SeqCst) && !last && !hit_target && !stalled;
        if periodic || last || hit_target || stalled || preempted {
            save(step, tokens, sampler, gns, (best_val, evals_since_best), &opt, emit)?;
        }
        if hit_target {
            return Ok(Outcome::Finished { step, reason: StopReason::TargetLoss, val_loss });
        }
        if stalled {
            return Ok(Outcome::Finished { step, reason: StopReason::EarlyStopped, val_loss });
        }
        if preempted {
            return Ok(Outcome::Preempted { step });
        }
    }
    let by_tokens = cfg.stop.tokens.is_some_and(|tk| job.total_steps * job.batch_tokens() >= tk)
        && cfg.stop.steps.is_none_or(|s| s > job.total_steps);
    let reason = if by_tokens { StopReason::Tokens } else { StopReason::Steps };
    Ok(Outcome::Finished { step, reason, val_loss: last_val })
}
