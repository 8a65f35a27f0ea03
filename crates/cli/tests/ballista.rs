//! Stage one on a Ballista cluster: a scheduler and two executors started here as separate
//! processes on loopback ports (and the in-process standalone mode) give `assignments.csv`
//! byte for byte what a local run gives, for the benchmark policy over Parquet and for the
//! demo (CSV sources, aggregated locally); a cluster that is down is a clear error and
//! records nothing. Built only with `--features cluster` (scripts/test.sh builds it).
#![cfg(feature = "cluster")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stratum() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stratum"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, so a failing test leaves no cluster behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scheduler and two executors; returns them and the scheduler's URL.
fn start_cluster(dir: &Path) -> (Vec<Process>, String) {
    let port = free_port();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let scheduler = Process(
        stratum()
            .args([
                "ballista",
                "scheduler",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(log("scheduler.log"))
            .stderr(log("scheduler.err"))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let url = format!("df://127.0.0.1:{port}");
    let mut processes = vec![scheduler];
    for i in 0..2 {
        let work = dir.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let (flight, grpc) = (free_port(), free_port());
        processes.push(Process(
            stratum()
                .args(["ballista", "executor", "--scheduler", &url])
                .args([
                    "--port",
                    &flight.to_string(),
                    "--grpc-port",
                    &grpc.to_string(),
                ])
                .args(["--threads", "1", "--work-dir", work.to_str().unwrap()])
                .stdout(log(&format!("executor-{i}.log")))
                .stderr(log(&format!("executor-{i}.err")))
                .spawn()
                .unwrap(),
        ));
        wait_for_port(flight);
    }
    (processes, url)
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing listens on {port} after a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(policy: &Path, out: &Path, extra: &[&str]) -> Output {
    stratum()
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "run",
            "--no-record",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stratum failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assignments(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("assignments.csv")).unwrap()
}

/// Runs `policy`, recording, into `out`; it must fail as the data's or the setup's fault
/// (exit 1). Returns what it printed on stderr.
fn recorded_run_fails(policy: &Path, out: &Path) -> String {
    let output = stratum()
        .args(["--policy", policy.to_str().unwrap(), "run", "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The benchmark policy's data at a small size.
fn bench_workspace(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    ok(&stratum()
        .args(["gen", "--customers", "3000", "--transactions", "60000"])
        .args(["--invoices", "6000"])
        .arg(&data)
        .output()
        .unwrap());
    data.join("bench.toml")
}

#[test]
fn a_cluster_of_separate_processes_places_every_customer_as_a_local_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let policy = bench_workspace(dir.path());
    let local = dir.path().join("local");
    ok(&run(&policy, &local, &[]));
    let (cluster, url) = start_cluster(dir.path());
    let remote = dir.path().join("remote");
    let printed = ok(&run(&policy, &remote, &["--cluster", &url]));
    assert_eq!(assignments(&local), assignments(&remote));
    assert_eq!(
        std::fs::read_to_string(local.join("assignments.csv"))
            .unwrap()
            .lines()
            .count(),
        3001
    );
    assert!(printed.contains("ladder pyramid"), "{printed}");

    // The demo's sources are CSV: read by the strict reader here and aggregated here.
    let demo = dir.path().join("demo");
    ok(&stratum().arg("init").arg(&demo).output().unwrap());
    let demo_policy = demo.join("stratum.toml");
    let (demo_local, demo_remote) = (
        dir.path().join("demo-local"),
        dir.path().join("demo-remote"),
    );
    ok(&run(&demo_policy, &demo_local, &[]));
    ok(&run(&demo_policy, &demo_remote, &["--cluster", &url]));
    assert_eq!(assignments(&demo_local), assignments(&demo_remote));

    // The policy can name the cluster itself; `--cluster local` overrides it.
    let text = std::fs::read_to_string(&policy).unwrap();
    let with_engine = dir.path().join("data/with-engine.toml");
    std::fs::write(
        &with_engine,
        format!("{text}\n[engine]\ncluster = \"{url}\"\n"),
    )
    .unwrap();
    let from_policy = dir.path().join("from-policy");
    ok(&run(&with_engine, &from_policy, &[]));
    assert_eq!(assignments(&local), assignments(&from_policy));

    // A scheduler whose executors went away: the run waits for at most timeout_seconds,
    // then stops with a clear error, recording nothing.
    let mut cluster = cluster;
    let scheduler = cluster.remove(0);
    drop(cluster);
    let stalled = dir.path().join("data/stalled.toml");
    std::fs::write(
        &stalled,
        format!("{text}\n[engine]\ncluster = \"{url}\"\ntimeout_seconds = 3\n"),
    )
    .unwrap();
    let started = Instant::now();
    let stderr = recorded_run_fails(&stalled, &dir.path().join("stalled"));
    assert!(
        stderr.contains(&format!("stage one on the cluster {url}: no result for"))
            && stderr.contains("within 3 s ([engine] timeout_seconds)"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!dir.path().join("stalled/assignments.csv").exists());

    // A cluster that is down: a clear error, and nothing is recorded.
    drop(scheduler);
    let stderr = recorded_run_fails(&with_engine, &dir.path().join("down"));
    assert!(
        stderr.contains(&format!("stage one on the cluster {url}")),
        "{stderr}"
    );
    for policy in [&with_engine, &stalled] {
        let runs = stratum()
            .args(["--policy", policy.to_str().unwrap(), "runs"])
            .output()
            .unwrap();
        ok(&runs);
        let listed = String::from_utf8_lossy(&runs.stdout);
        assert!(listed.contains("no runs"), "nothing recorded: {listed}");
    }
    let local_again = dir.path().join("local-again");
    ok(&run(&with_engine, &local_again, &["--cluster", "local"]));
    assert_eq!(assignments(&local), assignments(&local_again));
}

#[test]
fn the_standalone_cluster_in_this_process_places_as_a_local_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let policy = bench_workspace(dir.path());
    let (local, standalone) = (dir.path().join("local"), dir.path().join("standalone"));
    ok(&run(&policy, &local, &[]));
    ok(&run(&policy, &standalone, &["--cluster", "standalone"]));
    assert_eq!(assignments(&local), assignments(&standalone));
}

#[test]
fn a_malformed_cluster_address_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = bench_workspace(dir.path());
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        format!("{text}\n[engine]\ncluster = \"http://x:1\"\n"),
    )
    .unwrap();
    let out = stratum()
        .args(["--policy", policy.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("engine.cluster"), "{text}");
    assert!(text.contains("does not start with df://"), "{text}");
}
