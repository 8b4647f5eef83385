//! `ladder fit --csv FILE`: points from anywhere. A header row names the columns (any case):
//! `loss` and at least one of `N`, `D`, `C`, `B`, `S`; other columns are ignored. Every error
//! names the file, line and column.
use std::path::Path;

use ladder_analysis::Inputs;
use ladder_analysis::inputs::RunPoint;

use crate::error::{CliError, Result};

const KNOWN: [&str; 6] = ["n", "d", "c", "b", "s", "loss"];

pub fn read(path: &Path) -> Result<Inputs> {
    let text = crate::commands::read_text(path)?;
    parse(&text, &path.display().to_string())
}

pub fn parse(text: &str, origin: &str) -> Result<Inputs> {
    let bad = |line: usize, msg: String| CliError::input(format!("{origin}:{line}"), msg);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records().filter(|r| r.as_ref().map_or(true, |r| !r.iter().all(str::is_empty)));
    let line_of = |r: &csv::StringRecord| r.position().map_or(0, |p| p.line() as usize);
    let header = match records.next() {
        None => return Err(CliError::input(origin.to_string(), "empty file: expected a header row such as `N,loss`")),
        Some(Err(e)) => return Err(CliError::input(origin.to_string(), format!("not CSV: {e}"))),
        Some(Ok(h)) => h,
    };
    let hline = line_of(&header);
    let header_text = header.iter().collect::<Vec<_>>().join(",");
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |k: &str| names.iter().position(|n| n == k);
    let Some(loss_col) = col("loss") else {
        return Err(bad(hline, format!("no `loss` column in the header {header_text:?}")));
    };
    if !KNOWN[..5].iter().any(|k| col(k).is_some()) {
        return Err(bad(hline, format!("the header {header_text:?} has none of the columns N, D, C, B, S")));
    }
    let mut runs = Vec::new();
    for record in records {
        let record = record.map_err(|e| CliError::input(origin.to_string(), format!("not CSV: {e}")))?;
        let lineno = line_of(&record);
        let fields: Vec<&str> = record.iter().collect();
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
