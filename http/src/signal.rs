//! The signals that stop a daemon: SIGINT (Ctrl-C) or SIGTERM (what Kubernetes, Slurm and
//! systemd send) cancel one token, and every task of the daemon stops on that token.
use tokio_util::sync::CancellationToken;

/// Waits for SIGINT or SIGTERM, then cancels `token`. Returns at once if `token` is cancelled
/// first, so a daemon that stops for its own reasons can join this task.
pub async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = token.cancelled() => return,
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    token.cancel();
}
