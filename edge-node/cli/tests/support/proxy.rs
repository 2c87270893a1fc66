//! A fault-injecting TCP proxy for one link: listens on a loopback port and forwards every
//! connection to a target port, until it is cut. A cut either resets the link (existing
//! connections are closed, new ones are accepted and closed at once) or blackholes it (existing
//! connections stop carrying bytes, new ones are accepted and carry nothing; all of them are
//! closed when the link heals). Healing lets new connections through again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a link is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Close every connection; accept new ones and close them at once.
    Reset,
    /// Carry no bytes: existing and new connections stall until the link heals, then close.
    Blackhole,
}

/// The state of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Up,
    Down(Cut),
}

/// One proxied link. Dropping it stops accepting (connections already open end with the test's
/// runtime).
pub(crate) struct Proxy {
    name: String,
    port: u16,
    link: watch::Sender<Link>,
    connections: Arc<AtomicU64>,
    cut_connections: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding to `127.0.0.1:target`.
    pub(crate) async fn start(name: &str, target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let (link, _) = watch::channel(Link::Up);
        let connections = Arc::new(AtomicU64::new(0));
        let cut_connections = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            target,
            link.subscribe(),
            Arc::clone(&connections),
            Arc::clone(&cut_connections),
        ));
        Proxy {
            name: name.to_owned(),
            port,
            link,
            connections,
            cut_connections,
            accept,
        }
    }

    /// The name given at start (for logs).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Cuts the link.
    pub(crate) fn cut(&self, how: Cut) {
        self.link.send_replace(Link::Down(how));
    }

    /// Heals the link: new connections go through again (stalled ones are closed).
    pub(crate) fn heal(&self) {
        self.link.send_replace(Link::Up);
    }

    /// Connections accepted so far, and how many of them a cut closed or stalled.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.connections.load(Ordering::Relaxed),
            self.cut_connections.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: u16,
    link: watch::Receiver<Link>,
    connections: Arc<AtomicU64>,
    cut_connections: Arc<AtomicU64>,
) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(_) => {
                // E.g. out of file descriptors for a moment.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let link = link.clone();
        let cut_connections = Arc::clone(&cut_connections);
        tokio::spawn(async move {
            if connection(inbound, target, link).await {
                cut_connections.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Waits until the link is down; returns how it was cut (`None` if the proxy is gone).
async fn down(link: &mut watch::Receiver<Link>) -> Option<Cut> {
    match *link.wait_for(|l| *l != Link::Up).await.ok()? {
        Link::Down(how) => Some(how),
        Link::Up => None,
    }
}

/// Waits until the link is no longer blackholed.
async fn out_of_blackhole(link: &mut watch::Receiver<Link>) {
    let _ = link.wait_for(|l| *l != Link::Down(Cut::Blackhole)).await;
}

/// Carries one connection; returns whether a cut ended it.
async fn connection(mut inbound: TcpStream, target: u16, mut link: watch::Receiver<Link>) -> bool {
    let state = *link.borrow_and_update();
    match state {
        Link::Down(Cut::Reset) => return true,
        Link::Down(Cut::Blackhole) => {
            out_of_blackhole(&mut link).await;
            return true;
        }
        Link::Up => {}
    }
    let outbound = tokio::select! {
        outbound = TcpStream::connect(("127.0.0.1", target)) => outbound,
        how = down(&mut link) => {
            if how == Some(Cut::Blackhole) {
                out_of_blackhole(&mut link).await;
            }
            return true;
        }
    };
    // The target is not listening (e.g. killed): close the client's connection.
    let Ok(mut outbound) = outbound else {
        return false;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => None,
        how = down(&mut link) => how,
    };
    match cut {
        None => false,
        Some(Cut::Reset) => true,
        Some(Cut::Blackhole) => {
            // Both sockets stay open, carrying nothing, until the link heals.
            out_of_blackhole(&mut link).await;
            true
        }
    }
}
