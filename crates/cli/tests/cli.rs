//! The `stratum` binary end to end: what a first-day user types, with exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

fn stratum(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratum"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("stratum runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn init_run_explain_check_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = stratum(&["init", "demo", "--customers", "500"], dir);
    assert!(o.status.success(), "{:?}", text(&o));
    // A second init refuses to overwrite.
    let o = stratum(&["init", "demo"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("already exists and is not empty; pass --force"),
        "{:?}",
        text(&o)
    );

    let o = stratum(&["-C", "demo", "run"], dir);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("policy demo/stratum.toml as of 2026-10-31: 500 customers"),
        "{out}"
    );
    assert!(out.contains("ladder pyramid — Customer pyramid"), "{out}");
    assert!(
        out.contains("Pareto: the top 20% of customers by profit_12m hold"),
        "{out}"
    );
    // 500 customers: key round(5) = 5 by rank, plus the manual pin of C00007.
    let key_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("key "))
        .unwrap();
    let count: usize = key_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    // The seeded demo is deterministic: C00007 is not among the top 5, so the pin adds one.
    assert_eq!(count, 6, "{key_line}");
    assert!(
        err.contains("stratum: computing metrics as of 2026-10-31"),
        "plain progress lines off a terminal: {err}"
    );
    for f in [
        "assignments.parquet",
        "assignments.csv",
        "metrics.parquet",
        "summary.json",
    ] {
        assert!(dir.join("demo/out").join(f).exists(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo/out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["customers"], 500);
    assert_eq!(summary["ladders"][0]["ladder"], "pyramid");

    let o = stratum(&["-C", "demo", "explain", "C00007"], dir);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("ladder pyramid: key"), "{out}");
    assert!(
        out.contains(
            "pinned by manual override (strategic account, approved by the sales director)"
        ),
        "{out}"
    );
    assert!(out.contains("score composite ="), "{out}");

    let o = stratum(&["-C", "demo", "explain", "C99999"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("customer `C99999` is not in the customers source")
    );

    // Warnings alone exit 0 and are printed.
    let o = stratum(&["-C", "demo", "check", "policies/b2b.toml"], dir);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("warning[threshold_gap]"), "{out}");
    assert!(out.contains("0 error(s), 2 warning(s)"), "{out}");
    let o = stratum(&["-C", "demo", "check"], dir);
    assert!(
        text(&o).0.contains("0 error(s), 0 warning(s)"),
        "{:?}",
        text(&o)
    );
    // Each window as the dates it covers (issue 17, point 11).
    assert!(
        text(&o).0.starts_with(
            "metric windows as of 2026-10-31 (the as_of day included: events before 2026-11-01 count):\n\
             \x20 revenue_12m       2025-11-01 <= date < 2026-11-01\n\
             \x20 revenue_prev_12m  2024-11-01 <= date < 2025-11-01\n"
        ),
        "{:?}",
        text(&o)
    );

    let o = stratum(&["-C", "demo", "run", "--show-sql"], dir);
    assert!(
        text(&o).0.contains("GROUP BY \"customer_id\""),
        "{:?}",
        text(&o)
    );
}

