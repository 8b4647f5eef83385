//! `[[branch]]` blocks: jobs that fork from every job of a named grid (or branch block) at given
//! points. A cooldown branch decays a constant-LR parent to lr·min_lr_ratio and ends at D; a
//! batch branch continues the parent for a window of tokens at k times its batch, the learning
//! rate scaled by √k. The parent checkpoints at every point a branch forks from. Branches come
//! after their parents in the plan; every error names the block's key and line.
use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::axes::{ShapeRule, Source};
use super::expand::{Common, job_plan};
use super::raw::{Num, RawBatch, RawBranch, RawCooldown, RawSpec};
use super::{JobPlan, fuse_class};
use crate::branch::{BranchKind, BranchOf};
use crate::error::Result;
use crate::job::{BranchStart, JobConfig, LrSpec, Schedule, StopRule};
use crate::limits::MAX_JOBS;
use crate::schedule::DecayShape;

/// Where a job starts and how its tokens grow: (first step, tokens there, batch, last step).
#[derive(Clone, Copy)]
struct Span {
    step0: u64,
    tokens0: u64,
    batch: u64,
    total: u64,
}

impl Span {
    fn of(j: &JobPlan) -> Self {
        let (step0, tokens0) = j.config.branch.as_ref().map_or((0, 0), |b| (b.step, b.tokens));
        Self { step0, tokens0, batch: j.config.train.batch_tokens, total: j.total_steps }
    }

    fn tokens_at(&self, step: u64) -> u64 {
        self.tokens0 + (step - self.step0) * self.batch
    }

    /// The last step at or before `tokens`, when it lies within the job (after its start).
    fn step_for(&self, tokens: u64) -> Option<u64> {
        let s = self.step0 + tokens.checked_sub(self.tokens0)? / self.batch;
        (s > self.step0 && s <= self.total).then_some(s)
    }
}

/// Plans every `[[branch]]` block, appending its jobs to `jobs` after their parents.
pub(super) fn plan(
    src: &Source<'_>,
    raw: &RawSpec,
    rule: &ShapeRule<'_>,
    common: &Common,
    groups: Vec<(String, Vec<usize>)>,
    jobs: &mut Vec<JobPlan>,
) -> Result<()> {
    if raw.branch.is_empty() {
        return Ok(());
    }
    let mut named: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, g) in raw.grid.iter().enumerate() {
        if let Some(n) = &g.name
            && groups.iter().filter(|(name, _)| name == n.get_ref().trim()).count() > 1
        {
            return Err(src.err(n.span(), &format!("grid[{i}].name"), format!("{:?} names two blocks", n.get_ref())));
        }
    }
    named.extend(groups);
    let order = order(src, raw, &named)?;
    let mut seen = HashSet::new();
    for i in order {
        let b = &raw.branch[i];
        let from = b.from.get_ref().trim();
        let parents = named.get(from).cloned().unwrap_or_default();
        let shapes = match &b.shapes {
            Some(list) => Some(rule.parse(src, list, &format!("branch[{i}].shapes"))?),
            None => None,
        };
        let mut mine = Vec::new();
        for p in parents {
            if let Some(only) = &shapes
                && !only.iter().any(|(s, _)| s.n_layer == jobs[p].shape.n_layer && s.d_model == jobs[p].shape.d_model)
            {
                continue;
            }
            if jobs[p].config.train.schedule != Schedule::Constant {
                return Err(src.err(
                    b.from.span(),
                    &format!("branch[{i}].from"),
                    format!(
                        "{from:?} trains with schedule {:?}; branches fork from constant-learning-rate runs: set schedule = \"constant\" in its block",
                        jobs[p].config.train.schedule
                    ),
                ));
            }
            for (step, config, kind) in children(src, i, b, &jobs[p])? {
                if !seen.insert((p, config.identity()?)) {
                    continue;
                }
                let key = format!("branch[{i}]");
                let mut plan =
                    job_plan(src, common.vocab, common.fuse, config, &jobs[p].shape, &jobs[p].accounting, &key)?;
                let tokens = Span::of(&jobs[p]).tokens_at(step);
                plan.parent = Some(p);
                plan.branch = Some(BranchOf { parent: 0, step, tokens, kind });
                // A target's branches are targets too: a sealed trunk's cooldown is how a
                // target is trained the way the fitted runs are.
                plan.sealed = jobs[p].sealed;
                let at = &mut jobs[p].config.checkpoint.at;
                if !at.contains(&step) {
                    at.push(step);
                    at.sort_unstable();
                }
                mine.push(jobs.len());
                jobs.push(plan);
                if jobs.len() > MAX_JOBS {
                    return Err(src.err(0..0, "branch", format!("more than {MAX_JOBS} jobs per sweep")));
                }
            }
        }
        if let Some(n) = &b.name {
            named.insert(n.get_ref().trim().to_string(), mine);
        }
    }
    // A parent's config gained checkpoint steps: its fusing class follows.
    for j in jobs.iter_mut() {
        if j.fuse_class.is_some() {
            j.fuse_class = Some(fuse_class(&j.config)?);
        }
    }
    Ok(())
}

