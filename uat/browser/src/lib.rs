//! A headless Chromium for tests: Debian's `chromedriver` started on a free loopback port, one
//! WebDriver session on Debian's `chromium` through the fantoccini client (software no one here
//! wrote), and the few reads the tests share: an element's text, a page reloaded until a condition
//! holds, a screenshot kept on disk.
//!
//! The test setup (`ci/test.sh`) installs `chromium` and `chromium-driver`; [`Browser::start`]
//! fails with what is missing, so a test that needs the browser fails without it, never skips.
//!
//! Boundary: only loopback. chromedriver accepts connections from 127.0.0.1 only, and the
//! browser is given no proxy; the pages it opens are the tests' own servers and files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::{Client, Locator};

/// Where Debian installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver and the session may take to come up.
const START_WAIT: Duration = Duration::from_secs(30);

/// Why the browser did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "chromedriver cannot be started ({0}); install Debian's chromium-driver (ci/test.sh does)"
    )]
    Driver(std::io::Error),
    #[error("{CHROMIUM} is missing; install Debian's chromium (ci/test.sh does)")]
    NoChromium,
    #[error("no free loopback port for chromedriver: {0}")]
    Port(std::io::Error),
    #[error("no WebDriver session within {START_WAIT:?}: {0}")]
    Session(String),
}

/// A running chromedriver and one session in it; dropping it kills the driver (and with it the
/// browser), so a failing test leaves no browser behind.
pub struct Browser {
    driver: Child,
    pub client: Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless session whose window is `width` x `height` pixels.
    pub async fn start(width: u32, height: u32) -> Result<Browser, BrowserError> {
        if !Path::new(CHROMIUM).exists() {
            return Err(BrowserError::NoChromium);
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(BrowserError::Port)?
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(BrowserError::Driver)?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-proxy-server", format!("--window-size={width},{height}"),
                ],
            }),
        );
        let mut driver = driver;
        match Self::session(port, caps).await {
            Ok(client) => Ok(Browser { driver, client }),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                Err(e)
            }
        }
    }

    /// A session, retried while chromedriver starts listening.
    async fn session(
        port: u16,
        caps: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Client, BrowserError> {
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START_WAIT;
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => return Ok(c),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(BrowserError::Session(e.to_string())),
            }
        }
    }

    /// The visible text of the first element `css` selects; panics naming the selector and the
    /// page when there is none (a test helper: the panic is the test's failure).
    pub async fn text_of(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(e) => {
                let page = self.body_text().await;
                panic!("no {css} on the page ({e}); it shows:\n{page}")
            }
        }
    }

    /// How many elements `css` selects now.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// The page's whole visible text (for failure messages).
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    /// Opens `url` again and again until `done` holds of the page, at most `limit`; panics with
    /// the page's text on give-up.
    pub async fn reload_until<F>(&self, url: &str, limit: Duration, what: &str, done: F)
    where
        F: AsyncFn(&Browser) -> bool,
    {
        let deadline = Instant::now() + limit;
        loop {
            self.client
                .goto(url)
                .await
                .unwrap_or_else(|e| panic!("{url} does not load: {e}"));
            if done(self).await {
                return;
            }
            if Instant::now() >= deadline {
                let page = self.body_text().await;
                panic!("the page never showed {what} within {limit:?}; it shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A PNG of the window written to `dir/name`; returns the file.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::create_dir_all(dir).expect("the screenshot folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }
}
