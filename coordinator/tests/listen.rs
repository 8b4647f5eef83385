//! The coordinator's listener queues a burst of connections larger than `TcpListener::bind`'s
//! backlog (128; with it, the 129th connection of this burst times out): a cluster's workers
//! connect together, and a connection dropped from a full accept queue is reset once it sends
//! its first request.
use std::time::Duration;

/// A soft limit read from /proc/self/limits ("Max open files  <soft>  <hard>  files").
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test]
async fn a_burst_of_1100_connections_waits_in_the_accept_queue() {
    const BURST: usize = 1100;
    let somaxconn: usize =
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let needs = if somaxconn < BURST {
        Err(format!("net.core.somaxconn is {somaxconn}, below the burst of {BURST} this test needs"))
    } else if open_files_limit().is_some_and(|n| n < 2 * BURST as u64 + 64) {
        Err(format!("the open-files limit is below the {} sockets this test needs", 2 * BURST + 64))
    } else {
        Ok(())
    };
    if ladder_testkit::gate("a_burst_of_1100_connections_waits_in_the_accept_queue", needs).is_none() {
        return;
    }
    let listener = ladder_coordinator::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Nothing accepts yet: every handshake must find room in the kernel's queue.
    let mut clients = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connection {i} of {BURST} did not complete: {e}"));
        clients.push(c);
    }
    let mut accepted = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await {
        accepted += 1;
    }
    assert_eq!(accepted, BURST, "every queued connection is accepted");
}