/// The branch blocks in an order where each comes after the block it forks from; an unknown
/// name, a name used twice, or a cycle is an error.
fn order(src: &Source<'_>, raw: &RawSpec, grids: &HashMap<String, Vec<usize>>) -> Result<Vec<usize>> {
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, b) in raw.branch.iter().enumerate() {
        if let Some(n) = &b.name {
            let n_ = n.get_ref().trim().to_string();
            if grids.contains_key(&n_) || by_name.insert(n_.clone(), i).is_some() {
                return Err(src.err(n.span(), &format!("branch[{i}].name"), format!("{n_:?} names two blocks")));
            }
        }
    }
    let mut done: Vec<usize> = Vec::new();
    let mut state = vec![0u8; raw.branch.len()]; // 0 new, 1 on the path, 2 placed
    fn visit(
        i: usize,
        raw: &RawSpec,
        src: &Source<'_>,
        grids: &HashMap<String, Vec<usize>>,
        by_name: &HashMap<String, usize>,
        state: &mut [u8],
        done: &mut Vec<usize>,
    ) -> Result<()> {
        if state[i] == 2 {
            return Ok(());
        }
        let b = &raw.branch[i];
        let from = b.from.get_ref().trim();
        if state[i] == 1 {
            return Err(src.err(
                b.from.span(),
                &format!("branch[{i}].from"),
                format!("{from:?} forks from itself (a cycle)"),
            ));
        }
        state[i] = 1;
        if let Some(&j) = by_name.get(from) {
            visit(j, raw, src, grids, by_name, state, done)?;
        } else if !grids.contains_key(from) {
            let mut known: Vec<&str> = grids.keys().chain(by_name.keys()).map(String::as_str).collect();
            known.sort_unstable();
            return Err(src.err(
                b.from.span(),
                &format!("branch[{i}].from"),
                format!("no grid or branch block is named {from:?} (named: {})", known.join(", ")),
            ));
        }
        state[i] = 2;
        done.push(i);
        Ok(())
    }
    for i in 0..raw.branch.len() {
        visit(i, raw, src, grids, &by_name, &mut state, &mut done)?;
    }
    Ok(done)
}

/// The children of one parent for block `i`: (branch step, config, kind).
fn children(src: &Source<'_>, i: usize, b: &RawBranch, parent: &JobPlan) -> Result<Vec<(u64, JobConfig, BranchKind)>> {
    match (&b.cooldown, &b.batch) {
        (Some(c), None) => cooldowns(src, i, c, parent),
        (None, Some(k)) => batches(src, i, k, parent),
        _ => Err(src.err(b.from.span(), &format!("branch[{i}]"), "give exactly one of cooldown or batch")),
    }
}

