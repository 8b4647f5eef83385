//! `ladder-testkit`: what ladder's tests share instead of copying.
//!
//! - [`data`]: token streams and the messages that register them as a dataset;
//! - [`server`]: a coordinator served in-process on 127.0.0.1:0, its clients, and the steps most
//!   RPC tests begin with (a dataset, a sweep, a registered worker holding a lease);
//! - [`sealed`]: a sweep with a sealed target and the points of a known law for it;
//! - [`procs`]: the real binaries as child processes (a coordinator reports the port it bound),
//!   and polling a sweep until a condition holds.
//!
//! Tests never build binaries: a test that needs another crate's binary finds it beside its own
//! (`cargo test --workspace` and `scripts/test.sh` build them all first) or fails saying so.
pub mod data;
pub mod procs;
pub mod sealed;
pub mod server;

/// What a test needs from the machine (root, a tool): `Ok` to run, or why it cannot. Where it
/// cannot, the test is skipped with the reason printed, except under `CI=true`, where CI is
/// expected to provide it: there the test fails.
pub fn gate<T>(test: &str, needs: Result<T, String>) -> Option<T> {
    match needs {
        Ok(v) => Some(v),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test} must run in CI, and cannot here: {why}")
        }
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}
