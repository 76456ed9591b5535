//! A real docker-registry (Debian's build of distribution 2.8) on 127.0.0.1, started and
//! stopped by the test that owns it.

use staticpack::registry::Reference;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A real docker-registry, started and stopped by the test.

pub enum Auth {
    Anonymous,
    Htpasswd { user: String, password: String },
    Token { realm: String, bundle: PathBuf },
}

pub const TOKEN_SERVICE: &str = "staticpack-test-registry";
pub const TOKEN_ISSUER: &str = "staticpack-test-issuer";

pub struct RegistryServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl RegistryServer {
    pub fn start(auth: Auth) -> Self {
        Self::start_with(auth, false)
    }

    /// `tls`: serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
    pub fn start_with(auth: Auth, tls: bool) -> Self {
        super::need("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let tls_yaml = if tls {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls.crt").display(),
                dir.path().join("tls.key").display()
            )
        } else {
            String::new()
        };
        let auth_yaml = match auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd { user, password } => {
                let htpasswd = super::need("htpasswd", "apache2-utils");
                let out = Command::new(htpasswd)
                    .args(["-Bbn", &user, &password])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: staticpack-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            Auth::Token { realm, bundle } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
                 issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                bundle.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: staticpack-test-secret\n{tls_yaml}{auth_yaml}",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut server = RegistryServer {
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, repo_and_tag: &str) -> Reference {
        Reference::parse(&format!("{}/{repo_and_tag}", self.host())).unwrap()
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if answers_http(self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/")
}
