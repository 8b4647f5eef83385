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

/// The demo's 64 cooldown ends (`testdata/demo_cooldown_ends.csv`).
pub const DEMO_ENDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/demo_cooldown_ends.csv");

/// The demo's ends with each size's depth, written to `dir`: 3312 and 12768 are the 1-layer
/// 1x16 and 1x32, which the fits leave out by default given a `layers` column.
pub fn demo_ends_with_layers(dir: &Path) -> String {
    let text = std::fs::read_to_string(DEMO_ENDS).expect("the demo's ends");
    let mut body = String::from("N,D,loss,layers\n");
    for line in text.lines().skip(1) {
        let layers = match line.split(',').next() {
            Some("3312" | "12768") => 1,
            _ => 2,
        };
        body.push_str(&format!("{line},{layers}\n"));
    }
    write(dir, "layers.csv", &body)
}
