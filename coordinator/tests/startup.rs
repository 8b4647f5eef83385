//! Bad start-up settings are refused with a clear message and a non-zero exit, before anything
//! listens: a lease length of 0, and a token left at an example manifest's placeholder.
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ladder-coordinator");

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"]).arg(tmp.path()).args(args);
    for k in ["LADDER_TOKEN", "LADDER_USER_TOKEN", "LADDER_WORKER_TOKEN"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_zero_lease_length_is_refused() {
    let (code, err) = run(&["--lease-ttl-ms", "0"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--lease-ttl-ms") && err.contains("100"), "{err}");
}

#[test]
fn the_example_manifests_placeholder_tokens_are_refused() {
    // The value the Kubernetes example ships, read from the manifest itself.
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/k8s/secret.yaml")).expect("manifest");
    let placeholder = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("ladder-worker-0:"))
        .map(str::trim)
        .expect("a worker's token in the manifest");
    // Mounted as the Secret's folder, one file per worker, as the StatefulSet does.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("ladder-worker-0"), placeholder).expect("write");
    let folder = dir.path().display().to_string();
    let (code, err) = run(&["--worker-tokens-file", &folder], &[]);
    assert_ne!(code, 0, "started with the placeholder: {err}");
    assert!(err.contains("the worker token is an example's placeholder"), "{err}");
    let (code, err) = run(&[], &[("LADDER_TOKEN", "short")]);
    assert_ne!(code, 0);
    assert!(err.contains("the admin token has 5 characters"), "{err}");
}

/// Runs the coordinator with `args` only (no default --listen).
fn run_bare(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(tmp.path()).args(args);
    for k in ["LADDER_TOKEN", "LADDER_USER_TOKEN", "LADDER_WORKER_TOKEN", "LADDER_LISTEN", "LADDER_HTTP_LISTEN"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn serving_other_machines_without_a_token_is_refused() {
    for args in [vec!["--listen", "0.0.0.0:0"], vec!["--listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0"]] {
        let (code, err) = run_bare(&args, &[]);
        assert_ne!(code, 0, "{args:?} started without a token: {err}");
        assert!(err.contains("reachable from other machines and no token is configured"), "{err}");
        assert!(err.contains(if args.len() == 2 { "--listen 0.0.0.0:0" } else { "--http-listen 0.0.0.0:0" }), "{err}");
    }
}

#[test]
fn a_shared_worker_token_beside_per_worker_tokens_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("w0"), "worker-zero-token-0123456789").expect("write");
    let folder = dir.path().display().to_string();
    let (code, err) =
        run(&["--worker-tokens-file", &folder], &[("LADDER_WORKER_TOKEN", "shared-worker-token-0123456789")]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("use only the file"), "{err}");
}
