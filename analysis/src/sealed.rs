//! Sealed targets: runs a spec marks `sealed = true`, trained like the others but seen by no fit
//! until the sweep's predictions are locked. A [`Lock`] holds, for each target and each law, the
//! prediction with its 95% prediction interval, and the naive baselines from the fitted runs;
//! once a target has ended it is scored against them ([`score`]): error, covered or not, and the
//! error beside persistence's.
use std::collections::BTreeMap;

use ladder_core::JobState;
use ladder_core::status::JobStatus;
use ladder_laws::{Baselines, Law, relative_error};
use serde::{Deserialize, Serialize};

use crate::backtest::Bias;
use crate::inputs::Inputs;
use crate::options::{CHEAP_RESAMPLES, Options};
use crate::predict::{Prediction, predict_at};
use crate::report::Report;

/// How a lock fits: as `ladder fit` does (200 resamples over sizes, at least 1,000 for the
/// one-variable laws and Chinchilla), the form of each law chosen by AICc.
pub fn lock_options() -> Options {
    Options { bootstrap: 200, cheap_resamples: CHEAP_RESAMPLES, ..Options::default() }
}

/// A target as its plan gives it: what it will have trained when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub job: u64,
    /// `4x128 D=3.400e6 seed 0`.
    pub label: String,
    pub n: f64,
    /// Unique training tokens: min(D limit, tokens trained).
    pub d: f64,
    /// Tokens it trains.
    pub tokens: f64,
    /// Kaplan's C = 6·N·tokens, as points record it.
    pub c: f64,
    /// Optimizer steps.
    pub s: f64,
}

impl Target {
    /// A sealed job's target, from its plan; `all_tokens` is the dataset's (D of a job that uses
    /// them all).
    pub fn of(j: &JobStatus, all_tokens: Option<u64>) -> Target {
        let tokens = j.total_steps as f64 * j.batch_tokens as f64;
        let limit = j.dataset_tokens.or(all_tokens).map_or(f64::INFINITY, |d| d as f64);
        let d = limit.min(tokens);
        Target {
            job: j.id,
            label: format!("{}x{} D={d:.3e} seed {}", j.shape.n_layer, j.shape.d_model, j.seed),
            n: j.accounting.n as f64,
            d,
            tokens,
            c: 6.0 * j.accounting.n as f64 * tokens,
            s: j.total_steps as f64,
        }
    }
}

/// One target's locked predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetPrediction {
    pub target: Target,
    /// Each law that takes the target's variables, with its 95% prediction interval.
    pub laws: BTreeMap<Law, Prediction>,
    /// Persistence and the two-point line at the fitted D nearest the target's (in log D).
    pub baselines: Baselines,
    /// The fitted D the baselines come from.
    pub baseline_d: Option<f64>,
}

/// What started a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockCause {
    /// Every job the fits use had ended.
    FitsEnded,
    /// `ladder predict SWEEP --lock`.
    Asked,
}

/// The predictions of a sweep's targets, fixed before any target's point is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub locked_ms: i64,
    pub cause: LockCause,
    /// sha256 of the analysis options, and of the fitted runs and batch windows.
    pub options_sha256: String,
    pub points_sha256: String,
    /// Runs the fits used.
    pub fitted_runs: usize,
    pub targets: Vec<TargetPrediction>,
    /// The backtest of the same fitted runs at the lock ([`crate::backtest::record`]): each law's
    /// signed errors and coverage over all its predictions and from 0.5 decades of N on (none
    /// where the sweep has too few sizes for one, and in locks made before it was kept).
    #[serde(default)]
    pub backtest: Vec<Bias>,
    /// The test of Chinchilla's additivity on the same fitted runs ([`crate::Report::additivity`];
    /// None where fewer than 3 sizes share 2 D, and in locks made before it was kept).
    #[serde(default)]
    pub additivity: Option<ladder_laws::Additivity>,
}

/// Each target's predictions from `report`, fitted on `inputs` (which hold no target).
pub fn predict_targets(inputs: &Inputs, report: &Report, targets: &[Target]) -> Vec<TargetPrediction> {
    targets
        .iter()
        .map(|t| {
            let at: BTreeMap<String, f64> =
                [("N", t.n), ("D", t.d), ("C", t.c), ("S", t.s)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let laws = predict_at(report, &at).unwrap_or_default();
            let (baselines, baseline_d) = baselines(inputs, report, t);
            TargetPrediction { target: t.clone(), laws, baselines, baseline_d }
        })
        .collect()
}

/// Persistence and the two-point line for `t`: the fitted runs at the shared batch size and at
/// the fitted D nearest `t.d` in log D.
fn baselines(inputs: &Inputs, report: &Report, t: &Target) -> (Baselines, Option<f64>) {
    let runs: Vec<_> = inputs.runs.iter().filter(|r| report.at_base_batch(r)).collect();
    let nearest = runs
        .iter()
        .filter_map(|r| r.d)
        .filter(|d| d.is_finite() && *d > 0.0)
        .min_by(|a, b| (a.ln() - t.d.ln()).abs().total_cmp(&(b.ln() - t.d.ln()).abs()));
    let Some(d) = nearest else { return (Baselines::default(), None) };
    let fitted = runs.iter().filter(|r| r.d == Some(d)).filter_map(|r| Some((r.n?, r.loss)));
    (Baselines::from_fitted(fitted, t.n), Some(d))
}

/// One law's prediction of a target, scored once the target has ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawScore {
    pub law: Law,
    pub predicted: Prediction,
    /// (predicted − measured)/measured.
    pub error: Option<f64>,
    /// Whether the 95% prediction interval holds the measured loss.
    pub covered: Option<bool>,
    /// |error| / |persistence's error|: below 0.5 is what a law must show to earn its keep.
    pub vs_persistence: Option<f64>,
}

