//! What the fits are fed: one point per finished run and the curves behind them, gathered from
//! a sweep (with the reason each left-out job was left out) or read from a CSV file.
use std::collections::HashMap;

use ladder_proto::pb;
use serde::Serialize;

use crate::client::Client;
use crate::error::Result;
use crate::export::curve;
use crate::views::{failure, job_state};

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
    /// Compute in FLOPs (C = 6·N·tokens).
    pub c: Option<f64>,
    pub loss: f64,
    /// The D limit of the job (∞ for "all"), for grouping.
    #[serde(skip)]
    pub d_limit: f64,
    #[serde(skip)]
    pub group: String,
}

/// A point of a curve, train loss smoothed by a centred moving average.
#[derive(Debug, Clone, Copy)]
pub struct CurvePoint {
    pub step: f64,
    pub tokens: f64,
    pub flops: f64,
    pub train: f64,
    pub smooth: f64,
    pub val: Option<f64>,
    pub b_simple: Option<f64>,
}

#[derive(Debug, Clone)]
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

#[derive(Debug, Clone, Default)]
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

fn warmup_of(config_toml: &str) -> f64 {
    config_toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("warmup_steps").and_then(|r| r.trim().strip_prefix('=')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Why a job cannot feed a fit, if it cannot.
fn exclusion(j: &pb::Job, points: &[pb::MetricPoint]) -> Option<String> {
    match job_state(j.state) {
        "queued" | "running" => return Some(format!("still {}", job_state(j.state))),
        "cancelled" => return Some("cancelled".into()),
        "failed" => return Some(format!("failed: {}", failure(j.failure))),
        _ => {}
    }
    let Some(first) = points.first().map(|p| p.train_loss) else {
        return Some("no metric points".into());
    };
    let min_val = points.iter().filter_map(|p| p.val_loss).fold(f64::INFINITY, f64::min);
    if !min_val.is_finite() {
        return Some("no validation loss".into());
    }
    // A run whose loss never fell 10% below where it started did not learn: not converged.
    if min_val > 0.9 * first {
        return Some(format!("not converged: best val {min_val:.4} vs first train loss {first:.4}"));
    }
    None
}

/// Gathers a sweep's jobs and curves.
pub async fn from_sweep(client: &mut Client, key: &str) -> Result<(pb::Sweep, Vec<pb::Job>, Inputs)> {
    let sweep = crate::commands::sweep(client, key).await?;
    let jobs = crate::commands::jobs(client, key).await?;
    let datasets = client.list_datasets(pb::ListDatasetsRequest {}).await?.into_inner().datasets;
    let all_tokens = datasets.iter().find(|d| d.sha256 == sweep.dataset_sha256).map(|d| d.train_tokens as f64);
    let mut inputs = Inputs { source: format!("sweep {}", sweep.name), ..Default::default() };
    for j in &jobs {
        let points = curve(client, j.id).await?;
        if let Some(reason) = exclusion(j, &points) {
            inputs.excluded.push(crate::inputs::Excluded { job: j.id, reason });
            continue;
        }
        let train: Vec<f64> = points.iter().map(|p| p.train_loss).collect();
        let sm = smooth(&train);
        let cps: Vec<CurvePoint> = points
            .iter()
            .zip(&sm)
            .map(|(p, &s)| CurvePoint {
                step: p.step as f64,
                tokens: p.tokens as f64,
                flops: p.flops,
                train: p.train_loss,
                smooth: s,
                val: p.val_loss,
                b_simple: p.b_simple,
            })
            .collect();
        let loss = cps.iter().filter_map(|p| p.val).fold(f64::INFINITY, f64::min);
        let last = cps.last().copied();
        let tokens = last.map_or(0.0, |p| p.tokens);
        let d_limit = if j.dataset_tokens > 0 { j.dataset_tokens as f64 } else { all_tokens.unwrap_or(f64::INFINITY) };
        let n = j.n_params as f64;
        inputs.runs.push(RunPoint {
            job: Some(j.id),
            n: Some(n),
            d: Some(d_limit.min(tokens)),
            tokens: Some(tokens),
            b: Some(j.batch_tokens as f64),
            s: last.map(|p| p.step),
            c: Some(6.0 * n * tokens),
            loss,
            d_limit,
            group: format!("{}x{} D={} seed={}", j.n_layer, j.d_model, j.dataset_tokens, j.seed),
        });
        inputs.curves.push(RunCurve {
            job: j.id,
            label: match j.dataset_tokens {
                0 => format!("{}x{} B={}", j.n_layer, j.d_model, j.batch_tokens),
                d => format!("{}x{} B={} D={d:.0e}", j.n_layer, j.d_model, j.batch_tokens),
            },
            n,
            b: j.batch_tokens as f64,
            warmup_steps: warmup_of(&j.config_toml),
            data_limited: d_limit < all_tokens.unwrap_or(f64::INFINITY),
            points: cps,
        });
    }
    Ok((sweep, jobs, inputs))
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
