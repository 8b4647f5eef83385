//! The job config on the wire, field for field: the domain's [`JobConfig`] and its own message,
//! with no text format in between. A message that lacks a part, or names a value this build does
//! not know, is refused with the field at fault; its values are validated again where the
//! config is resolved (the trainer, the planner).
use std::path::PathBuf;

use ladder_core::job::{
    BranchStart, CheckpointSpec, DataSpec, DecayShape, DeviceRequest, EvalSpec, JobConfig, LrRule, LrSpec, ModelSpec,
    PerWidth, Schedule, StopRule, TrainSpec,
};
use ladder_core::{DomainError, Result};

use crate::pb;
use crate::pb::device_request::Device as PbDevice;
use crate::pb::learning_rate::Rule;

impl From<&JobConfig> for pb::JobConfig {
    fn from(c: &JobConfig) -> Self {
        let (m, t, s) = (&c.model, &c.train, &c.stop);
        pb::JobConfig {
            model: Some(pb::ModelConfig {
                n_layer: m.n_layer,
                d_model: m.d_model,
                n_heads: m.n_heads,
                d_head: m.d_head,
                d_ff: m.d_ff,
                n_ctx: m.n_ctx,
                vocab: m.vocab,
            }),
            data: Some(pb::DataConfig { dir: path(&c.data.dir), max_tokens: c.data.max_tokens }),
            train: Some(pb::TrainConfig {
                batch_tokens: t.batch_tokens,
                micro_batch: t.micro_batch,
                lr: Some(pb::LearningRate { rule: Some(lr(&t.lr)) }),
                warmup_steps: t.warmup_steps,
                schedule: schedule(t.schedule) as i32,
                min_lr_ratio: t.min_lr_ratio,
                weight_decay: t.weight_decay,
                beta1: t.beta1,
                beta2: t.beta2,
                eps: t.eps,
                grad_clip: t.grad_clip,
                seed: t.seed,
                gns_ema: t.gns_ema,
                decay_start: t.decay_start,
                decay_shape: t.decay_shape.map_or(pb::DecayShape::Unspecified, decay_shape) as i32,
                rewarmup_steps: t.rewarmup_steps,
                rewarmup_from_lr: t.rewarmup_from_lr,
            }),
            stop: Some(pb::StopRule {
                steps: s.steps,
                tokens: s.tokens,
                target_val_loss: s.target_val_loss,
                patience: s.patience,
            }),
            eval: Some(pb::EvalConfig { every: c.eval.every, windows: c.eval.windows }),
            checkpoint: Some(pb::CheckpointConfig {
                every: c.checkpoint.every,
                dir: path(&c.checkpoint.dir),
                keep: c.checkpoint.keep as u64,
                at: c.checkpoint.at.clone(),
            }),
            device: Some(pb::DeviceRequest::from(c.device)),
            threads: c.threads,
            cuda_graphs: c.cuda_graphs,
            gns: c.gns,
            branch: c.branch.as_ref().map(|b| pb::BranchStart { step: b.step, tokens: b.tokens, dir: path(&b.dir) }),
        }
    }
}

/// A path as the wire carries it (the worker's paths are its own; the coordinator sends none
/// but empty ones).
fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn lr(l: &LrSpec) -> Rule {
    match *l {
        LrSpec::Value(v) => Rule::Value(v),
        LrSpec::Rule(LrRule::Kaplan) => Rule::Kaplan(pb::learning_rate::Kaplan {}),
        LrSpec::PerWidth(w) => Rule::PerWidth(pb::learning_rate::PerWidth { value: w.value, at_d_model: w.at_d_model }),
    }
}

fn schedule(s: Schedule) -> pb::Schedule {
    match s {
        Schedule::Cosine => pb::Schedule::Cosine,
        Schedule::Constant => pb::Schedule::Constant,
        Schedule::Wsd => pb::Schedule::Wsd,
    }
}

fn decay_shape(d: DecayShape) -> pb::DecayShape {
    match d {
        DecayShape::Linear => pb::DecayShape::Linear,
        DecayShape::OneMinusSqrt => pb::DecayShape::OneMinusSqrt,
    }
}

impl From<DeviceRequest> for pb::DeviceRequest {
    fn from(d: DeviceRequest) -> Self {
        let any = pb::device_request::Any {};
        let device = match d {
            DeviceRequest::Auto => PbDevice::Auto(any),
            DeviceRequest::Cpu => PbDevice::Cpu(any),
            DeviceRequest::AnyGpu => PbDevice::AnyGpu(any),
            DeviceRequest::Gpu(i) => PbDevice::Gpu(i),
        };
        pb::DeviceRequest { device: Some(device) }
    }
}

impl TryFrom<&pb::DeviceRequest> for DeviceRequest {
    type Error = DomainError;
    fn try_from(d: &pb::DeviceRequest) -> Result<Self> {
        Ok(match d.device {
            Some(PbDevice::Auto(_)) => DeviceRequest::Auto,
            Some(PbDevice::Cpu(_)) => DeviceRequest::Cpu,
            Some(PbDevice::AnyGpu(_)) => DeviceRequest::AnyGpu,
            Some(PbDevice::Gpu(i)) => DeviceRequest::Gpu(i),
            None => return Err(missing("device")),
        })
    }
}

fn missing(field: &str) -> DomainError {
    DomainError::message(format!("config.{field}"), "missing")
}

fn unknown(field: &str, v: i32) -> DomainError {
    DomainError::message(format!("config.{field}"), format!("{v} is not a value this build knows"))
}

impl TryFrom<&pb::JobConfig> for JobConfig {
    type Error = DomainError;

