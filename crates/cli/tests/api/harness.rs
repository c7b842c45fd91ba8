//! A `palisade serve` in a throwaway lab, and a small HTTP/1.1 client for
//! its Unix socket (one request per connection, as `curl --unix-socket`).

use crate::common::Env;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "Admin-password-1";
pub const PASSWORD: &str = "Str0ng-password!";

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The stable error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one raw request over the Unix socket at `sock`.
pub fn raw(sock: &Path, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock:?}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: palisade\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body.
    let _ = s.write_all(body);
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    parse(&all)
}

fn parse(all: &[u8]) -> Resp {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = all[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub struct Daemon {
    pub env: Env,
    pub sock: PathBuf,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    /// A lab with `config`, a first admin made with the CLI, and the daemon
    /// serving. `None` without root (after a loud SKIPPED).
    pub fn start(test: &str, config: &str) -> Option<Daemon> {
        let env = Env::new(test, config)?;
        let sock = env.dir.join("state").join("palisade.sock");
        let log = env.dir.join("daemon.log");
        let mut d = Daemon {
            env,
            sock,
            child: None,
            log,
        };
        let out = d.cli_stdin(&["user", "add", "admin", "--role", "admin"], ADMIN_PASSWORD);
        assert!(out.0, "user add failed: {}", out.1);
        d.spawn();
        Some(d)
    }

    /// Runs the CLI in the lab with `input` on standard input: (success, output).
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> (bool, String) {
        let mut full = vec![
            "--config".to_string(),
            self.env.dir.join("palisade.toml").display().to_string(),
            "--state-dir".to_string(),
            self.env.dir.join("state").display().to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let input = input.to_string();
        self.env
            .lab
            .run(move || {
                let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
                    .args(&full)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{input}\n").as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                (
                    out.status.success(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                )
            })
            .unwrap()
    }

    /// Starts `palisade serve` in the lab and waits until it answers.
    pub fn spawn(&mut self) {
        let args = vec![
            "--config".to_string(),
            self.env.dir.join("palisade.toml").display().to_string(),
            "--state-dir".to_string(),
            self.env.dir.join("state").display().to_string(),
            "serve".to_string(),
        ];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .env
            .lab
            .run(move || {
                Command::new(env!("CARGO_BIN_EXE_palisade"))
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
            })
            .unwrap()
            .expect("spawn palisade serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.sock.exists() && UnixStream::connect(&self.sock).is_ok() {
                let r = raw(&self.sock, "GET", "/api/v1/health", &[], b"");
                if r.status == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("palisade serve exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not stop on SIGTERM: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if !bytes.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        raw(
            &self.sock,
            method,
            &format!("/api/v1{path}"),
            &headers,
            &bytes,
        )
    }

    /// Logs in and returns the whole answer's JSON (access and refresh
    /// token); panics unless it succeeds.
    pub fn login_pair(&self, user: &str, password: &str) -> Value {
        let r = self.req(
            "POST",
            "/auth/login",
            None,
            Some(serde_json::json!({"username": user, "password": password})),
        );
        assert_eq!(r.status, 200, "login {user}: {}", r.text());
        r.json()
    }

    pub fn login(&self, user: &str, password: &str) -> String {
        self.login_pair(user, password)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD)
    }

    /// Adds a user through the API as `admin_token`.
    pub fn add_user(&self, admin_token: &str, name: &str, role: &str, tenant: Option<&str>) {
        let mut body = serde_json::json!({"name": name, "password": PASSWORD, "role": role});
        if let Some(t) = tenant {
            body["tenant"] = t.into();
        }
        let r = self.req("POST", "/users", Some(admin_token), Some(body));
        assert_eq!(r.status, 201, "add user {name}: {}", r.text());
    }

    /// Audit records matching `query` (e.g. "action=sandbox.create").
    pub fn audit(&self, token: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let q = match after {
                Some(a) => format!("/audit?{query}&limit=1000&after={a}"),
                None => format!("/audit?{query}&limit=1000"),
            };
            let r = self.req("GET", &q, Some(token), None);
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next"].as_u64() {
                Some(n) => after = Some(n),
                None => return out,
            }
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.env.dir.join("state")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
