//! The `--metrics-listen` endpoint: a plain thread that answers
//! `GET /metrics` with the Prometheus text for as long as the command runs.
//!
//! No async runtime: one thread, one connection at a time (a scrape is a
//! few kilobytes once per scrape interval), a non-blocking listener polled
//! every 25 ms so that `stop` ends the thread promptly without any trick to
//! wake a blocked `accept`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often the idle listener checks for the stop flag and new connections.
const POLL: Duration = Duration::from_millis(25);
/// A client gets this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests are a line and a few headers; anything longer is cut off.
const MAX_REQUEST: usize = 8 << 10;

/// A running endpoint; [`Exporter::stop`] ends it (dropping it does too).
pub struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds `addr` now, so that a port in use is reported before the run
    /// starts, and serves `render()` at `/metrics` from a new thread.
    ///
    /// # Errors
    ///
    /// The bind error (e.g. `AddrInUse`), or a failure to start the thread.
    pub fn start(
        addr: SocketAddr,
        render: impl Fn() -> String + Send + 'static,
    ) -> io::Result<Exporter> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("syncpipe-exporter".into())
            .spawn(move || {
                // Relaxed: the flag carries no data; `join` in `stop` is the
                // synchronisation that matters.
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        // A client that misbehaves only loses its answer.
                        Ok((stream, _)) => {
                            let _ = serve(stream, &render);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
                        Err(_) => thread::sleep(POLL),
                    }
                }
            })?;
        Ok(Exporter {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread; the port is free afterwards.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Answers one HTTP/1.x request and closes the connection.
fn serve(mut stream: TcpStream, render: &impl Fn() -> String) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&req);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; try /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn serves_metrics_and_frees_the_port() {
        let ex = Exporter::start("127.0.0.1:0".parse().expect("addr"), || {
            "syncpipe_x 1\n".to_string()
        })
        .expect("bind");
        let addr = ex.addr();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nsyncpipe_x 1\n"), "{ok}");
        assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
        // The port is taken while it runs...
        assert!(TcpListener::bind(addr).is_err());
        ex.stop();
        // ...and free once it stopped.
        TcpListener::bind(addr).expect("port free after stop");
    }
}
