//! What the fits are fed: one point per finished run and the curves behind them, gathered from a
//! sweep's jobs (with the reason each left-out job was left out) or from points read elsewhere.
use std::collections::HashMap;

use ladder_core::JobState;
use ladder_core::branch::BranchKind;
use ladder_core::status::{JobStatus, RecordedPoint};
use serde::Serialize;

/// A run reduced to numbers. Missing coordinates are None.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunPoint {
    pub job: Option<u64>,
    pub n: Option<f64>,
    /// Transformer layers (None for points read from a CSV file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<u32>,
    /// Unique training tokens: min(D limit, tokens trained).
    pub d: Option<f64>,
    /// Tokens trained.
    pub tokens: Option<f64>,
    /// Batch size in tokens.
    pub b: Option<f64>,
    /// Steps (S).
    pub s: Option<f64>,
    /// Compute in FLOPs: Kaplan's C = 6·N·tokens, as the points record it.
    pub c: Option<f64>,
    pub loss: f64,
    /// The D limit of the job (∞ for "all"), for grouping.
    #[serde(skip)]
    pub d_limit: f64,
    #[serde(skip)]
    pub group: String,
    /// Where a point came from a branch: e.g. "cooldown of job 3 from step 80".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// A point of a curve, train loss smoothed by a centred moving average.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct CurvePoint {
    pub step: f64,
    pub tokens: f64,
    pub flops: f64,
    pub train: f64,
    pub smooth: f64,
    pub val: Option<f64>,
    pub b_simple: Option<f64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunCurve {
    pub job: u64,
    pub label: String,
    pub n: f64,
    pub b: f64,
    pub warmup_steps: f64,
    /// Trained on fewer unique tokens than the dataset holds (it repeats data and may overfit).
    pub data_limited: bool,
    pub kind: RunKind,
    /// A cooldown's trunk.
    pub parent: Option<u64>,
    pub points: Vec<CurvePoint>,
}

/// What a curve is to the fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A run of its own.
    Run,
    /// A constant-rate run with cooldown branches: not a run of its own (its loss at the last
    /// step is not a converged loss); each of its cooldowns is.
    Trunk,
    /// A cooldown branch of a trunk.
    Cooldown,
}

/// A batch window: a branch that continued a trunk at k times its batch for a fixed number of
/// tokens, and the validation loss it ended with (the critical batch size by branching).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Window {
    pub job: u64,
    pub trunk: u64,
    pub step: u64,
    /// Tokens (from the root) at the branch point.
    pub tokens: f64,
    pub n: f64,
    pub k: f64,
    /// Batch size of the window, tokens.
    pub batch: f64,
    pub window_tokens: f64,
    /// Validation loss at the window's end.
    pub loss: f64,
    /// (tokens since the branch point, validation loss) at each of its evaluations, in order.
    #[serde(default)]
    pub curve: Vec<(f64, f64)>,
}

