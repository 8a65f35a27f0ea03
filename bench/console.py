#!/usr/bin/env python3
"""The console's pages on 1M customers, beside DuckDB answering the same questions.

Two recorded runs of the benchmark policy (with the customers' region and type as text
metrics, so search has attributes to search) in a fresh SQLite database, a server, a
sign-in; then, in interleaved rounds, each page's time as a browser gets it (loopback HTTP,
the page rendered) and DuckDB's time for the same question over the same run's rows loaded
in memory (the peer a team would otherwise point a BI tool at). Medians and p95 of the
rounds.

    python3 bench/run.py --customers 1000000 ...   # makes bench/out/data-1000000-20000000-2000000
    python3 bench/console.py [--stratum /tmp/release-target/release/stratum] [--rounds 21]
"""

import argparse
import http.cookiejar
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "out", "data-1000000-20000000-2000000")
PORT = 18111
PASSWORD = "a long password 1"

EXTRA = """
[metrics.region]
source = "customers"
expr = "region"

[metrics.customer_type]
source = "customers"
expr = "customer_type"
"""


def stratum(binary, policy, db, *args, stdin=None):
    out = subprocess.run(
        [binary, "--policy", policy, "--database", f"sqlite://{db}?mode=rwc", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"stratum {' '.join(args)}: {out.stderr}")
    return out.stdout


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratum", default="/tmp/release-target/release/stratum")
    ap.add_argument("--rounds", type=int, default=21)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="stratum-console-")
    policy = os.path.join(DATA, "console.toml")
    with open(os.path.join(DATA, "serve.toml")) as f:
        text = f.read().replace('name = "Benchmark: service"', 'name = "Benchmark: console"')
    with open(policy, "w") as f:
        f.write(text + EXTRA)
    db = os.path.join(work, "console.db")
    out = os.path.join(work, "out")
    t = time.time()
    stratum(args.stratum, policy, db, "run", "--as-of", "2026-09-30", "--out", out)
    stratum(args.stratum, policy, db, "run", "--out", out)
    print(f"two recorded runs of 1,000,000 customers: {time.time() - t:.1f} s")
    stratum(args.stratum, policy, db, "user", "add", "lead", "--role", "admin",
            "--password-stdin", stdin=PASSWORD + "\n")
    export = os.path.join(work, "run.parquet")
    stratum(args.stratum, policy, db, "export-run", "--out", export)
    server = subprocess.Popen(
        [args.stratum, "--policy", policy, "--database", f"sqlite://{db}",
         "serve", "--listen", f"127.0.0.1:{PORT}"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
    try:
        base = f"http://127.0.0.1:{PORT}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login = opener.open(base + "/login").read().decode()
        csrf = re.search(r'name="csrf" value="([^"]*)"', login).group(1)
        opener.open(base + "/login", urllib.parse.urlencode(
            {"name": "lead", "password": PASSWORD, "csrf": csrf}).encode()).read()
        # The served table is built in the background after start: wait for it.
        t = time.time()
        while "Serving run #2" not in opener.open(base + "/").read().decode():
            time.sleep(0.2)
        print(f"server ready after {time.time() - t:.1f} s more")

        con = duckdb.connect()
        con.execute(f"CREATE TABLE runs AS SELECT * FROM '{export}'")
        con.execute(f"CREATE TABLE customers AS SELECT * FROM '{DATA}/customers.parquet'")
        con.execute("""CREATE TABLE standings AS SELECT r.*, c.region, c.customer_type,
                       lower(CAST(r.customer_id AS VARCHAR) || chr(31) || c.region || chr(31)
                             || c.customer_type) AS search
                       FROM runs r JOIN customers c ON CAST(c.customer_id AS VARCHAR) = r.customer_id""")
        print("duckdb columns:", [r[0] for r in con.execute("DESCRIBE standings").fetchall()][:12])

        pages = {
            "dashboard": "/",
            "customer card": "/customers/42",
            "search: text + level": "/customers?q=north&level=major",
            "search: id fragment": "/customers?q=4242",
            "search: page 100": "/customers?q=west&page=100",
            "runs": "/runs",
        }
        queries = {
            "dashboard": """SELECT level, count(*), sum(value) FROM standings
                            WHERE ladder = 'pyramid' GROUP BY level""",
            "customer card": "SELECT * FROM standings WHERE customer_id = '42'",
            "search: text + level": """SELECT customer_id, level, count(*) OVER () FROM standings
                            WHERE ladder = 'pyramid' AND search LIKE '%north%' AND level = 'major'
                            ORDER BY customer_id LIMIT 50""",
            "search: id fragment": """SELECT customer_id, level, count(*) OVER () FROM standings
                            WHERE ladder = 'pyramid' AND search LIKE '%4242%'
                            ORDER BY customer_id LIMIT 50""",
            "search: page 100": """SELECT customer_id, level, count(*) OVER () FROM standings
                            WHERE ladder = 'pyramid' AND search LIKE '%west%'
                            ORDER BY customer_id LIMIT 50 OFFSET 5000""",
        }
        times = {name: [] for name in pages}
        peer = {name: [] for name in queries}
        for _ in range(args.rounds):
            for name, path in pages.items():
                t = time.perf_counter()
                body = opener.open(base + path).read()
                times[name].append((time.perf_counter() - t) * 1000)
                assert b"<main>" in body, (name, body[:200])
                if name in queries:
                    t = time.perf_counter()
                    con.execute(queries[name]).fetchall()
                    peer[name].append((time.perf_counter() - t) * 1000)
        print(f"\n{args.rounds} interleaved rounds; ms (median / p95)")
        print(f"{'page':<24} {'Stratum console':>18} {'DuckDB (same question)':>24}")
        for name in pages:
            s = times[name]
            line = f"{name:<24} {statistics.median(s):>8.1f} / {percentile(s, 0.95):>6.1f}"
            if name in peer:
                d = peer[name]
                line += f" {statistics.median(d):>14.1f} / {percentile(d, 0.95):>6.1f}"
            print(line)
        rss = open(f"/proc/{server.pid}/status").read()
        print("server", re.search(r"VmRSS:\s+(\d+ kB)", rss).group(1), "resident")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
