//! `maildesk serve` and other long-running commands as child processes: started with
//! their output in a log file, killed when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::env::TestEnv;
use super::net::{free_port, http_request};

/// `web.listen` on port 0: the daemon binds a port of its own and logs it (`bound=`).
pub const ANY_PORT: &str = "web.listen=127.0.0.1:0";

/// How often a daemon whose port is picked beforehand is started on a new one.
const BIND_ATTEMPTS: usize = 5;

/// `--set web.listen=… --set setting… serve`, with `{base}` replaced by the URL of `listen`.
fn serve_args(listen: &str, settings: &[&str]) -> Vec<String> {
    let base = format!("http://{listen}");
    let mut args = vec!["--set".to_string(), format!("web.listen={listen}")];
    for setting in settings {
        args.push("--set".into());
        args.push(setting.replace("{base}", &base));
    }
    args.push("serve".into());
    args
}

/// The portal's address in the last start line of a daemon's log (text or JSON).
pub fn bound_address(log: &str) -> Option<SocketAddr> {
    let line = log.lines().rev().find(|l| l.contains("maildesk started"))?;
    let start = ["bound=", "\"bound\":\""]
        .iter()
        .find_map(|key| line.find(key).map(|at| at + key.len()))?;
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()?
        .parse()
        .ok()
}

/// Waits until the daemon writing to `log` (from byte `since` on) has bound its portal and
/// answers `/healthz` on loopback; its address, or its log when it stopped or took too long.
pub async fn wait_until_serving(
    daemon: &mut std::process::Child,
    log: &Path,
    since: usize,
) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let ours = text.get(since..).unwrap_or_default();
        if let Some(address) = bound_address(ours) {
            let loopback = [127, 0, 0, 1].into();
            let answer = http_request(loopback, address.port(), "GET", "/healthz", &[], "").await;
            if matches!(answer, Some((200, _, _))) {
                return Ok(address);
            }
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            return Err(format!("(exited: {status})\n{ours}"));
        }
        if Instant::now() > deadline {
            return Err(format!("(no answer on /healthz within 20 s)\n{ours}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl TestEnv {
    /// Starts a long-running maildesk command (e.g. `serve`) with its output in a log file.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        self.spawn_with_env(args, &[])
    }

    /// [`TestEnv::spawn`] with extra environment variables.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        self.spawn_logging_to(&self.log_path(), args, env)
    }

    /// [`TestEnv::spawn_with_env`] with the output in a log file of its own (several
    /// instances, each telling what it does).
    pub fn spawn_logging_to(&self, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_maildesk"));
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MAILDESK_")) {
            command.env_remove(name);
        }
        command.env("MAILDESK_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        Spawned(command.spawn().expect("start maildesk"))
    }

    /// `maildesk serve` on a port of its own (not waited for).
    pub fn spawn_serve(&self) -> Spawned {
        self.spawn(&["--set", ANY_PORT, "serve"])
    }

    fn spawn_serve_with(&self, listen: &str, settings: &[&str]) -> Spawned {
        let args = serve_args(listen, settings);
        self.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `maildesk serve` with more `--set` settings on port 0, once its `/healthz` answers;
    /// and the address it listens on. A setting naming the daemon's own URL (`{base}`)
    /// needs the port beforehand: see [`TestEnv::serve_on_known_port`].
    pub async fn serve(&self, settings: &[&str]) -> (Spawned, SocketAddr) {
        if settings.iter().any(|s| s.contains("{base}")) {
            return self.serve_on_known_port(settings).await;
        }
        let since = self.log().len();
        let mut daemon = self.spawn_serve_with("127.0.0.1:0", settings);
        match wait_until_serving(&mut daemon, &self.log_path(), since).await {
            Ok(address) => (daemon, address),
            Err(log) => panic!("maildesk serve did not start; its log:\n{log}"),
        }
    }

    /// [`TestEnv::serve`] on a port picked beforehand, for a daemon that must know its
    /// own URL: `{base}` in a setting (e.g. `web.public_url={base}`), or links built from
    /// `web.listen`. Another port is tried when another process took the picked one.
    pub async fn serve_on_known_port(&self, settings: &[&str]) -> (Spawned, SocketAddr) {
        for _ in 0..BIND_ATTEMPTS {
            let listen = format!("127.0.0.1:{}", free_port());
            let since = self.log().len();
            let mut daemon = self.spawn_serve_with(&listen, settings);
            match wait_until_serving(&mut daemon, &self.log_path(), since).await {
                Ok(address) => return (daemon, address),
                Err(log) if log.contains("cannot listen on") => continue,
                Err(log) => panic!("maildesk serve did not start; its log:\n{log}"),
            }
        }
        panic!("maildesk serve found no free port in {BIND_ATTEMPTS} attempts");
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("maildesk.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A maildesk process started by a test: killed when the test ends, also when an
/// assertion fails first (no daemons left running after a failed test).
pub struct Spawned(pub std::process::Child);

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill(&mut self.0);
    }
}

pub fn kill(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM, then wait (at most `limit`) for the process to exit; returns how long it took.
pub fn terminate(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill(child);
    None
}
