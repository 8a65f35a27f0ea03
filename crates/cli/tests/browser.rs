//! The console in real Chromium: the demo workspace as `scripts/demo.sh` builds it, served
//! on a loopback port by this test, driven by Playwright (`tests/browser/console.mjs`), with
//! axe-core on every page and a screenshot of each in `target/browser-artifacts/`.
//!
//! Ignored by a plain `cargo test` (it needs Debian's chromium and the npm packages);
//! `scripts/test.sh` installs them (`scripts/browser.sh`) and runs it with
//! `--include-ignored`, where a missing browser fails it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "stratum-demo-1";

fn stratum(dir: &Path, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratum"))
        .args(args)
        .current_dir(dir)
        .env("STRATUM_USER", "demo")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "stratum {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Stops the server however the test ends.
struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `stratum serve` on a free loopback port, once it answers.
fn serve(ws: &Path, policy: &[&str]) -> (u16, Server) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_stratum"))
            .args(policy)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(ws)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !healthy(port) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (port, server)
}

#[test]
#[ignore = "needs Chromium and npm packages: scripts/test.sh installs them (scripts/browser.sh) and runs it"]
fn the_console_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let browser_tests = root.join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser_tests.join("node_modules/playwright-core").exists(),
        "the browser tests need /usr/bin/chromium and tests/browser/node_modules: run scripts/browser.sh"
    );
    let tmp = tempfile::tempdir().unwrap();
    stratum(tmp.path(), &["init", "demo"], None);
    let ws = tmp.path().join("demo");
    stratum(&ws, &["run", "--as-of", "2026-09-30"], None);
    stratum(
        &ws,
        &[
            "override",
            "add",
            "C00003",
            "--ladder",
            "pyramid",
            "--level",
            "key",
            "--until",
            "2026-12-31",
            "--reason",
            "board member's company",
        ],
        None,
    );
    stratum(&ws, &["run"], None);
    stratum(&ws, &["--policy", "policies/segments.toml", "run"], None);
    let line = format!("{PASSWORD}\n");
    // The sales team's October, for the call list.
    stratum(
        &ws,
        &["--by", "demo", "import-contacts", "data/contacts.csv"],
        None,
    );
    for (user, role) in [
        ("demo", "admin"),
        ("ana", "analyst"),
        ("ivr", "service"),
        ("rep01", "agent"),
        ("lead01", "agent"),
    ] {
        stratum(
            &ws,
            &["user", "add", user, "--role", role, "--password-stdin"],
            Some(&line),
        );
    }
    stratum(
        &ws,
        &[
            "user",
            "add",
            "rep09",
            "--role",
            "agent",
            "--password-stdin",
        ],
        Some(&line),
    );
    // The demo's main policy, and the behaviour segments policy beside it.
    let (port, _server) = serve(&ws, &[]);
    let (segments_port, _segments) = serve(&ws, &["--policy", "policies/segments.toml"]);
    let artifacts: PathBuf = root.join("target/browser-artifacts");
    let out = Command::new("node")
        .arg("console.mjs")
        .current_dir(&browser_tests)
        .env("STRATUM_URL", format!("http://127.0.0.1:{port}"))
        .env(
            "STRATUM_SEGMENTS_URL",
            format!("http://127.0.0.1:{segments_port}"),
        )
        .env("STRATUM_PASSWORD", PASSWORD)
        .env("STRATUM_ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("all browser checks passed"), "{report}");
    for page in [
        "login-then-dashboard",
        "customers",
        "customer-card",
        "login",
        "segments-dashboard",
    ] {
        assert!(
            artifacts.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}
