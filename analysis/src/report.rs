//! What a fit produces: every law the data supports with its intervals, the points each was
//! fitted to, the runs used and left out (and why), and the laws not fitted (and why).
use std::collections::BTreeMap;

use ladder_laws::{
    BcritAtLoss, BcritLaw, ChinchillaFit, Contradiction, Estimate, Frontier, HoldoutError, Law, LawInfo, PowerLaw,
    Tally, TwoVarLaw,
};
use serde::Serialize;

use crate::inputs::Excluded;
pub use crate::options::Skipped;

/// Where the B_crit in L(N,S)'s S_min = S/(1 + B_crit/B) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SminSource {
    /// The streamed B_simple at each point.
    BSimple,
    /// The streamed B_simple, and B_crit(L) where a point has none.
    BSimpleOrBcritL,
}

impl std::fmt::Display for SminSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SminSource::BSimple => write!(f, "streamed B_simple"),
            SminSource::BSimpleOrBcritL => write!(f, "streamed B_simple ({} where none)", Law::BCritL),
        }
    }
}

/// The compute axis of the frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputeAxis {
    /// C = 6·N·tokens, as trained.
    C,
    /// C_min = C/(1 + B/B_crit(L)) (Kaplan eq. 5.5), with B_crit(L) fitted.
    CMin,
}

impl std::fmt::Display for ComputeAxis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComputeAxis::C => write!(f, "C = 6·N·tokens"),
            ComputeAxis::CMin => write!(f, "C_min = C/(1 + B/{})", Law::BCritL),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ChinchillaReport {
    pub fit: ChinchillaFit,
    /// E, A, B, α, β.
    pub intervals: [Estimate; 5],
    pub excluded_highest_loss: usize,
    /// How the bootstrap went: resamples, failures, and the sizes (or runs) drawn.
    #[serde(default)]
    pub tally: Tally,
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

/// One prediction of a backtest.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BacktestRow {
    /// How many of the smallest sizes the refit saw.
    pub sizes_fitted: usize,
    /// log10(N / the largest N fitted).
    pub decades_n: f64,
    /// log10(6·N·D / the largest 6·N·D fitted); NaN where the row has no D (L(N)).
    pub decades_c: f64,
    #[serde(flatten)]
    pub score: HoldoutError,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub source: String,
    pub runs: usize,
    pub used_jobs: Vec<u64>,
    pub excluded: Vec<Excluded>,
    /// The N of the sizes left out for having fewer than `min_layers` layers.
    #[serde(default)]
    pub shallow_sizes: Vec<f64>,
    #[serde(default)]
    pub min_layers: u32,
    pub l_n: Option<PowerLaw>,
    /// The (N, loss) points L(N) was fitted to, and L(D)'s (D, loss).
    pub l_n_points: Vec<(f64, f64)>,
    pub l_d_points: Vec<(f64, f64)>,
    pub l_d: Option<PowerLaw>,
    pub l_c: Option<PowerLaw>,
    pub l_nd: Option<TwoVarLaw>,
    pub l_ns: Option<TwoVarLaw>,
    /// Where L(N,S)'s B_crit came from.
    pub l_ns_bcrit: Option<SminSource>,
    /// The compute axis of the frontier.
    pub frontier_compute: ComputeAxis,
    pub frontier: Option<Frontier>,
    pub bcrit_at: Vec<BcritAtLoss>,
    pub bcrit_law: Option<BcritLaw>,
    pub b_simple: Vec<BSimple>,
    pub bcrit_vs_simple: Vec<BcritVsSimple>,
    pub chinchilla: Option<ChinchillaReport>,
    /// Whether the gain from data depends on N, on Chinchilla's runs: the assumption of its
    /// additive form, tested (None: fewer than 3 sizes share 2 D).
    #[serde(default)]
    pub additivity: Option<ladder_laws::Additivity>,
    /// Kaplan §6.3: where L(C_min) meets L(D) along the frontier's data use.
    pub contradiction: Option<Contradiction>,
    /// The batch size of the runs behind L(N) and L(D) (the one most sizes share).
    pub base_batch: Option<f64>,
    /// `--holdout K`: each law refitted without the K largest sizes, scored on them.
    pub holdout: Vec<HoldoutError>,
    /// `--backtest`: each law refitted on the k smallest sizes for every k, scored on every
    /// larger one.
    #[serde(default)]
    pub backtest: Vec<BacktestRow>,
    /// The backtest per law and distance bin (`crate::backtest::summarise`): what `ladder fit
    /// --backtest` prints as a table. Written, not read back (∞ is null in JSON).
    #[serde(default, skip_deserializing)]
    pub backtest_bins: Vec<BacktestBin>,
    /// Each law's record in the backtest, over every distance and from 0.5 decades of N on:
    /// what a lock keeps.
    #[serde(default)]
    pub backtest_record: Vec<Bias>,
    pub skipped: Vec<Skipped>,
    /// The critical batch size by branching at each branch point, B_crit(L) fitted to those
    /// points, and the CBS against D.
    pub cbs: Vec<crate::cbs::CbsPoint>,
    pub cbs_law: Option<BcritLaw>,
    pub cbs_vs_d: Option<crate::cbs::CbsVsD>,
    /// The token overhead the CBS rule allowed.
    #[serde(default)]
    pub cbs_overhead: f64,
    /// The runs that came from branches, as `(job, what)`.
    pub branch_runs: Vec<(u64, String)>,
    /// FLOPs trained, and what the same measurements would cost from scratch.
    pub compute: crate::inputs::Compute,
    /// How the law of each field above is named and written ([`legend`]), for readers of the
    /// JSON (the page).
    #[serde(default)]
    pub laws: BTreeMap<String, LawInfo>,
}

