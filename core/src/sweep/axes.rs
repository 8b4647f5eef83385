//! The axes of one grid block, validated before anything is expanded: shapes, D, B, learning
//! rates, seeds and the run length. Every error names its line and key.
use std::ops::Range;

use toml::Spanned;

use super::raw::{DTokens, LrItem, Num, OneOrMany, RawGrid, RawModel, RawSpec, Shapes};
use crate::accounting::Accounting;
use crate::error::{DomainError, Result};
use crate::job::{LrRule, LrSpec, PerWidth};
use crate::limits::{MAX_JOBS, MAX_N_TOTAL};
use crate::shape::Shape;

/// Locates errors in the spec text.
pub(super) struct Source<'a> {
    pub origin: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> DomainError {
        DomainError::Spec {
            origin: self.origin.to_string(),
            line: super::line_of(self.text, span.start),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An optional positive count.
    pub fn count(&self, v: &Option<Spanned<Num>>, key: &str) -> Result<Option<u64>> {
        match v {
            None => Ok(None),
            Some(n) => {
                n.get_ref().count().map(Some).ok_or_else(|| self.err(n.span(), key, "expected a positive count"))
            }
        }
    }
}

/// One block's validated axes.
pub(super) struct Axes {
    pub shapes: Vec<(Shape, Accounting)>,
    pub d_list: Vec<Option<u64>>,
    pub batches: Vec<u64>,
    pub lrs: Vec<LrSpec>,
    pub seeds: Vec<u64>,
    pub tokens: Option<u64>,
    pub steps: Option<u64>,
    pub patience: Option<u64>,
    /// The key errors about a batch of this block name.
    pub key_batch: String,
    /// The block's name (`main` for a spec without `[[grid]]`); branches name it in `from`.
    pub name: Option<String>,
    pub schedule: Option<crate::job::Schedule>,
    /// Sealed targets (`sealed = true`), and the key that says so.
    pub sealed: Option<String>,
}

impl Axes {
    /// Jobs this block expands into, saturating: a product that wraps must not pass a limit.
    pub fn jobs(&self) -> usize {
        [self.d_list.len(), self.batches.len(), self.lrs.len(), self.seeds.len()]
            .iter()
            .fold(self.shapes.len(), |acc, &k| acc.saturating_mul(k))
    }
}

/// Every block's axes (one block, `[model]` × `[train]`, when the spec has no `[[grid]]`); the
/// job count is checked as it grows, so no product of list lengths can wrap past [`MAX_JOBS`].
pub(super) fn blocks(src: &Source<'_>, raw: &RawSpec, rule: &ShapeRule<'_>, train_tokens: u64) -> Result<Vec<Axes>> {
    let default_grid = RawGrid::default();
    let blocks: Vec<(String, &RawGrid)> = if raw.grid.is_empty() {
        vec![(String::new(), &default_grid)]
    } else {
        raw.grid.iter().enumerate().map(|(i, g)| (format!("grid[{i}]."), g)).collect()
    };
    let mut out = Vec::with_capacity(blocks.len());
    let mut n_jobs: usize = 0;
    for (prefix, g) in &blocks {
        let axes = block(src, raw, rule, train_tokens, prefix, g)?;
        n_jobs = n_jobs.saturating_add(axes.jobs());
        if n_jobs > MAX_JOBS {
            let message = if n_jobs == usize::MAX {
                format!("the job count overflows; the limit is {MAX_JOBS} per sweep")
            } else {
                format!("{n_jobs} jobs exceed the limit of {MAX_JOBS} per sweep")
            };
            return Err(src.err(0..0, "grid", message));
        }
        out.push(axes);
    }
    Ok(out)
}

/// One block's axes; its own keys win over `[model]`'s and `[train]`'s.
fn block(
    src: &Source<'_>,
    raw: &RawSpec,
    rule: &ShapeRule<'_>,
    train_tokens: u64,
    prefix: &str,
    g: &RawGrid,
) -> Result<Axes> {
    let t = &raw.train;
    let key = |field: &str, section: &str| {
        if prefix.is_empty() { format!("{section}.{field}") } else { format!("{prefix}{field}") }
    };
    let shapes = match &g.shapes {
        Some(list) => rule.parse(src, list, &key("shapes", "model"))?,
        None => rule.parse(src, &raw.model.shapes, "model.shapes")?,
    };
    let batches = match &g.batch_tokens {
        Some(b) => spanned_counts(src, b, &key("batch_tokens", "train"))?,
        None => spanned_counts(src, &t.batch_tokens, "train.batch_tokens")?,
    };
    let d_list = match &g.dataset_tokens {
        Some(d) => dataset_tokens(src, Some(d), &key("dataset_tokens", "train"), train_tokens)?,
        None => dataset_tokens(src, t.dataset_tokens.as_ref(), "train.dataset_tokens", train_tokens)?,
    };
    let lrs = match &g.lr {
        Some(l) => learning_rates(src, l, &key("lr", "train"), &shapes)?,
        None => learning_rates(src, &t.lr, "train.lr", &shapes)?,
    };
    let (tokens, steps) = if g.tokens.is_some() || g.steps.is_some() {
        (src.count(&g.tokens, &key("tokens", "train"))?, src.count(&g.steps, &key("steps", "train"))?)
    } else {
        (src.count(&t.tokens, "train.tokens")?, src.count(&t.steps, "train.steps")?)
    };
    if tokens.is_none() && steps.is_none() {
        return Err(src.err(0..0, "train", "give tokens or steps: the length of each job"));
    }
    let patience = match &g.patience {
        Some(_) => src.count(&g.patience, &key("patience", "train"))?,
        None => src.count(&t.patience, "train.patience")?,
    };
    let seeds_src = g.seeds.as_ref().or(raw.seeds.as_ref());
    let seeds = seeds_src.map_or_else(|| vec![0], |s| s.get_ref().clone());
    if seeds.is_empty() {
        let span = seeds_src.map_or(0..0, |s| s.span());
        let key = if prefix.is_empty() { "seeds".to_string() } else { format!("{prefix}seeds") };
        return Err(src.err(span, &key, "the grid is empty: give at least one seed"));
    }
    let name = match &g.name {
        Some(n) => Some(n.get_ref().trim().to_string()),
        None if prefix.is_empty() => Some("main".to_string()),
        None => None,
    };
    Ok(Axes {
        shapes,
        d_list,
        batches,
        lrs,
        seeds,
        tokens,
        steps,
        patience,
        key_batch: key("batch_tokens", "train"),
        name,
        schedule: g.schedule,
        sealed: g.sealed.as_ref().filter(|s| *s.get_ref()).map(|_| key("sealed", "grid")),
    })
}

/// How `[n_layer, d_model]` pairs become shapes: heads, d_ff and vocab from `[model]`.
pub(super) struct ShapeRule<'a> {
    pub model: &'a RawModel,
    pub n_ctx: i64,
    pub ff_mult: i64,
    pub vocab: i64,
}

