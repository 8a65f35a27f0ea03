#!/usr/bin/env python3
"""Benchmark: the REST API under load (issue: differentiated service and the REST API).

  python3 bench/serve.py [--customers 1000000] [--transactions 20000000] [--invoices 2000000]
                         [--databases sqlite,postgres] [--duration 10] [--connections 16]
                         [--rate 10000] [--stratum PATH] [--load PATH] [--work DIR]

Loopback only, bounded: every load phase runs for --duration seconds after a 2 s warm-up.
Uses the benchmark data of bench/run.py (1M customers) with its policy plus a [service]
section (an owner per customer, a yearly `lounge` benefit: key unlimited, major 6,
ordinary 2, small 1). For each database:

  1. `stratum run` records the run (1M customers) in a fresh database;
  2. a `service` user and key; `stratum serve` on 127.0.0.1;
  3. tier lookup `GET /api/customers/{id}/levels`, random ids over all 1M customers:
     closed loop (most requests per second) and at a fixed --rate (latency from when each
     request was due, so falling behind shows);
  4. the customer card `GET /api/customers/{id}` (levels with explanations, tags, benefits
     with usage: database queries) in a closed loop;
  5. redemptions `POST /api/customers/{id}/redemptions` over customers 1..2000 in a closed
     loop, so quotas run out and most later requests are refused (409); then every
     customer's redeemed units are counted in the database and compared with the quota of
     its level: over-redemptions must be 0.

The load client is bench/load (Rust; no wrk or oha on the machine image), one thread, so the
server has the other core. Results go to WORK/serve-results.json.
"""
import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (the data layout)

QUOTAS = {"key": None, "major": 6, "ordinary": 2, "small": 1}  # None: unlimited
SERVICE = """
[metrics.agent]
source = "customers"
expr = "concat('agent', CAST(customer_id % 100 AS VARCHAR))"

[service]
ladder = "pyramid"
timezone = "Asia/Shanghai"
owner = "agent"

[benefits.lounge]
title = "Airport lounge"
period = "year"
quota = { key = "unlimited", major = 6, ordinary = 2, small = 1 }
"""
REDEEM_IDS = 2000


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def fresh_database(kind: str, work: Path) -> str:
    if kind == "sqlite":
        db = work / "serve.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        return f"sqlite://{db}?mode=rwc"
    admin = sh(["bash", str(harness.ROOT / "scripts" / "postgres.sh")], capture_output=True).stdout.strip()
    sh(["psql", admin, "-qc", "DROP DATABASE IF EXISTS stratum_bench"])
    sh(["psql", admin, "-qc", "CREATE DATABASE stratum_bench"])
    return admin.rsplit("/", 1)[0] + "/stratum_bench"


