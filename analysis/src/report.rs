//! What a fit produces: every law the data supports with its intervals, the points each was
//! fitted to, the runs used and left out (and why), and the laws not fitted (and why).
use ladder_laws::{
    BcritAtLoss, BcritLaw, ChinchillaFit, Contradiction, Estimate, Frontier, HoldoutError, PowerLaw, TwoVarLaw,
};
use serde::Serialize;

use crate::inputs::Excluded;
pub use crate::options::Skipped;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ChinchillaReport {
    pub fit: ChinchillaFit,
    /// E, A, B, α, β.
    pub intervals: [Estimate; 5],
    pub excluded_highest_loss: usize,
    /// Bootstrap refits, for prediction bands.
    #[serde(skip)]
    pub draws: Vec<ChinchillaFit>,
}

/// The streamed B_simple beside the batch sweep's B_crit at one target loss.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BcritVsSimple {
    pub group: String,
    pub target_loss: f64,
    pub b_crit: f64,
    /// Median over the group's runs of the streamed B_simple where each first reached the loss.
    pub b_simple: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BSimple {
    pub job: Option<u64>,
    pub loss: f64,
    /// Tokens.
    pub b_simple: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub source: String,
    pub runs: usize,
    pub used_jobs: Vec<u64>,
    pub excluded: Vec<Excluded>,
    pub l_n: Option<PowerLaw>,
    /// The (N, loss) points L(N) was fitted to, and L(D)'s (D, loss).
    pub l_n_points: Vec<(f64, f64)>,
    pub l_d_points: Vec<(f64, f64)>,
    pub l_d: Option<PowerLaw>,
    pub l_c: Option<PowerLaw>,
    pub l_nd: Option<TwoVarLaw>,
    pub l_ns: Option<TwoVarLaw>,
    /// Where L(N,S)'s B_crit came from.
    #[serde(deserialize_with = "ladder_laws::interned::name_opt")]
    pub l_ns_bcrit: Option<ladder_laws::interned::Name>,
    /// The compute axis of the frontier.
    #[serde(deserialize_with = "ladder_laws::interned::name")]
    pub frontier_compute: ladder_laws::interned::Name,
    pub frontier: Option<Frontier>,
    pub bcrit_at: Vec<BcritAtLoss>,
    pub bcrit_law: Option<BcritLaw>,
    pub b_simple: Vec<BSimple>,
    pub bcrit_vs_simple: Vec<BcritVsSimple>,
    pub chinchilla: Option<ChinchillaReport>,
    /// Kaplan §6.3: where L(C_min) meets L(D) along the frontier's data use.
    pub contradiction: Option<Contradiction>,
    /// The batch size of the runs behind L(N) and L(D) (the one most sizes share).
    pub base_batch: Option<f64>,
    /// `--holdout K`: each law refitted without the K largest sizes, scored on them.
    pub holdout: Vec<HoldoutError>,
    pub skipped: Vec<Skipped>,
    /// The critical batch size by branching at each branch point, B_crit(L) fitted to those
    /// points, and the CBS against D.
    pub cbs: Vec<crate::cbs::CbsPoint>,
    pub cbs_law: Option<BcritLaw>,
    pub cbs_vs_d: Option<crate::cbs::CbsVsD>,
    /// The tolerance the CBS rule used.
    pub cbs_epsilon: f64,
    /// The runs that came from branches, as `(job, what)`.
    pub branch_runs: Vec<(u64, String)>,
    /// FLOPs trained, and what the same measurements would cost from scratch.
    pub compute: crate::inputs::Compute,
}

impl Report {
    /// Whether any law was fitted.
    pub fn any_fitted(&self) -> bool {
        self.l_n.is_some()
            || self.l_d.is_some()
            || self.l_c.is_some()
            || self.l_nd.is_some()
            || self.l_ns.is_some()
            || self.frontier.is_some()
            || !self.bcrit_at.is_empty()
            || self.chinchilla.is_some()
            || !self.cbs.is_empty()
    }
}
