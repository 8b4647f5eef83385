//! What every training loop sets up the same way: the job resolved against its dataset, the
//! fingerprint that ties a checkpoint to its job, the device, the seeded model, input tensors,
//! the per-step host read of the loss and norms, and a lap clock for the phase profile.
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::Job;
use crate::data::{Dataset, read_meta};
use crate::device::{configure_precision, select_device};
use crate::error::Result;
use crate::member::StepStats;
use crate::model::Gpt;

/// Loads a job config's dataset vocabulary and validates the job.
pub fn resolve_job(config: &crate::config::JobConfig) -> Result<Job> {
    let meta = read_meta(&config.data.dir)?;
    Ok(config.resolve(meta.map(|m| m.vocab_size))?)
}

/// Identity of everything that shapes the trajectory; a checkpoint resumes only the same job.
pub fn fingerprint(job: &Job, data_id: &str) -> String {
    let c = &job.config;
    let mut key = serde_json::json!({
        "shape": job.shape,
        "train": c.train,
        "max_tokens": c.data.max_tokens,
        "total_steps": job.total_steps,
        "data": data_id,
    });
    // Only a branch names its start (so the fingerprints of other jobs stay as they were).
    if let Some(b) = &c.branch {
        key["branch"] = serde_json::json!({ "step": b.step, "tokens": b.tokens });
    }
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}

/// The content identity a fingerprint names: meta.json's sha256, else the token counts.
pub(crate) fn data_id(meta: Option<ladder_core::dataset::DatasetMeta>, data: &Dataset) -> String {
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
    let device = select_device(cfg.device)?;
    configure_precision(device)?;
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t);
    }
    Ok(device)
}

/// A model with its store and its variables in name order.
pub(crate) type Built = (VarStore, Gpt, Vec<(String, Tensor)>);

/// A model initialised on the CPU generator and then moved, so that a seed gives the same
/// weights on every device; its variables in name order. The store must outlive the model.
pub(crate) fn build_model(shape: crate::model::Shape, device: Device) -> Result<Built> {
    let mut vs = VarStore::new(Device::Cpu);
    let model = Gpt::new(&vs.root(), shape, device)?;
    vs.set_device(device);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((vs, model, named))
}

impl Batches<'_> {
    pub(crate) fn tensors(&self, x: &[i64], y: &[i64]) -> Result<(Tensor, Tensor)> {
        let shape = [-1, self.n_ctx];
        let x = Tensor::f_from_slice(x)?.f_view(shape)?.f_to_device(self.device)?;
        let y = Tensor::f_from_slice(y)?.f_view(shape)?.f_to_device(self.device)?;
        Ok((x, y))
    }
}

/// The host wait of a step: the mean train loss and the two squared norms, as f64.
pub(crate) fn read_stats(losses: &[Tensor], small_sq: Tensor, big_sq: Tensor) -> Result<StepStats> {
    let train_loss = Tensor::f_stack(losses, 0)?.f_mean(Kind::Double)?;
    let stats = Tensor::f_stack(&[train_loss, small_sq, big_sq], 0)?.f_to_device(Device::Cpu)?;
    let v: Vec<f64> = Vec::<f64>::try_from(&stats)?;
    Ok(StepStats { train_loss: v[0], small_sq: v[1], big_sq: v[2] })
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
