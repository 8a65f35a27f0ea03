#!/usr/bin/env python3
"""Daily call lists for a sales floor: 100 reps holding 1,000 prospects each.

A register of 100,000 first contacts over October 2026 (classes drawn as the demo's team
draws them) is imported into a fresh SQLite history (`stratum import-contacts`), then in
interleaved rounds `stratum calls --date 2026-11-02` builds every rep's list end to end
(process start, policy and calendar, every prospect read from the store, lists printed),
beside DuckDB computing the same due lists in SQL over the same register loaded in memory
(working days from the same calendar; capacity per rep, but without the class quotas, which
SQL would need a second pass for). Medians of the rounds.

    python3 bench/calls.py [--stratum /tmp/release-target/release/stratum] [--rounds 7]
"""

import argparse
import csv
import datetime as dt
import os
import random
import statistics
import subprocess
import tempfile
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (class, follow-up working days, share of first contacts), as the demo policy's [pipeline].
CLASSES = [("1", 1, .05), ("2", 3, .05), ("0", 1, .15), ("key-3", 5, .10),
           ("ordinary-3", 8, .10), ("4", 14, .35), ("6", 22, .05), ("7", 22, .05), ("5", 22, .10)]


def demo_policy_pipeline():
    text = open(os.path.join(ROOT, "crates/demo/src/policies/stratum.toml")).read()
    start = text.index("[pipeline]")
    end = text.index("# --- ladders")
    return text[start:end]


def calendar_rows():
    text = open(os.path.join(ROOT, "crates/demo/src/demo.rs")).read()
    start = text.index("const CALENDAR_2026")
    rows = []
    for line in text[start:].splitlines()[1:]:
        line = line.strip()
        if line.startswith("];"):
            break
        d, kind, note = [p.strip().strip('"') for p in line.strip("(),").split(",", 2)]
        rows.append((d, kind, note.strip('"')))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratum", default="/tmp/release-target/release/stratum")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--per-rep", type=int, default=1000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="stratum-calls-")
    cal = calendar_rows()
    with open(os.path.join(work, "calendar.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "kind", "note"])
        w.writerows(cal)
    special = {d: k for d, k, _ in cal}

    def working(d):
        k = special.get(d.isoformat())
        return k == "workday" if k else d.weekday() < 5

    days = [dt.date(2026, 10, 1) + dt.timedelta(n) for n in range(31)]
    october = [d for d in days if working(d)]
    with open(os.path.join(work, "customers.csv"), "w") as f:
        f.write("customer_id\nP0000001\n")
    pipeline = demo_policy_pipeline().replace('calendar = "data/calendar.csv"', 'calendar = "calendar.csv"')
    with open(os.path.join(work, "policy.toml"), "w") as f:
        f.write('[policy]\nname = "calls benchmark"\n\n[sources.customers]\npath = "customers.csv"\n'
                'key = "customer_id"\n\n[ladders.all]\n[[ladders.all.levels]]\nname = "all"\nrest = true\n\n'
                + pipeline)
    rng = random.Random(20261102)
    register = os.path.join(work, "register.csv")
    weights = [c[2] for c in CLASSES]
    with open(register, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "rep", "on", "channel", "outcome", "intent", "class", "next_contact", "notes"])
        n = 0
        for r in range(args.reps):
            for _ in range(args.per_rep):
                n += 1
                cls = rng.choices(CLASSES, weights)[0][0]
                intent = rng.choice(["", "poor", "unclear", "possible", "good", "very_likely"])
                w.writerow([f"P{n:07d}", f"rep{r + 1:03d}", rng.choice(october).isoformat(), "call",
                            "reached", intent, cls, "", ""])
    db = os.path.join(work, "calls.db")
    base = [args.stratum, "-C", work, "--policy", os.path.join(work, "policy.toml"),
            "--database", f"sqlite://{db}?mode=rwc"]
    t = time.perf_counter()
    out = subprocess.run(base + ["--by", "bench", "import-contacts", register, "--new-customers"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    print(out.stdout.strip(), f"in {time.perf_counter() - t:.1f} s")

    con = duckdb.connect()
    con.execute(f"CREATE TABLE register AS SELECT * FROM read_csv('{register}', all_varchar=true)")
    con.execute("CREATE TABLE classes (class VARCHAR, follow_up INTEGER, ord INTEGER)")
    con.executemany("INSERT INTO classes VALUES (?, ?, ?)", [(c, f, i) for i, (c, f, _) in enumerate(CLASSES)])
    all_days = [dt.date(2026, 9, 1) + dt.timedelta(n) for n in range(200)]
    con.execute("CREATE TABLE workdays (day DATE, idx INTEGER)")
    con.executemany("INSERT INTO workdays VALUES (?, ?)",
                    [(d, i) for i, d in enumerate(d for d in all_days if working(d))])
    query = """
        WITH p AS (
            SELECT r.customer_id, r.rep, CAST(r."on" AS DATE) AS last, r.intent, c.class, c.ord,
                   c.follow_up
            FROM register r JOIN classes c ON c.class = r.class),
        due AS (
            SELECT p.*, w2.day AS due
            FROM p JOIN workdays w1 ON w1.day = p.last
                   JOIN workdays w2 ON w2.idx = w1.idx + p.follow_up
            WHERE w2.day <= DATE '2026-11-02'),
        ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY rep ORDER BY (due < DATE '2026-11-02') DESC, ord,
                CASE intent WHEN 'very_likely' THEN 0 WHEN 'good' THEN 1 WHEN 'possible' THEN 2
                            WHEN 'unclear' THEN 3 WHEN 'poor' THEN 4 ELSE 5 END, due, customer_id) AS n
            FROM due)
        SELECT rep, count(*) FROM ranked WHERE n <= 60 GROUP BY rep ORDER BY rep"""
    ours, theirs = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        out = subprocess.run(base + ["calls", "--date", "2026-11-02"], capture_output=True, text=True)
        ours.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        t = time.perf_counter()
        rows = con.execute(query).fetchall()
        theirs.append(time.perf_counter() - t)
    lists = [l for l in out.stdout.splitlines() if l.startswith("rep") and "call(s)" in l]
    calls = sum(int(l.split(": ")[1].split(" ")[0]) for l in lists)
    print(f"{len(lists)} reps, {calls:,} calls on Monday 2026-11-02 (DuckDB: {len(rows)} reps, "
          f"{sum(r[1] for r in rows):,} calls)")
    print(f"stratum calls (end to end, every rep): median {statistics.median(ours) * 1000:.0f} ms, "
          f"max {max(ours) * 1000:.0f} ms over {args.rounds} rounds")
    print(f"DuckDB, the same due lists in SQL (data in memory): median "
          f"{statistics.median(theirs) * 1000:.0f} ms, max {max(theirs) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
