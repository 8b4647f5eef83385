//! `ladder fit --csv FILE`: points from anywhere. A header row names the columns; other projects
//! name them in many ways, so the common names are recognised (any case): N as `N`, `params`,
//! `parameters` or `Model Size`; D as `D`, `tokens` or `Training Tokens`; C as `C`, `FLOPs`,
//! `compute` or `Training FLOP`; B as `B` or `batch_tokens`; S as `S` or `steps`; layers as
//! `layers` or `n_layer` (the fits leave 1-layer sizes out); and `loss`.
//! `--columns N=...,C=...` names them explicitly. Where D is missing and C is given, D = C/(6N),
//! as Epoch AI's Chinchilla analysis takes it. Other columns are ignored; every error names the
//! file, line and column.
use std::path::Path;

use ladder_analysis::Inputs;
use ladder_analysis::inputs::RunPoint;

use crate::error::{CliError, Result};

/// Each variable and the names a header may give it (lowercase).
const ALIASES: [(&str, &[&str]); 7] = [
    ("N", &["n", "params", "parameters", "n_params", "model size", "model_size"]),
    ("D", &["d", "tokens", "training tokens", "training_tokens", "dataset_tokens"]),
    ("C", &["c", "flops", "compute", "training flop", "training flops", "training_flops"]),
    ("B", &["b", "batch", "batch_tokens", "batch size"]),
    ("S", &["s", "steps"]),
    ("loss", &["loss", "val_loss"]),
    ("layers", &["layers", "n_layer", "n_layers", "depth"]),
];

/// Which column holds each variable.
#[derive(Debug, Default)]
struct Columns {
    /// Indexed like [`ALIASES`].
    at: [Option<usize>; 7],
}

impl Columns {
    /// Resolves the header: an explicit `mapping` (`VAR=column name`, comma-separated) first,
    /// then the known names.
    fn of(header: &[String], mapping: Option<&str>, place: &str) -> Result<Self> {
        let lower: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let mut cols = Columns::default();
        for (k, (_, names)) in ALIASES.iter().enumerate() {
            cols.at[k] = names.iter().find_map(|n| lower.iter().position(|h| h == n));
        }
        for part in mapping.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (var, name) = part
                .split_once('=')
                .ok_or_else(|| CliError::input("--columns", format!("{part:?}: expected VAR=column, e.g. N=params")))?;
            let k = ALIASES.iter().position(|(v, _)| v.eq_ignore_ascii_case(var.trim())).ok_or_else(|| {
                CliError::input("--columns", format!("{var:?}: the variables are N, D, C, B, S, layers and loss"))
            })?;
            let want = name.trim().trim_matches('"').to_ascii_lowercase();
            let c = lower.iter().position(|h| *h == want).ok_or_else(|| {
                CliError::input(place.to_string(), format!("--columns names {name:?}, which the header does not have"))
            })?;
            cols.at[k] = Some(c);
        }
        Ok(cols)
    }

    fn get(&self, var: &str) -> Option<usize> {
        ALIASES.iter().position(|(v, _)| *v == var).and_then(|k| self.at[k])
    }
}

pub fn read(path: &Path, mapping: Option<&str>) -> Result<Inputs> {
    let text = crate::commands::read_text(path)?;
    parse(&text, &path.display().to_string(), mapping)
}

pub fn parse(text: &str, origin: &str, mapping: Option<&str>) -> Result<Inputs> {
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
    let names: Vec<String> = header.iter().map(str::to_string).collect();
    let cols = Columns::of(&names, mapping, &format!("{origin}:{hline}"))?;
    if cols.get("loss").is_none() {
        return Err(bad(
            hline,
            format!("no `loss` column in the header {header_text:?} (name it with --columns loss=...)"),
        ));
    }
    if ["N", "D", "C", "B", "S"].iter().all(|v| cols.get(v).is_none()) {
        return Err(bad(
            hline,
            format!(
                "the header {header_text:?} has none of the columns N, D, C, B, S (name them with --columns, e.g. N=params)"
            ),
        ));
    }
    let derived = cols.get("D").is_none() && cols.get("C").is_some() && cols.get("N").is_some();
    let mut runs = Vec::new();
    for record in records {
        let record = record.map_err(|e| CliError::input(origin.to_string(), format!("not CSV: {e}")))?;
        let lineno = line_of(&record);
        let fields: Vec<&str> = record.iter().collect();
        if fields.len() != names.len() {
            return Err(bad(lineno, format!("{} fields, the header has {}", fields.len(), names.len())));
        }
        let num = |var: &str| -> Result<Option<f64>> {
            let Some(c) = cols.get(var) else { return Ok(None) };
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
        let loss = num("loss")?.ok_or_else(|| bad(lineno, "the loss is empty".to_string()))?;
        let (n, c) = (num("N")?, num("C")?);
        let d = match (num("D")?, n, c) {
            (Some(d), _, _) => Some(d),
            (None, Some(n), Some(c)) => Some(c / (6.0 * n)),
            _ => None,
        };
        let (b, s) = (num("B")?, num("S")?);
        let layers = match num("layers")? {
            Some(l) if l.fract() != 0.0 || l > f64::from(u32::MAX) => {
                return Err(bad(lineno, format!("column `layers`: {l} is not a whole number of layers")));
            }
            l => l.map(|l| l as u32),
        };
        let group = String::new();
        let d_limit = d.unwrap_or(f64::INFINITY);
        runs.push(RunPoint { job: None, n, layers, d, tokens: d, b, s, c, loss, d_limit, group, branch: None });
    }
    if runs.is_empty() {
        return Err(CliError::input(origin.to_string(), "a header but no rows"));
    }
    let source = if derived { format!("{origin} (D = C/(6N))") } else { origin.to_string() };
    Ok(Inputs { source, runs, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_and_explicit_mappings_are_read() {
        let epoch = "x,y,color,Model Size,Training FLOP,hex_color,loss\n1,2,#fff,1e9,6e18,#fff,2.5\n";
        let i = parse(epoch, "e.csv", None).expect("reads Epoch's header");
        let r = &i.runs[0];
        assert_eq!((r.n, r.c, r.loss), (Some(1e9), Some(6e18), 2.5));
        assert_eq!(r.d, Some(1e9), "D = C/(6N)");
        assert!(i.source.contains("D = C/(6N)"), "{}", i.source);
        let mine = "size,budget,l\n1e6,1e15,3.0\n";
        let i = parse(mine, "m.csv", Some("N=size, C=budget, loss=l")).expect("mapped");
        assert_eq!((i.runs[0].n, i.runs[0].c, i.runs[0].loss), (Some(1e6), Some(1e15), 3.0));
        let e = parse(mine, "m.csv", Some("N=width")).expect_err("no such column");
        assert!(e.to_string().contains("\"width\""), "{e}");
        let e = parse(mine, "m.csv", None).expect_err("nothing known");
        assert!(e.to_string().contains("--columns"), "{e}");
    }
}
