//! What the fits are fed: one point per finished run and the curves behind them, gathered from a
//! sweep's jobs (with the reason each left-out job was left out) or from points read elsewhere.
use std::collections::HashMap;

use ladder_core::JobState;
use ladder_core::status::{JobStatus, RecordedPoint};
use serde::Serialize;

/// A run reduced to numbers. Missing coordinates are None.
#[derive(Debug, Clone, Serialize)]
pub struct RunPoint {
    pub job: Option<u64>,
    pub n: Option<f64>,
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
}

/// A point of a curve, train loss smoothed by a centred moving average.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub step: f64,
    pub tokens: f64,
    pub flops: f64,
    pub train: f64,
    pub smooth: f64,
    pub val: Option<f64>,
    pub b_simple: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunCurve {
    pub job: u64,
    pub label: String,
    pub n: f64,
    pub b: f64,
    pub warmup_steps: f64,
    /// Trained on fewer unique tokens than the dataset holds (it repeats data and may overfit).
    pub data_limited: bool,
    pub points: Vec<CurvePoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub job: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Inputs {
    pub source: String,
    pub runs: Vec<RunPoint>,
    pub curves: Vec<RunCurve>,
    pub excluded: Vec<Excluded>,
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

/// Why a job cannot feed a fit, if it cannot.
pub fn exclusion(j: &JobStatus, points: &[RecordedPoint]) -> Option<String> {
    match j.state {
        JobState::Queued | JobState::Running => return Some(format!("still {}", j.state.name())),
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
    let min_val = points.iter().filter_map(|p| p.point.val_loss).fold(f64::INFINITY, f64::min);
    if !min_val.is_finite() {
        return Some("no validation loss".into());
    }
    // A run whose loss never fell 10% below where it started did not learn: not converged.
    if min_val > 0.9 * first {
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
        for JobCurve { job: j, points } in jobs {
            if let Some(reason) = exclusion(j, points) {
                inputs.excluded.push(Excluded { job: j.id, reason });
                continue;
            }
            let (run, curve) = run_of(j, points, all_tokens);
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
        d: Some(d_limit.min(tokens)),
        tokens: Some(tokens),
        b: Some(j.batch_tokens as f64),
        s: last.map(|p| p.step),
        c: last.map(|p| p.flops),
        loss,
        d_limit,
        group: format!("{n_layer}x{d_model} D={d} seed={}", j.seed),
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
        points: cps,
    };
    (run, curve)
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
