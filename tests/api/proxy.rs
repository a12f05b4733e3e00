//! A TCP proxy the test owns, to cut one server's line to a shared service (PostgreSQL, Redis)
//! while the service keeps serving every other test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

/// A TCP proxy to a service (PostgreSQL, Redis) whose line the test can cut and restore.
pub struct Line {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Line {
    pub async fn to(upstream: SocketAddr) -> Line {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let line =
            Line { addr: listener.local_addr().unwrap(), up: Arc::new(AtomicBool::new(true)), links: Arc::default() };
        let (up, links) = (line.up.clone(), line.links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up.load(Ordering::SeqCst) {
                    continue; // dropped at once: the database is unreachable
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links.lock().await.push(task.abort_handle());
            }
        });
        line
    }

    pub async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