def sql(url: str, query: str) -> list:
    if url.startswith("sqlite://"):
        import sqlite3
        with sqlite3.connect(url[len("sqlite://"):].split("?")[0]) as con:
            return [tuple(r) for r in con.execute(query)]
    out = sh(["psql", url, "-At", "-F", "\t", "-c", query], capture_output=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def load(client: str, key: str, port: int, mode: str, a, **extra) -> dict:
    cmd = [client, "--addr", f"127.0.0.1:{port}", "--key", key, "--mode", mode,
           "--duration", str(a.duration), "--connections", str(a.connections)]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    result = json.loads(sh(cmd, capture_output=True).stdout)
    print(f"  {mode:<7} {str(result['rate']):>11}: {result['requests_per_s']:>8,.0f} req/s  "
          f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  max {result['max_ms']:.1f} ms  "
          f"(from sending: p50 {result['sent_p50_ms']:.3f} p99 {result['sent_p99_ms']:.3f})  "
          f"statuses {result['statuses']}  errors {result['errors']}", flush=True)
    return result


def over_redemptions(url: str, assignments_csv: Path) -> dict:
    """Units redeemed per customer (from the ledger) against the quota of the customer's
    pyramid level in the recorded run (from that run's assignments.csv)."""
    used_by = {customer: int(used) for customer, used in sql(url, """
        SELECT customer_id, SUM(quantity) FROM redemptions
        WHERE status = 'active' AND benefit = 'lounge' GROUP BY customer_id""")}
    level_of = {}
    with open(assignments_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["ladder"] == "pyramid" and row["customer_id"] in used_by:
                level_of[row["customer_id"]] = row["level"]
    rows = [(level_of[c], c, used) for c, used in used_by.items()]
    over, units, customers = 0, 0, 0
    for level, _customer, used in rows:
        used = int(used)
        units += used
        customers += 1
        quota = QUOTAS[level]
        if quota is not None and used > quota:
            over += used - quota
    return {"customers_redeeming": customers, "units_redeemed": units, "over_redeemed_units": over}


def main():
    ap = argparse.ArgumentParser()
    harness.data_arguments(ap, repeat=False)
    ap.add_argument("--databases", default="sqlite,postgres")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--load", default=None, help="the load client (default: next to --stratum)")
    ap.add_argument("--work", default=str(harness.ROOT / "bench" / "out"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stratum = a.stratum
    client = a.load or str(Path(stratum).parent / "stratum-load")
    if not (Path(stratum).exists() and Path(client).exists()):
        print("building stratum and stratum-load --release (15-20 minutes on two cores) ...", flush=True)
        sh(["cargo", "build", "--release", "-p", "stratum-cli", "-p", "stratum-load"], cwd=harness.ROOT)
    data = harness.bench_data(stratum, work, a.customers, a.transactions, a.invoices)
    policy = data / "serve.toml"
    policy.write_text((data / "bench.toml").read_text().replace(
        'name = "Benchmark: composite + pyramid"', 'name = "Benchmark: service"') + SERVICE)

    results = {"customers": a.customers, "duration_s": a.duration, "connections": a.connections,
               "cpus": os.cpu_count(), "databases": {}}
    for kind in a.databases.split(","):
        print(f"== {kind}", flush=True)
        url = fresh_database(kind, work)
        base = [stratum, "--policy", str(policy), "--database", url]
        t = time.monotonic()
        sh(base + ["run", "--out", str(work / "serve-out")], stdout=subprocess.DEVNULL)
        record_s = time.monotonic() - t
        print(f"  recorded the run in {record_s:.1f} s", flush=True)
        run_id = int(sql(url, "SELECT max(id) FROM runs")[0][0])
        sh(base + ["user", "add", "bench", "--role", "service"], stdout=subprocess.DEVNULL)
        key = sh(base + ["key", "create", "bench"], capture_output=True).stdout.strip()
        log = open(work / f"serve-{kind}.log", "w")
        server = subprocess.Popen(base + ["serve", "--listen", f"127.0.0.1:{a.port}"],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            t = time.monotonic()
            request = urllib.request.Request(f"http://127.0.0.1:{a.port}/api/customers/1/levels",
                                             headers={"Authorization": f"Bearer {key}"})
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"stratum serve exited; see {log.name}")
                try:
                    with urllib.request.urlopen(request, timeout=60) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.2)
            ready = time.monotonic() - t
            print(f"  serving 1M customers' levels after {ready:.1f} s", flush=True)
            r = {"record_s": record_s, "ready_s": ready, "run_id": run_id}
            r["lookup_closed"] = load(client, key, a.port, "lookup", a, id_to=a.customers)
            r["lookup_rate"] = load(client, key, a.port, "lookup", a, id_to=a.customers, rate=a.rate)
            r["card_closed"] = load(client, key, a.port, "card", a, id_to=a.customers)
            r["redeem_closed"] = load(client, key, a.port, "redeem", a, id_to=REDEEM_IDS, benefit="lounge")
            with open(f"/proc/{server.pid}/status") as f:
                hwm = [line for line in f if line.startswith("VmHWM")][0].split()[1]
            r["server_peak_rss_mib"] = int(hwm) / 1024
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
        r["ledger"] = over_redemptions(url, work / "serve-out" / "assignments.csv")
        created = r["redeem_closed"]["statuses"].get("201", 0)
        print(f"  ledger: {r['ledger']}; 201 answers {created}; server peak RSS "
              f"{r['server_peak_rss_mib']:.0f} MiB", flush=True)
        if r["ledger"]["over_redeemed_units"] != 0:
            raise SystemExit("OVER-REDEMPTION: the quota was exceeded")
        results["databases"][kind] = r
    out = work / "serve-results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results in {out}")


if __name__ == "__main__":
    main()
