//! A real browser for the portal tests: Debian's `chromedriver` on a free port driving a
//! headless `chromium` with an empty profile, and a fantoccini client for it. Both are
//! killed (the whole process group) when the [`Browser`] is dropped, also when a test
//! fails first. A missing chromium or chromedriver fails the test with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ammonia::url::{ParseError, Url};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::free_port;

/// How long one wait for the page (an element, a navigation) may take.
pub const WAIT: Duration = Duration::from_secs(10);

fn require(binary: &str) -> PathBuf {
    for dir in [
        "/usr/bin",
        "/usr/local/bin",
        "/usr/lib/chromium",
        "/snap/bin",
    ] {
        let path = Path::new(dir).join(binary);
        if path.exists() {
            return path;
        }
    }
    panic!("{binary} not found: the browser tests need Debian's chromium and chromedriver; install them with `apt-get install -y --no-install-recommends chromium chromium-driver` (scripts/test does this)");
}

/// chromedriver and the chromium it starts, in a process group of their own.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromium outlives chromedriver unless its session is closed: end the group.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    session_id: String,
    // Dropped after the client: first the processes, then the profile directory.
    _driver: Driver,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium (1280x900, empty profile).
    pub async fn start() -> Browser {
        // fantoccini's rustls connector asks rustls for the process default provider;
        // with ring and aws-lc-rs both in the build there is none unless one is chosen.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let chromium = require("chromium");
        let chromedriver = require("chromedriver");
        let dir = tempfile::Builder::new()
            .prefix("chromium")
            .tempdir()
            .expect("temp dir");
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()))
        };
        let driver = Driver { child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            // An alert stays open (and visible to the test) instead of being dismissed.
            "unhandledPromptBehavior": "ignore",
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(dir.path().join("chromedriver.log"))
                    .unwrap_or_default();
                panic!("chromedriver could not start chromium: {e}\nchromedriver log:\n{log}")
            });
        let session_id = client
            .session_id()
            .await
            .expect("session id")
            .expect("a W3C session");
        Browser {
            client,
            session_id,
            _driver: driver,
            _dir: dir,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Waits (at most [`WAIT`]) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {css:?} on {}: {e}", self.url_string().await),
        }
    }

    async fn url_string(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.wait_for(css).await.text().await {
                Ok(text) => return text,
                // A live update replaced it between finding and reading: find it again.
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
    }

    /// Every element matching `css`, now (no waiting).
    pub async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find elements")
    }

    /// The texts of every element matching `css`.
    /// Read in one script, so a live update swapping the elements in between cannot
    /// turn a text into "" (seen: a delivery state refreshing the thread).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let texts = self
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);",
                vec![Value::String(css.to_string())],
            )
            .await;
        texts
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|t| t.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Clicks `css` and waits until the browser has left the page (a form posted and
    /// redirected, a link followed) and the new page has a body. An element that a live
    /// update replaced just as it was found is found again.
    pub async fn click_and_wait(&self, css: &str) {
        let before = self.url_string().await;
        // The page's <html> element goes stale once the next document replaces it.
        let old_root = self.wait_for("html").await;
        let deadline = Instant::now() + WAIT;
        loop {
            match self.wait_for(css).await.click().await {
                Ok(_) => break,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        loop {
            let stale =
                matches!(old_root.tag_name().await, Err(e) if e.is_stale_element_reference());
            if stale
                && self
                    .execute("return document.readyState", vec![])
                    .await
                    .as_str()
                    == Some("complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking on {before} did not load a new page"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// The HTTP status of a GET of `path` by this browser (with its cookies).
    pub async fn fetch_status(&self, path: &str) -> u16 {
        let script = "const done = arguments[arguments.length - 1]; \
             fetch(arguments[0], {credentials: 'same-origin', redirect: 'manual'}) \
               .then(r => done(r.status), e => done(String(e)));";
        let value = self
            .client
            .execute_async(script, vec![json!(path)])
            .await
            .unwrap_or_else(|e| panic!("fetch {path}: {e}"));
        value
            .as_u64()
            .unwrap_or_else(|| panic!("fetch {path} failed: {value}")) as u16
    }

    /// Saves a PNG screenshot of the page under `<repo>/target/screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The entries chromedriver has logged of this kind (`browser`: the console;
    /// `performance`: DevTools events, network included) since the last call.
    pub async fn log(&self, kind: &str) -> Vec<Value> {
        let value = self
            .client
            .issue_cmd(SeLog {
                session_id: self.session_id.clone(),
                kind: kind.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("read the {kind} log: {e}"));
        value.as_array().cloned().unwrap_or_default()
    }

    /// Every URL the browser requested since the last read of the performance log.
    pub async fn requested_urls(&self) -> Vec<String> {
        self.log("performance")
            .await
            .iter()
            .filter_map(|entry| {
                let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
                let message = &message["message"];
                (message["method"] == "Network.requestWillBeSent")
                    .then(|| {
                        message["params"]["request"]["url"]
                            .as_str()
                            .map(String::from)
                    })
                    .flatten()
            })
            .collect()
    }

    /// Signs in through the login form and waits for the dashboard.
    pub async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/portal/login")).await;
        self.wait_for("input[name=email]")
            .await
            .send_keys(email)
            .await
            .expect("type the e-mail address");
        self.wait_for("input[name=password]")
            .await
            .send_keys(password)
            .await
            .expect("type the password");
        self.click_and_wait("form[action='/portal/login'] button[type=submit]")
            .await;
        let url = self.url().await;
        assert_eq!(
            url.path(),
            "/portal",
            "signed in as {email}: {}",
            self.text("main").await
        );
    }
}

/// chromedriver's log endpoint (a Selenium extension it keeps in W3C mode).
#[derive(Debug)]
struct SeLog {
    session_id: String,
    kind: String,
}

impl WebDriverCompatibleCommand for SeLog {
    fn endpoint(&self, base_url: &Url, _session_id: Option<&str>) -> Result<Url, ParseError> {
        base_url.join(&format!("session/{}/se/log", self.session_id))
    }

    fn method_and_body(&self, _request_url: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({ "type": self.kind }).to_string()))
    }
}
