//! A fused run: several jobs of one shape and batch size, differing in seed, learning rate or
//! schedule, trained in one process as one batched model ([`FusedGpt`]). Each member keeps its
//! own data stream, curve, noise scale, early stopping, checkpoints and events; a member that
//! ends (finished, diverged, dropped by its worker) leaves the stack and the rest go on.
use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::config::Job;
use crate::control::Controls;
use crate::data::{Dataset, read_meta};
use crate::device::autocast;
use crate::error::{Result, TrainerError};
use crate::events::{Event, PhaseTimes};
use crate::fused::FusedGpt;
use crate::member::{Member, StepStats};
use crate::outcome::{Outcome, outcome_event};
use crate::setup::{Clock, build_model, fingerprint, prepare_device};

/// Checks that `jobs` can share one batched model; the error names the first pair that differs.
pub fn check_compatible(jobs: &[Job]) -> Result<()> {
    let Some(first) = jobs.first() else {
        return Err(TrainerError::invalid("fused", "no jobs to fuse"));
    };
    for (i, j) in jobs.iter().enumerate().skip(1) {
        let (a, b) = (&first.config, &j.config);
        let differ = |what: &str, x: String, y: String| {
            Err(TrainerError::invalid(
                "fused",
                format!(
                    "member 0 and member {i} differ in {what} ({x} vs {y}); fused jobs need the same shape, batch, micro-batch, data, evaluation and device"
                ),
            ))
        };
        if j.shape != first.shape {
            let s = |s: &crate::model::Shape| {
                format!(
                    "{}x{} heads {} d_ff {} n_ctx {} vocab {}",
                    s.n_layer, s.d_model, s.n_heads, s.d_ff, s.n_ctx, s.vocab
                )
            };
            return differ("model shape", s(&first.shape), s(&j.shape));
        }
        if j.batch_tokens() != first.batch_tokens() || j.micro_seqs != first.micro_seqs {
            return differ(
                "batch",
                format!("{} tokens in micro-batches of {}", first.batch_tokens(), first.micro_seqs),
                format!("{} tokens in micro-batches of {}", j.batch_tokens(), j.micro_seqs),
            );
        }
        if a.data.dir != b.data.dir {
            return differ("data.dir", a.data.dir.display().to_string(), b.data.dir.display().to_string());
        }
        if (a.eval.every, a.eval.windows) != (b.eval.every, b.eval.windows) {
            return differ(
                "eval",
                format!("every {} windows {}", a.eval.every, a.eval.windows),
                format!("every {} windows {}", b.eval.every, b.eval.windows),
            );
        }
        if a.device != b.device || a.threads != b.threads {
            return differ("device", format!("{} {:?}", a.device, a.threads), format!("{} {:?}", b.device, b.threads));
        }
        if a.checkpoint.dir == b.checkpoint.dir {
            return differ("checkpoint.dir (must differ)", a.checkpoint.dir.display().to_string(), String::new());
        }
    }
    Ok(())
}

/// Mean validation loss of every member in the stack over the same fixed windows.
fn evaluate(model: &FusedGpt, data: &Dataset, starts: &[usize], chunk: usize, device: Device) -> Result<Vec<f64>> {
    let _guard = tch::no_grad_guard();
    let n_ctx = model.shape.n_ctx as usize;
    let k = model.k as usize;
    let mut parts: Vec<Vec<Tensor>> = (0..k).map(|_| Vec::new()).collect();
    for group in starts.chunks(chunk.max(1)) {
        let mut x = Vec::with_capacity(k * group.len() * n_ctx);
        let mut y = Vec::with_capacity(k * group.len() * n_ctx);
        for _ in 0..k {
            for &s in group {
                x.extend(data.val[s..s + n_ctx].iter().map(|&t| i64::from(t)));
                y.extend(data.val[s + 1..s + n_ctx + 1].iter().map(|&t| i64::from(t)));
            }
        }
        let (xt, yt) = stacked_inputs(&x, &y, k, n_ctx, device)?;
        let losses = autocast(device, || model.losses(&xt, &yt))?;
        for (p, l) in parts.iter_mut().zip(losses) {
            p.push(l.f_to_kind(Kind::Double)?.f_mul_scalar(group.len() as f64)?);
        }
    }
    let totals = parts.iter().map(|p| Tensor::f_stack(p, 0)?.f_sum(Kind::Double)).collect::<Result<Vec<_>, _>>()?;
    let host: Vec<f64> = Vec::<f64>::try_from(&Tensor::f_stack(&totals, 0)?.f_to_device(Device::Cpu)?)?;
    Ok(host.into_iter().map(|t| t / starts.len() as f64).collect())
}

