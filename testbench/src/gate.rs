//! A TCP gate in front of a bench server: a test points a client at the gate and closes it (the port
//! refuses connections, open ones are cut) or opens it again, to play a server going away and coming
//! back without stopping the real server that other tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A forwarding port that can be closed and opened again.
pub struct Gate {
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Gate {
    /// Opens a gate on a free loopback port forwarding to `target`.
    pub async fn open_to(target: SocketAddr) -> Arc<Gate> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("gate binds");
        let addr = listener.local_addr().expect("gate address");
        let gate = Arc::new(Gate { addr, target, accept: Mutex::new(None), conns: Arc::default() });
        gate.start(listener).await;
        gate
    }

    async fn start(&self, listener: TcpListener) {
        let (target, conns) = (self.target, self.conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(forward(inbound, target));
                conns.lock().await.push(conn);
            }
        });
        *self.accept.lock().await = Some(task);
    }

    /// Closes the port and cuts every open connection.
    pub async fn close(&self) {
        if let Some(task) = self.accept.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    /// Opens the same port again.
    pub async fn reopen(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        self.start(listener).await;
    }
}

async fn forward(mut inbound: TcpStream, target: SocketAddr) {
    if let Ok(mut outbound) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}
