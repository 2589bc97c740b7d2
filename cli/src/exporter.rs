//! The `--metrics-listen` endpoint: a plain thread that answers
//! `GET /metrics` with the Prometheus text for as long as the command runs
//! (and its `--metrics-linger` after the work: the telemetry stops it).
//!
//! No async runtime. The listener thread only accepts (non-blocking, polled
//! every 25 ms, so that `stop` ends it promptly without any trick to wake a
//! blocked `accept`); each connection is served on a short-lived thread of
//! its own, at most [`MAX_CONNECTIONS`] at once, and has [`DEADLINE`] for
//! the whole exchange. A client that trickles its request byte by byte, or
//! never reads the answer, therefore delays neither another scrape nor the
//! end of the command: served one at a time on the listener thread, with a
//! timeout per read, one such client used to keep a 1-second run alive for
//! over a minute.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often the idle listener checks for the stop flag and new connections.
const POLL: Duration = Duration::from_millis(25);
/// A client gets this long, from its connection, to send its request and
/// read the answer (a scrape is a few kilobytes on loopback).
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Connections served at once; more are answered 503 at once and closed.
/// A scraper needs one; the cap bounds the threads a flood of clients gets.
pub const MAX_CONNECTIONS: usize = 8;
/// Requests are a line and a few headers; anything longer is cut off.
const MAX_REQUEST: usize = 8 << 10;

/// The connections being served, by number: a second handle on each socket,
/// so that `stop` can shut them all down (which ends their blocked reads
/// and writes at once), and their threads, to be joined.
#[derive(Default)]
struct Live {
    next: u64,
    streams: Vec<(u64, TcpStream)>,
}

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
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> io::Result<Exporter> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let render = Arc::new(render);
        let thread = thread::Builder::new()
            .name("syncpipe-exporter".into())
            .spawn(move || accept_loop(&listener, &flag, &render))?;
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

    /// Stops serving and waits for the threads; the port is free afterwards.
    /// Connections still being served are shut down first, which ends their
    /// blocked reads and writes at once: a slow client is not waited for.
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

/// The listener thread: accepts until `stop`, then shuts down the
/// connections still open and joins their threads.
fn accept_loop<F>(listener: &TcpListener, stop: &AtomicBool, render: &Arc<F>)
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let live = Arc::new(Mutex::new(Live::default()));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    // Relaxed: the flag carries no data; `join` in `stop` is the
    // synchronisation that matters.
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                threads.retain(|t| !t.is_finished());
                if let Some(t) = start_connection(stream, &live, render) {
                    threads.push(t);
                }
            }
            Err(_) => thread::sleep(POLL),
        }
    }
    for (_, s) in live.lock().streams.drain(..) {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Serves `stream` on a thread of its own, or answers 503 when
/// [`MAX_CONNECTIONS`] are being served (or no thread can be started).
fn start_connection<F>(
    stream: TcpStream,
    live: &Arc<Mutex<Live>>,
    render: &Arc<F>,
) -> Option<JoinHandle<()>>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let id = {
        let mut l = live.lock();
        let handle = stream.try_clone().ok();
        match handle {
            Some(h) if l.streams.len() < MAX_CONNECTIONS => {
                let id = l.next;
                l.next += 1;
                l.streams.push((id, h));
                Some(id)
            }
            _ => None,
        }
    };
    let Some(id) = id else {
        busy(stream);
        return None;
    };
    let (mine, render) = (Arc::clone(live), Arc::clone(render));
    let spawned = thread::Builder::new()
        .name("syncpipe-scrape".into())
        .spawn(move || {
            // A client that misbehaves only loses its answer.
            let _ = serve(stream, Instant::now() + DEADLINE, &*render);
            mine.lock().streams.retain(|(i, _)| *i != id);
        });
    if spawned.is_err() {
        // The stream went with the closure (closed); its handle goes too.
        live.lock().streams.retain(|(i, _)| *i != id);
    }
    spawned.ok()
}

/// Answers 503 without waiting for anything: a non-blocking write of a few
/// bytes into an empty socket buffer, then the connection is closed.
fn busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

/// Time left before `deadline`, or a `TimedOut` error once it has passed.
fn left(deadline: Instant) -> io::Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took longer than its deadline",
        ));
    }
    Ok(deadline - now)
}

/// Answers one HTTP/1.x request and closes the connection; every read and
/// write waits at most for what is left of `deadline`.
fn serve(mut stream: TcpStream, deadline: Instant, render: &impl Fn() -> String) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < MAX_REQUEST {
        stream.set_read_timeout(Some(left(deadline)?))?;
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
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        reply.extend_from_slice(body.as_bytes());
    }
    // `write_all` would give each write the whole timeout again.
    let mut rest = &reply[..];
    while !rest.is_empty() {
        stream.set_write_timeout(Some(left(deadline)?))?;
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
