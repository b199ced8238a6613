//! A real HTTP receiver of webhooks (PROTOCOL.md §13), as a platform would run one: it
//! checks each request's headers and signature, answers as the test's plan says (2xx,
//! an error status, or nothing at all), and records what it accepted, deduplicated by
//! event id, counting the duplicates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SECRET: &str = "webhook-test-secret";

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    /// Read the request, never answer.
    Hang,
}

/// The plan: given the event and how many times this id was seen before (0 the first
/// time), how to answer.
pub type Plan = Box<dyn FnMut(&Value, usize) -> Answer + Send>;

#[derive(Default)]
pub struct Log {
    /// Each event accepted (answered 2xx) the first time, in the order accepted.
    pub accepted: Vec<Value>,
    /// Events accepted again after a first acceptance.
    pub duplicates: usize,
    /// Requests per event id, answered or not.
    pub requests: HashMap<String, usize>,
    /// Requests whose signature or headers were wrong.
    pub bad: Vec<String>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on a port of its own that accepts everything.
    pub fn start() -> Receiver {
        Self::start_on(0, Box::new(|_, _| Answer::Ok))
    }

    pub fn with_plan(plan: Plan) -> Receiver {
        Self::start_on(0, plan)
    }

    /// On `port` (0: any), answering by `plan`.
    pub fn start_on(port: u16, plan: Plan) -> Receiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .expect("the receiver's port should be free");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let plan = Arc::new(Mutex::new(plan));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let kept = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((socket, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve(socket, kept.clone(), plan.clone()));
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = rx => {}
                }
            });
        });
        Receiver {
            addr,
            log,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    /// The accepted events so far.
    pub fn accepted(&self) -> Vec<Value> {
        self.log().accepted.clone()
    }

    /// The accepted events of `kind`.
    pub fn of(&self, kind: &str) -> Vec<Value> {
        self.accepted()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// Waits until `n` events of `kind` ("" for any) were accepted, or `limit` passes;
    /// returns them.
    pub async fn wait_for(&self, kind: &str, n: usize, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got: Vec<Value> = self
                .accepted()
                .into_iter()
                .filter(|e| kind.is_empty() || e["type"] == kind)
                .collect();
            if got.len() >= n || start.elapsed() > limit {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts no request was malformed or badly signed, and nothing came twice.
    pub fn assert_clean(&self) {
        let log = self.log();
        assert!(log.bad.is_empty(), "bad requests: {:?}", log.bad);
        assert_eq!(log.duplicates, 0, "events delivered more than once");
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves one connection: requests one after another (keep-alive).
async fn serve(mut socket: tokio::net::TcpStream, log: Arc<Mutex<Log>>, plan: Arc<Mutex<Plan>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut headers = HashMap::new();
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let id = event["id"].as_str().unwrap_or_default().to_string();
        let mut problems = Vec::new();
        if !head.starts_with("POST /hooks ") {
            problems.push(format!(
                "request line: {}",
                head.lines().next().unwrap_or("")
            ));
        }
        if headers.get("content-type").map(String::as_str) != Some("application/json") {
            problems.push("content-type".to_string());
        }
        if headers.get("x-shopchat-event").map(String::as_str) != event["type"].as_str() {
            problems.push("x-shopchat-event".to_string());
        }
        let signature = headers
            .get("x-shopchat-signature")
            .cloned()
            .unwrap_or_default();
        if !shopchat::protocol::webhook::verify(SECRET, &signature, &body) {
            problems.push(format!("signature {signature}"));
        }
        if id.is_empty() || event["seq"].as_i64().is_none() {
            problems.push("id or seq".to_string());
        }
        let seen = {
            let mut log = log.lock().unwrap();
            if !problems.is_empty() {
                log.bad.push(format!("{id}: {}", problems.join(", ")));
            }
            let n = log.requests.entry(id.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let answer = (plan.lock().unwrap())(&event, seen);
        let status = match answer {
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Answer::Ok => 200,
            Answer::Status(s) => s,
        };
        if (200..300).contains(&status) {
            let mut log = log.lock().unwrap();
            match log.accepted.iter().any(|e| e["id"] == id.as_str()) {
                true => log.duplicates += 1,
                false => log.accepted.push(event),
            }
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
