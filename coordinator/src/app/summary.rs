//! What the live fits keep of each job's curve: a summary whose size is bounded whatever the
//! curve's length, updated as points are stored, so that the coordinator's memory grows with
//! jobs, not points. It holds the first point, the last, the one with the lowest validation loss
//! (a run's loss), and at most [`BUCKETS`] buckets of consecutive steps, each the mean, least and
//! greatest train loss of its steps with the last point's other values; when the buckets run
//! out, their width doubles and neighbours merge.
use std::collections::HashMap;
use std::sync::Mutex;

use ladder_core::status::RecordedPoint;

/// Most buckets a summary holds (by default).
pub const BUCKETS: u64 = 512;
/// Points a summary being built from the store may buffer before it is rebuilt.
const MAX_PENDING: usize = 200_000;

/// Consecutive steps of a curve.
#[derive(Debug, Clone)]
struct Bucket {
    /// Its index at the summary's stride: steps `index·stride + 1 ..= (index + 1)·stride`.
    index: u64,
    n: u32,
    sum_train: f64,
    min_train: f64,
    max_train: f64,
    /// The last validation loss in the bucket.
    val: Option<f64>,
    last: RecordedPoint,
}

impl Bucket {
    fn of(index: u64, p: &RecordedPoint) -> Self {
        let t = p.point.train_loss;
        Bucket { index, n: 1, sum_train: t, min_train: t, max_train: t, val: p.point.val_loss, last: p.clone() }
    }

    fn add(&mut self, p: &RecordedPoint) {
        let t = p.point.train_loss;
        self.n += 1;
        self.sum_train += t;
        self.min_train = self.min_train.min(t);
        self.max_train = self.max_train.max(t);
        self.val = p.point.val_loss.or(self.val);
        self.last = p.clone();
    }

    fn merge(&mut self, later: Bucket) {
        self.n += later.n;
        self.sum_train += later.sum_train;
        self.min_train = self.min_train.min(later.min_train);
        self.max_train = self.max_train.max(later.max_train);
        self.val = later.val.or(self.val);
        self.last = later.last;
    }

    /// The bucket as one point: its last, with the mean train loss and its last validation loss.
    fn point(&self) -> RecordedPoint {
        let mut p = self.last.clone();
        p.point.train_loss = self.sum_train / f64::from(self.n);
        p.point.val_loss = self.val;
        p
    }
}

/// A point of a chart of a curve: a bucket's mean train loss with its least and greatest, and
/// the last validation loss, B_simple, tokens and FLOPs in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChartPoint {
    pub step: u64,
    pub tokens: u64,
    pub flops: f64,
    pub train_loss: f64,
    pub train_min: f64,
    pub train_max: f64,
    pub val_loss: Option<f64>,
    pub b_simple: Option<f64>,
    pub attempt: u32,
}

/// One job's curve, summarised.
#[derive(Debug, Clone)]
pub struct CurveSummary {
    /// Most buckets it holds.
    max_buckets: u64,
    stride: u64,
    buckets: Vec<Bucket>,
    first: Option<RecordedPoint>,
    best_val: Option<RecordedPoint>,
    last: Option<RecordedPoint>,
    /// Points summarised.
    pub count: u64,
}

impl Default for CurveSummary {
    fn default() -> Self {
        Self::with_buckets(BUCKETS)
    }
}

impl CurveSummary {
    /// A summary of at most `n` buckets (at least 1).
    pub fn with_buckets(n: u64) -> Self {
        Self {
            max_buckets: n.max(1),
            stride: 1,
            buckets: Vec::new(),
            first: None,
            best_val: None,
            last: None,
            count: 0,
        }
    }

    /// Adds the next point of the curve; one at or before the last step (a replay) is ignored.
    pub fn push(&mut self, p: &RecordedPoint) {
        let step = p.point.step;
        if step == 0 || self.last.as_ref().is_some_and(|l| step <= l.point.step) {
            return;
        }
        self.stride = self.stride.max(1);
        self.count += 1;
        self.first.get_or_insert_with(|| p.clone());
        if let Some(v) = p.point.val_loss.filter(|v| v.is_finite())
            && self.best_val.as_ref().and_then(|b| b.point.val_loss).is_none_or(|b| v < b)
        {
            self.best_val = Some(p.clone());
        }
        self.last = Some(p.clone());
        while (step - 1) / self.stride >= self.max_buckets {
            self.coarsen();
        }
        let index = (step - 1) / self.stride;
        match self.buckets.last_mut() {
            Some(b) if b.index == index => b.add(p),
            _ => self.buckets.push(Bucket::of(index, p)),
        }
    }

