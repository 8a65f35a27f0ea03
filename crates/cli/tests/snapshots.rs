//! The texts people read, compared whole: `explain`, `diff` and `check` on the seeded demo
//! workspace (the same 2,000 customers every time). A changed line fails the test and shows
//! the difference; `cargo insta review` accepts an intended change (CI never writes
//! snapshots).

use std::path::Path;
use std::process::{Command, Output};

fn stratum(args: &[&str], cwd: &Path) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_stratum"))
        .args(args)
        .current_dir(cwd)
        .env("STRATUM_USER", "tester")
        .output()
        .expect("stratum runs");
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_diff_and_check_read_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stratum(&["init", "demo"], dir);
    let ws = dir.join("demo");
    stratum(&["run", "--as-of", "2026-09-30"], &ws);
    stratum(&["run"], &ws);

    insta::assert_snapshot!(
        "explain_C00042",
        stdout(&stratum(&["explain", "C00042"], &ws))
    );
    insta::assert_snapshot!("diff", stdout(&stratum(&["diff"], &ws)));
    insta::assert_snapshot!(
        "check_b2b",
        stdout(&stratum(&["check", "policies/b2b.toml"], &ws))
    );
}
