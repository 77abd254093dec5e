//! A throwaway Dovecot (IMAP + LMTP) from a private config in a temp dir, on free ports,
//! optionally with TLS from a test CA. Nothing under /etc is read or changed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use maildesk::config::{MailboxConfig, Security};
use maildesk::domain::secret::Secret;
use maildesk::mail::imap::{self, Session};

use super::net::free_port;

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub lmtp_port: u16,
    pub tls: Option<TestCa>,
    child: Option<Child>,
}

/// A CA and a server certificate for 127.0.0.1/localhost, made with openssl.
/// How often a server whose ports are picked beforehand is started on new ones.
const BIND_ATTEMPTS: usize = 5;

enum Launch {
    Up,
    /// Another process took a port between picking and binding.
    PortTaken,
}

pub struct TestCa {
    pub ca_file: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A header of a delivered message, as our mail writes it (`Name: value`, unfolded).
pub fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

fn require(binary: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let path = Path::new(dir).join(binary);
        if path.exists() {
            return path;
        }
    }
    panic!("{binary} not found: the IMAP tests need a real Dovecot; install it with `apt-get install -y {package}` (scripts/test does this)");
}

impl Dovecot {
    /// Starts Dovecot with these `(user, password)` accounts.
    pub fn start(users: &[(&str, &str)], with_tls: bool) -> Dovecot {
        Self::start_with(users, with_tls, "")
    }

