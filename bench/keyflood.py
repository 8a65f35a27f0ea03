#!/usr/bin/env python3
"""Benchmark: `stratum serve` under a flood of wrong secrets for a known key id (issue 16,
defect 4: each failed check used to run argon2, ~19 MiB each, unbounded: 147 MB -> 10 GB).

  python3 bench/keyflood.py [--stratum PATH] [--requests 512] [--concurrency 128]
                            [--customers 2000] [--work DIR]

Loopback only. Makes a demo workspace (`stratum init`, `stratum run`), a user and a key,
starts `stratum serve`, then sends --requests requests, --concurrency at a time, each with
`Bearer stk_<the real key id>_<a wrong secret>`, while sampling the server's resident memory
every 20 ms. Then the real key, from the same address, must still work (it was verified
before the flood, so it is served from the verified-key cache). Prints and writes
WORK/keyflood-results.json: statuses, latency percentiles, RSS before / peak / after.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(port: int, path: str, key: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    status = conn.getresponse().status
    conn.close()
    return status, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratum", default=str(ROOT / "target" / "release" / "stratum"))
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--work", default=str(ROOT / "bench" / "out" / "keyflood"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    ws = work / "ws"
    work.mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run([a.stratum, *args], check=True, capture_output=True, text=True).stdout
    run("init", str(ws), "--customers", str(a.customers), "--force")
    for f in ("stratum.db", "stratum.db-wal", "stratum.db-shm"):
        (ws / f).unlink(missing_ok=True)
    run("-C", str(ws), "run")
    run("-C", str(ws), "user", "add", "ivr", "--role", "service")
    key = run("-C", str(ws), "key", "create", "ivr").split()[-1]
    if not key.startswith("stk_"):
        key = next(w for w in run("-C", str(ws), "key", "create", "ivr").split() if w.startswith("stk_"))
    key_id = key.split("_")[1]
    wrong = f"stk_{key_id}_{'0' * 48}"
    server = subprocess.Popen([a.stratum, "-C", str(ws), "serve", "--listen", f"127.0.0.1:{a.port}"],
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if get(a.port, "/health", "")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        # Verify the real key once, before the flood.
        assert get(a.port, "/api/customers/C00042/levels", key)[0] == 200
        before = rss_kib(server.pid)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(a.concurrency) as pool:
            results = list(pool.map(lambda _: get(a.port, "/api/customers/C00042/levels", wrong),
                                    range(a.requests)))
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        after = rss_kib(server.pid)
        real_key_status = get(a.port, "/api/customers/C00042/levels", key)[0]
    finally:
        server.terminate()
        server.wait()
    statuses = {}
    for s, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    lat = sorted(t for _, t in results)
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)
    out = {
        "requests": a.requests, "concurrency": a.concurrency, "wall_s": round(wall, 2),
        "statuses": statuses, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "rss_before_mib": round(before / 1024, 1), "rss_peak_mib": round(peak[0] / 1024, 1),
        "rss_after_mib": round(after / 1024, 1), "real_key_after_flood": real_key_status,
        "stratum": a.stratum,
    }
    print(json.dumps(out, indent=2))
    (work / "keyflood-results.json").write_text(json.dumps(out, indent=2))
    if real_key_status != 200:
        sys.exit("the real key stopped working during the flood")


if __name__ == "__main__":
    main()