impl ShapeRule<'_> {
    pub(super) fn parse(&self, src: &Source<'_>, list: &Shapes, key: &str) -> Result<Vec<(Shape, Accounting)>> {
        if list.get_ref().is_empty() {
            return Err(src.err(list.span(), key, "the grid is empty: give at least one [n_layer, d_model]"));
        }
        let mut shapes = Vec::new();
        for (i, s) in list.get_ref().iter().enumerate() {
            shapes.push(self.one(src, s, &format!("{key}[{i}]"), list)?);
        }
        Ok(shapes)
    }

    fn one(&self, src: &Source<'_>, s: &Spanned<Vec<i64>>, key: &str, list: &Shapes) -> Result<(Shape, Accounting)> {
        let m = self.model;
        let &[n_layer, d_model] = s.get_ref().as_slice() else {
            return Err(src.err(s.span(), key, "expected [n_layer, d_model]"));
        };
        let n_heads = match (&m.n_heads, &m.d_head) {
            (Some(h), _) => *h.get_ref(),
            (None, Some(dh)) => {
                let dh = *dh.get_ref();
                if dh <= 0 || d_model % dh != 0 {
                    return Err(src.err(s.span(), key, format!("d_model {d_model} is not divisible by d_head {dh}")));
                }
                d_model / dh
            }
            (None, None) => return Err(src.err(list.span(), "model", "give n_heads or d_head")),
        };
        let d_ff = self.ff_mult.checked_mul(d_model).ok_or_else(|| src.err(s.span(), key, "d_ff overflows"))?;
        let shape = Shape { n_layer, d_model, n_heads, d_ff, n_ctx: self.n_ctx, vocab: self.vocab };
        shape.validate().map_err(|e| src.err(s.span(), key, super::strip_invalid(e)))?;
        let acct = Accounting::of(&shape);
        if acct.n_total > MAX_N_TOTAL {
            return Err(src.err(
                s.span(),
                key,
                format!("{} parameters is absurd here (limit {MAX_N_TOTAL})", acct.n_total),
            ));
        }
        Ok((shape, acct))
    }
}

