//! A TCP gate in front of a bench server: a test points a client at the gate and closes it (the port
//! refuses connections, open ones are cut) or opens it again, to play a server going away and coming
//! back without stopping the real server that other tests share. It can also stall: connections
//! stay open but nothing a client sends is forwarded, so requests sent from then on hang unanswered
//! (a server that hangs), while answers to the requests it forwarded before still come back.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// A forwarding port that can be closed and opened again.
pub struct Gate {
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// `true` while stalled.
    stalled: watch::Sender<bool>,
}

impl Gate {
    /// Opens a gate on a free loopback port forwarding to `target`.
    pub async fn open_to(target: SocketAddr) -> Arc<Gate> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("gate binds");
        let addr = listener.local_addr().expect("gate address");
        let gate = Arc::new(Gate {
            addr,
            target,
            accept: Mutex::new(None),
            conns: Arc::default(),
            stalled: watch::Sender::new(false),
        });
        gate.start(listener).await;
        gate
    }

    async fn start(&self, listener: TcpListener) {
        let (target, conns, stalled) = (self.target, self.conns.clone(), self.stalled.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(forward(inbound, target, stalled.subscribe()));
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

    /// Stops forwarding what clients send, on every connection (open or new), until
    /// [`Gate::resume`]: it is held, unsent. Closing the gate while stalled discards what it held.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards again, what was held first.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
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

async fn forward(inbound: TcpStream, target: SocketAddr, stalled: watch::Receiver<bool>) {
    if let Ok(outbound) = TcpStream::connect(target).await {
        let (from_client, to_client) = inbound.into_split();
        let (from_server, to_server) = outbound.into_split();
        let answers = watch::Sender::new(false);
        tokio::join!(pipe(from_client, to_server, stalled), pipe(from_server, to_client, answers.subscribe()));
    }
}

/// Copies one direction until its end, holding each chunk while the gate is stalled.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