    /// Doubles the stride: each pair of neighbouring buckets becomes one.
    fn coarsen(&mut self) {
        self.stride *= 2;
        let mut merged: Vec<Bucket> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for mut b in std::mem::take(&mut self.buckets) {
            b.index /= 2;
            match merged.last_mut() {
                Some(m) if m.index == b.index => m.merge(b),
                _ => merged.push(b),
            }
        }
        self.buckets = merged;
    }

    /// The summary as points, by step: one per bucket, and the first, last and best points as
    /// they were.
    pub fn points(&self) -> Vec<RecordedPoint> {
        let mut out: Vec<RecordedPoint> = self.buckets.iter().map(Bucket::point).collect();
        for p in [&self.first, &self.best_val, &self.last].into_iter().flatten() {
            match out.binary_search_by_key(&p.point.step, |q| q.point.step) {
                Ok(i) => out[i] = p.clone(),
                Err(i) => out.insert(i, p.clone()),
            }
        }
        out
    }

    /// The curve as a chart draws it: one point per bucket, at most `max_points` (neighbouring
    /// buckets merge until they fit), the best validation point as it was.
    pub fn chart(&self, max_points: usize) -> Vec<ChartPoint> {
        let coarse;
        let s = if self.buckets.len() > max_points.max(1) {
            let mut c = self.clone();
            while c.buckets.len() > max_points.max(1) {
                c.coarsen();
            }
            coarse = c;
            &coarse
        } else {
            self
        };
        let mut out: Vec<ChartPoint> = s
            .buckets
            .iter()
            .map(|b| {
                let p = &b.last.point;
                ChartPoint {
                    step: p.step,
                    tokens: p.tokens,
                    flops: p.flops,
                    train_loss: b.sum_train / f64::from(b.n),
                    train_min: b.min_train,
                    train_max: b.max_train,
                    val_loss: b.val,
                    b_simple: p.b_simple,
                    attempt: b.last.attempt,
                }
            })
            .collect();
        // The run's loss is its lowest validation loss: a chart shows it where it was.
        if let Some(best) = &self.best_val
            && let Some(c) = out.iter_mut().find(|c| c.step >= best.point.step)
        {
            c.val_loss = best.point.val_loss.map(|v| c.val_loss.map_or(v, |w| w.min(v)));
        }
        out
    }
}

/// A summary, or one being built from the store (with the points pushed meanwhile).
#[derive(Debug)]
enum Slot {
    Ready(Box<CurveSummary>),
    Building(Vec<RecordedPoint>),
}

/// Every job's summary that the live fits hold.
#[derive(Debug, Default)]
pub struct Summaries(Mutex<HashMap<u64, Slot>>);

