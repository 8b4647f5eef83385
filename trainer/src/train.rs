//! The training loop of one attempt: builds the model, optionally resumes, runs accumulated
//! steps with gradient-noise measurement, evaluates, checkpoints, and reports events.
use std::path::Path;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::config::Job;
use crate::control::Controls;
use crate::data::{Dataset, read_meta};
use crate::device::autocast;
use crate::error::Result;
use crate::events::{Event, PhaseTimes};
use crate::member::Member;
use crate::model::Gpt;
use crate::outcome::Outcome;
use crate::setup::{Batches, Clock, build_model, data_id, fingerprint, prepare_device, read_stats};
use crate::train_cuda::CudaStep;

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
    let (_vs, model, named) = build_model(shape, device)?;
    let params: Vec<Tensor> = named.iter().map(|(_, p)| p.shallow_clone()).collect();
    let mut m = Member::new(job, fingerprint(job, &data_id), named, &data.train)?;
    if let Some(dir) = resume {
        m.resume(dir)?;
    } else if let Some(b) = &cfg.branch {
        m.branch_from(&b.dir, b.step)?;
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