/// Flattened ids of K members as `[K, B, T]` on `device`.
fn stacked_inputs(x: &[i64], y: &[i64], k: usize, n_ctx: usize, device: Device) -> Result<(Tensor, Tensor)> {
    let shape = [k as i64, -1, n_ctx as i64];
    let x = Tensor::f_from_slice(x)?.f_view(shape)?.f_to_device(device)?;
    let y = Tensor::f_from_slice(y)?.f_view(shape)?.f_to_device(device)?;
    Ok((x, y))
}

/// A gradient view BLAS reads as a separate tensor would: one that sits off the 64-byte
/// alignment of a fresh allocation is copied, so its norm sums in the same order.
fn aligned(g: Tensor) -> Result<Tensor> {
    if g.defined() && g.device() == Device::Cpu && (g.data_ptr() as usize) % 64 != 0 { Ok(g.copy()) } else { Ok(g) }
}

/// Member `i`'s share of the training tokens (its first D), checked to hold one window.
fn member_tokens<'d>(data: &'d Dataset, j: &Job, i: usize, need: usize) -> Result<&'d [u16]> {
    let d = j
        .config
        .data
        .max_tokens
        .map_or(data.train.len(), |d| usize::try_from(d).unwrap_or(usize::MAX).min(data.train.len()));
    if d < need {
        return Err(TrainerError::data(
            j.config.data.dir.join(crate::data::TRAIN_FILE),
            format!("member {i}: {d} tokens (after the D limit) is fewer than one window of n_ctx + 1 = {need}"),
        ));
    }
    Ok(&data.train[..d])
}

/// The stacked model of `jobs`, each member initialised from its own seed on the CPU.
fn stacked_model(jobs: &[Job], shape: crate::model::Shape, device: Device) -> Result<FusedGpt> {
    let mut inits = Vec::with_capacity(jobs.len());
    for j in jobs {
        tch::manual_seed(j.config.train.seed as i64);
        let (_vs, _model, named) = build_model(shape, Device::Cpu)?;
        inits.push(named);
    }
    FusedGpt::stack(shape, &inits, device)
}

/// A fused run in progress: the stacked model, each member's state, and which are still in it.
struct Fused<'a> {
    model: FusedGpt,
    members: Vec<Member<'a>>,
    outcomes: Vec<Option<Outcome>>,
    dropped: Vec<bool>,
    /// `active[r]` is the member at row r of the stack.
    active: Vec<usize>,
    device: Device,
    times: PhaseTimes,
    clock: Clock,
}

