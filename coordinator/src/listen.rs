//! The coordinator's listener: a deep accept backlog, a cap on the connections held at once, no
//! connection kept that does not speak within [`crate::app::Config::first_bytes`], and, once
//! tokens are configured, none kept that has not made an authenticated call within
//! [`crate::app::Config::auth_within`] (health checks need no token, and a prober reconnects), with
//! at most [`MAX_UNAUTHENTICATED`] such connections at once.
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connections held at once; past this a new one is closed until one ends (each holds a file
/// descriptor and HTTP/2 state).
pub const MAX_CONNECTIONS: usize = 16_384;

/// Connections held at once that have made no authenticated call yet.
pub const MAX_UNAUTHENTICATED: usize = 1024;

/// The connections that have not yet made an authenticated call, by peer address: the token
/// check marks a connection when a call passes ([`Unauthenticated::passed`]).
#[derive(Debug, Default)]
pub struct Unauthenticated(Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>);

impl Unauthenticated {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<AtomicBool>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A call from `peer` passed the token check: its connection is kept.
    pub fn passed(&self, peer: SocketAddr) {
        if let Some(flag) = self.lock().remove(&peer) {
            flag.store(true, Ordering::Release);
        }
    }

    /// Admits `peer`'s connection as unauthenticated; None past [`MAX_UNAUTHENTICATED`].
    fn admit(&self, peer: SocketAddr) -> Option<Arc<AtomicBool>> {
        let mut g = self.lock();
        if g.len() >= MAX_UNAUTHENTICATED {
            return None;
        }
        let flag = Arc::new(AtomicBool::new(false));
        g.insert(peer, flag.clone());
        Some(flag)
    }

    fn forget(&self, peer: SocketAddr) {
        self.lock().remove(&peer);
    }
}

/// Until a connection's first authenticated call: the time it has left, and where it is listed.
struct Pending {
    passed: Arc<AtomicBool>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    list: Arc<Unauthenticated>,
    peer: SocketAddr,
}

/// An accepted connection that holds one of the [`MAX_CONNECTIONS`] places while it lives.
pub struct Capped {
    sock: TcpStream,
    _place: OwnedSemaphorePermit,
    /// Set until it has made an authenticated call (with tokens configured).
    pending: Option<Pending>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.list.forget(self.peer);
    }
}

impl AsyncRead for Capped {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(p) = self.pending.as_mut() {
            if p.passed.load(Ordering::Acquire) {
                self.pending = None;
            } else if p.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no authenticated call in time: closed",
                )));
            }
        }
        Pin::new(&mut self.sock).poll_read(cx, buf)
    }
}

impl AsyncWrite for Capped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.sock).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.sock).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.sock).poll_shutdown(cx)
    }
}

impl Connected for Capped {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.sock.connect_info()
    }
}

/// The accepted connections that sent the 24 bytes of a preface (or a ClientHello) within
/// `deadline` ([`Config::first_bytes`]): a silent connection holds nothing for long.
/// With `auth` (tokens configured: the list, and the time a connection has for its first
/// authenticated call), a connection that makes none in time is closed.
pub(crate) fn guarded(
    listener: TcpListener,
    deadline: std::time::Duration,
    auth: Option<(Arc<Unauthenticated>, std::time::Duration)>,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Capped>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, say: wait for some to free rather than spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(place) = places.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "closed a connection: {MAX_CONNECTIONS} are open");
                continue;
            };
            let pending = match &auth {
                None => None,
                Some((list, within)) => {
                    let Some(passed) = list.admit(peer) else {
                        tracing::warn!(%peer, "closed a connection: {MAX_UNAUTHENTICATED} have not authenticated");
                        continue;
                    };
                    let deadline = Box::pin(tokio::time::sleep(*within));
                    Some(Pending { passed, deadline, list: list.clone(), peer })
                }
            };
            // Small replies (heartbeats, acks) leave at once rather than after a delayed ACK.
            let _ = sock.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 24];
                let ready = tokio::time::timeout(deadline, async {
                    loop {
                        match sock.peek(&mut buf).await {
                            Ok(n) if n >= buf.len() => return true,
                            Ok(0) | Err(_) => return false,
                            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                        }
                    }
                })
                .await;
                if matches!(ready, Ok(true)) {
                    let _ = tx.send(Ok(Capped { sock, _place: place, pending })).await;
                } else {
                    tracing::debug!(%peer, "closed a connection that sent no preface within {deadline:?}");
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Connections the kernel queues for accept. A cluster's workers start together (a Slurm array,
/// a Deployment scaled up): `TcpListener::bind` queues 128 (the 129th of a burst timed out in
/// `tests/listen.rs`), the queue overflowed at 1000 workers, and a connection whose handshake was
/// dropped there was reset once it sent its first request. The kernel caps this at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (host:port; the first address it resolves to that binds), with
/// [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"))
    }))
}
