//! A fault-injecting HTTP proxy in front of a real registry: answers chosen requests with an
//! error status, drops the connection, corrupts a response body, or holds a request back
//! before passing it on (as a loaded registry lands writes late); passes the rest through. It
//! can also make tags immutable, as Harbor and ECR can: a manifest put to a tag that names
//! another manifest is refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, if given) instead of forwarding.
    Status(u16, Option<u32>),
    /// Close the connection without answering.
    Drop,
    /// Forward, then flip one byte in the middle of the response body.
    CorruptBody,
    /// Wait this many milliseconds, then forward.
    Delay(u64),
    /// Wait a random time up to this many milliseconds, then forward.
    RandomDelay(u64),
}

#[derive(Debug)]
struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

/// A running proxy; it listens on a free loopback port until the process exits.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<String>>>,
    immutable: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let proxy = FaultProxy {
            addr,
            rules: Arc::default(),
            log: Arc::default(),
            immutable: Arc::default(),
        };
        let shared = proxy.clone();
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let proxy = shared.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || proxy.serve(client, &upstream));
            }
        });
        proxy
    }

    /// The next `times` requests with `method` whose path contains `path_contains` get `fault`.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.rules.lock().expect("rules").push(Rule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// From now on, a manifest put to a tag that names another manifest is refused (`400
    /// TAG_INVALID`), as registries with immutable tags do.
    pub fn make_tags_immutable(&self) {
        self.immutable.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forgets every fault still to come.
    pub fn clear_faults(&self) {
        self.rules.lock().expect("rules").clear();
    }

    /// Request lines (`METHOD /path`) seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.log.lock().expect("log").clear();
    }

    fn fault_for(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("rules");
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))?;
        rule.remaining -= 1;
        Some(rule.fault.clone())
    }

    fn serve(&self, client: TcpStream, upstream: &str) {
        let mut reader = BufReader::new(client.try_clone().expect("clone"));
        let mut client = client;
        while let Some((head, body)) = read_request(&mut reader) {
            let request_line = head.lines().next().unwrap_or_default().to_owned();
            let mut parts = request_line.split_whitespace();
            let (method, path) =
                (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            self.log.lock().expect("log").push(format!("{method} {path}"));
            let response = match self.fault_for(method, path) {
                Some(Fault::Drop) => {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Status(code, retry_after)) => {
                    let retry =
                        retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
                    format!("HTTP/1.1 {code} Injected\r\n{retry}Content-Length: 0\r\n\r\n")
                        .into_bytes()
                }
                Some(Fault::CorruptBody) => corrupt(forward(upstream, &head, &body)),
                Some(Fault::Delay(millis)) => {
                    std::thread::sleep(std::time::Duration::from_millis(millis));
                    self.forward_guarded(upstream, method, path, &head, &body)
                }
                Some(Fault::RandomDelay(most)) => {
                    std::thread::sleep(std::time::Duration::from_millis(random_below(most + 1)));
                    self.forward_guarded(upstream, method, path, &head, &body)
                }
                None => self.forward_guarded(upstream, method, path, &head, &body),
            };
            if client.write_all(&response).is_err() {
                return;
            }
        }
    }
}

impl FaultProxy {
    /// Forwards, unless tags are immutable and this puts a manifest to a tag that names
    /// another one.
    fn forward_guarded(
        &self,
        upstream: &str,
        method: &str,
        path: &str,
        head: &str,
        body: &[u8],
    ) -> Vec<u8> {
        let is_tag_put = method == "PUT"
            && path.rsplit_once("/manifests/").is_some_and(|(_, r)| !r.starts_with("sha256:"));
        if is_tag_put && self.immutable.load(std::sync::atomic::Ordering::SeqCst) {
            let probe = format!(
                "HEAD {path} HTTP/1.1\r\nHost: {upstream}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n"
            );
            let answer = String::from_utf8_lossy(&forward(upstream, &probe, b"")).into_owned();
            let ours = format!("sha256:{}", sha256_hex(body));
            let existing = answer.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("docker-content-digest"))
                    .map(|(_, v)| v.trim().to_owned())
            });
            if answer.starts_with("HTTP/1.1 200") && existing.is_some_and(|d| d != ours) {
                let refusal =
                    r#"{"errors":[{"code":"TAG_INVALID","message":"the tag is immutable"}]}"#;
                return format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{refusal}",
                    refusal.len()
                )
                .into_bytes();
            }
        }
        forward(upstream, head, body)
    }
}

/// A random number below `bound` (for delays: no need to be good, only to differ).
fn random_below(bound: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) % bound.max(1)
}

fn sha256_hex(bytes: &[u8]) -> String {
    forge_release::Digest::of(bytes).hex().to_owned()
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends one request upstream with `Connection: close` and returns the whole response.
fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut request: String = head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    request.push_str("Connection: close\r\n\r\n");
    let mut stream = match TcpStream::connect(upstream) {
        Ok(stream) => stream,
        Err(_) => return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let mut response = Vec::new();
    if stream.write_all(request.as_bytes()).and_then(|()| stream.write_all(body)).is_ok() {
        let _ = stream.read_to_end(&mut response);
    }
    response
}

fn corrupt(mut response: Vec<u8>) -> Vec<u8> {
    if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
        let body_start = end + 4;
        if response.len() > body_start {
            let middle = body_start + (response.len() - body_start) / 2;
            response[middle] ^= 0x20;
        }
    }
    response
}
