//! A faulty network between validators, in user space: a TCP proxy on
//! every directed link (validator i's consensus p2p and JSON-RPC traffic to
//! validator j) that delays each chunk by a latency with jitter (in order,
//! as TCP delivers), stalls some chunks as a retransmission after a lost
//! packet would, and partitions validators two ways: a cut link (open
//! connections closed, new ones refused, as when a host goes away) or a
//! silent one (nothing crosses, connections stay open and hang, as when a
//! route drops every packet; what was sent arrives once it heals, as TCP
//! retransmits it). This machine's kernel has no netem
//! qdisc, so faults are injected here rather than with `tc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One link's faults, changed while it runs.
#[derive(Default)]
pub(crate) struct LinkState {
    down: AtomicBool,
    /// Nothing crosses, but connections stay open.
    silent: AtomicBool,
    /// Bumped when the link is cut: connections of an older epoch close.
    epoch: AtomicU64,
    delay_ms: AtomicU64,
    jitter_ms: AtomicU64,
    /// Chunks in a thousand stalled 200-400 ms (a lost segment resent).
    loss_permille: AtomicU64,
}

/// The faults of a link.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub loss_permille: u64,
}

/// Proxies for every link of a network of `n` validators.
pub(crate) struct Chaos {
    rt: tokio::runtime::Runtime,
    links: HashMap<(usize, usize), Arc<LinkState>>,
}

impl Chaos {
    /// Listens for the links i → j at `base + 2 (i n + j)` (p2p) and the
    /// port after (JSON-RPC), forwarding to j's ports `p2p + j`, `rpc + j`
    /// (the devnet's `--links-via` layout); `base` is picked here among
    /// free ports (again if another test takes one meanwhile).
    pub(crate) fn new(n: usize, p2p: u16, rpc: u16) -> (Chaos, u16) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for _ in 0..10 {
            let base = super::ledger::free_ports((2 * n * n) as u16);
            let mut listeners = vec![];
            for i in 0..n {
                for j in (0..n).filter(|&j| j != i) {
                    let port = base + 2 * (i * n + j) as u16;
                    for (listen, target) in [(port, p2p + j as u16), (port + 1, rpc + j as u16)] {
                        if let Ok(l) = rt.block_on(TcpListener::bind(("127.0.0.1", listen))) {
                            listeners.push(((i, j), l, target));
                        }
                    }
                }
            }
            if listeners.len() < 2 * n * (n - 1) {
                continue; // a port was taken meanwhile: another base
            }
            let mut links = HashMap::new();
            for ((i, j), l, target) in listeners {
                let state: &Arc<LinkState> = links.entry((i, j)).or_default();
                rt.spawn(accept(l, target, state.clone()));
            }
            return (Chaos { rt, links }, base);
        }
        panic!("no {} free consecutive ports for the proxies", 2 * n * n);
    }

    /// The same faults on every link.
    pub(crate) fn set_all(&self, f: Faults) {
        for l in self.links.values() {
            l.delay_ms.store(f.delay_ms, Ordering::Relaxed);
            l.jitter_ms.store(f.jitter_ms, Ordering::Relaxed);
            l.loss_permille.store(f.loss_permille, Ordering::Relaxed);
        }
    }

    /// Cuts every link to and from validator `v`.
    pub(crate) fn isolate(&self, v: usize) {
        for ((i, j), l) in &self.links {
            if *i == v || *j == v {
                l.down.store(true, Ordering::Relaxed);
                l.epoch.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every link to and from validator `v` drops everything silently.
    pub(crate) fn silence(&self, v: usize) {
        for ((i, j), l) in &self.links {
            if *i == v || *j == v {
                l.silent.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Every link back up.
    pub(crate) fn heal(&self) {
        for l in self.links.values() {
            l.down.store(false, Ordering::Relaxed);
            l.silent.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        for l in self.links.values() {
            l.down.store(true, Ordering::Relaxed);
            l.epoch.fetch_add(1, Ordering::Relaxed);
        }
        let _ = &self.rt;
    }
}

async fn accept(listener: TcpListener, target: u16, state: Arc<LinkState>) {
    let mut seed = (target as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while let Ok((client, _)) = listener.accept().await {
        if state.down.load(Ordering::Relaxed) {
            continue; // dropped: the connection is refused in effect
        }
        seed = seed.wrapping_add(1);
        let state = state.clone();
        tokio::spawn(async move {
            // a silent link: the handshake gets through only once it heals
            while state.silent.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let epoch = state.epoch.load(Ordering::Relaxed);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, state.clone(), epoch, seed));
            tokio::spawn(pump(sr, cw, state, epoch, seed ^ 0xdead_beef));
        });
    }
}

/// A small xorshift: jitter and losses without a dependency.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Copies one direction, each chunk held back by the link's delay (never
/// before the one read ahead of it), until either side closes or the link
/// is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<LinkState>,
    epoch: u64,
    mut seed: u64,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let cut = {
        let state = state.clone();
        move || state.down.load(Ordering::Relaxed) || state.epoch.load(Ordering::Relaxed) != epoch
    };
    let cut2 = cut.clone();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if cut2() || to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut last = tokio::time::Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if state.silent.load(Ordering::Relaxed) && !cut() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if cut() { break } else { continue }
            }
        };
        if cut() {
            break;
        }
        let (d, j, l) = (
            state.delay_ms.load(Ordering::Relaxed),
            state.jitter_ms.load(Ordering::Relaxed),
            state.loss_permille.load(Ordering::Relaxed),
        );
        let mut ms = d;
        if j > 0 {
            ms = (d + next(&mut seed) % (2 * j + 1)).saturating_sub(j);
        }
        if l > 0 && next(&mut seed) % 1000 < l {
            ms += 200 + next(&mut seed) % 200;
        }
        let at = (tokio::time::Instant::now() + Duration::from_millis(ms)).max(last);
        last = at;
        if tx.send((at, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
