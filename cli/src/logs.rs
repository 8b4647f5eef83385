//! `ladder logs JOB [--follow]`: a job's log, attempt by attempt: what its trainers wrote to
//! stderr and what its workers did; with `--follow`, new lines as they arrive until the job ends.
//! A line is printed as text only: terminal escape sequences and control characters in it (a
//! trainer's progress bar, or a hostile job's attempt to rewrite the user's terminal) are
//! removed.
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
                    println!("[{}] {}", printable(&source), printable(&text));
                }
            }
        }
        if !follow || ended {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `text` without terminal escape sequences (CSI, OSC and two-byte ESC sequences) or other
/// control characters; a tab stays.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (and DCS, PM, APC): up to BEL or ST (ESC \\).
                Some(']' | 'P' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_and_control_characters_are_removed() {
        assert_eq!(printable("step 10\u{1b}[2K\r\u{1b}[1;31mloss 2.5\u{1b}[0m"), "step 10loss 2.5");
        assert_eq!(printable("a\u{1b}]0;owned\u{7}b\u{1b}]8;;http://x\u{1b}\\c"), "abc");
        assert_eq!(printable("tab\there\u{8}\u{7}\u{9b}31m!"), "tab\there!");
        assert_eq!(printable("plain ünïcode ✓"), "plain ünïcode ✓");
    }
}
