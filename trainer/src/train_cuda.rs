//! A training step on CUDA: inputs copied into static device buffers, the fused AdamW update, and
//! after [`WARMUP`] eager steps on a side stream the whole step (every micro-batch's forward and
//! backward, the noise-scale norms, clipping, AdamW) captured once as a CUDA graph and replayed.
//! The learning rate and the step count live in device scalars that are set before each replay,
//! and the loss and norms come back through the captured output, so a replayed step computes
//! exactly what the eager step would. Where capture fails the step stays eager.
use tch::{Device, Kind, Tensor};

use crate::cuda::Graph;
use crate::device::autocast;
use crate::error::Result;
use crate::member::{Member, StepStats};
use crate::model::Gpt;

/// Eager steps before the capture (cuBLAS handles, autograd and the allocator settle).
pub const WARMUP: u64 = 3;

pub struct CudaStep {
    device: Device,
    /// Static inputs and targets, one pair per micro-batch.
    xs: Vec<Tensor>,
    ys: Vec<Tensor>,
    graph: Option<Graph>,
    /// The captured step's output: [mean train loss, mean |G_small|², |G_big|²] (f64).
    out: Option<Tensor>,
    eager_steps: u64,
    use_graph: bool,
    /// Why the step is not captured, when it is not.
    pub fallback: Option<String>,
}

impl CudaStep {
    pub fn new(m: &Member<'_>, device: Device) -> Result<Self> {
        let job = m.job;
        let (micro, n_ctx) = (job.micro_seqs as i64, job.shape.n_ctx);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for _ in 0..job.accumulation() {
            xs.push(Tensor::f_zeros([micro, n_ctx], (Kind::Int64, device))?);
            ys.push(Tensor::f_zeros([micro, n_ctx], (Kind::Int64, device))?);
        }
        let env_off = std::env::var("LADDER_CUDA_GRAPHS").is_ok_and(|v| v == "0");
        let use_graph = job.config.cuda_graphs && !env_off && crate::cuda::built();
        let fallback = (!use_graph).then(|| {
            if !crate::cuda::built() {
                "this build has no CUDA graph support".to_string()
            } else {
                "CUDA graphs are off for this job".to_string()
            }
        });
        let graph = if use_graph { Some(Graph::new(device)?) } else { None };
        Ok(Self { device, xs, ys, graph, out: None, eager_steps: 0, use_graph, fallback })
    }

    pub fn captured(&self) -> bool {
        self.out.is_some()
    }

    /// Draws the next step's windows into the static buffers.
    fn load_inputs(&mut self, m: &mut Member<'_>) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let n_ctx = m.job.shape.n_ctx;
        for (x, y) in self.xs.iter_mut().zip(self.ys.iter_mut()) {
            let (hx, hy) = m.next_inputs();
            x.f_copy_(&Tensor::f_from_slice(&hx)?.f_view([-1, n_ctx])?)?;
            y.f_copy_(&Tensor::f_from_slice(&hy)?.f_view([-1, n_ctx])?)?;
        }
        Ok(())
    }

    /// One step's device work, launched on the current stream.
    fn device_step(
        xs: &[Tensor],
        ys: &[Tensor],
        model: &Gpt,
        params: &[Tensor],
        m: &mut Member<'_>,
        device: Device,
    ) -> Result<Tensor> {
        let mut losses = Vec::with_capacity(xs.len());
        for (x, y) in xs.iter().zip(ys) {
            let loss = autocast(device, || model.loss(x, y))?;
            loss.f_backward()?;
            losses.push(loss.f_detach()?.f_to_kind(Kind::Double)?);
            m.acc.absorb_params(params)?;
        }
        let (small_sq, big_sq) = m.update_device()?;
        let train_loss = Tensor::f_stack(&losses, 0)?.f_mean(Kind::Double)?;
        Ok(Tensor::f_stack(&[train_loss, small_sq, big_sq], 0)?)
    }

    /// Runs one step at learning rate `lr` (eager, capture, or replay) and counts it on the host.
    pub fn step(&mut self, m: &mut Member<'_>, model: &Gpt, params: &[Tensor], lr: f64) -> Result<StepStats> {
        self.load_inputs(m)?;
        m.opt.set_lr(lr)?;
        let device = self.device;
        let out = if let (Some(g), Some(out)) = (self.graph.as_mut(), self.out.as_ref()) {
            g.replay()?;
            out.shallow_clone()
        } else if self.use_graph && self.eager_steps >= WARMUP {
            let g = self.graph.as_mut().ok_or_else(|| crate::error::TrainerError::invalid("cuda graph", "no graph"))?;
            let (xs, ys) = (&self.xs, &self.ys);
            match g.capture(|| Self::device_step(xs, ys, model, params, m, device)) {
                Ok(out) => {
                    g.replay()?; // the capture launched nothing: run the step now
                    self.out = Some(out.shallow_clone());
                    out
                }
                Err(e) => {
                    tracing_free_warn(&format!("CUDA graph capture failed, running eagerly: {e}"));
                    self.fallback = Some(e.to_string());
                    self.use_graph = false;
                    self.graph = None;
                    Self::device_step(&self.xs, &self.ys, model, params, m, device)?
                }
            }
        } else if self.use_graph {
            let (xs, ys) = (&self.xs, &self.ys);
            let g = self.graph.as_mut().ok_or_else(|| crate::error::TrainerError::invalid("cuda graph", "no graph"))?;
            let out = g.on_side_stream(|| Self::device_step(xs, ys, model, params, m, device))?;
            self.eager_steps += 1;
            out
        } else {
            Self::device_step(&self.xs, &self.ys, model, params, m, device)?
        };
        m.advance();
        let v: Vec<f64> = Vec::<f64>::try_from(&out.f_to_device(Device::Cpu)?)?;
        Ok(StepStats { train_loss: v[0], small_sq: v[1], big_sq: v[2] })
    }
}

/// The trainer writes events on stdout; diagnostics go to stderr.
fn tracing_free_warn(msg: &str) {
    eprintln!("ladder-train: {msg}");
}
