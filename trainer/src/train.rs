//! The training loop of one attempt: builds the model, optionally resumes, runs accumulated
//! steps with gradient-noise measurement, evaluates, checkpoints, and reports events.
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::Job;
use crate::control::Controls;
use crate::data::{Dataset, read_meta};
use crate::device::{autocast, configure_precision, select_device};
use crate::error::Result;
use crate::events::{Event, PhaseTimes, StopReason};
use crate::member::{Member, StepStats};
use crate::model::Gpt;
use crate::train_cuda::CudaStep;

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

/// The content identity a fingerprint names: meta.json's sha256, else the token counts.
pub(crate) fn data_id(meta: Option<crate::data::Meta>, data: &Dataset) -> String {
    meta.map(|m| m.sha256).unwrap_or_else(|| format!("train:{} val:{}", data.train_tokens_available, data.val.len()))
}

/// Checks that the checkpoint in `dir` is whole and was written by `job` over its dataset;
/// returns its step.
pub fn verify_checkpoint(job: &Job, dir: &Path) -> Result<u64> {
    let cfg = &job.config;
    let meta = read_meta(&cfg.data.dir)?;
    let data = Dataset::open(&cfg.data.dir, job.shape.vocab, job.shape.n_ctx, cfg.data.max_tokens)?;
    let ck = crate::checkpoint::load(dir)?;
    if ck.state.fingerprint != fingerprint(job, &data_id(meta, &data)) {
        return Err(crate::error::TrainerError::checkpoint(
            dir,
            "written by a different job config or dataset (fingerprint differs)",
        ));
    }
    Ok(ck.state.step)
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
    run_until(job, resume, &Controls::default(), emit)
}

/// The host wait of a step: the mean train loss and the two squared norms, as f64.
pub(crate) fn read_stats(losses: &[Tensor], small_sq: Tensor, big_sq: Tensor) -> Result<StepStats> {
    let train_loss = Tensor::f_stack(losses, 0)?.f_mean(Kind::Double)?;
    let stats = Tensor::f_stack(&[train_loss, small_sq, big_sq], 0)?.f_to_device(Device::Cpu)?;
    let v: Vec<f64> = Vec::<f64>::try_from(&stats)?;
    Ok(StepStats { train_loss: v[0], small_sq: v[1], big_sq: v[2] })
}

/// [`run`] under `controls`: `stop` makes the attempt checkpoint at the next step and return
/// [`Outcome::Preempted`], so a later attempt resumes exactly there; `threads` resizes libtorch's
/// CPU pool between steps.
pub fn run_until(
    job: &Job,
    resume: Option<&Path>,
    controls: &Controls,
    emit: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    let began = Instant::now();
    let mut times = PhaseTimes::default();
    let cfg = &job.config;
    let device = prepare_device(cfg)?;
    let mut threads = tch::get_num_threads();
    let shape = job.shape;
    let meta = read_meta(&cfg.data.dir)?;
    let data = Dataset::open(&cfg.data.dir, shape.vocab, shape.n_ctx, cfg.data.max_tokens)?;
    let data_id = data_id(meta, &data);

    tch::manual_seed(job.config.train.seed as i64);
    let (_vs, model, named) = build_model(shape, device);
    let params: Vec<Tensor> = named.iter().map(|(_, p)| p.shallow_clone()).collect();
    let mut m = Member::new(job, fingerprint(job, &data_id), named, &data.train)?;
    if let Some(dir) = resume {
        m.resume(dir)?;
    }
    emit(&Event::Started(m.run_info(format!("{device:?}"), data.train_tokens_available)));

    let batches = Batches { device, n_ctx: shape.n_ctx, tokens: &data.train };
    let eval_starts = data.eval_starts(cfg.eval.windows, shape.n_ctx);
    let micro = job.micro_seqs as usize;
    // CUDA: fused AdamW, static input buffers and (after warm-up) a captured step.
    let mut cuda = if device.is_cuda() {
        m.opt.use_fused()?;
        Some(CudaStep::new(&m, device)?)
    } else {
        None
    };
    times.startup = began.elapsed().as_secs_f64();
    let mut clock = Clock::default();
    let outcome = loop {
        if m.done() {
            break m.finished();
        }
        controls.apply_threads(&mut threads);
        let started = Instant::now();
        let lr = m.lr();
        let stats = if let Some(c) = cuda.as_mut() {
            clock.lap();
            let stats = c.step(&mut m, &model, &params, lr)?; // one host sync per step
            if c.captured() {
                times.replay += clock.lap();
            } else {
                times.sync += clock.lap();
            }
            stats
        } else {
            let mut losses = Vec::with_capacity(job.accumulation() as usize);
            for _ in 0..job.accumulation() {
                clock.lap();
                let (x, y) = m.next_inputs();
                let (xt, yt) = batches.tensors(&x, &y)?;
                times.data += clock.lap();
                let loss = autocast(device, || model.loss(&xt, &yt))?;
                times.forward += clock.lap();
                loss.f_backward()?;
                times.backward += clock.lap();
                losses.push(loss.f_detach()?.f_to_kind(Kind::Double)?);
                m.acc.absorb_params(&params)?;
                times.gns += clock.lap();
            }
            let (small_sq, big_sq) = m.update(lr)?;
            times.optimizer += clock.lap();
            let stats = read_stats(&losses, small_sq, big_sq)?; // one host sync per step
            times.sync += clock.lap();
            stats
        };
        times.steps += 1;
        let step_secs = started.elapsed().as_secs_f64(); // training only, evaluation excluded
        if !stats.train_loss.is_finite() {
            break Outcome::Diverged { step: m.step, train_loss: stats.train_loss };
        }
        let val_loss = if m.eval_due() {
            let v = evaluate(&model, &data, &eval_starts, micro, device)?;
            times.eval += clock.lap();
            if let Some(out) = m.record_eval(v) {
                break out;
            }
            Some(v)
        } else {
            None
        };
        let stop = controls.stopped();
        let ended = m.report(stats, val_loss, lr, step_secs, stop, &mut |e| {
            if matches!(e, Event::Checkpoint { .. }) {
                times.checkpoint += clock.lap();
            }
            emit(e);
        })?;
        times.emit += clock.lap();
        if let Some(out) = ended {
            break out;
        }
    };
    times.captured = cuda.as_ref().is_some_and(CudaStep::captured);
    if let Some(why) = cuda.as_ref().and_then(|c| c.fallback.as_ref()) {
        eprintln!("ladder-train: steps ran eagerly: {why}");
    }
    emit(&Event::Profile(times));
    Ok(outcome)
}

/// The final event of a member that ended with `o`.
pub fn outcome_event(o: &Outcome, batch_tokens: u64) -> Event {
    match *o {
        Outcome::Finished { step, reason, val_loss } => {
            Event::Finished { step, tokens: step.saturating_mul(batch_tokens), reason, val_loss }
        }
        Outcome::Diverged { step, train_loss } => Event::Failed {
            kind: crate::events::FailureKind::Diverged,
            message: format!("diverged: loss {train_loss} at step {step}"),
            step: Some(step),
        },
        Outcome::Preempted { step } => Event::Preempted { step },
    }
}

/// Seconds since the previous lap.
#[derive(Debug)]
pub(crate) struct Clock(Instant);

impl Default for Clock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock {
    pub(crate) fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let secs = now.duration_since(self.0).as_secs_f64();
        self.0 = now;
        secs
    }
}
