//! A hostile (or broken) registry: an HTTP server that answers as a test tells it to, where a
//! real registry cannot misbehave on demand — endless bodies, lying sizes, silence, page
//! loops, redirects elsewhere, secrets in error bodies — and logs every request it gets with
//! its `Authorization` header.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use forge_release::image::ReleaseImage;

/// How a route answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole response.
    Fixed {
        /// Status code.
        status: u16,
        /// Extra headers (`Content-Length` is added).
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// The status and headers, then `chunk` over and over until the client hangs up.
    /// `length` is sent as `Content-Length` when given (a lie, or a huge truth); otherwise
    /// the body is chunked.
    Endless {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Declared length, if any.
        length: Option<u64>,
        /// What is sent, again and again.
        chunk: Vec<u8>,
    },
    /// Reads the request and never answers, holding the connection open.
    Silent,
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Fixed {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// 200 with `body` and extra `headers`.
    pub fn ok(body: &[u8], headers: &[(&str, &str)]) -> Reply {
        Reply::Fixed {
            status: 200,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.to_vec(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply::Fixed {
            status: 307,
            headers: vec![("Location".into(), location.to_owned())],
            body: Vec::new(),
        }
    }
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if one was sent.
    pub authorization: Option<String>,
}

#[derive(Debug)]
struct Route {
    method: String,
    path_prefix: String,
    reply: Reply,
}

/// A running hostile registry on a free loopback port, until the process exits.
#[derive(Debug, Clone)]
pub struct HostileRegistry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    routes: Arc<Mutex<Vec<Route>>>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl HostileRegistry {
    /// Starts one that answers 404 to everything until told otherwise.
    pub fn start() -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile registry");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = HostileRegistry { addr, routes: Arc::default(), log: Arc::default() };
        let shared = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = shared.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        server
    }

    /// Requests with `method` whose path starts with `path_prefix` get `reply`; a route added
    /// later wins over an earlier one.
    pub fn route(&self, method: &str, path_prefix: &str, reply: Reply) {
        self.routes.lock().expect("routes").push(Route {
            method: method.to_owned(),
            path_prefix: path_prefix.to_owned(),
            reply,
        });
    }

    /// Serves `release` whole, as a registry would: `/v2/<repository>/manifests/<tag>`, by
    /// its commit and by digest, its blobs, and a tag list holding `tag` and the commit.
    pub fn serve_release(&self, repository: &str, tag: &str, release: &ReleaseImage) {
        let manifest_headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("Docker-Content-Digest", release.digest.as_str()),
        ];
        let commit = release
            .manifest
            .annotation(forge_release::manifest::annotations::REVISION)
            .unwrap_or(tag)
            .to_owned();
        for reference in [tag, commit.as_str(), release.digest.as_str()] {
            let path = format!("/v2/{repository}/manifests/{reference}");
            self.route("GET", &path, Reply::ok(&release.manifest_bytes, &manifest_headers));
            self.route("HEAD", &path, Reply::ok(&release.manifest_bytes, &manifest_headers));
        }
        for (descriptor, bytes) in release.blobs() {
            let path = format!("/v2/{repository}/blobs/{}", descriptor.digest);
            self.route("GET", &path, Reply::ok(bytes, &[]));
            self.route("HEAD", &path, Reply::ok(bytes, &[]));
        }
        let mut tags = vec![tag.to_owned(), commit];
        tags.dedup();
        let tags = serde_json::json!({ "name": repository, "tags": tags }).to_string();
        self.route("GET", &format!("/v2/{repository}/tags/list"), Reply::json(200, &tags));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }

    fn reply_for(&self, method: &str, path: &str) -> Reply {
        let routes = self.routes.lock().expect("routes");
        routes
            .iter()
            .rev()
            .find(|r| r.method == method && path.starts_with(&r.path_prefix))
            .map(|r| r.reply.clone())
            .unwrap_or_else(|| {
                Reply::json(404, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#)
            })
    }

    fn serve(&self, stream: TcpStream) {
        let Ok(mut writer) = stream.try_clone() else { return };
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = request_line.split_whitespace();
            let (method, path) =
                (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
            let mut authorization = None;
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let value = value.trim().to_owned();
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = Some(value);
                    } else if name.eq_ignore_ascii_case("content-length") {
                        length = value.parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            self.log.lock().expect("log").push(Received {
                method: method.clone(),
                path: path.clone(),
                authorization,
            });
            if !self.answer(&mut writer, &method, &path) {
                return;
            }
        }
    }

    /// Writes the answer; false when the connection is done with.
    fn answer(&self, writer: &mut TcpStream, method: &str, path: &str) -> bool {
        let head = |status: u16, headers: &[(String, String)], length: Option<u64>| {
            let mut text = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in headers {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
            match length {
                Some(length) => text.push_str(&format!("Content-Length: {length}\r\n")),
                None => text.push_str("Transfer-Encoding: chunked\r\n"),
            }
            text.push_str("\r\n");
            text
        };
        match self.reply_for(method, path) {
            Reply::Fixed { status, headers, body } => {
                let mut out = head(status, &headers, Some(body.len() as u64)).into_bytes();
                if method != "HEAD" {
                    out.extend_from_slice(&body);
                }
                writer.write_all(&out).is_ok()
            }
            Reply::Endless { status, headers, length, chunk } => {
                if writer.write_all(head(status, &headers, length).as_bytes()).is_err()
                    || method == "HEAD"
                {
                    return method == "HEAD";
                }
                let framed = if length.is_some() {
                    chunk
                } else {
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    framed
                };
                // Until the client hangs up.
                while writer.write_all(&framed).is_ok() {}
                false
            }
            Reply::Silent => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                false
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// Runs `command` to the end, returning its output and the most memory it held (peak
/// resident set, KiB), read from `/proc` while it runs.
pub fn run_measuring_memory(command: &mut std::process::Command) -> (std::process::Output, u64) {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let output = std::process::Output {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    (output, peak)
}