/// Each field of a [`Report`] that holds a law, and that law.
pub const FIELDS: [(&str, Law); 13] = [
    ("l_n", Law::N),
    ("l_d", Law::D),
    ("l_c", Law::C),
    ("l_nd", Law::ND),
    ("l_ns", Law::NS),
    ("chinchilla", Law::Chinchilla),
    ("l_cmin", Law::CMin),
    ("frontier", Law::Frontier),
    ("bcrit_at", Law::BCrit),
    ("bcrit_law", Law::BCritL),
    ("cbs", Law::Cbs),
    ("cbs_law", Law::CbsL),
    ("cbs_vs_d", Law::CbsD),
];

/// How each law-holding field's law is named and written.
pub fn legend() -> BTreeMap<String, LawInfo> {
    FIELDS.iter().map(|&(field, law)| (field.to_string(), LawInfo::from(law))).collect()
}

impl Report {
    /// Whether run `r` is at the batch size L(N), L(D), L(N,D) and Chinchilla were fitted at
    /// (every run, when the sweep has no shared batch size).
    pub fn at_base_batch(&self, r: &crate::inputs::RunPoint) -> bool {
        self.base_batch.is_none() || r.b == self.base_batch
    }

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

/// The distance from which a backtest is read for bias: 0.5 decades of N, where issue 32 asks a
/// law to beat persistence by half.
pub const BIAS_FROM_DECADES: f64 = 0.5;
/// The share of predictions on one side of the measured loss that counts as one-sided.
pub const ONE_SIDED: f64 = 0.8;
/// The fewest predictions that can show a bias.
pub const BIAS_MIN_ROWS: usize = 6;

/// How a law did over the rows at one distance: the bins are [0, 0.25), [0.25, 0.5), [0.5, 1)
/// and ≥ 1 decade of N.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestBin {
    pub law: ladder_laws::Law,
    /// The bin's edges in decades (the last bin's upper edge is ∞: null in JSON).
    pub from: f64,
    pub to: f64,
    pub rows: usize,
    /// Mean |relative error| of the law, of persistence and of the two-point line (over the rows
    /// that have one).
    pub law_error: f64,
    pub persistence_error: f64,
    pub two_point_error: f64,
    /// The share of rows whose 95% prediction interval held the measured loss (of those with an
    /// interval).
    pub coverage: f64,
}

/// A law's signed errors and coverage from a distance on.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Bias {
    pub law: ladder_laws::Law,
    /// The least distance counted, in decades of N.
    pub from: f64,
    pub rows: usize,
    /// Predictions above the measured loss (error > 0).
    pub high: usize,
    /// Predictions below it.
    pub low: usize,
    /// Mean signed relative error.
    pub mean_error: f64,
    /// The share whose 95% prediction interval held the measured loss (None without intervals).
    pub coverage: Option<f64>,
    /// [`Bias::under_covered`], for readers of the JSON (the page); set by [`Bias::judged`].
    #[serde(default)]
    pub too_narrow: bool,
}

impl Bias {
    /// This record with [`Bias::too_narrow`] set from its counts (a lock made before the field
    /// was kept has it false).
    pub fn judged(mut self) -> Self {
        self.too_narrow = self.under_covered();
        self
    }

    /// Its 95% intervals held under 90% of at least [`BIAS_MIN_ROWS`] predictions (or it has
    /// none): too narrow at these distances. Rows of one refit share its parameters, so this
    /// describes the backtest; it is no significance test.
    pub fn under_covered(&self) -> bool {
        self.rows >= BIAS_MIN_ROWS && self.coverage.is_none_or(|c| c < 0.9)
    }

    /// At least [`ONE_SIDED`] of the predictions on one side of the measured loss.
    pub fn one_sided(&self) -> bool {
        self.rows > 0 && self.high.max(self.low) as f64 >= ONE_SIDED * self.rows as f64
    }
}
