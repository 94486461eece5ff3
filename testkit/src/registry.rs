//! A real registry (Debian's `docker-registry`, CNCF distribution 2.8) for tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// How the registry authenticates and transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    /// Plain HTTP, anonymous.
    Plain,
    /// Plain HTTP with htpasswd basic auth: user `alice`, password `s3cret`.
    Htpasswd,
    /// HTTPS with a test CA (see [`Registry::ca_file`]), anonymous.
    Tls,
    /// Plain HTTP with bearer tokens from a token server (`testkit/token-server.py`): user
    /// `alice`, password `s3cret` may push; anonymous callers may pull.
    Token,
    /// Plain HTTP like [`RegistryKind::Token`], its token server on HTTPS with a certificate
    /// from a test CA (see [`Registry::ca_file`]).
    TokenOverHttps,
}

/// A running registry; it stops when the test process exits.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Child,
    keepalive: Option<std::process::ChildStdin>,
    /// The token server of a [`RegistryKind::Token`] registry; it exits when its stdin closes.
    token_server: Option<(Child, std::process::ChildStdin)>,
}

/// User and password of the htpasswd registry.
pub const USER: &str = "alice";
/// Password of the htpasswd registry.
pub const PASSWORD: &str = "s3cret";

impl Registry {
    /// The registry of this kind shared by every test in the binary (started on first use).
    pub fn shared(kind: RegistryKind) -> &'static Registry {
        static PLAIN: OnceLock<Registry> = OnceLock::new();
        static HTPASSWD: OnceLock<Registry> = OnceLock::new();
        static TLS: OnceLock<Registry> = OnceLock::new();
        static TOKEN: OnceLock<Registry> = OnceLock::new();
        static TOKEN_OVER_HTTPS: OnceLock<Registry> = OnceLock::new();
        let cell = match kind {
            RegistryKind::Plain => &PLAIN,
            RegistryKind::Htpasswd => &HTPASSWD,
            RegistryKind::Tls => &TLS,
            RegistryKind::Token => &TOKEN,
            RegistryKind::TokenOverHttps => &TOKEN_OVER_HTTPS,
        };
        cell.get_or_init(|| Registry::start(kind))
    }

    /// Starts a new registry on a free loopback port.
    pub fn start(kind: RegistryKind) -> Registry {
        let binary = which("docker-registry").unwrap_or_else(|| {
            panic!("docker-registry is required for registry tests: `apt-get install docker-registry` (`make test` installs it)")
        });
        let dir =
            tempfile::Builder::new().prefix("forge-registry-").tempdir().expect("registry dir");
        let mut config = String::from(
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\nstorage:\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  secret: forge-test-only\n",
        );
        let mut token_server = None;
        match kind {
            RegistryKind::Plain => {}
            RegistryKind::Token | RegistryKind::TokenOverHttps => {
                let tls = kind == RegistryKind::TokenOverHttps;
                if tls {
                    make_certificates(dir.path());
                }
                let (server, realm) = start_token_server(dir.path(), tls);
                token_server = Some(server);
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: forge-test-registry\n    issuer: forge-test-issuer\n    rootcertbundle: {}\n",
                    dir.path().join("token-cert.pem").display()
                ));
            }
            RegistryKind::Htpasswd => {
                let file = dir.path().join("htpasswd");
                let output = Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]).output().unwrap_or_else(|e| {
                    panic!("htpasswd is required for auth tests ({e}): `apt-get install apache2-utils` (`make test` installs it)")
                });
                std::fs::write(&file, output.stdout).expect("htpasswd file");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: forge-test\n    path: {}\n",
                    file.display()
                ));
            }
            RegistryKind::Tls => {
                make_certificates(dir.path());
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("leaf.pem").display(),
                    dir.path().join("leaf.key").display()
                ));
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        // The shell holds our stdin: when the test process exits, `cat` sees end of file and
        // the registry is killed, so no registry outlives its tests.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "\"$0\" serve \"$1\" & r=$!; trap 'kill $r 2>/dev/null' EXIT; cat >/dev/null",
                binary.to_str().expect("utf-8"),
            ])
            .arg(&config_path)
            .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("docker-registry exited before listening"))
                .expect("read log");
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            let msg = entry["msg"].as_str().unwrap_or_default();
            // "listening on 127.0.0.1:41234" (", tls" follows for a TLS listener)
            if let Some(rest) = msg.strip_prefix("listening on ") {
                break rest.split([',', ' ']).next().unwrap_or_default().to_owned();
            }
            if entry["level"] == "fatal" || entry["level"] == "panic" {
                panic!("docker-registry failed: {msg}");
            }
        };
        // Keep draining the log so the registry never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let keepalive = child.stdin.take();
        Registry { addr, dir, child, keepalive, token_server }
    }

    /// Stops the registry (for tests that prove something works without it).
    pub fn stop(&mut self) {
        drop(self.keepalive.take());
        let _ = self.child.wait();
        if let Some((mut server, stdin)) = self.token_server.take() {
            drop(stdin);
            let _ = server.wait();
        }
        // The registry is gone once its port refuses connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(&self.addr).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("registry at {} did not stop", self.addr);
    }

    /// The token requests a [`RegistryKind::Token`] registry's token server answered, each as
    /// `<user or anonymous> <scope>...`.
    pub fn token_requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("token-requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The CA certificate (PEM) that signs the TLS registry's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `<address>/<fresh repository prefix>`: a place in this registry no other test uses.
    pub fn unique_root(&self, test: &str) -> String {
        format!("{}/{}", self.addr, self.unique_repository(test))
    }

    /// A fresh repository path prefix, unique per call, so tests never share state.
    pub fn unique_repository(&self, test: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!("{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
            .replace('_', "-")
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Starts `token-server.py` with a fresh ES256 signing key (on HTTPS with `leaf.pem` when
/// `tls`); returns it and its realm URL.
fn start_token_server(dir: &Path, tls: bool) -> ((Child, std::process::ChildStdin), String) {
    self_signed(dir, "/CN=forge test token issuer", "token-key.pem", "token-cert.pem");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/token-server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("--key")
        .arg(dir.join("token-key.pem"))
        .arg("--cert")
        .arg(dir.join("token-cert.pem"))
        .args(["--issuer", "forge-test-issuer", "--service", "forge-test-registry"])
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .arg("--log")
        .arg(dir.join("token-requests.log"))
        .args(if tls {
            let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
            vec!["--tls-cert".into(), cert.into_os_string(), "--tls-key".into(), key.into()]
        } else {
            vec![]
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for token auth tests");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("token server output");
    let Some(addr) = first.trim().strip_prefix("listening on ") else {
        let mut stderr = String::new();
        let _ =
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr);
        panic!(
            "the token server did not start: {stderr} (`make test` installs PyJWT and cryptography)"
        );
    };
    let scheme = if tls { "https" } else { "http" };
    let realm = format!("{scheme}://{addr}/token");
    let stdin = child.stdin.take().expect("stdin");
    ((child, stdin), realm)
}

/// Runs `openssl` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is required for TLS and token auth tests (`make test` installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A self-signed P-256 certificate and its key.
fn self_signed(dir: &Path, subject: &str, key: &str, cert: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            subject,
            "-keyout",
            key,
            "-out",
            cert,
        ],
    );
}

/// A CA and a CA:FALSE leaf for 127.0.0.1/localhost (rustls rejects a self-signed CA leaf).
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| openssl(dir, args);
    self_signed(dir, "/CN=forge test CA", "ca.key", "ca.pem");
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
}
