//! `ladder fit --csv FILE`: points from anywhere. A header row names the columns (any case):
//! `loss` and at least one of `N`, `D`, `C`, `B`, `S`; other columns are ignored. Every error
//! names the file, line and column.
use std::path::Path;

use crate::error::{CliError, Result};
use crate::inputs::{Inputs, RunPoint};

const KNOWN: [&str; 6] = ["n", "d", "c", "b", "s", "loss"];

pub fn read(path: &Path) -> Result<Inputs> {
    let text = crate::commands::read_text(path)?;
    parse(&text, &path.display().to_string())
}

pub fn parse(text: &str, origin: &str) -> Result<Inputs> {
    let bad = |line: usize, msg: String| CliError::input(format!("{origin}:{line}"), msg);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hline, header)) = lines.next() else {
        return Err(CliError::input(origin.to_string(), "empty file: expected a header row such as `N,loss`"));
    };
    let names: Vec<String> = header.split(',').map(|h| h.trim().to_ascii_lowercase()).collect();
    let col = |k: &str| names.iter().position(|n| n == k);
    let Some(loss_col) = col("loss") else {
        return Err(bad(hline + 1, format!("no `loss` column in the header {header:?}")));
    };
    if !KNOWN[..5].iter().any(|k| col(k).is_some()) {
        return Err(bad(hline + 1, format!("the header {header:?} has none of the columns N, D, C, B, S")));
    }
    let mut runs = Vec::new();
    for (i, line) in lines {
        let lineno = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(bad(lineno, format!("{} fields, the header has {}", fields.len(), names.len())));
        }
        let num = |k: &str| -> Result<Option<f64>> {
            let Some(c) = col(k) else { return Ok(None) };
            let raw = fields[c];
            if raw.is_empty() {
                return Ok(None);
            }
            let v: f64 =
                raw.parse().map_err(|_| bad(lineno, format!("column `{}`: {raw:?} is not a number", names[c])))?;
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(lineno, format!("column `{}`: {raw} must be finite and positive", names[c])));
            }
            Ok(Some(v))
        };
        let loss = num("loss")?.ok_or_else(|| bad(lineno, format!("column `{}` is empty", names[loss_col])))?;
        let d = num("d")?;
        runs.push(RunPoint {
            job: None,
            n: num("n")?,
            d,
            tokens: d,
            b: num("b")?,
            s: num("s")?,
            c: num("c")?,
            loss,
            d_limit: d.unwrap_or(f64::INFINITY),
            group: String::new(),
        });
    }
    if runs.is_empty() {
        return Err(CliError::input(origin.to_string(), "a header but no rows"));
    }
    Ok(Inputs { source: origin.to_string(), runs, ..Default::default() })
}