    fn try_from(c: &pb::JobConfig) -> Result<Self> {
        let m = c.model.as_ref().ok_or_else(|| missing("model"))?;
        let d = c.data.as_ref().ok_or_else(|| missing("data"))?;
        let t = c.train.as_ref().ok_or_else(|| missing("train"))?;
        let s = c.stop.as_ref().ok_or_else(|| missing("stop"))?;
        let e = c.eval.as_ref().ok_or_else(|| missing("eval"))?;
        let k = c.checkpoint.as_ref().ok_or_else(|| missing("checkpoint"))?;
        Ok(JobConfig {
            model: ModelSpec {
                n_layer: m.n_layer,
                d_model: m.d_model,
                n_heads: m.n_heads,
                d_head: m.d_head,
                d_ff: m.d_ff,
                n_ctx: m.n_ctx,
                vocab: m.vocab,
            },
            data: DataSpec { dir: PathBuf::from(&d.dir), max_tokens: d.max_tokens },
            train: train(t)?,
            stop: StopRule {
                steps: s.steps,
                tokens: s.tokens,
                target_val_loss: s.target_val_loss,
                patience: s.patience,
            },
            eval: EvalSpec { every: e.every, windows: e.windows },
            checkpoint: CheckpointSpec {
                every: k.every,
                dir: PathBuf::from(&k.dir),
                keep: usize::try_from(k.keep).map_err(|_| unknown("checkpoint.keep", -1))?,
                at: k.at.clone(),
            },
            device: DeviceRequest::try_from(c.device.as_ref().ok_or_else(|| missing("device"))?)?,
            threads: c.threads,
            cuda_graphs: c.cuda_graphs,
            gns: c.gns,
            branch: c.branch.as_ref().map(|b| BranchStart {
                step: b.step,
                tokens: b.tokens,
                dir: PathBuf::from(&b.dir),
            }),
        })
    }
}

fn train(t: &pb::TrainConfig) -> Result<TrainSpec> {
    let lr = match t.lr.as_ref().and_then(|l| l.rule.as_ref()).ok_or_else(|| missing("train.lr"))? {
        Rule::Value(v) => LrSpec::Value(*v),
        Rule::Kaplan(_) => LrSpec::Rule(LrRule::Kaplan),
        Rule::PerWidth(w) => LrSpec::PerWidth(PerWidth { value: w.value, at_d_model: w.at_d_model }),
    };
    let schedule = match pb::Schedule::try_from(t.schedule) {
        Ok(pb::Schedule::Cosine) => Schedule::Cosine,
        Ok(pb::Schedule::Constant) => Schedule::Constant,
        Ok(pb::Schedule::Wsd) => Schedule::Wsd,
        Ok(pb::Schedule::Unspecified) | Err(_) => return Err(unknown("train.schedule", t.schedule)),
    };
    let decay_shape = match pb::DecayShape::try_from(t.decay_shape) {
        Ok(pb::DecayShape::Unspecified) => None,
        Ok(pb::DecayShape::Linear) => Some(DecayShape::Linear),
        Ok(pb::DecayShape::OneMinusSqrt) => Some(DecayShape::OneMinusSqrt),
        Err(_) => return Err(unknown("train.decay_shape", t.decay_shape)),
    };
    Ok(TrainSpec {
        batch_tokens: t.batch_tokens,
        micro_batch: t.micro_batch,
        lr,
        warmup_steps: t.warmup_steps,
        schedule,
        min_lr_ratio: t.min_lr_ratio,
        weight_decay: t.weight_decay,
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        grad_clip: t.grad_clip,
        seed: t.seed,
        gns_ema: t.gns_ema,
        decay_start: t.decay_start,
        decay_shape,
        rewarmup_steps: t.rewarmup_steps,
        rewarmup_from_lr: t.rewarmup_from_lr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with every optional part set crosses the wire and comes back equal.
    #[test]
    fn a_config_crosses_the_wire_field_for_field() {
        let text = r#"
device = "cuda:1"
threads = 3
cuda_graphs = false
gns = false
[model]
n_layer = 2
d_model = 64
d_head = 16
n_ctx = 32
vocab = 96
[data]
dir = "d"
max_tokens = 5e4
[train]
batch_tokens = 512
micro_batch = 4
lr = { value = 3e-3, at_d_model = 32 }
warmup_steps = 10
schedule = "wsd"
decay_start = 80
decay_shape = "linear"
rewarmup_steps = 5
rewarmup_from_lr = 1.5e-3
seed = 7
[stop]
steps = 100
patience = 3
target_val_loss = 2.5
[eval]
every = 20
[checkpoint]
every = 50
at = [40, 60]
[branch]
step = 40
tokens = 20480
"#;
        let c = JobConfig::from_toml(text, "test").expect("parses");
        let wire = pb::JobConfig::from(&c);
        assert_eq!(JobConfig::try_from(&wire).expect("reads back"), c);
        let mut kaplan = c.clone();
        kaplan.train.lr = LrSpec::Rule(LrRule::Kaplan);
        kaplan.device = DeviceRequest::AnyGpu;
        assert_eq!(JobConfig::try_from(&pb::JobConfig::from(&kaplan)).expect("reads back"), kaplan);
        let mut bad = wire.clone();
        bad.train.as_mut().expect("train").schedule = 9;
        let e = JobConfig::try_from(&bad).expect_err("unknown schedule").to_string();
        assert!(e.contains("config.train.schedule") && e.contains('9'), "{e}");
        bad = wire;
        bad.device = None;
        assert!(JobConfig::try_from(&bad).expect_err("no device").to_string().contains("config.device"));
    }
}