fn counts(src: &Source<'_>, v: &Spanned<Vec<Num>>, key: &str) -> Result<Vec<u64>> {
    let out: Option<Vec<u64>> = v.get_ref().iter().map(Num::count).collect();
    match out {
        Some(o) if !o.is_empty() => Ok(o),
        _ => Err(src.err(v.span(), key, "expected a list of positive token counts")),
    }
}

/// A child of `parent` forking at `step`: the parent's config from there, with `stop_tokens`.
fn fork(parent: &JobPlan, step: u64, stop_tokens: u64) -> JobConfig {
    let span = Span::of(parent);
    let mut c = parent.config.clone();
    c.train.lr = LrSpec::Value(parent.lr);
    c.stop = StopRule { steps: None, tokens: Some(stop_tokens), target_val_loss: None, patience: None };
    c.checkpoint.at = Vec::new();
    c.branch = Some(BranchStart { step, tokens: span.tokens_at(step), dir: "branch".into() });
    c
}

fn past_length(parent: &JobPlan, tokens: u64) -> String {
    let span = Span::of(parent);
    format!(
        "{tokens} tokens is not within the parent's run ({} layers × {}, tokens {}..{})",
        parent.shape.n_layer,
        parent.shape.d_model,
        span.tokens_at(span.step0) + span.batch,
        span.tokens_at(span.total)
    )
}

fn cooldowns(
    src: &Source<'_>,
    i: usize,
    c: &Spanned<RawCooldown>,
    parent: &JobPlan,
) -> Result<Vec<(u64, JobConfig, BranchKind)>> {
    let rc = c.get_ref();
    let key = format!("branch[{i}].cooldown");
    let fraction = rc.fraction.as_ref().map_or(0.2, |f| *f.get_ref());
    if !(fraction > 0.0 && fraction < 1.0) {
        let span = rc.fraction.as_ref().map_or(c.span(), |f| f.span());
        return Err(src.err(span, &format!("{key}.fraction"), format!("{fraction} is outside (0, 1)")));
    }
    let span = Span::of(parent);
    let mut out = Vec::new();
    for d in counts(src, &rc.to_tokens, &format!("{key}.to_tokens"))? {
        let start = d - (fraction * d as f64).round() as u64;
        let step = span.step_for(start).ok_or_else(|| {
            src.err(
                rc.to_tokens.span(),
                &format!("{key}.to_tokens"),
                format!("the cooldown to {d} starts at {start} tokens: {}", past_length(parent, start)),
            )
        })?;
        let mut config = fork(parent, step, d);
        config.train.schedule = Schedule::Wsd;
        config.train.decay_start = Some(step);
        config.train.decay_shape = Some(rc.shape.unwrap_or(DecayShape::OneMinusSqrt));
        out.push((step, config, BranchKind::Cooldown { to_tokens: d }));
    }
    Ok(out)
}

/// The fewest optimizer steps a batch window may take at any multiplier: shorter, it sits inside
/// Adam's memory of the trunk (~20 steps at β2 = 0.95) and measures the optimizer, not the batch.
pub const MIN_WINDOW_STEPS: u64 = 40;