#[test]
fn errors_exit_1_and_name_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("customers.csv"), "customer_id\nA\n").unwrap();
    std::fs::write(
        dir.join("tx.csv"),
        "customer_id,date,amount\nA,2026-01-01,1\nA,2026-01-02,2\nA,yesterday,3\n",
    )
    .unwrap();
    let policy = "[sources.customers]\npath = \"customers.csv\"\nkey = \"customer_id\"\n\n[sources.tx]\npath = \"tx.csv\"\nkey = \"customer_id\"\ntime = \"date\"\n\n[metrics.spend]\nsource = \"tx\"\nexpr = \"sum(amount)\"\n\n[ladders.v]\n[[ladders.v.levels]]\nname = \"top\"\nwhen = \"spend > 10\"\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n";
    std::fs::write(dir.join("stratum.toml"), policy).unwrap();

    let o = stratum(&["run", "--as-of", "2026-10-31"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("tx.csv:4: column `date`: value 'yesterday' is not a valid date"),
        "{:?}",
        text(&o)
    );

    let o = stratum(
        &[
            "run",
            "--as-of",
            "2026-10-31",
            "--on-bad-rows",
            "quarantine",
        ],
        dir,
    );
    // One of three rows is bad: more than the default 1% stops the run, naming the limit.
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains(
            "error: source `tx` (tx.csv): 1 of 3 rows rejected, more than the limit of 1%;"
        ),
        "{:?}",
        text(&o)
    );
    let o = stratum(
        &[
            "run",
            "--as-of",
            "2026-10-31",
            "--on-bad-rows",
            "quarantine",
            "--max-rejects",
            "1",
        ],
        dir,
    );
    let (out, _) = text(&o);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(out.contains("read 3 = accepted 2 + rejected 1"), "{out}");
    assert!(
        out.contains("rejects.csv (rejected rows with reasons)"),
        "{out}"
    );

    // Errors are printed once, not as "X: X".
    let o = stratum(&["diff", "99", "98"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).1, "error: no run 99 in the history\n");
    // Outputs that cannot be written record nothing; a far-future date is refused.
    let runs = || text(&stratum(&["runs"], dir)).0.lines().count();
    let recorded = runs();
    std::fs::write(dir.join("blocked"), "x").unwrap();
    let o = stratum(
        &[
            "run",
            "--as-of",
            "2026-10-31",
            "--out",
            "blocked",
            "--on-bad-rows",
            "quarantine",
            "--max-rejects",
            "1",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(runs(), recorded);
    let o = stratum(&["run", "--as-of", "2999-12-31"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("error: as_of 2999-12-31 is in the future"),
        "{:?}",
        text(&o)
    );
    assert_eq!(runs(), recorded);

    let o = stratum(&["run", "--as-of", "31/10/2026"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("invalid as_of date `31/10/2026`; write YYYY-MM-DD")
    );

    std::fs::write(
        dir.join("stratum.toml"),
        policy.replace("when = \"spend > 10\"", "wen = \"spend > 10\""),
    )
    .unwrap();
    let o = stratum(&["check"], dir);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("error[invalid_policy]: unknown field `wen`"),
        "{out}"
    );
    assert!(out.contains("stratum.toml:17:1"), "{out}");
    assert!(out.contains("help: did you mean `when`?"), "{out}");

    let o = stratum(&["run", "--policy", "missing.toml"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("cannot read policy missing.toml"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn gen_writes_parquet_and_the_benchmark_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stratum(
        &["gen", "--customers", "200", "--transactions", "3000", "b"],
        tmp.path(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = stratum(&["-C", "b", "--policy", "bench.toml", "run"], tmp.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("transactions   transactions.parquet"), "{out}");
    // 200 customers: key 2, major 38, ordinary 60, small 100.
    for (level, n) in [
        ("key", "2"),
        ("major", "38"),
        ("ordinary", "60"),
        ("small", "100"),
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{level} ")))
            .unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some(n), "{line}");
    }
}

/// The dependency rule of docs/ARCHITECTURE.md: core depends on no workspace crate; engine
/// only on core; runner wires engine and core; the server and the CLI sit on top; only the
/// server knows HTTP; core stays pure.
#[test]
fn crate_dependencies_follow_the_architecture() {
    let o = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let deps_of = |name: &str| -> Vec<String> {
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        pkg["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    let workspace = |deps: &[String]| -> Vec<String> {
        deps.iter()
            .filter(|d| d.starts_with("stratum-"))
            .cloned()
            .collect()
    };
    let core = deps_of("stratum-core");
    assert!(workspace(&core).is_empty(), "core depends on {core:?}");
    for forbidden in ["tokio", "datafusion", "sqlx", "axum", "anyhow"] {
        assert!(
            !core.iter().any(|d| d == forbidden),
            "core must stay pure: {forbidden}"
        );
    }
    assert_eq!(workspace(&deps_of("stratum-engine")), ["stratum-core"]);
    assert!(!deps_of("stratum-engine").iter().any(|d| d == "anyhow"));
    assert!(workspace(&deps_of("stratum-demo")).is_empty());
    let mut runner = workspace(&deps_of("stratum-runner"));
    runner.sort();
    assert_eq!(runner, ["stratum-core", "stratum-engine", "stratum-store"]);
    let store = deps_of("stratum-store");
    assert_eq!(workspace(&store), ["stratum-core"]);
    for forbidden in ["datafusion", "axum", "anyhow"] {
        assert!(
            !store.iter().any(|d| d == forbidden),
            "store must not depend on {forbidden}"
        );
    }
    assert!(
        !deps_of("stratum-runner").iter().any(|d| d == "anyhow"),
        "only binaries use anyhow"
    );
    // Only the server knows HTTP.
    for lib in [
        "stratum-core",
        "stratum-engine",
        "stratum-store",
        "stratum-runner",
    ] {
        assert!(!deps_of(lib).iter().any(|d| d == "axum"), "{lib} uses axum");
    }
    let mut server = workspace(&deps_of("stratum-server"));
    server.sort();
    assert_eq!(server, ["stratum-core", "stratum-runner", "stratum-store"]);
    assert!(!deps_of("stratum-server").iter().any(|d| d == "anyhow"));
}

/// Within each crate, modules import one another one way: no module reaches (through
/// `crate::…` paths) a module that reaches back to it. Tests inside a file are left out.
#[test]
fn modules_of_a_crate_import_each_other_one_way() {
    use std::collections::{BTreeMap, BTreeSet};
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["core", "engine", "store", "runner", "server", "cli"] {
        let src = crates.join(krate).join("src");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&src).unwrap();
                let top = rel
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string();
                let is_test_file =
                    rel.file_stem().is_some_and(|s| s == "tests") && rel.components().count() > 1;
                if matches!(top.as_str(), "lib" | "main") || is_test_file {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
                let uses = graph.entry(top.clone()).or_default();
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top {
                        uses.insert(name);
                    }
                }
            }
        }
        // Depth-first search for a path back to the start.
        for start in graph.keys() {
            let mut stack = vec![vec![start.clone()]];
            let mut seen = BTreeSet::new();
            while let Some(path) = stack.pop() {
                let last = path.last().unwrap();
                for next in graph.get(last).into_iter().flatten() {
                    if next == start {
                        panic!(
                            "{krate}: modules import each other: {} -> {start}",
                            path.join(" -> ")
                        );
                    }
                    if graph.contains_key(next) && seen.insert(next.clone()) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        stack.push(longer);
                    }
                }
            }
        }
    }
}

#[test]
fn history_diff_override_simulate_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        stratum(&["init", "demo", "--customers", "300"], dir)
            .status
            .success()
    );
    let o = stratum(&["-C", "demo", "run", "--as-of", "2026-09-30"], dir);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("recorded run #1 in sqlite://"),
        "{:?}",
        text(&o)
    );
    assert!(dir.join("demo/stratum.db").exists());

    // A pin kept in the store, checked against the policy first.
    let o = stratum(
        &[
            "-C", "demo", "--by", "mei", "override", "add", "C00003", "--ladder", "pyramid",
            "--level", "kay", "--reason", "x",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("ladder `pyramid` has no level `kay`"),
        "{:?}",
        text(&o)
    );
    let o = stratum(
        &[
            "-C",
            "demo",
            "--by",
            "mei",
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
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o)
            .0
            .contains("override #1: C00003 pin key on pyramid until 2026-12-31")
    );

    let o = stratum(&["-C", "demo", "run"], dir);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("recorded run #2 in sqlite://"), "{out}");
    assert!(out.contains("(holds continue from run #1;"), "{out}");

    let o = stratum(&["-C", "demo", "history", "C00003"], dir);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("ladder pyramid (Customer value tiers)"),
        "{out}"
    );
    assert!(out.contains("2026-09-30 run #1"), "{out}");
    assert!(
        out.contains("pinned by manual override (board member's company — mei, until 2026-12-31)"),
        "{out}"
    );

    let export = dir.join("moves.csv");
    let o = stratum(
        &["-C", "demo", "diff", "--export", export.to_str().unwrap()],
        dir,
    );
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("run #1 (Customer value tiers, as of 2026-09-30) -> run #2"),
        "{out}"
    );
    assert!(out.contains("from \\ to"), "{out}");
    let moves = std::fs::read_to_string(&export).unwrap();
    assert!(
        moves.starts_with("ladder,customer_id,from_level,to_level,direction,value,explanation\n")
    );
    let summary_line = out.lines().find(|l| l.contains("upgrades")).unwrap();
    let ups: usize = summary_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(',')
        .replace(',', "")
        .parse()
        .unwrap();
    let pyramid_ups = moves
        .lines()
        .filter(|l| l.starts_with("pyramid,") && l.contains(",up,"))
        .count();
    assert_eq!(
        ups, pyramid_ups,
        "the export lists every upgrade the matrix counts"
    );
    // The same moves as Parquet, written under a temporary name and renamed.
    let export = dir.join("moves.parquet");
    let o = stratum(
        &["-C", "demo", "diff", "--export", export.to_str().unwrap()],
        dir,
    );
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    let moved = moves.lines().count() - 1;
    assert!(
        out.contains(&format!("({moved} customers who moved)")),
        "{out}"
    );
    let bytes = std::fs::read(&export).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    let partial: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");

    let o = stratum(&["-C", "demo", "runs"], dir);
    assert_eq!(text(&o).0.lines().count(), 2, "{:?}", text(&o));

    // A draft with a bigger key tier: upgrades only, nothing recorded.
    let draft = std::fs::read_to_string(dir.join("demo/stratum.toml"))
        .unwrap()
        .replacen("top_share = 0.01", "top_share = 0.05", 1);
    std::fs::write(dir.join("demo/draft.toml"), draft).unwrap();
    let o = stratum(&["-C", "demo", "--policy", "draft.toml", "simulate"], dir);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("against run #2"), "{out}");
    // Every boundary moves down the ranking, so customers only move up: 11 from major to key,
    // 11 from ordinary to major, 10 from small to ordinary (the seeded demo data).
    assert!(out.contains("  major             11         46"), "{out}");
    assert!(out.contains("would upgrade 32, downgrade 0"), "{out}");
    // Benefit costs 5,000 / 800 / 100 per key / major / ordinary customer. Run #2: key 6,
    // major 57, ordinary 96 = 30,000 + 45,600 + 9,600. Draft: key 17 (15 by quota and the two
    // pins), major 57, ordinary 95 = 85,000 + 45,600 + 9,500.
    assert!(
        out.contains("benefit cost: 85,200 -> 140,100 (+54,900)"),
        "{out}"
    );
    let o = stratum(&["-C", "demo", "runs"], dir);
    assert_eq!(text(&o).0.lines().count(), 2, "simulate records nothing");

    let kpis = dir.join("kpis.csv");
    let o = stratum(
        &["-C", "demo", "report", "--out", kpis.to_str().unwrap()],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let csv = std::fs::read_to_string(&kpis).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("2,2026-10-31,pyramid,key,")),
        "{csv}"
    );

    let o = stratum(&["-C", "demo", "audit"], dir);
    assert!(
        text(&o).0.contains("mei        cli    override.add"),
        "{:?}",
        text(&o)
    );
    // Tags from the data are listed beside the store's (issue 17, point 20).
    let (out, _) = text(&stratum(&["-C", "demo", "tag", "list"], dir));
    assert!(
        out.lines().any(|l| l.ends_with(" (from the data)")),
        "{out}"
    );

    // An override added since the last run: explain recomputes with it, and says what the
    // run recorded and that the change is pending (issue 17, point 2).
    let o = stratum(
        &[
            "-C", "demo", "--by", "mei", "override", "add", "C00100", "--ladder", "pyramid",
            "--level", "small", "--reason", "disputed",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&stratum(&["-C", "demo", "explain", "C00100"], dir));
    assert!(out.contains("\nrecorded: run #2 as of 2026-10-31 (what lookups and the API serve until the next run)\n"), "{out}");
    assert!(
        out.contains("\n  pyramid: key in the run, small recomputed now\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  pending from the next run: override #2 (pin small on pyramid), added by mei at "
        ),
        "{out}"
    );

    // The SLA report reads local times in the service's zone and names unknown customers
    // (issue 17, point 9).
    std::fs::write(
        dir.join("calls.csv"),
        "customer_id,queued_at,answered_at\nC00003,2026-11-24 09:00:00,2026-11-24 09:00:10\n\
         C00042,2026-11-24T09:00:00+08:00,\nC99999,2026-11-24 09:01,2026-11-24 09:02\n",
    )
    .unwrap();
    let o = stratum(&["-C", "demo", "sla", "calls.csv"], dir);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.starts_with("SLA by level of `pyramid` (run #2), 3 calls\n  1 customer(s) not in run #2, counted under (no level): C99999\n"), "{out}");
    std::fs::write(
        dir.join("bad.csv"),
        "customer_id,queued_at,answered_at\nC00003,yesterday,\n",
    )
    .unwrap();
    let o = stratum(&["-C", "demo", "sla", "bad.csv"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        "error: bad.csv:2: column `queued_at`: `yesterday` is not a time; write e.g. `2026-11-24 09:00:00` (in Asia/Shanghai) or `2026-11-24T09:00:00+08:00`\n"
    );

    // What people enter is checked against the policy and its served run (issue 17, point 6).
    let o = stratum(
        &[
            "-C", "demo", "override", "add", "C99999", "--ladder", "pyramid", "--level", "key",
            "--reason", "x",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        "error: customer `C99999` is not in run #2 of policy `Customer value tiers`, the one served; check the id, \
         or say it is a new customer the next run's data will have (--new-customer)\n"
    );
    let o = stratum(
        &[
            "-C",
            "demo",
            "override",
            "add",
            "C99999",
            "--ladder",
            "pyramid",
            "--level",
            "key",
            "--reason",
            "x",
            "--new-customer",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = stratum(
        &[
            "-C",
            "demo",
            "input",
            "set",
            "C00010",
            "relationship_top",
            "lots",
            "--reason",
            "x",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        "error: policy `Customer value tiers` reads no manual inputs (no source with format = \"inputs\")\n"
    );

    // Another policy's run in the same database: every history command keeps to the
    // workspace's policy (issue 17, point 1).
    let o = stratum(
        &[
            "-C",
            "demo",
            "--policy",
            "policies/lifecycle.toml",
            "run",
            "--out",
            "out-life",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = stratum(&["-C", "demo", "diff"], dir);
    assert!(
        text(&o).0.starts_with(
            "run #1 (Customer value tiers, as of 2026-09-30) -> run #2 (Customer value tiers"
        ),
        "{:?}",
        text(&o)
    );
    let o = stratum(&["-C", "demo", "diff", "2", "3"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        "error: run #3 is a run of policy `Lifecycle`, not of `Customer value tiers`; pass --across-policies to compare runs of different policies\n"
    );
    let o = stratum(&["-C", "demo", "diff", "2", "3", "--across-policies"], dir);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        text(&stratum(&["-C", "demo", "runs"], dir))
            .0
            .lines()
            .count(),
        2
    );
    assert_eq!(
        text(&stratum(&["-C", "demo", "runs", "--all"], dir))
            .0
            .lines()
            .count(),
        3
    );
    let (out, _) = text(&stratum(&["-C", "demo", "history", "C00031"], dir));
    assert!(!out.contains("Lifecycle"), "{out}");
    let (out, _) = text(&stratum(
        &[
            "-C",
            "demo",
            "--policy",
            "policies/lifecycle.toml",
            "history",
            "C00031",
        ],
        dir,
    ));
    assert!(
        out.contains("(Lifecycle)") && !out.contains("Customer value tiers"),
        "{out}"
    );
}

/// kill -9 while a run is being recorded, at several points of the write: the runs before
/// stay, no half run is visible, and the next run records cleanly.
#[test]
fn kill_9_during_the_write_leaves_no_half_run() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = stratum(
        &[
            "gen",
            "--customers",
            "20000",
            "--transactions",
            "60000",
            "data",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let db = dir.join("history.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let run_args = [
        "--database",
        url.as_str(),
        "--policy",
        "data/bench.toml",
        "run",
        "--out",
        "out",
    ];
    let o = stratum(&run_args, dir);
    assert!(o.status.success(), "{:?}", text(&o));

    let count_runs = || {
        let o = stratum(&["--database", url.as_str(), "runs"], dir);
        assert!(o.status.success(), "{:?}", text(&o));
        text(&o).0.lines().filter(|l| l.starts_with('#')).count()
    };
    assert_eq!(count_runs(), 1);
    // 20,000 rows go in 1,000 per statement: kill after the 1st, 9th and 19th batch.
    for batches in [1, 9, 19] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratum"))
            .args(run_args)
            .current_dir(dir)
            .env("STRATUM_LOG", "stratum_store=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = 0;
        for line in stderr.lines() {
            if line.unwrap().contains("recorded rows") {
                seen += 1;
                if seen == batches {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(seen, batches, "the write was under way");
        assert!(!status.success(), "killed");
        assert_eq!(
            count_runs(),
            1,
            "killed after {batches} batches: no half run"
        );
    }
    let o = stratum(&run_args, dir);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(count_runs(), 2);
    let o = stratum(&["--database", url.as_str(), "diff"], dir);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("upgrades 0, downgrades 0, new customers 0, gone 0"),
        "{out}"
    );
}

/// `stratum clv` from the raw CDNOW sample log (turned into CSV here) prints the published
/// parameters; a bad row names its file, line and column.
#[test]
fn clv_fits_the_cdnow_sample() {
    let dir = tempfile::tempdir().unwrap();
    let raw = include_str!("../../core/tests/fixtures/cdnow/CDNOW_sample.txt");
    let mut csv = String::from("customer_id,date,amount\n");
    for l in raw.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        csv.push_str(&format!("{},{},{}\n", f[1], f[2], f[4]));
    }
    std::fs::write(dir.path().join("cdnow.csv"), &csv).unwrap();
    let args = [
        "clv",
        "--transactions",
        "cdnow.csv",
        "--as-of",
        "1997-09-30",
        "--unit",
        "week",
        "--json",
    ];
    let o = stratum(&args, dir.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["customers"], 2357);
    let near = |got: &serde_json::Value, want: f64| (got.as_f64().unwrap() - want).abs() <= 0.01;
    let bg = &v["bgnbd"];
    assert!(
        near(&bg["r"], 0.243)
            && near(&bg["alpha"], 4.414)
            && near(&bg["a"], 0.793)
            && near(&bg["b"], 2.426),
        "{v}"
    );
    let gg = &v["gamma_gamma"];
    assert!(
        near(&gg["p"], 6.25) && near(&gg["q"], 3.74) && near(&gg["v"], 15.44),
        "{v}"
    );

    // The same log as JSON lines, with --out: predictions for every customer.
    let jsonl: String = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!(
                "{{\"customer_id\": \"{}\", \"date\": \"{}\", \"amount\": {}}}\n",
                f[0], f[1], f[2]
            )
        })
        .collect();
    // A refund on a day 0001 did not buy: refunds stay out of the purchases by default.
    let jsonl =
        format!("{jsonl}{{\"customer_id\": \"0001\", \"date\": \"1997-09-01\", \"amount\": -5}}\n");
    std::fs::write(dir.path().join("cdnow.jsonl"), jsonl).unwrap();
    let o = stratum(
        &[
            "clv",
            "--transactions",
            "cdnow.jsonl",
            "--as-of",
            "1997-09-30",
            "--out",
            "predicted",
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("2,357 customers as of 1997-09-30"), "{out}");
    // The most valuable customers are shown on screen too.
    assert!(
        out.contains("  top customers by 12-month CLV (all with --out):\n  customer"),
        "{out}"
    );
    // Standard errors are labelled, with the estimates.
    assert!(out.contains("  BG/NBD standard errors: r 0.24"), "{out}");
    let predictions =
        std::fs::read_to_string(dir.path().join("predicted/predictions.csv")).unwrap();
    let lines: Vec<&str> = predictions.lines().collect();
    assert_eq!(
        lines[0],
        "customer_id,frequency,recency,T,monetary,p_alive,expected_purchases,expected_spend,clv"
    );
    assert_eq!(lines.len(), 1 + 2357);
    // Customer 0001 is the paper's example (x = 2, t_x = 30.43, T = 38.86): lifetimes gives
    // p_alive 0.72661 with the published parameters.
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((first[0], first[1]), ("0001", "2"));
    let alive: f64 = first[5].parse().unwrap();
    assert!((alive - 0.72661).abs() < 1e-3, "{}", lines[1]);
    let fit: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("predicted/fit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (fit["customers"].as_u64(), fit["horizon_months"].as_u64()),
        (Some(2357), Some(12))
    );

    // A filter naming a column the log lacks is the user's mistake, named with the file.
    let o = stratum(
        &[
            "clv",
            "--transactions",
            "cdnow.jsonl",
            "--as-of",
            "1997-09-30",
            "--filter",
            "amout > 0",
        ],
        dir.path(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cdnow.jsonl: ") && err.contains("amout") && !err.contains("internal"),
        "{err}"
    );

    csv.push_str("0001,1997-13-01,5\n");
    std::fs::write(dir.path().join("cdnow.csv"), &csv).unwrap();
    let o = stratum(&args, dir.path());
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cdnow.csv:6921: column `date`: value '1997-13-01' is not a valid date"),
        "{err}"
    );
}

/// The history belongs beside the policy when no `-C` is given, the `.db` file alone is the
/// whole history after a command (its write-ahead log folded back), and `backup` makes a
/// consistent copy (issue 17, points 3 and 4).
#[test]
fn the_database_lives_beside_the_policy_and_is_whole_after_a_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = stratum(&["init", "ws", "--customers", "200"], dir);
    assert!(o.status.success(), "{:?}", text(&o));
    // From outside the workspace, by the policy's path only.
    let o = stratum(
        &[
            "--policy",
            "ws/stratum.toml",
            "run",
            "--as-of",
            "2026-10-31",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        !dir.join("stratum.db").exists(),
        "no database in the current folder"
    );
    let db = dir.join("ws/stratum.db");
    assert!(db.exists());
    let wal = dir.join("ws/stratum.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL was folded back"
    );
    // A copy of the file alone holds the run.
    std::fs::copy(&db, dir.join("copy.db")).unwrap();
    let url = format!("sqlite://{}", dir.join("copy.db").display());
    let (out, _) = text(&stratum(&["--database", &url, "runs"], dir));
    assert!(
        out.starts_with("#1    Customer value tiers  as of 2026-10-31"),
        "{out}"
    );
    // A policy of the workspace's policies/ folder records into the workspace's database.
    let o = stratum(
        &[
            "--policy",
            "ws/policies/b2b.toml",
            "run",
            "--as-of",
            "2026-10-31",
        ],
        dir,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!dir.join("ws/policies/stratum.db").exists());
    let o = stratum(&["-C", "ws", "backup", "backup.db"], dir);
    assert!(o.status.success(), "{:?}", text(&o));
    let url = format!("sqlite://{}", dir.join("backup.db").display());
    let (out, _) = text(&stratum(&["--database", &url, "runs"], dir));
    assert_eq!(out.lines().count(), 2, "{out}");
    let o = stratum(&["-C", "ws", "backup", "backup.db"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("exists already"), "{:?}", text(&o));
}

/// `stratum … | head` closes stdout before the command is done: the command ends quietly
/// with exit 0 (no panic, nothing on stderr), as other command-line tools do.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_stratum"))
        .args(["init", "demo", "--customers", "50"])
        .current_dir(tmp.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}

/// Console passwords from the command line: read from standard input when it is not a
/// terminal, refused (adding no user) when too short, audited when set.
#[test]
fn users_get_console_passwords() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("h.db").display());
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratum"))
            .args(["--database", &url, "--by", "root"])
            .args(args)
            .current_dir(tmp.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = with_stdin(
        &[
            "user",
            "add",
            "mei",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_eq!(short.status.code(), Some(1));
    assert_eq!(
        text(&short).1,
        "error: a password has at least 10 characters\n"
    );
    let list = with_stdin(&["user", "list"], "");
    assert_eq!(text(&list).0, "", "no user was added");
    let added = with_stdin(
        &[
            "user",
            "add",
            "mei",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert_eq!(
        text(&added).0,
        "added user mei (analyst)\n",
        "{:?}",
        text(&added)
    );
    let set = with_stdin(&["user", "passwd", "mei"], "another long password\n");
    assert_eq!(
        text(&set).0,
        "password of mei set; its console sessions are ended\n"
    );
    let audit = with_stdin(&["audit", "--user", "root"], "");
    let out = text(&audit).0;
    assert_eq!(out.matches("user.passwd").count(), 2, "{out}");
    assert_eq!(out.matches("user.add").count(), 1, "{out}");
    let unknown = with_stdin(&["user", "passwd", "nobody"], "long enough password\n");
    assert_eq!(text(&unknown).1, "error: no enabled user `nobody`\n");
}

/// A rep's day on the demo's pipeline (its classes, quotas and the 2026 calendar): contacts
/// logged, then the call lists of a working day, a Sunday and the Saturday worked to bridge
/// National Day, and the refusals of a bad contact.
#[test]
fn call_lists_follow_classes_contacts_and_the_calendar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        stratum(&["init", "demo", "--customers", "300"], dir)
            .status
            .success()
    );
    let ws = dir.join("demo");
    // A served run: contacts name its customers.
    assert!(stratum(&["run"], &ws).status.success());
    let contact = |args: &[&str]| {
        let mut all = vec!["--by", "lin", "contact"];
        all.extend_from_slice(args);
        let o = stratum(&all, &ws);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
        text(&o).0
    };
    assert_eq!(
        contact(&[
            "C00042",
            "--outcome",
            "reached",
            "--class",
            "0",
            "--on",
            "2026-10-09"
        ]),
        "logged #1 for C00042: call reached; class 0, next contact by the class's cycle\n"
    );
    contact(&[
        "C00043",
        "--outcome",
        "reached",
        "--class",
        "2",
        "--intent",
        "good",
        "--on",
        "2026-10-09",
        "--next",
        "2026-10-13",
    ]);
    contact(&[
        "C00044",
        "--channel",
        "visit",
        "--outcome",
        "no_answer",
        "--class",
        "4",
        "--on",
        "2026-09-10",
    ]);
    contact(&[
        "C00045",
        "--outcome",
        "reached",
        "--class",
        "1",
        "--intent",
        "very_likely",
        "--on",
        "2026-09-30",
    ]);
    let calls = |date: &str| text(&stratum(&["calls", "--rep", "lin", "--date", date], &ws)).0;
    // Monday October 12: class 1 first (due the first working day after the holiday,
    // October 8, and past its 2-day payment deadline), class 0 due on the Saturday worked,
    // class 4 due 14 working days after September 10; C00043 is set for Tuesday.
    assert_eq!(
        calls("2026-10-12"),
        "lin, Monday 2026-10-12: 3 call(s) (target 35)\n\
         \x20 holds 4 customer(s): at 60 a day everyone is reached every 1 working day(s) (18 this month)\n\
         \x20 morning\n\
         \x20    1  C00045     class 1          due 2026-10-08  overdue 3 working day(s): remind the rep, past payment deadline, intent very_likely\n\
         \x20    2  C00042     class 0          due 2026-10-10  overdue 1 working day(s)\n\
         \x20 afternoon\n\
         \x20    3  C00044     class 4          due 2026-09-30  overdue 4 working day(s): remind the rep\n"
    );
    assert_eq!(
        calls("2026-10-11"),
        "lin, Sunday 2026-10-11: not a working day\n"
    );
    assert!(
        calls("2026-10-13")
            .contains("   4  C00043     class 2          due 2026-10-13  intent good\n")
    );
    // Logging the call takes it off the day's list (class 0 comes back the next working day).
    contact(&["C00042", "--outcome", "reached", "--on", "2026-10-12"]);
    let monday = calls("2026-10-12");
    assert!(
        monday.starts_with("lin, Monday 2026-10-12: 2 call(s)"),
        "{monday}"
    );
    assert!(!monday.contains("C00042"));
    assert!(calls("2026-10-13").contains("C00042     class 0          due 2026-10-13\n"));
    // A first contact without a class, an unknown class or outcome: refused, nothing logged.
    for (args, message) in [
        (
            vec!["C00046", "--outcome", "reached"],
            "customer C00046 is new to the pipeline: give the class the contact put it in",
        ),
        (
            vec!["C00046", "--outcome", "reached", "--class", "9"],
            "unknown class `9`: the policy's classes are 1, 2, 0, key-3, ordinary-3, 4, 6, 7, 5",
        ),
        (
            vec!["C00046", "--outcome", "maybe", "--class", "0"],
            "unknown outcome `maybe`",
        ),
    ] {
        let mut all = vec!["contact"];
        all.extend(args.iter());
        let o = stratum(&all, &ws);
        assert_eq!(
            o.status.code(),
            Some(if message.contains("outcome") { 2 } else { 1 })
        );
        assert!(text(&o).1.contains(message), "{:?}", text(&o));
    }
    assert!(!calls("2026-10-13").contains("C00046"));

    // A walk-in register: two good rows, three bad ones.
    let register = ws.join("walk-ins.csv");
    std::fs::write(
        &register,
        "customer_id,rep,on,channel,outcome,intent,class,next_contact,notes\n\
         C00050,lin,2026-10-12,walk_in,reached,possible,key-3,,asked for prices\n\
         C00051,lin,2026-10-32,walk_in,reached,,0,,\n\
         C00052,lin,2026-10-12,phone_in,hung_up,,0,,\n\
         C99999,lin,2026-10-12,phone_in,reached,,0,,\n\
         C00053,lin,2026-10-12,phone_in,reached,good,2,2026-10-14,\n",
    )
    .unwrap();
    let o = stratum(&["--by", "lin", "import-contacts", "walk-ins.csv"], &ws);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    for want in [
        "3 of 5 row(s) are bad; nothing was logged:",
        "walk-ins.csv:3: on `2026-10-32` is not YYYY-MM-DD",
        "walk-ins.csv:4: unknown outcome `hung_up`",
        "walk-ins.csv:5: customer `C99999` is not in the served run #1",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!calls("2026-10-13").contains("C00050"), "nothing logged");
    let o = stratum(
        &[
            "--by",
            "lin",
            "import-contacts",
            "walk-ins.csv",
            "--on-bad-rows",
            "quarantine",
        ],
        &ws,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        text(&o).0,
        format!(
            "walk-ins.csv: 5 row(s) read, 2 logged, 3 rejected (see {})\n",
            "walk-ins.rejects.csv"
        )
    );
    let rejects = std::fs::read_to_string(ws.join("walk-ins.rejects.csv")).unwrap();
    assert!(rejects.starts_with("line,why\n3,"), "{rejects}");
    assert_eq!(rejects.lines().count(), 4);
    let tuesday = calls("2026-10-14");
    assert!(
        tuesday.contains("C00053     class 2          due 2026-10-14  intent good"),
        "{tuesday}"
    );

    // The funnel: C00042 moves from 0 to key-3 on the 14th, four working days after it
    // entered (the Saturday worked counts).
    contact(&[
        "C00042",
        "--outcome",
        "reached",
        "--class",
        "key-3",
        "--on",
        "2026-10-14",
    ]);
    let o = stratum(
        &["funnel", "--from", "2026-09-01", "--to", "2026-10-31"],
        &ws,
    );
    assert_eq!(
        text(&o).0,
        "funnel 2026-09-01 to 2026-10-31
class       now  entered  left  moved_to         median_days
1             1        1     0
2             2        2     0
0             0        1     1  key-3: 1 (100%)            4
key-3         2        2     0
ordinary-3    0        0     0
4             1        1     0
6             0        0     0
7             0        0     0
5             0        0     0
"
    );
    let csv_path = ws.join("weeks.csv");
    let report = |args: &[&str]| text(&stratum(args, &ws)).0;
    assert_eq!(
        report(&[
            "weeks",
            "--from",
            "2026-10-05",
            "--to",
            "2026-10-16",
            "--csv",
            csv_path.to_str().unwrap()
        ]),
        // The National Day week: Thursday (20), Friday (15) and the bridging Saturday (no
        // target) are its working days.
        "weeks 2026-10-05 to 2026-10-16
rep  week        working_days  planned  contacts  done  reached
lin  2026-10-05             3       35         2    6%        2
lin  2026-10-12             5      120         4    3%        4
"
    );
    assert_eq!(
        std::fs::read_to_string(&csv_path).unwrap(),
        "rep,week,working_days,planned,contacts,done,reached\n\
         lin,2026-10-05,3,35,2,6%,2\nlin,2026-10-12,5,120,4,3%,4\n"
    );
    // The intent customers, likeliest first: C00045 left overdue since the 8th.
    assert_eq!(
        report(&["intents", "--to", "2026-10-14"]),
        "intents as of 2026-10-14
customer_id  rep  class  intent       last_contact  due         overdue_days
C00045       lin  1      very_likely  2026-09-30    2026-10-08             5
C00043       lin  2      good         2026-10-09    2026-10-13             1
C00053       lin  2      good         2026-10-12    2026-10-14             0
C00050       lin  key-3  possible     2026-10-12    2026-10-19             0
"
    );
    // Two refusals giving one reason, written two ways, and one giving none.
    for (customer, notes) in [
        ("C00044", "Price  too HIGH"),
        ("C00042", "price too high"),
        ("C00043", ""),
    ] {
        contact(&[
            customer,
            "--outcome",
            "refused",
            "--on",
            "2026-10-15",
            "--notes",
            notes,
        ]);
    }
    assert_eq!(
        report(&["lost", "--from", "2026-10-01", "--to", "2026-10-31"]),
        "lost 2026-10-01 to 2026-10-31
reason             contacts  customers
price too high            2          2
(no reason given)         1          1
"
    );
    // The daily activity: lin's Monday the 12th, three contacts reached (a call, the walk-in,
    // the phone-in) against Monday's 35; Friday the 9th, two calls against 15.
    let o = stratum(
        &["activity", "--from", "2026-10-09", "--to", "2026-10-12"],
        &ws,
    );
    let lines: Vec<String> = text(&o)
        .0
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "activity 2026-10-09 to 2026-10-12",
            "rep day contacts target reached no_answer busy refused wrong_number call visit walk_in phone_in message",
            "lin 2026-10-09 2 15 2 0 0 0 0 2 0 0 0 0",
            "lin 2026-10-12 3 35 3 0 0 0 0 1 0 1 1 0",
        ]
    );

    // Dedicated managers for the key and major customers: two managers, one full at 10.
    let o = stratum(
        &[
            "assign",
            "--levels",
            "key,major",
            "--managers",
            "wang,li:10",
        ],
        &ws,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (csv, summary) = text(&o);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let held = |m: &str| {
        rows.iter()
            .filter(|r| r.split(',').nth(1) == Some(m))
            .count()
    };
    assert_eq!(csv.lines().next(), Some("customer_id,manager,why"));
    assert_eq!(held("li"), 10);
    assert_eq!(held("wang"), rows.len() - 10);
    // The run's owners are reps, not these managers: everyone moves, saying from whom.
    assert!(
        rows.iter()
            .all(|r| r.ends_with(" is not among the managers")),
        "{csv}"
    );
    assert!(summary.contains(&format!(
        "{} customer(s) of pyramid on key, major over 2 manager(s); {} new or moved",
        rows.len(),
        rows.len()
    )));
    assert!(summary.contains("nothing saved"));
    let o = stratum(
        &["assign", "--levels", "platinum", "--managers", "wang"],
        &ws,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains(
        "ladder `pyramid` has no level `platinum` (its levels: key, major, ordinary, small)"
    ));
}

/// The demo's teams and key-account managers: overdue follow-ups escalate to the rep, the
/// lead, then the pool (handed to a teammate, due with them that day); `assign --apply`
/// makes the key-account managers the owners, and a second pass keeps everyone.
#[test]
fn escalations_hand_over_and_assignments_stick() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        stratum(&["init", "demo", "--customers", "300"], dir)
            .status
            .success()
    );
    let ws = dir.join("demo");
    assert!(stratum(&["run"], &ws).status.success());
    let o = stratum(
        &["--by", "lin", "import-contacts", "data/contacts.csv"],
        &ws,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let escalate = |args: &[&str]| {
        let mut all = vec!["--by", "lin", "escalate"];
        all.extend_from_slice(args);
        let o = stratum(&all, &ws);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
        text(&o).0
    };
    let team = ["rep01", "rep02", "rep03", "rep04"];
    let report = escalate(&["--date", "2026-11-20"]);
    let rows: Vec<Vec<&str>> = report
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(!rows.is_empty(), "{report}");
    let pooled: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r.contains(&"pool"))
        .map(|r| (r[0], r[1], *r.last().unwrap()))
        .collect();
    assert!(!pooled.is_empty(), "{report}");
    // Each returned customer goes to another member of its rep's team.
    for (customer, rep, to) in &pooled {
        assert!(
            team.contains(rep) && team.contains(to) && rep != to,
            "{customer}: {rep} → {to}"
        );
    }
    // The counts line says what the rows show; the lead is told from 5 days on.
    let told = rows.iter().filter(|r| r.last() == Some(&"lead01")).count();
    let reminded = rows.len() - told - pooled.len();
    assert!(report.starts_with(&format!(
        "escalations 2026-11-20: {reminded} to remind their rep, {told} to tell the team lead, {} returned to the pool\n",
        pooled.len()
    )));
    let applied = escalate(&["--date", "2026-11-20", "--apply"]);
    assert!(
        applied.ends_with(&format!("handed over: {}\n", pooled.len())),
        "{applied}"
    );
    // Handed over: on the new rep's list that day, and no longer escalating.
    let (customer, _, to) = pooled[0];
    let list = text(&stratum(
        &["calls", "--rep", to, "--date", "2026-11-20"],
        &ws,
    ))
    .0;
    assert!(list.contains(customer), "{list}");
    let again = escalate(&["--date", "2026-11-20"]);
    for (customer, _, _) in &pooled {
        assert!(
            !again.contains(customer),
            "{customer} escalated again:\n{again}"
        );
    }
    assert!(again.contains(" 0 returned to the pool"), "{again}");

    // Key-account managers from the policy's [assignment], applied, then stable.
    let o = stratum(&["assign", "--apply"], &ws);
    assert!(o.status.success(), "{:?}", text(&o));
    let (csv, summary) = text(&o);
    let keys = csv.lines().count() - 1;
    assert!(keys > 0, "{csv}");
    assert!(
        summary.contains(&format!("applied: {keys} assigned, 0 released")),
        "{summary}"
    );
    let o = stratum(&["assign"], &ws);
    let (csv, summary) = text(&o);
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",kept")), "{csv}");
    assert!(summary.contains("; 0 new or moved"), "{summary}");
    // km03 leaves: only its customers move, saying so.
    let o = stratum(&["assign", "--managers", "km01,km02", "--apply"], &ws);
    let (csv, _) = text(&o);
    let moved: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(",kept"))
        .collect();
    assert!(
        moved
            .iter()
            .all(|l| l.ends_with(",km03 is not among the managers")),
        "{csv}"
    );
}