impl Fused<'_> {
    /// Members neither ended nor dropped; restacks the model when that set changed. Empty when
    /// the run is over.
    fn live(&mut self, controls: &Controls) -> Result<bool> {
        let n = self.members.len();
        for i in controls.take_dropped() {
            if i < n && self.outcomes[i].is_none() {
                self.dropped[i] = true;
            }
        }
        let live: Vec<usize> = (0..n).filter(|&i| self.outcomes[i].is_none() && !self.dropped[i]).collect();
        if live.is_empty() {
            return Ok(false);
        }
        if live != self.active {
            let rows: Vec<i64> =
                live.iter().filter_map(|i| self.active.iter().position(|a| a == i)).map(|r| r as i64).collect();
            self.model.retain(&rows)?;
            self.active = live;
            for (r, &i) in self.active.iter().enumerate() {
                let views = self.model.member_views(r as i64)?;
                self.members[i].opt.set_params(views.iter().map(|(_, t)| t.shallow_clone()).collect());
                self.members[i].named = views;
            }
        }
        Ok(true)
    }

    /// One optimizer step of every active member; returns each one's step figures (in row
    /// order) with one host sync for all.
    fn step(&mut self, lrs: &[f64], accumulation: u64, n_ctx: usize) -> Result<Vec<StepStats>> {
        let (device, k) = (self.device, self.active.len());
        let mut losses: Vec<Vec<Tensor>> = (0..k).map(|_| Vec::new()).collect();
        for _ in 0..accumulation {
            self.clock.lap();
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for &i in &self.active {
                let (xi, yi) = self.members[i].next_inputs();
                x.extend(xi);
                y.extend(yi);
            }
            let (xt, yt) = stacked_inputs(&x, &y, k, n_ctx, device)?;
            self.times.data += self.clock.lap();
            let ls = autocast(device, || self.model.losses(&xt, &yt))?;
            let total = ls.iter().try_fold(None::<Tensor>, |acc, l| -> Result<Option<Tensor>> {
                Ok(Some(match acc {
                    None => l.shallow_clone(),
                    Some(a) => a.f_add(l)?,
                }))
            })?;
            self.times.forward += self.clock.lap();
            if let Some(total) = total {
                total.f_backward()?;
            }
            self.times.backward += self.clock.lap();
            for (r, &i) in self.active.iter().enumerate() {
                losses[r].push(ls[r].f_detach()?.f_to_kind(Kind::Double)?);
                let grads = self.model.member_grads(r as i64)?.into_iter().map(aligned).collect::<Result<Vec<_>>>()?;
                self.members[i].acc.absorb(&grads)?;
            }
            self.model.zero_grads()?;
            self.times.gns += self.clock.lap();
        }
        let mut norms = Vec::with_capacity(k);
        for (r, &i) in self.active.iter().enumerate() {
            norms.push(self.members[i].update(lrs[r])?);
        }
        self.times.optimizer += self.clock.lap();
        // One host sync per step for all members.
        let mut all = Vec::with_capacity(3 * k);
        for (r, (small, big)) in norms.into_iter().enumerate() {
            all.push(Tensor::f_stack(&losses[r], 0)?.f_mean(Kind::Double)?);
            all.push(small);
            all.push(big);
        }
        let host: Vec<f64> = Vec::<f64>::try_from(&Tensor::f_stack(&all, 0)?.f_to_device(Device::Cpu)?)?;
        self.times.sync += self.clock.lap();
        self.times.steps += 1;
        Ok(host.chunks_exact(3).map(|c| StepStats { train_loss: c[0], small_sq: c[1], big_sq: c[2] }).collect())
    }

    /// Each active member's point, evaluation, checkpoint and (if it ended) final event.
    fn report(
        &mut self,
        stats: &[StepStats],
        evals: Option<&[f64]>,
        lrs: &[f64],
        step_secs: f64,
        stop: bool,
        emit: &mut dyn FnMut(usize, &Event),
    ) -> Result<()> {
        let (times, clock) = (&mut self.times, &mut self.clock);
        for (r, &i) in self.active.iter().enumerate() {
            let m = &mut self.members[i];
            let mut out = None;
            if !stats[r].train_loss.is_finite() {
                out = Some(Outcome::Diverged { step: m.step, train_loss: stats[r].train_loss });
            }
            let mut val = None;
            if out.is_none()
                && m.eval_due()
                && let Some(v) = evals.map(|e| e[r])
            {
                out = m.record_eval(v);
                val = Some(v);
            }
            if out.is_none() {
                out = m.report(stats[r], val, lrs[r], step_secs, stop, &mut |e| {
                    if matches!(e, Event::Checkpoint { .. }) {
                        times.checkpoint += clock.lap();
                    }
                    emit(i, e)
                })?;
            }
            if let Some(o) = out {
                emit(i, &outcome_event(&o, m.job.batch_tokens()));
                self.outcomes[i] = Some(o);
            }
        }
        times.emit += clock.lap();
        Ok(())
    }
}

