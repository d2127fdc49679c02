//! A TCP proxy that cuts and stalls connections, put between the agent and central (or the broker) in tests.
//!
//! Modes, switchable at any time:
//! - [`ProxyMode::Pass`]: forwards bytes both ways.
//! - [`ProxyMode::Refuse`]: closes every new connection at once.
//! - [`ProxyMode::Stall`]: accepts and holds connections without forwarding a byte.
//! - [`ProxyMode::Chaos`]: forwards, but before each chunk may cut the connection (`cut_per_mille`) or hold it for up
//!   to `max_stall_ms` (`stall_per_mille`). Randomness comes from a seed, so a failing run can be replayed.
//!
//! [`ChaosProxy::cut_all`] drops every open connection now. Only loopback addresses are used: the proxy listens on
//! 127.0.0.1 and the tests point it at servers they started.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    Refuse,
    Stall,
    Chaos { cut_per_mille: u32, stall_per_mille: u32, max_stall_ms: u64 },
}

struct Control {
    mode: Mutex<ProxyMode>,
    /// Cancelled by `cut_all`; every connection watches the generation it was opened in.
    generation: Mutex<CancellationToken>,
    rng: Mutex<StdRng>,
    connections: AtomicU64,
    cuts: AtomicU64,
    /// Open connections dropped by [`ChaosProxy::cut_all`].
    forced_cuts: AtomicU64,
}

/// A running proxy; stops (and drops its connections) when dropped.
pub struct ChaosProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    stop: CancellationToken,
}

impl ChaosProxy {
    /// Listens on 127.0.0.1 (free port) and forwards to `upstream`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(upstream: SocketAddr, mode: ProxyMode, seed: u64) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            mode: Mutex::new(mode),
            generation: Mutex::new(CancellationToken::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            forced_cuts: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, upstream, control.clone(), stop.clone()));
        Ok(Self { addr, control, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: ProxyMode) {
        *lock(&self.control.mode) = mode;
    }

    /// Drops every open connection now.
    pub fn cut_all(&self) {
        let mut generation = lock(&self.control.generation);
        generation.cancel();
        *generation = CancellationToken::new();
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.control.connections.load(Ordering::Relaxed)
    }

    /// Connections cut by chaos so far.
    pub fn cuts(&self) -> u64 {
        self.control.cuts.load(Ordering::Relaxed)
    }

    /// Open connections dropped by [`ChaosProxy::cut_all`] so far.
    pub fn forced_cuts(&self) -> u64 {
        self.control.forced_cuts.load(Ordering::Relaxed)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, control: Arc<Control>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((client, _)) = accepted else { continue };
        control.connections.fetch_add(1, Ordering::Relaxed);
        let mode = *lock(&control.mode);
        let generation = lock(&control.generation).clone();
        match mode {
            ProxyMode::Refuse => drop(client),
            ProxyMode::Stall => {
                tokio::spawn(async move {
                    generation.cancelled().await;
                    drop(client);
                });
            }
            ProxyMode::Pass | ProxyMode::Chaos { .. } => {
                tokio::spawn(connection(client, upstream, control.clone(), generation));
            }
        }
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, control: Arc<Control>, generation: CancellationToken) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let local = CancellationToken::new();
    let up = pump(client_read, server_write, control.clone(), local.clone());
    let down = pump(server_read, client_write, control.clone(), local.clone());
    tokio::select! {
        _ = futures::future::join(up, down) => {}
        () = generation.cancelled() => {
            control.forced_cuts.fetch_add(1, Ordering::Relaxed);
        }
        () = local.cancelled() => {}
    }
}

/// Copies one direction, applying the chaos settings before each chunk; cancels `cut` to drop both directions.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    control: Arc<Control>,
    cut: CancellationToken,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            n = from.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
            () = cut.cancelled() => return,
        };
        let mode = *lock(&control.mode);
        if let ProxyMode::Chaos { cut_per_mille, stall_per_mille, max_stall_ms } = mode {
            let (roll, stall_ms) = {
                let mut rng = lock(&control.rng);
                (rng.random_range(0..1000), rng.random_range(0..=max_stall_ms))
            };
            if roll < cut_per_mille {
                control.cuts.fetch_add(1, Ordering::Relaxed);
                cut.cancel();
                return;
            }
            if roll < cut_per_mille + stall_per_mille {
                tokio::time::sleep(Duration::from_millis(stall_ms)).await;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