/// D values: "all" (None) or token counts no larger than the dataset.
fn dataset_tokens(
    src: &Source<'_>,
    d: Option<&Spanned<OneOrMany<DTokens>>>,
    key: &str,
    available: u64,
) -> Result<Vec<Option<u64>>> {
    let Some(d) = d else { return Ok(vec![None]) };
    let mut out = Vec::new();
    for item in d.get_ref().iter_items() {
        match item {
            DTokens::Word(w) if w == "all" => out.push(None),
            DTokens::Num(n) => match n.count() {
                Some(v) if v > available => {
                    return Err(src.err(
                        d.span(),
                        key,
                        format!("{v} exceeds the dataset's {available} training tokens"),
                    ));
                }
                Some(v) => out.push(Some(v)),
                None => return Err(src.err(d.span(), key, "expected \"all\" or token counts")),
            },
            _ => return Err(src.err(d.span(), key, "expected \"all\" or token counts")),
        }
    }
    if out.is_empty() {
        return Err(src.err(d.span(), key, "the grid is empty"));
    }
    Ok(out)
}

/// The learning-rate axis; a per-width rule must give a rate in (0, 1) at every shape of the
/// block.
fn learning_rates(
    src: &Source<'_>,
    v: &Spanned<OneOrMany<LrItem>>,
    key: &str,
    shapes: &[(Shape, Accounting)],
) -> Result<Vec<LrSpec>> {
    let mut lrs = Vec::new();
    for item in v.get_ref().iter_items() {
        lrs.push(match item {
            LrItem::Word(w) if w == "kaplan" => LrSpec::Rule(LrRule::Kaplan),
            LrItem::Value(x) if *x > 0.0 && *x < 1.0 => LrSpec::Value(*x),
            LrItem::PerWidth(w) => per_width(src, v.span(), key, *w, shapes)?,
            _ => {
                return Err(src.err(
                    v.span(),
                    key,
                    "expected \"kaplan\", numbers in (0, 1) or { value = …, at_d_model = … }",
                ));
            }
        });
    }
    if lrs.is_empty() {
        return Err(src.err(v.span(), key, "the grid is empty"));
    }
    Ok(lrs)
}

/// A per-width rate, refused where it leaves (0, 1) at any shape of the block.
fn per_width(
    src: &Source<'_>,
    span: Range<usize>,
    key: &str,
    w: PerWidth,
    shapes: &[(Shape, Accounting)],
) -> Result<LrSpec> {
    if !(w.value > 0.0 && w.value < 1.0) || w.at_d_model < 1 {
        return Err(src.err(span, key, "a per-width rate needs value in (0, 1) and at_d_model ≥ 1"));
    }
    for (s, _) in shapes {
        if !w.at(s.d_model).is_some_and(|lr| lr > 0.0 && lr < 1.0) {
            let (l, d) = (s.n_layer, s.d_model);
            let what = format!("{} · {} / {d} is outside (0, 1) for the shape [{l}, {d}]", w.value, w.at_d_model);
            return Err(src.err(span, key, what));
        }
    }
    Ok(LrSpec::PerWidth(w))
}

fn spanned_counts(src: &Source<'_>, v: &Spanned<OneOrMany<Num>>, key: &str) -> Result<Vec<u64>> {
    let out: Option<Vec<u64>> = v.get_ref().iter_items().map(Num::count).collect();
    match out {
        Some(o) if !o.is_empty() => Ok(o),
        Some(_) => Err(src.err(v.span(), key, "the grid is empty")),
        None => Err(src.err(v.span(), key, "expected positive token counts")),
    }
}
