//! A static chart repository on 127.0.0.1: `../shared/charts/repo` (or any directory) served over plain
//! HTTP (`GET /index.yaml`, `GET /<chart>.tgz`), counting the requests it answers, or a broken one that
//! answers every request with 500.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The shared local chart repository (`../shared/charts/repo`).
pub fn shared_chart_repo() -> PathBuf {
    crate::paths::workspace().join("../shared/charts/repo")
}

/// A running static file server; stops when dropped.
#[derive(Debug)]
pub struct ChartRepoServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ChartRepoServer {
    /// Serve the files of `dir`.
    pub fn serve(dir: &Path) -> Self {
        Self::start(Some(dir.to_path_buf()))
    }

    /// Answer every request with `500 Internal Server Error`.
    pub fn broken() -> Self {
        Self::start(None)
    }

    fn start(dir: Option<PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (dir, counter) = (dir.clone(), counter.clone());
                std::thread::spawn(move || answer(stream, dir.as_deref(), &counter));
            }
        });
        ChartRepoServer { url, requests, stop }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ChartRepoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn answer(stream: TcpStream, dir: Option<&Path>, counter: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 2 {
            line.clear();
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let file = path.trim_start_matches('/').split('?').next().unwrap_or_default();
        let body = match dir {
            Some(dir) if !file.contains("..") && !file.is_empty() => std::fs::read(dir.join(file)).ok(),
            _ => None,
        };
        let (status, body) = match (dir, body) {
            (None, _) => ("500 Internal Server Error", b"broken".to_vec()),
            (Some(_), None) => ("404 Not Found", b"not found".to_vec()),
            (Some(_), Some(body)) => ("200 OK", body),
        };
        let mut stream = reader.get_ref();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(&body))
            .is_err()
        {
            return;
        }
    }
}
