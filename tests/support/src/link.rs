//! A TCP proxy that limits the bandwidth from a server to its clients, shared by all
//! connections the way one network link is: `cargo xtask bench index --link-mib-s` puts it in
//! front of the local registry so that the download baseline and the indexer both see a
//! registry as fast as a real one, not one that answers from the page cache at memory speed.
//! [`ThrottledLink::start_capped`] also caps each connection, the way S3 serves: one
//! connection gets far less than the link (`bench index --capped 50/1024`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::{Context, Result};

/// Bytes forwarded per reservation on the link: 64 KiB is 0.6 ms at 100 MiB/s.
const SLICE: usize = 64 << 10;
/// The tokio timer's resolution.
const TIMER_TICK: Duration = Duration::from_millis(1);

pub struct ThrottledLink {
    pub addr: String,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for ThrottledLink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// When the link is next free: each slice of downstream bytes books `len / rate` seconds of it.
struct Schedule {
    next_free: Mutex<Instant>,
    bytes_per_second: f64,
}

impl Schedule {
    fn new(bytes_per_second: f64) -> Self {
        Self {
            next_free: Mutex::new(Instant::now()),
            bytes_per_second,
        }
    }

    fn book(&self, len: usize) -> Instant {
        let mut next_free = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*next_free).max(Instant::now());
        *next_free = start + Duration::from_secs_f64(len as f64 / self.bytes_per_second);
        *next_free
    }
}

impl ThrottledLink {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream` (`host:port`). Must be
    /// called inside a multi-threaded runtime, which keeps forwarding while the caller blocks.
    pub async fn start(upstream: &str, bytes_per_second: f64) -> Result<Self> {
        Self::start_capped(upstream, bytes_per_second, None).await
    }

    /// Like [`ThrottledLink::start`], each connection also held to `per_connection` bytes per
    /// second (when given) within the shared rate.
    pub async fn start_capped(
        upstream: &str,
        bytes_per_second: f64,
        per_connection: Option<f64>,
    ) -> Result<Self> {
        // Fail here, not in the middle of a measurement, when nothing listens upstream.
        TcpStream::connect(upstream)
            .await
            .with_context(|| format!("connecting to {upstream}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let schedule = Arc::new(Schedule::new(bytes_per_second));
        let upstream = upstream.to_string();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, schedule) = (upstream.clone(), schedule.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let own = per_connection.map(Schedule::new);
                        forward(client, server, schedule, own).await;
                    }
                });
            }
        });
        Ok(Self { addr, accept })
    }
}

async fn forward(
    client: TcpStream,
    server: TcpStream,
    schedule: Arc<Schedule>,
    own: Option<Schedule>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; SLICE];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // The timer has millisecond resolution: sleep only when the link is booked more
            // than that ahead, so slices shorter than a tick do not each cost a whole tick.
            // Each slice books time on the shared link and on its own connection's cap; it
            // leaves when both are free.
            let mut free_at = schedule.book(n);
            if let Some(own) = &own {
                free_at = free_at.max(own.book(n));
            }
            if free_at > Instant::now() + TIMER_TICK {
                tokio::time::sleep_until(free_at - TIMER_TICK).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The link holds all connections together to the configured rate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_connections_share_the_rate() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = server.accept().await {
                tokio::spawn(async move {
                    let _ = conn.write_all(&vec![7u8; 4 << 20]).await;
                });
            }
        });
        let link = ThrottledLink::start(&server_addr, 16.0 * 1048576.0)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let read_all = |addr: String| async move {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let mut data = Vec::new();
            conn.read_to_end(&mut data).await.unwrap();
            data.len()
        };
        let (a, b) = tokio::join!(read_all(link.addr.clone()), read_all(link.addr.clone()));
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!((a, b), (4 << 20, 4 << 20));
        // 8 MiB at 16 MiB/s: half a second, not the milliseconds loopback takes. (Whether the
        // rate is reached, not just capped, `bench index` prints with every row.)
        assert!(seconds > 0.45, "{seconds} s");
    }

    /// A capped connection gets its own rate, however fast the shared link is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_connection_is_held_to_its_cap() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = server.accept().await {
                tokio::spawn(async move {
                    let _ = conn.write_all(&vec![7u8; 4 << 20]).await;
                });
            }
        });
        let link =
            ThrottledLink::start_capped(&server_addr, 1024.0 * 1048576.0, Some(8.0 * 1048576.0))
                .await
                .unwrap();
        let started = std::time::Instant::now();
        let mut conn = TcpStream::connect(&link.addr).await.unwrap();
        let mut data = Vec::new();
        conn.read_to_end(&mut data).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(data.len(), 4 << 20);
        // 4 MiB at 8 MiB/s: half a second, though the link would carry it in 4 ms.
        assert!(seconds > 0.45, "{seconds} s");
    }
}
