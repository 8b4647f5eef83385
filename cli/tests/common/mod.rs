//! What the CLI tests share: the real `ladder` binary with no coordinator, token or CA taken from
//! the environment, its output as text, files in a temp folder, and `ladder-train` beside it.
//! Each test file uses its own subset.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn ladder_cmd(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_ladder"));
    c.args(args).env_remove("LADDER_TOKEN").env_remove("LADDER_COORDINATOR").env_remove("LADDER_TLS_CA");
    c
}

pub async fn ladder(args: &[&str]) -> Output {
    ladder_cmd(args).output().await.expect("runs")
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

pub fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

/// `ladder-train`, beside this test's `ladder` (cargo test --workspace and scripts/test.sh build
/// it); a missing one fails the test.
pub fn trainer() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_ladder")).with_file_name("ladder-train");
    assert!(p.is_file(), "{} is not built: run `cargo build --workspace --bins` first", p.display());
    p
}