fn batches(
    src: &Source<'_>,
    i: usize,
    k: &Spanned<RawBatch>,
    parent: &JobPlan,
) -> Result<Vec<(u64, JobConfig, BranchKind)>> {
    let rb = k.get_ref();
    let key = format!("branch[{i}].batch");
    let window = rb.window_tokens.get_ref().count().ok_or_else(|| {
        src.err(rb.window_tokens.span(), &format!("{key}.window_tokens"), "expected a positive count")
    })?;
    let scaling = rb.lr_scaling.as_ref().map_or("sqrt", |s| s.get_ref().as_str());
    let scale = |k: f64| match scaling {
        "sqrt" => Some(k.sqrt()),
        "linear" => Some(k),
        "none" => Some(1.0),
        _ => None,
    };
    if scale(1.0).is_none() {
        let span = rb.lr_scaling.as_ref().map_or(k.span(), |s| s.span());
        return Err(src.err(span, &format!("{key}.lr_scaling"), format!("{scaling:?}: expected sqrt, linear or none")));
    }
    let span = Span::of(parent);
    let n_ctx = parent.config.model.n_ctx.max(1) as u64;
    let micro_tokens = parent.micro_seqs * n_ctx;
    let mkey = format!("{key}.multipliers");
    if rb.multipliers.get_ref().is_empty() {
        return Err(src.err(rb.multipliers.span(), &mkey, "give at least one multiplier"));
    }
    let min_steps = match &rb.min_steps {
        None => MIN_WINDOW_STEPS,
        Some(n) => n
            .get_ref()
            .count()
            .ok_or_else(|| src.err(n.span(), &format!("{key}.min_steps"), "expected a positive count"))?,
    };
    let mut sizes = Vec::new();
    for &m in rb.multipliers.get_ref() {
        let b = m * span.batch as f64;
        let whole = m.is_finite() && m > 0.0 && (b - b.round()).abs() < 1e-6 && b >= 1.0;
        let bt = b.round() as u64;
        if !whole || bt % n_ctx != 0 || bt % micro_tokens != 0 {
            return Err(src.err(
                rb.multipliers.span(),
                &mkey,
                format!(
                    "k = {m} gives a batch of {b} tokens, not a multiple of n_ctx {n_ctx} and of the micro-batch's {micro_tokens} tokens"
                ),
            ));
        }
        sizes.push((m, bt));
    }
    // The largest batch takes the fewest steps.
    if let Some(&(m, bt)) = sizes.iter().max_by_key(|s| s.1) {
        let steps = window / bt;
        if steps < min_steps {
            return Err(src.err(
                rb.window_tokens.span(),
                &format!("{key}.window_tokens"),
                format!(
                    "at k = {m} (B = {bt} tokens) a window of {window} tokens is {steps} optimizer steps; a window needs at least {min_steps} (twice Adam's memory at β2 = 0.95): give window_tokens ≥ {} or drop the largest multipliers",
                    min_steps.saturating_mul(bt)
                ),
            ));
        }
    }

    let fewest = sizes.iter().map(|s| window / s.1).min().unwrap_or(0);
    let rewarmup = rewarmup_steps(src, rb, &key, fewest)?;
    let mut out = Vec::new();
    for t in counts(src, &rb.at_tokens, &format!("{key}.at_tokens"))? {
        let step = span
            .step_for(t)
            .ok_or_else(|| src.err(rb.at_tokens.span(), &format!("{key}.at_tokens"), past_length(parent, t)))?;
        for &(m, bt) in &sizes {
            let mut config = fork(parent, step, span.tokens_at(step) + window);
            config.train.batch_tokens = bt;
            config.train.lr = LrSpec::Value(parent.lr * scale(m).unwrap_or(1.0));
            if let Some(steps) = rewarmup {
                config.train.rewarmup_steps = Some(steps);
                config.train.rewarmup_from_lr = Some(parent.lr);
            }
            if m == 1.0 {
                // The k = 1 window's curve is what the other windows' losses are mapped onto:
                // evaluated at least ten times.
                let every = (window / bt / 10).max(1);
                config.eval.every = config.eval.every.min(every);
            }
            out.push((step, config, BranchKind::Batch { k: m, window_tokens: window }));
        }
    }
    Ok(out)
}

/// A batch branch's re-warmup, at most half its shortest window (`fewest` steps).
fn rewarmup_steps(src: &Source<'_>, rb: &RawBatch, key: &str, fewest: u64) -> Result<Option<u64>> {
    let Some(n) = &rb.rewarmup_steps else { return Ok(None) };
    let rkey = format!("{key}.rewarmup_steps");
    let steps = n.get_ref().count().ok_or_else(|| src.err(n.span(), &rkey, "expected a positive count"))?;
    if steps.saturating_mul(2) > fewest {
        return Err(src.err(
            n.span(),
            &rkey,
            format!(
                "{steps} steps of re-warmup is more than half the shortest window ({fewest} steps): give at most {}",
                fewest / 2
            ),
        ));
    }
    Ok(Some(steps))
}