/// Compute trained by a sweep, and what the measurements the fits use would cost if each were a
/// run of its own from scratch (a branch from the root). Trunks, runs left out and anything else
/// trained count in `trained` only: the ratio compares like for like.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Compute {
    /// Every job's own compute (a branch's from its branch point on), trunks included.
    pub trained: f64,
    /// The measurements' cost from scratch.
    pub from_scratch: f64,
    /// How many measurements `from_scratch` counts: runs fitted and batch windows.
    #[serde(default)]
    pub measurements: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Excluded {
    pub job: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Inputs {
    pub source: String,
    pub runs: Vec<RunPoint>,
    pub curves: Vec<RunCurve>,
    pub excluded: Vec<Excluded>,
    pub windows: Vec<Window>,
    pub compute: Compute,
    /// The N of sizes [`Inputs::deep_enough`] left out.
    #[serde(default)]
    pub shallow_sizes: Vec<f64>,
}

/// The distinct values, ascending.
pub fn distinct_values(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut xs: Vec<f64> = v.collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// How many distinct values.
pub fn distinct(v: impl Iterator<Item = f64>) -> usize {
    distinct_values(v).len()
}

/// The fewest deeper sizes for which [`Inputs::deep_enough`] leaves shallow ones out: what
/// L(N) and a backtest need.
pub const MIN_DEEP_SIZES: usize = 3;

impl Inputs {
    /// These inputs without the sizes of fewer than `min_layers` layers: their runs and curves
    /// leave, each such job joins the left-out list and each size `shallow_sizes`. Runs of
    /// unknown depth stay, and every size stays where fewer than [`MIN_DEEP_SIZES`] deeper ones
    /// would be left (a sweep of toy models is fitted as it is). Borrowed where nothing leaves.
    pub fn deep_enough(&self, min_layers: u32) -> std::borrow::Cow<'_, Inputs> {
        let shallow = |r: &RunPoint| r.layers.is_some_and(|l| l < min_layers);
        let deep_sizes = distinct(self.runs.iter().filter(|r| !shallow(r)).filter_map(|r| r.n));
        if !self.runs.iter().any(shallow) || deep_sizes < MIN_DEEP_SIZES {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut out = self.clone();
        let (deep, left): (Vec<RunPoint>, Vec<RunPoint>) = out.runs.into_iter().partition(|r| !shallow(r));
        out.runs = deep;
        let sizes = distinct_values(left.iter().filter_map(|r| r.n));
        // A size's trunk curves go with its runs (same N, exactly).
        out.curves.retain(|c| !sizes.contains(&c.n));
        let reason = format!(
            "fewer than {min_layers} layers (off the deeper models' trend, Kaplan et al. 2020 Fig. 6; --min-layers 1 keeps them)"
        );
        out.excluded.extend(left.iter().filter_map(|r| Some(Excluded { job: r.job?, reason: reason.clone() })));
        out.shallow_sizes.extend(sizes);
        std::borrow::Cow::Owned(out)
    }
}

/// Half-width of the moving average over train losses.
const SMOOTH: usize = 5;

fn smooth(train: &[f64]) -> Vec<f64> {
    (0..train.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(SMOOTH), (i + SMOOTH + 1).min(train.len()));
            train[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect()
}

/// A run's loss: its best validation loss (None before its first evaluation).
pub fn best_val_loss(points: &[RecordedPoint]) -> Option<f64> {
    let best = points.iter().filter_map(|p| p.point.val_loss).fold(f64::INFINITY, f64::min);
    best.is_finite().then_some(best)
}

/// Why a job cannot feed a fit, if it cannot.
pub fn exclusion(j: &JobStatus, points: &[RecordedPoint]) -> Option<String> {
    match j.state {
        JobState::Queued | JobState::Running | JobState::Pending => return Some(format!("still {}", j.state.name())),
        JobState::Cancelled => return Some("cancelled".into()),
        JobState::Failed => {
            let kind = j.failure.as_ref().map_or("", |f| f.kind.describe());
            return Some(format!("failed: {kind}"));
        }
        JobState::Succeeded => {}
    }
    let Some(first) = points.first().map(|p| p.point.train_loss) else {
        return Some("no metric points".into());
    };
    let Some(min_val) = best_val_loss(points) else {
        return Some("no validation loss".into());
    };
    // A run whose loss never fell 10% below where it started did not learn: not converged. (A
    // branch starts where its parent had got to: the parent's own curve answers for it.)
    if j.branch.is_none() && min_val > 0.9 * first {
        return Some(format!("not converged: best val {min_val:.4} vs first train loss {first:.4}"));
    }
    None
}

/// One job of a sweep and its curve.
pub struct JobCurve<'a> {
    pub job: &'a JobStatus,
    pub points: &'a [RecordedPoint],
}

impl Inputs {
    /// The runs of a sweep's jobs. `all_tokens` is the dataset's training tokens (D of a job
    /// that uses them all).
    pub fn from_jobs(source: String, jobs: &[JobCurve<'_>], all_tokens: Option<u64>) -> Self {
        let all_tokens = all_tokens.map(|t| t as f64);
        let mut inputs = Inputs { source, ..Default::default() };
        let cooled: std::collections::HashSet<u64> = jobs
            .iter()
            .filter_map(|jc| jc.job.branch.filter(|b| matches!(b.kind, BranchKind::Cooldown { .. })).map(|b| b.parent))
            .collect();
        for JobCurve { job: j, points } in jobs {
            inputs.compute.train(j, points);
            if let Some(reason) = exclusion(j, points) {
                inputs.excluded.push(Excluded { job: j.id, reason });
                continue;
            }
            if let Some(b) = j.branch
                && let BranchKind::Batch { k, window_tokens } = b.kind
            {
                let loss = points.last().and_then(|p| p.point.val_loss).unwrap_or(f64::NAN);
                inputs.windows.push(Window {
                    job: j.id,
                    trunk: b.parent,
                    step: b.step,
                    tokens: b.tokens as f64,
                    n: j.accounting.n as f64,
                    k,
                    batch: j.batch_tokens as f64,
                    window_tokens: window_tokens as f64,
                    loss,
                    curve: points
                        .iter()
                        .filter_map(|p| Some((p.point.tokens as f64 - b.tokens as f64, p.point.val_loss?)))
                        .collect(),
                });
                inputs.compute.measure(points);
                inputs.excluded.push(Excluded { job: j.id, reason: "a batch window for the CBS".into() });
                continue;
            }
            let (run, mut curve) = run_of(j, points, all_tokens);
            if cooled.contains(&j.id) {
                // At a constant learning rate its losses are not a finished run's: its cooldown
                // branches give them.
                curve.kind = RunKind::Trunk;
                inputs.excluded.push(Excluded {
                    job: j.id,
                    reason: "a constant-LR trunk: its cooldown branches give its losses".into(),
                });
                inputs.curves.push(curve);
                continue;
            }
            inputs.compute.measure(points);
            inputs.runs.push(run);
            inputs.curves.push(curve);
        }
        inputs
    }
}

/// A finished job as a run point (its best validation loss) and its smoothed curve.
fn run_of(j: &JobStatus, points: &[RecordedPoint], all_tokens: Option<f64>) -> (RunPoint, RunCurve) {
    let train: Vec<f64> = points.iter().map(|p| p.point.train_loss).collect();
    let sm = smooth(&train);
    let cps: Vec<CurvePoint> = points
        .iter()
        .zip(&sm)
        .map(|(p, &s)| CurvePoint {
            step: p.point.step as f64,
            tokens: p.point.tokens as f64,
            flops: p.point.flops,
            train: p.point.train_loss,
            smooth: s,
            val: p.point.val_loss,
            b_simple: p.point.b_simple,
        })
        .collect();
    let loss = cps.iter().filter_map(|p| p.val).fold(f64::INFINITY, f64::min);
    let last = cps.last().copied();
    let tokens = last.map_or(0.0, |p| p.tokens);
    let d_limit = j.dataset_tokens.map_or(all_tokens.unwrap_or(f64::INFINITY), |d| d as f64);
    let n = j.accounting.n as f64;
    let (n_layer, d_model, d) = (j.shape.n_layer, j.shape.d_model, j.dataset_tokens.unwrap_or(0));
    let run = RunPoint {
        job: Some(j.id),
        n: Some(n),
        layers: u32::try_from(n_layer).ok(),
        d: Some(d_limit.min(tokens)),
        tokens: Some(tokens),
        b: Some(j.batch_tokens as f64),
        s: last.map(|p| p.step),
        c: last.map(|p| p.flops),
        loss,
        d_limit,
        group: format!("{n_layer}x{d_model} D={d} seed={}", j.seed),
        branch: j.branch.map(|b| match b.kind {
            BranchKind::Cooldown { to_tokens } => {
                format!("cooldown of job {} from step {} to {to_tokens} tokens", b.parent, b.step)
            }
            BranchKind::Batch { k, .. } => format!("batch ×{k} of job {} from step {}", b.parent, b.step),
        }),
    };
    let curve = RunCurve {
        job: j.id,
        label: match d {
            0 => format!("{n_layer}x{d_model} B={}", j.batch_tokens),
            d => format!("{n_layer}x{d_model} B={} D={d:.0e}", j.batch_tokens),
        },
        n,
        b: j.batch_tokens as f64,
        warmup_steps: j.warmup_steps() as f64,
        data_limited: d_limit < all_tokens.unwrap_or(f64::INFINITY),
        kind: if j.branch.is_some() { RunKind::Cooldown } else { RunKind::Run },
        parent: j.branch.map(|b| b.parent),
        points: cps,
    };
    (run, curve)
}

impl Compute {
    /// Counts a job's own compute (a branch's from its branch point on; points record FLOPs
    /// from the root).
    fn train(&mut self, j: &JobStatus, points: &[RecordedPoint]) {
        let Some(last) = points.last() else { return };
        let end = last.point.flops;
        self.trained += match j.branch {
            Some(b) if last.point.tokens > 0 => end * (1.0 - b.tokens as f64 / last.point.tokens as f64),
            _ => end,
        };
    }

    /// Counts a measurement the fits use at its cost from scratch (everything from the root).
    fn measure(&mut self, points: &[RecordedPoint]) {
        if let Some(last) = points.last() {
            self.from_scratch += last.point.flops;
            self.measurements += 1;
        }
    }

    /// Trained compute as a share of the from-scratch cost.
    pub fn ratio(&self) -> f64 {
        self.trained / self.from_scratch
    }
}

/// Groups values by a key, keeping insertion order of first appearance.
pub fn group_by<T: Clone, K: std::hash::Hash + Eq + Clone>(items: &[T], key: impl Fn(&T) -> K) -> Vec<(K, Vec<T>)> {
    let mut order: Vec<K> = Vec::new();
    let mut map: HashMap<K, Vec<T>> = HashMap::new();
    for it in items {
        let k = key(it);
        if !map.contains_key(&k) {
            order.push(k.clone());
        }
        map.entry(k).or_default().push(it.clone());
    }
    order.into_iter().filter_map(|k| map.remove(&k).map(|v| (k, v))).collect()
}
