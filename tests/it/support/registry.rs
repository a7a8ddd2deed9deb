//! The real CNCF distribution registry (Debian's `docker-registry`) on a loopback port, open or
//! behind htpasswd or token auth; images pushed to it with skopeo from minimal OCI layouts
//! written here; and a token server whose RS256 JWTs (signed with the `openssl` binary) the
//! registry verifies against its `rootcertbundle`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// The registry binary Debian's `docker-registry` package installs.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// True when every program in `programs` is installed. Missing ones fail the test under CI
/// (`CI` set) and skip it elsewhere, saying how to install them.
pub fn tools(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "missing {}: run scripts/install-test-deps (as root) to install docker-registry, \
         skopeo, apache2-utils and openssl",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    false
}

fn installed(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// How the registry authenticates.
pub enum Auth {
    /// Anyone may pull and push.
    Open,
    /// `auth: htpasswd` with one user.
    Htpasswd { user: String, password: String },
    /// `auth: token` trusting `server`.
    Token(TokenSettings),
}

/// What the registry needs to trust a [`TokenServer`].
#[derive(Clone)]
pub struct TokenSettings {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
}

/// A running registry, killed on drop.
pub struct RegistryServer {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
    log: PathBuf,
}

impl RegistryServer {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers 200 or 401.
    pub fn start(auth: &Auth) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let auth_yaml = match auth {
            Auth::Open => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: promoter-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token(token) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                token.realm,
                token.service,
                token.issuer,
                token.cert.display()
            ),
        };
        // A port found free can be taken before the registry binds it: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: {host}\n  secret: promoter-test\n{auth_yaml}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = dir.path().join(format!("registry-{port}.log"));
            let file = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .expect("start docker-registry");
            if wait_ready(&mut child, &host) {
                return Self {
                    child,
                    dir,
                    host,
                    log,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }

    /// What the registry has logged (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `HEAD <path>` requests the access log shows, once it has settled.
    pub fn heads(&self, path: &str) -> usize {
        let needle = format!("\"HEAD {path} HTTP/1.1\"");
        let count = || self.log().matches(&needle).count();
        let mut last = count();
        // The access log is written after the answer: wait until it stops growing.
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(50));
            let now = count();
            if now == last && now > 0 {
                break;
            }
            last = now;
        }
        last
    }

    /// Pushes a small single-layer image as `repository:tag` with skopeo; returns the digest
    /// skopeo reports.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<(&str, &str)>,
    ) -> String {
        let layout = self
            .dir
            .path()
            .join("layouts")
            .join(format!("{}-{tag}", repository.replace('/', "_")));
        write_layout(&layout, tag);
        let digest_file = layout.with_extension("digest");
        let mut command = tokio::process::Command::new("skopeo");
        command
            .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
            .arg("--digestfile")
            .arg(&digest_file);
        if let Some((user, password)) = credentials {
            command
                .arg("--dest-creds")
                .arg(format!("{user}:{password}"));
        }
        command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.host));
        let out = command.output().await.expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let digest = std::fs::read_to_string(&digest_file).unwrap();
        let digest = digest.trim().to_string();
        assert!(digest.starts_with("sha256:"), "{digest}");
        digest
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` for up to 15 s until it answers 200 or 401; false when the registry exits
/// or never answers.
fn wait_ready(child: &mut Child, host: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if let Some(status) = get_status(host, "/v2/")
            && (status == 200 || status == 401)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of `GET path` (HTTP/1.0 over a plain socket), if anything answers.
fn get_status(host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes `bytes` as a blob of the layout; returns its descriptor.
fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(layout.join("blobs/sha256").join(hex), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// A minimal OCI image layout holding one image tagged `tag`: one gzipped tar layer with a
/// file naming the tag (so each tag has its own digest), a config and a manifest.
pub fn write_layout(layout: &Path, tag: &str) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let files = layout.with_extension("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("hello.txt"),
        format!("promoter test image {tag}\n"),
    )
    .unwrap();
    let tar = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
            "-",
            "-C",
        ])
        .arg(&files)
        .arg("hello.txt")
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "tar failed: {tar:?}");
    let mut gzip = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    gzip.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let gz = gzip.wait_with_output().unwrap();
    assert!(gz.status.success(), "gzip failed");

    let layer = blob(
        layout,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &gz.stdout,
    );
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"promoter.test/tag": tag}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar.stdout)]},
    });
    let config = blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut manifest = blob(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
}

/// A token server for the registry's `auth: token`: Basic credentials `user:password` get the
/// actions they ask for, no credentials get a token that grants nothing, wrong ones a 401.
pub struct TokenServer {
    pub settings: TokenSettings,
    state: Arc<TokenState>,
    _dir: tempfile::TempDir,
}

struct TokenState {
    user: String,
    password: String,
    service: String,
    issuer: String,
    key: PathBuf,
    /// The certificate, DER in standard base64, for the JWT's `x5c`.
    cert_der: String,
    requests: AtomicU32,
}

impl TokenServer {
    /// Makes an RSA key and self-signed certificate with `openssl`, and serves `/token` on a
    /// free loopback port in the current runtime.
    pub async fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=promoter-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl req failed: {out:?}");
        let pem = std::fs::read_to_string(&cert).unwrap();
        let cert_der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = TokenSettings {
            realm: format!("http://{addr}/token"),
            service: "promoter-test-registry".to_string(),
            issuer: "promoter-test-issuer".to_string(),
            cert,
        };
        let state = Arc::new(TokenState {
            user: user.to_string(),
            password: password.to_string(),
            service: settings.service.clone(),
            issuer: settings.issuer.clone(),
            key,
            cert_der,
            requests: AtomicU32::new(0),
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            settings,
            state,
            _dir: dir,
        }
    }

    /// How many tokens were asked for.
    pub fn requests(&self) -> u32 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn token(
    State(state): State<Arc<TokenState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let query = query.unwrap_or_default();
    let mut service = None;
    let mut scopes = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "service" => service = Some(value.into_owned()),
            "scope" => scopes.push(value.into_owned()),
            _ => {}
        }
    }
    if service.as_deref() != Some(state.service.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    let credentials = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let subject = match credentials {
        None => String::new(),
        Some(c) if c == format!("{}:{}", state.user, state.password) => state.user.clone(),
        Some(_) => return (StatusCode::UNAUTHORIZED, "bad credentials").into_response(),
    };
    let access: Vec<serde_json::Value> = if subject.is_empty() {
        Vec::new()
    } else {
        scopes
            .iter()
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect()
    };
    let state2 = state.clone();
    let jwt = tokio::task::spawn_blocking(move || sign(&state2, &subject, access))
        .await
        .unwrap();
    axum::Json(serde_json::json!({"token": jwt, "expires_in": 300})).into_response()
}

/// An RS256 JWT as the distribution token spec describes it, its certificate in `x5c`.
fn sign(state: &TokenState, subject: &str, access: Vec<serde_json::Value>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [state.cert_der]});
    let claims = serde_json::json!({
        "iss": state.issuer,
        "sub": subject,
        "aud": state.service,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now - 10,
        "jti": format!("{now}-{}", state.requests.load(Ordering::SeqCst)),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&state.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = openssl.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst failed");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}
