//! The gradient noise scale measured directly at frozen weights: `M` independent micro-batch
//! gradients, no optimizer step. It is the ground truth that the streamed estimate of
//! [`crate::gns`] is checked against.
//!
//! With g_i the gradient of micro-batch i (b tokens each), Ḡ their mean and C = Σ/b:
//! tr(C) = Σ|g_i − Ḡ|²/(M − 1), |G|² = |Ḡ|² − tr(C)/M (both unbiased), tr(Σ) = b·tr(C), and
//! B_simple = tr(Σ)/|G|². Its standard error is a jackknife over `GROUPS` groups of micro-batches.
use std::path::Path;

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::checkpoint;
use crate::config::Job;
use crate::data::{Dataset, Sampler};
use crate::device::autocast;
use crate::error::{Result, TrainerError};
use crate::setup::{Batches, build_model, prepare_device};

const GROUPS: usize = 8;

/// What [`probe`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GnsProbe {
    pub step: u64,
    pub micro_batches: usize,
    /// Tokens per micro-batch.
    pub b_small: u64,
    pub tr_sigma: f64,
    pub g_sq: f64,
    pub b_simple: f64,
    /// Jackknife standard error of `b_simple`.
    pub b_simple_se: f64,
}

/// Running sums of one group of micro-batch gradients.
struct Sums {
    g: Tensor,
    sq: f64,
    m: usize,
}

/// (tr(Σ), |G|², B_simple) from the sum of `m` gradients and the sum of their squared norms.
fn estimate(g: &Tensor, sq: f64, m: usize, b_small: f64) -> Result<(f64, f64, f64)> {
    let mean = g.f_div_scalar(m as f64)?;
    let mean_sq = mean.f_dot(&mean)?.f_double_value(&[])?;
    let m = m as f64;
    let tr_c = (sq / m - mean_sq) * m / (m - 1.0);
    let g_sq = mean_sq - tr_c / m;
    let tr_sigma = b_small * tr_c;
    Ok((tr_sigma, g_sq, tr_sigma / g_sq))
}

/// Measures B_simple at the weights of checkpoint `dir` of `job`, from `micro_batches`
/// micro-batches of the job's micro-batch size drawn with `seed`.
pub fn probe(job: &Job, dir: &Path, micro_batches: usize, seed: u64) -> Result<GnsProbe> {
    if micro_batches < 2 * GROUPS {
        return Err(TrainerError::invalid(
            "micro_batches",
            format!("{micro_batches} is too few; give at least {}", 2 * GROUPS),
        ));
    }
    let cfg = &job.config;
    let device = prepare_device(cfg)?;
    let shape = job.shape;
    let data = Dataset::open(&cfg.data.dir, shape.vocab, shape.n_ctx, cfg.data.max_tokens)?;
    let (_vs, model, mut named) = build_model(shape, device)?;
    let ck = checkpoint::load(dir)?;
    checkpoint::restore_into(dir, "model.safetensors", &mut named, &ck.model)?;
    let params: Vec<Tensor> = named.iter().map(|(_, p)| p.shallow_clone()).collect();

    let n_ctx = shape.n_ctx as usize;
    let micro = job.micro_seqs as usize;
    let b_small = job.micro_seqs * shape.n_ctx as u64;
    let batches = Batches { device, n_ctx: shape.n_ctx, tokens: &data.train };
    let mut sampler = Sampler::new(seed);
    let mut groups: Vec<Sums> = Vec::with_capacity(GROUPS);
    for i in 0..micro_batches {
        let (x, y) = sampler.next_batch(batches.tokens, micro, n_ctx);
        let (xt, yt) = batches.tensors(&x, &y)?;
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_()?;
            }
        }
        autocast(device, || model.loss(&xt, &yt))?.f_backward()?;
        let _guard = tch::no_grad_guard();
        let flat: Vec<Tensor> =
            params.iter().map(|p| p.grad().f_reshape([-1])?.f_to_kind(Kind::Double)).collect::<Result<_, _>>()?;
        let g = Tensor::f_cat(&flat, 0)?;
        let sq = g.f_dot(&g)?.f_double_value(&[])?;
        let k = i % GROUPS;
        if groups.len() <= k {
            groups.push(Sums { g, sq, m: 1 });
        } else {
            let s = &mut groups[k];
            let _ = s.g.f_add_(&g)?;
            s.sq += sq;
            s.m += 1;
        }
    }
    let _guard = tch::no_grad_guard();
    let total = |skip: Option<usize>| -> Result<(Tensor, f64, usize)> {
        let mut g = groups[0].g.f_zeros_like()?;
        let (mut sq, mut m) = (0.0, 0);
        for (_, s) in groups.iter().enumerate().filter(|(j, _)| Some(*j) != skip) {
            let _ = g.f_add_(&s.g)?;
            sq += s.sq;
            m += s.m;
        }
        Ok((g, sq, m))
    };
    let b = b_small as f64;
    let (g, sq, m) = total(None)?;
    let (tr_sigma, g_sq, b_simple) = estimate(&g, sq, m, b)?;
    let mut leave_one_out = Vec::with_capacity(GROUPS);
    for j in 0..groups.len() {
        let (g, sq, m) = total(Some(j))?;
        leave_one_out.push(estimate(&g, sq, m, b)?.2);
    }
    let k = leave_one_out.len() as f64;
    let mean = leave_one_out.iter().sum::<f64>() / k;
    let se = ((k - 1.0) / k * leave_one_out.iter().map(|v| (v - mean).powi(2)).sum::<f64>()).sqrt();
    Ok(GnsProbe { step: ck.state.step, micro_batches, b_small, tr_sigma, g_sq, b_simple, b_simple_se: se })
}
