//! `ladder data add`: register nanoGPT `train.bin`/`val.bin` as they are, or tokenize text
//! files first with `ladder-train prepare` (the tokenizers live in the trainer). Uploads go to
//! the coordinator in 1 MiB pieces; it checks every token id against the vocabulary.
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ladder_core::dataset::{DatasetHeader, DatasetMeta};
use ladder_core::status::DatasetInfo;

use crate::args::Tokenizer;
use crate::client::Client;
use crate::error::{CliError, Result};

/// The `ladder-train` binary: `explicit`, or the one beside this executable.
pub fn trainer_path(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| CliError::io("locating this executable", e))?
            .with_file_name("ladder-train"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::input("trainer", format!("{} not found: build it or pass --trainer", path.display())))
    }
}

/// Runs `ladder-train prepare` on `inputs` into `out`.
pub async fn prepare(
    trainer: &Path,
    inputs: &[PathBuf],
    tokenizer: Tokenizer,
    val_fraction: f64,
    lossy_utf8: bool,
    out: &Path,
) -> Result<()> {
    let mut cmd = tokio::process::Command::new(trainer);
    cmd.arg("prepare")
        .arg("--tokenizer")
        .arg(match tokenizer {
            Tokenizer::Byte => "byte",
            Tokenizer::Gpt2 => "gpt2",
        })
        .arg("--out")
        .arg(out)
        .arg("--val-fraction")
        .arg(val_fraction.to_string());
    if lossy_utf8 {
        cmd.arg("--lossy-utf8");
    }
    cmd.args(inputs).stdout(Stdio::null()).stderr(Stdio::piped());
    let res = cmd.output().await.map_err(|e| CliError::io(format!("running {}", trainer.display()), e))?;
    if !res.status.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        return Err(CliError::input("tokenizing", err.trim().to_string()));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::io(format!("reading {}", path.display()), e))
}

/// Uploads the folder `dir` (train.bin, val.bin, optional meta.json) as dataset `name`.
pub async fn upload(client: &Client, name: &str, dir: &Path, vocab: Option<u32>) -> Result<DatasetInfo> {
    let train = read(&dir.join("train.bin"))?;
    let val = read(&dir.join("val.bin"))?;
    let meta_path = dir.join("meta.json");
    let meta_json = if meta_path.is_file() {
        String::from_utf8(read(&meta_path)?)
            .map_err(|e| CliError::input(meta_path.display().to_string(), format!("not UTF-8: {e}")))?
    } else {
        String::new()
    };
    let meta = match meta_json.as_str() {
        "" => None,
        text => Some(DatasetMeta::parse(text, &meta_path.display().to_string())?),
    };
    if meta.is_none() && vocab.is_none() {
        return Err(CliError::input(dir.display().to_string(), "no meta.json: pass --vocab with the vocabulary size"));
    }
    let vocab = match &meta {
        Some(m) => u32::try_from(m.vocab_size).map_err(|_| {
            CliError::input(meta_path.display().to_string(), format!("vocab {} is out of range", m.vocab_size))
        })?,
        None => vocab.unwrap_or(0),
    };
    let header = DatasetHeader {
        name: name.to_string(),
        meta,
        meta_json,
        train_bytes: train.len() as u64,
        val_bytes: val.len() as u64,
        vocab,
    };
    client.register_dataset(&header, train, val).await.map_err(|e| match e {
        CliError::Rpc(m, tonic::Code::InvalidArgument) => CliError::input(dir.display().to_string(), m),
        other => other,
    })
}

/// The text files to tokenize: each path a file, or a folder whose `*.txt` files (in name order)
/// are taken, each split into train and validation on its own.
fn text_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
            continue;
        }
        let not_text =
            || CliError::input(p.display().to_string(), "not a text file, nor a folder with train.bin or *.txt");
        if !p.is_dir() {
            return Err(not_text());
        }
        let mut txt: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| CliError::io(format!("reading {}", p.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "txt"))
            .collect();
        if txt.is_empty() {
            return Err(not_text());
        }
        txt.sort();
        out.extend(txt);
    }
    Ok(out)
}

/// `ladder data add`.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    client: &Client,
    name: &str,
    paths: &[PathBuf],
    tokenizer: Tokenizer,
    val_fraction: f64,
    lossy_utf8: bool,
    vocab: Option<u32>,
    trainer: Option<&Path>,
) -> Result<DatasetInfo> {
    if let [dir] = paths
        && dir.join("train.bin").is_file()
    {
        return upload(client, name, dir, vocab).await;
    }
    let paths = text_files(paths)?;
    let trainer = trainer_path(trainer)?;
    // A fresh folder of our own (random name, mode 0700): nothing another user placed in the
    // temp folder under a name we would pick can be written through.
    let mut b = tempfile::Builder::new();
    b.prefix("ladder-data-");
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let tmp = b.tempdir().map_err(|e| CliError::io("creating a temporary folder for the tokens", e))?;
    prepare(&trainer, &paths, tokenizer, val_fraction, lossy_utf8, tmp.path()).await?;
    upload(client, name, tmp.path(), None).await
}