impl Summaries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Points of job `job` just stored. A job without a summary gets none: it is built from the
    /// store when a fit needs it.
    pub fn push(&self, job: u64, points: &[RecordedPoint]) {
        let mut g = self.lock();
        match g.get_mut(&job) {
            Some(Slot::Ready(s)) => points.iter().for_each(|p| s.push(p)),
            Some(Slot::Building(pending)) if pending.len() + points.len() <= MAX_PENDING => {
                pending.extend_from_slice(points)
            }
            Some(Slot::Building(_)) => {
                g.remove(&job);
            }
            None => {}
        }
    }

    /// Job `job`'s curve changed other than at its end (an attempt restarted from an earlier
    /// step): its summary is built again when next needed.
    pub fn forget(&self, job: u64) {
        self.lock().remove(&job);
    }

    /// Forgets every job of `jobs` (a sweep nobody has watched for a while).
    pub fn forget_all(&self, jobs: &[u64]) {
        let mut g = self.lock();
        for j in jobs {
            g.remove(j);
        }
    }

    /// Job `job`'s summary: the one held, or one built by `build` from the store. Points stored
    /// while it is built are kept aside and added after (a point in both is added once).
    pub fn get_or_build<E>(
        &self,
        job: u64,
        build: impl FnOnce() -> Result<CurveSummary, E>,
    ) -> Result<CurveSummary, E> {
        {
            let mut g = self.lock();
            match g.get(&job) {
                Some(Slot::Ready(s)) => return Ok(s.as_ref().clone()),
                Some(Slot::Building(_)) => {}
                None => {
                    g.insert(job, Slot::Building(Vec::new()));
                }
            }
        }
        let mut s = build()?;
        let mut g = self.lock();
        if let Some(Slot::Building(pending)) = g.remove(&job) {
            pending.iter().for_each(|p| s.push(p));
        }
        g.insert(job, Slot::Ready(Box::new(s.clone())));
        Ok(s)
    }

    /// Bytes the summaries hold, about.
    pub fn bytes(&self) -> usize {
        let per_point = std::mem::size_of::<RecordedPoint>();
        self.lock()
            .values()
            .map(|s| match s {
                Slot::Ready(s) => (s.buckets.len() + 3) * (std::mem::size_of::<Bucket>() + per_point),
                Slot::Building(p) => p.len() * per_point,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ladder_core::events::MetricPoint;

    fn pt(step: u64, train: f64, val: Option<f64>) -> RecordedPoint {
        let point = MetricPoint {
            step,
            tokens: step * 64,
            flops: step as f64,
            flops_exact: step as f64,
            train_loss: train,
            val_loss: val,
            lr: 1e-3,
            grad_norm: 1.0,
            gns_small_sq: 0.0,
            gns_big_sq: 0.0,
            b_small: 1,
            b_big: 2,
            b_simple: None,
            tokens_per_s: 1.0,
        };
        RecordedPoint { point, attempt: 1 }
    }

    #[test]
    fn a_long_curve_stays_within_its_buckets_and_keeps_its_ends_and_best() {
        let mut s = CurveSummary::default();
        let n = 40_000u64;
        for step in 1..=n {
            // Validation every 100 steps, best at step 30_000 (it overfits after).
            let val = (step % 100 == 0).then(|| 2.0 + ((step as f64 - 30_000.0) / 10_000.0).powi(2));
            s.push(&pt(step, 10.0 / (step as f64).sqrt(), val));
        }
        s.push(&pt(5, 0.0, None)); // a replay changes nothing
        assert_eq!(s.count, n);
        let pts = s.points();
        assert!(pts.len() as u64 <= BUCKETS + 3, "{} points", pts.len());
        assert!(pts.windows(2).all(|w| w[0].point.step < w[1].point.step), "by step, once each");
        assert_eq!(pts.first().map(|p| p.point.step), Some(1));
        assert_eq!(pts.last().map(|p| p.point.step), Some(n));
        let best = pts.iter().filter_map(|p| p.point.val_loss).fold(f64::INFINITY, f64::min);
        assert_eq!(best, 2.0, "the lowest validation loss is kept exactly");
        // A bucket's train loss is its steps' mean: the last covers steps past 39_936.
        let last_bucket = &s.buckets[s.buckets.len() - 1];
        let mean = (last_bucket.index * s.stride + 1..=n).map(|k| 10.0 / (k as f64).sqrt()).sum::<f64>()
            / f64::from(last_bucket.n);
        assert!((last_bucket.point().point.train_loss - mean).abs() < 1e-12);
        let chart = s.chart(100);
        assert!(chart.len() <= 100 && chart.len() >= 50, "{}", chart.len());
        assert!(chart.iter().all(|c| c.train_min <= c.train_loss && c.train_loss <= c.train_max));
        assert_eq!(chart.iter().filter_map(|c| c.val_loss).fold(f64::INFINITY, f64::min), 2.0, "the best is shown");
    }

    #[test]
    fn points_stored_while_a_summary_is_built_are_added_once() {
        let all = Summaries::default();
        all.push(1, &[pt(1, 3.0, None)]); // no summary yet: dropped, the store has it
        let built = all
            .get_or_build::<()>(1, || {
                // Meanwhile a report stores steps 3 and 4; the store's snapshot held 1..=3.
                all.push(1, &[pt(3, 2.0, None), pt(4, 1.5, None)]);
                let mut s = CurveSummary::default();
                (1..=3).for_each(|k| s.push(&pt(k, 3.0 - 0.5 * k as f64, None)));
                Ok(s)
            })
            .expect("built");
        assert_eq!(built.count, 4);
        all.push(1, &[pt(5, 1.0, None)]);
        let again = all.get_or_build::<()>(1, || unreachable!("held")).expect("held");
        assert_eq!(again.points().iter().map(|p| p.point.step).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    }
}