    /// Like [`Dovecot::start`], with extra lines for dovecot.conf.
    pub fn start_with(users: &[(&str, &str)], with_tls: bool, extra_config: &str) -> Dovecot {
        let dovecot = require("dovecot", "dovecot-imapd dovecot-lmtpd");
        let dir = tempfile::Builder::new()
            .prefix("dc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let t = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(t.join(sub)).unwrap();
        }
        let root = is_root();
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
            chown_nobody(&t.join("mail"));
        }
        let passwd: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}::::::\n"))
            .collect();
        std::fs::write(t.join("passwd"), passwd).unwrap();
        let tls = with_tls.then(|| TestCa::create(t));
        let _ = dovecot;
        let mut server = Dovecot {
            dir,
            imap_port: 0,
            imaps_port: 0,
            lmtp_port: 0,
            tls,
            child: None,
        };
        // Dovecot cannot report ports it chose: free ones are picked, and picked again
        // when another process took one before Dovecot bound it.
        for _ in 0..BIND_ATTEMPTS {
            (server.imap_port, server.imaps_port, server.lmtp_port) =
                (free_port(), free_port(), free_port());
            let ports = [server.imap_port, server.imaps_port, server.lmtp_port];
            let config = config_text(server.dir.path(), ports, server.tls.as_ref(), root);
            std::fs::write(server.conf(), format!("{config}{extra_config}\n")).unwrap();
            match server.launch() {
                Launch::Up => return server,
                Launch::PortTaken => continue,
            }
        }
        panic!("dovecot found no free ports in {BIND_ATTEMPTS} attempts");
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// (Re)starts the server process on its ports and waits for its greeting.
    pub fn start_again(&mut self) {
        if let Launch::PortTaken = self.launch() {
            panic!("dovecot could not bind its ports again: {}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn launch(&mut self) -> Launch {
        let mut child = Command::new(require("dovecot", "dovecot-imapd"))
            .arg("-F")
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if greeting_ok(self.imap_port) {
                self.child = Some(child);
                return Launch::Up;
            }
            if let Ok(Some(_)) = child.try_wait() {
                if self.log().contains("Address already in use") {
                    return Launch::PortTaken;
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dovecot did not start on port {}; its log:\n{}",
                    self.imap_port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM to the master, as an admin would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            // The port closes with the master; wait until nothing answers.
            while greeting_ok(self.imap_port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// A `[[mailbox]]` table for maildesk pointing at this server.
    pub fn mailbox_toml(&self, name: &str, user: &str, password: &str, extra: &str) -> String {
        let poll = if extra.contains("poll_seconds") {
            ""
        } else {
            "poll_seconds = 1\n"
        };
        format!("[[mailbox]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nusername = \"{user}\"\npassword = \"{password}\"\n{poll}{extra}\n", self.imap_port)
    }

    /// A logged-in client session for the tests' own IMAP work (APPEND, counting).
    pub async fn session(&self, user: &str, password: &str) -> Session {
        let config = MailboxConfig {
            name: "test-client".into(),
            category: None,
            host: Some("127.0.0.1".into()),
            port: Some(self.imap_port),
            security: Security::Plain,
            username: Some(user.into()),
            password: Some(Secret(password.into())),
            password_file: None,
            oauth2_token_command: None,
            ca_file: None,
            folder: "INBOX".into(),
            after: Default::default(),
            move_to: "Processed".into(),
            quarantine_folder: "Quarantine".into(),
            poll_seconds: 1,
            idle: true,
            notify: None,
        };
        imap::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("test client cannot log in as {user}: {e}"))
    }

    pub async fn append(
        &self,
        user: &str,
        password: &str,
        folder: &str,
        messages: &[Vec<u8>],
        flags: Option<&str>,
    ) {
        let mut session = self.session(user, password).await;
        let _ = session.create(folder).await;
        for raw in messages {
            session
                .append(folder, flags, None, raw)
                .await
                .unwrap_or_else(|e| panic!("APPEND to {folder}: {e}"));
        }
        let _ = session.logout().await;
    }

    /// How many messages a folder holds (0 when it does not exist).
    pub async fn count(&self, user: &str, password: &str, folder: &str) -> usize {
        let mut session = self.session(user, password).await;
        let count = match session.examine(folder).await {
            Ok(mailbox) => mailbox.exists as usize,
            Err(_) => 0,
        };
        let _ = session.logout().await;
        count
    }

    /// The raw messages in a folder, oldest first.
    pub async fn messages(&self, user: &str, password: &str, folder: &str) -> Vec<String> {
        let mut session = self.session(user, password).await;
        let exists = session.examine(folder).await.map(|m| m.exists).unwrap_or(0);
        let mut raws = Vec::new();
        if exists > 0 {
            let fetches: Vec<_> = session
                .fetch("1:*", "BODY.PEEK[]")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            raws = fetches
                .iter()
                .map(|f| String::from_utf8_lossy(f.body().unwrap_or_default()).into_owned())
                .collect();
        }
        let _ = session.logout().await;
        raws
    }

    /// The flags of every message in a folder.
    pub async fn flags(&self, user: &str, password: &str, folder: &str) -> Vec<String> {
        let mut session = self.session(user, password).await;
        session.examine(folder).await.unwrap();
        let fetches: Vec<_> = session
            .fetch("1:*", "FLAGS")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let flags = fetches
            .iter()
            .map(|f| {
                f.flags()
                    .map(|fl| format!("{fl:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let _ = session.logout().await;
        flags
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        let openssl = require("openssl", "openssl");
        let path = |name: &str| dir.join(name);
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=maildesk test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(path("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCa {
            ca_file: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        }
    }
}

fn config_text(
    t: &Path,
    [imap_port, imaps_port, lmtp_port]: [u16; 3],
    tls: Option<&TestCa>,
    root: bool,
) -> String {
    let t = t.display();
    let ssl = match tls {
        Some(ca) => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
            ca.cert.display(),
            ca.key.display()
        ),
        None => "ssl = no\n".to_string(),
    };
    let identity = if root {
        "mail_uid = 65534\nmail_gid = 65534\n".to_string()
    } else {
        let user = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
        format!("default_internal_user = {user}\ndefault_internal_group = {user}\ndefault_login_user = {user}\nservice anvil {{\n  chroot =\n}}\n")
    };
    let login_chroot = if root { "" } else { "  chroot =\n" };
    let imaps = if tls.is_some() { imaps_port } else { 0 };
    format!(
        "instance_name = maildesk-test-{imap_port}\nbase_dir = {t}/run\nstate_dir = {t}/state\nlog_path = {t}/dovecot.log\n\
         protocols = imap lmtp\nlisten = 127.0.0.1\n{ssl}disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         postmaster_address = postmaster@example.test\nmail_location = maildir:{t}/mail/%u/Maildir\n{identity}\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {t}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = home={t}/mail/%u\n}}\n\
         service imap-login {{\n{login_chroot}  inet_listener imap {{\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp_port}\n  }}\n}}\n"
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .arg("65534:65534")
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// True when something on the port answers with an IMAP `* OK` greeting.
fn greeting_ok(port: u16) -> bool {
    banner_ok(port, b"* OK")
}

fn banner_ok(port: u16, expected: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1000)));
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if n >= expected.len() && buf.starts_with(expected))
}

/// The test SMTP server (tests/smtp_relay.py, aiosmtpd from the repository's .venv): what
/// it accepts is delivered into Dovecot over LMTP.
pub struct SmtpRelay {
    pub port: u16,
    lmtp_port: u16,
    /// Extra arguments: `--starttls CERT KEY`, `--tls CERT KEY`, `--auth USER:PASS`.
    pub options: Vec<String>,
    child: Option<Child>,
}

impl SmtpRelay {
    /// Starts the relay; on a new port when another process took the chosen one first.
    pub fn start(lmtp_port: u16) -> SmtpRelay {
        let mut relay = SmtpRelay::stopped(lmtp_port);
        for _ in 0..BIND_ATTEMPTS {
            match relay.launch() {
                Launch::Up => return relay,
                Launch::PortTaken => relay.port = free_port(),
            }
        }
        panic!("the SMTP relay found no free port in {BIND_ATTEMPTS} attempts");
    }

    /// A relay that is not running yet (SMTP down), on a reserved port.
    pub fn stopped(lmtp_port: u16) -> SmtpRelay {
        SmtpRelay {
            port: free_port(),
            lmtp_port,
            options: Vec::new(),
            child: None,
        }
    }

    /// Starts the relay on its reserved port (the configuration already names it).
    pub fn start_again(&mut self) {
        if let Launch::PortTaken = self.launch() {
            panic!("the SMTP relay could not bind port {}", self.port);
        }
    }

    fn launch(&mut self) -> Launch {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "the SMTP tests need aiosmtpd in {}: run scripts/test (or python3 -m venv .venv && .venv/bin/pip install aiosmtpd)", python.display());
        let mut child = Command::new(&python)
            .arg(root.join("tests/smtp_relay.py"))
            .arg(self.port.to_string())
            .arg(self.lmtp_port.to_string())
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP relay");
        let deadline = Instant::now() + Duration::from_secs(15);
        // Implicit TLS says nothing before the handshake: there an open port is enough.
        let implicit_tls = self.options.iter().any(|o| o == "--tls");
        while !(banner_ok(self.port, b"220")
            || (implicit_tls && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()))
        {
            // The script exits at once when its port is taken.
            if let Ok(Some(_)) = child.try_wait() {
                return Launch::PortTaken;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP relay did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        Launch::Up
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The `[smtp]` table for maildesk.
    pub fn smtp_toml(&self) -> String {
        format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nfrom = \"Example Support <support@example.com>\"\n", self.port)
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        self.stop();
    }
}
