//! `ladder logs JOB [--follow]`: a job's log, attempt by attempt: what its trainers wrote to
//! stderr and what its workers did; with `--follow`, new lines as they arrive until the job ends.
use std::time::Duration;

use crate::args::Output;
use crate::client::Client;
use crate::error::Result;

/// How often `--follow` asks for new lines.
const POLL: Duration = Duration::from_secs(1);

pub async fn print(client: &Client, job: u64, follow: bool, output: Output) -> Result<()> {
    let mut after = 0;
    let mut attempt = 0;
    loop {
        // The job's state before its lines: a job that ends meanwhile has its last lines read.
        let ended = client.job(job).await?.state.is_final();
        for (seq, a, at_ms, source, text) in client.logs(job, after).await? {
            after = seq;
            match output {
                Output::Json => {
                    let line =
                        serde_json::json!({ "seq": seq, "attempt": a, "at_ms": at_ms, "source": source, "text": text });
                    println!("{line}");
                }
                Output::Table => {
                    if a != attempt {
                        println!("── attempt {a} ──");
                        attempt = a;
                    }
                    println!("[{source}] {text}");
                }
            }
        }
        if !follow || ended {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
