//! `ladder data add`: register nanoGPT `train.bin`/`val.bin` as they are, or tokenize text
//! files first with `ladder-train prepare` (the tokenizers live in the trainer). Uploads go to
//! the coordinator in 1 MiB pieces; it checks every token id against the vocabulary.
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ladder_proto::pb;

use crate::args::Tokenizer;
use crate::client::Client;
use crate::error::{CliError, Result};

const PIECE: usize = 1 << 20;

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
pub async fn upload(client: &mut Client, name: &str, dir: &Path, vocab: Option<u32>) -> Result<pb::Dataset> {
    let train = read(&dir.join("train.bin"))?;
    let val = read(&dir.join("val.bin"))?;
    let meta = dir.join("meta.json");
    let meta_json =
        if meta.is_file() { read(&meta).map(|b| String::from_utf8_lossy(&b).into_owned())? } else { String::new() };
    if meta_json.is_empty() && vocab.is_none() {
        return Err(CliError::input(dir.display().to_string(), "no meta.json: pass --vocab with the vocabulary size"));
    }
    let header = pb::DatasetHeader {
        name: name.to_string(),
        meta_json,
        train_bytes: train.len() as u64,
        val_bytes: val.len() as u64,
        vocab: vocab.unwrap_or(0),
    };
    let mut msgs = vec![pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(header)) }];
    for (file, bytes) in [("train", &train), ("val", &val)] {
        for piece in bytes.chunks(PIECE) {
            msgs.push(pb::DatasetUpload {
                part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes {
                    file: file.into(),
                    data: piece.to_vec(),
                })),
            });
        }
    }
    let ds = client.register_dataset(tokio_stream::iter(msgs)).await.map_err(|s| {
        if s.code() == tonic::Code::InvalidArgument {
            CliError::input(dir.display().to_string(), s.message().to_string())
        } else {
            s.into()
        }
    })?;
    Ok(ds.into_inner())
}

/// `ladder data add`.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    client: &mut Client,
    name: &str,
    paths: &[PathBuf],
    tokenizer: Tokenizer,
    val_fraction: f64,
    lossy_utf8: bool,
    vocab: Option<u32>,
    trainer: Option<&Path>,
) -> Result<pb::Dataset> {
    if let [dir] = paths
        && dir.join("train.bin").is_file()
    {
        return upload(client, name, dir, vocab).await;
    }
    for p in paths {
        if !p.is_file() {
            return Err(CliError::input(p.display().to_string(), "not a text file, nor a folder with train.bin"));
        }
    }
    let trainer = trainer_path(trainer)?;
    let tmp = std::env::temp_dir().join(format!("ladder-data-{}-{}", std::process::id(), name.replace('/', "_")));
    prepare(&trainer, paths, tokenizer, val_fraction, lossy_utf8, &tmp).await?;
    let res = upload(client, name, &tmp, None).await;
    let _ = std::fs::remove_dir_all(&tmp);
    res
}