/// Runs `jobs` as one fused attempt; `resumes[i]` is member i's checkpoint (all at one step).
/// Every member's events, its final one included, go to `emit(i, event)` as they happen; the
/// outcomes come back in member order, `None` for members dropped through `controls`.
pub fn run_fused(
    jobs: &[Job],
    resumes: &[Option<PathBuf>],
    controls: &Controls,
    emit: &mut dyn FnMut(usize, &Event),
) -> Result<Vec<Option<Outcome>>> {
    let began = Instant::now();
    check_compatible(jobs)?;
    if resumes.len() != jobs.len() {
        return Err(TrainerError::invalid("fused", format!("{} resume points for {} jobs", resumes.len(), jobs.len())));
    }
    let first = &jobs[0];
    let cfg = &first.config;
    let device = prepare_device(cfg)?;
    let mut threads = tch::get_num_threads();
    let shape = first.shape;
    let meta = read_meta(&cfg.data.dir)?;
    let data = Dataset::open(&cfg.data.dir, shape.vocab, shape.n_ctx, None)?;
    let data_id = crate::setup::data_id(meta, &data);
    let model = stacked_model(jobs, shape, device)?;
    let mut members = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        let train = member_tokens(&data, j, i, shape.n_ctx as usize + 1)?;
        let mut m = Member::new(j, fingerprint(j, &data_id), model.member_views(i as i64)?, train)?;
        if let Some(dir) = &resumes[i] {
            m.resume(dir)?;
        } else if let Some(b) = &j.config.branch {
            m.branch_from(&b.dir, b.step)?;
        }
        if device.is_cuda() {
            m.opt.use_fused()?;
        }
        members.push(m);
    }
    if let Some(m) = members.iter().find(|m| m.step != members[0].step) {
        return Err(TrainerError::invalid(
            "fused",
            format!(
                "members resume at different steps ({} and {}); fused members move in lockstep",
                members[0].step, m.step
            ),
        ));
    }
    let n = jobs.len();
    let mut run = Fused {
        model,
        members,
        outcomes: vec![None; n],
        dropped: vec![false; n],
        active: (0..n).collect(),
        device,
        times: PhaseTimes::default(),
        clock: Clock::default(),
    };
    for (i, m) in run.members.iter().enumerate() {
        emit(i, &Event::Started(m.run_info(format!("{device:?}"), data.train_tokens_available)));
        if m.done() {
            let out = m.finished(); // resumed from its final checkpoint
            emit(i, &outcome_event(&out, m.job.batch_tokens()));
            run.outcomes[i] = Some(out);
        }
    }
    let eval_starts = data.eval_starts(cfg.eval.windows, shape.n_ctx);
    let (micro, n_ctx) = (first.micro_seqs as usize, shape.n_ctx as usize);
    run.times.startup = began.elapsed().as_secs_f64();
    while run.live(controls)? {
        controls.apply_threads(&mut threads);
        let started = Instant::now();
        let lrs: Vec<f64> = run.active.iter().map(|&i| run.members[i].lr()).collect();
        let stats = run.step(&lrs, first.accumulation(), n_ctx)?;
        let step_secs = started.elapsed().as_secs_f64();
        let evals = if run.active.iter().any(|&i| run.members[i].eval_due()) {
            let v = evaluate(&run.model, &data, &eval_starts, micro, device)?;
            run.times.eval += run.clock.lap();
            Some(v)
        } else {
            None
        };
        run.report(&stats, evals.as_deref(), &lrs, step_secs, controls.stopped(), emit)?;
    }
    for (i, o) in run.outcomes.iter().enumerate() {
        if o.is_some() {
            emit(i, &Event::Profile(run.times.clone()));
        }
    }
    Ok(run.outcomes)
}