/// A target as `ladder predict` and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetScore {
    pub target: Target,
    pub state: JobState,
    /// Its best validation loss, once it has succeeded and the predictions are locked.
    pub measured: Option<f64>,
    pub baselines: Baselines,
    pub persistence_error: Option<f64>,
    pub two_point_error: Option<f64>,
    /// Empty before the lock.
    pub laws: Vec<LawScore>,
}

impl TargetScore {
    /// A target before the lock: its plan and state, nothing predicted or measured.
    pub fn unlocked(target: Target, state: JobState) -> Self {
        TargetScore {
            target,
            state,
            measured: None,
            baselines: Baselines::default(),
            persistence_error: None,
            two_point_error: None,
            laws: Vec::new(),
        }
    }
}

/// Scores a locked target against its measured loss (None: not yet ended).
pub fn score(p: &TargetPrediction, state: JobState, measured: Option<f64>) -> TargetScore {
    let err = |v: Option<f64>| Some(relative_error(v?, measured?));
    let persistence_error = err(p.baselines.persistence);
    let laws = p
        .laws
        .iter()
        .map(|(&law, pred)| {
            let error = err(Some(pred.value));
            let covered = match (pred.lo, pred.hi, measured) {
                (Some(lo), Some(hi), Some(m)) => Some(lo <= m && m <= hi),
                _ => None,
            };
            let vs_persistence = match (error, persistence_error) {
                (Some(e), Some(pe)) if pe != 0.0 => Some(e.abs() / pe.abs()),
                _ => None,
            };
            LawScore { law, predicted: *pred, error, covered, vs_persistence }
        })
        .collect();
    TargetScore {
        target: p.target.clone(),
        state,
        measured,
        baselines: p.baselines,
        persistence_error,
        two_point_error: err(p.baselines.two_point),
        laws,
    }
}

/// A sweep's targets and its lock, as `ladder predict` prints them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    pub sweep_id: u64,
    pub sweep: String,
    /// None until locked.
    pub lock: Option<LockSummary>,
    /// When a target's point was first read after the lock: from then on the lock is final.
    pub revealed_ms: Option<i64>,
    pub targets: Vec<TargetScore>,
}

/// A lock without its per-target predictions (those are in [`Predictions::targets`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSummary {
    pub locked_ms: i64,
    pub cause: LockCause,
    pub options_sha256: String,
    pub points_sha256: String,
    pub fitted_runs: usize,
    /// As [`Lock::backtest`].
    #[serde(default)]
    pub backtest: Vec<Bias>,
    /// As [`Lock::additivity`].
    #[serde(default)]
    pub additivity: Option<ladder_laws::Additivity>,
}

impl From<&Lock> for LockSummary {
    fn from(l: &Lock) -> Self {
        LockSummary {
            locked_ms: l.locked_ms,
            cause: l.cause,
            options_sha256: l.options_sha256.clone(),
            points_sha256: l.points_sha256.clone(),
            fitted_runs: l.fitted_runs,
            backtest: l.backtest.iter().cloned().map(Bias::judged).collect(),
            additivity: l.additivity.clone(),
        }
    }
}

/// Whether `state` is one a target can be scored in.
pub fn scorable(state: JobState) -> bool {
    state == JobState::Succeeded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(value: f64, lo: f64, hi: f64) -> Prediction {
        Prediction { value, lo: Some(lo), hi: Some(hi) }
    }

    #[test]
    fn a_target_is_scored_against_persistence_and_its_interval() {
        let target = Target { job: 9, label: "t".into(), n: 8.0, d: 100.0, tokens: 100.0, c: 1.0, s: 1.0 };
        let p = TargetPrediction {
            target,
            laws: [(Law::Chinchilla, prediction(2.02, 1.95, 2.1)), (Law::ND, prediction(2.3, 2.25, 2.4))]
                .into_iter()
                .collect(),
            baselines: Baselines { persistence: Some(2.2), two_point: Some(1.9) },
            baseline_d: Some(100.0),
        };
        let open = score(&p, JobState::Running, None);
        assert!(open.laws.iter().all(|l| l.error.is_none() && l.covered.is_none()), "{open:?}");
        let s = score(&p, JobState::Succeeded, Some(2.0));
        assert!((s.persistence_error.unwrap() - 0.1).abs() < 1e-12, "{s:?}");
        assert!((s.two_point_error.unwrap() + 0.05).abs() < 1e-12, "{s:?}");
        let ch = s.laws.iter().find(|l| l.law == Law::Chinchilla).unwrap();
        assert!((ch.error.unwrap() - 0.01).abs() < 1e-12 && ch.covered == Some(true), "{ch:?}");
        assert!((ch.vs_persistence.unwrap() - 0.1).abs() < 1e-9, "{ch:?}");
        let nd = s.laws.iter().find(|l| l.law == Law::ND).unwrap();
        assert!(nd.covered == Some(false) && (nd.vs_persistence.unwrap() - 1.5).abs() < 1e-9, "{nd:?}");
    }
}
