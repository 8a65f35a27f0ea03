#!/usr/bin/env python3
"""The cost curve: bench/run.py at 1M/20M, 5M/100M and 10M/200M (customers/transactions,
invoices a tenth of the transactions), stratum and DuckDB side by side at each size, then a
table and an SVG chart of wall time and peak memory against size.

  python3 bench/curve.py [--stratum target/release/stratum] [--repeat 3] [--sizes 1,5,10]
                         [--from-results A.json B.json ...]

Writes bench/out/curve.json and docs/scale-curve.svg and prints the table for BENCHMARKS.md.
`--from-results` draws from results.json files of earlier bench/run.py runs instead of
running anything. The data of each size is generated once with `stratum gen` (10M/200M:
~2.6 GB of Parquet, 15 minutes on two cores).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def measure(stratum: str, repeat: int, millions: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--stratum", stratum, "--repeat", str(repeat),
           "--customers", str(millions * 1_000_000), "--transactions", str(millions * 20_000_000),
           "--invoices", str(millions * 2_000_000)]
    subprocess.run(cmd, check=True)
    return json.loads((OUT / "results.json").read_text())


def svg(points: list) -> str:
    """Two panels (wall seconds, peak GiB) against transactions, one line per engine."""
    w, h, pad = 640, 300, 50
    panel = (w - 3 * pad) / 2
    xs = [p["transactions"] / 1e6 for p in points]
    xmax = max(xs) * 1.05
    colors = {"stratum": "#1f6feb", "duckdb": "#d29922"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    for i, (key, title, scale) in enumerate([("wall_s", "wall time (s)", 1.0),
                                             ("peak_rss_mib", "peak memory (GiB)", 1 / 1024)]):
        x0 = pad + i * (panel + pad)
        ymax = max(p[e][key] * scale for p in points for e in colors) * 1.1
        px = lambda x: x0 + x / xmax * panel
        py = lambda y: h - pad - y / ymax * (h - 2 * pad)
        out.append(f'<text x="{x0 + panel / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0}" y1="{h - pad}" x2="{x0 + panel}" y2="{h - pad}" stroke="#888"/>')
        out.append(f'<line x1="{x0}" y1="{pad}" x2="{x0}" y2="{h - pad}" stroke="#888"/>')
        for x in xs:
            out.append(f'<text x="{px(x)}" y="{h - pad + 16}" text-anchor="middle">{x:.0f}M</text>')
        for frac in (0.0, 0.5, 1.0):
            y = ymax / 1.1 * frac
            out.append(f'<text x="{x0 - 6}" y="{py(y) + 4}" text-anchor="end">{y:.1f}</text>')
        for engine, color in colors.items():
            pts = " ".join(f"{px(x):.1f},{py(p[engine][key] * scale):.1f}" for x, p in zip(xs, points))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, p in zip(xs, points):
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(p[engine][key] * scale):.1f}" r="3" fill="{color}"/>')
        out.append(f'<text x="{x0 + panel / 2}" y="{h - 12}" text-anchor="middle">transactions</text>')
    for j, (engine, color) in enumerate(colors.items()):
        out.append(f'<rect x="{pad + j * 90}" y="32" width="10" height="10" fill="{color}"/>'
                   f'<text x="{pad + j * 90 + 14}" y="41">{engine}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratum", default=str(ROOT / "target" / "release" / "stratum"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1,5,10", help="millions of customers")
    ap.add_argument("--from-results", nargs="*", help="results.json files to draw instead of running")
    a = ap.parse_args()
    if a.from_results:
        points = [json.loads(Path(f).read_text()) for f in a.from_results]
    else:
        points = [measure(a.stratum, a.repeat, int(m)) for m in a.sizes.split(",")]
    points.sort(key=lambda p: p["transactions"])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "curve.json").write_text(json.dumps(points, indent=2))
    (ROOT / "docs" / "scale-curve.svg").write_text(svg(points))
    base = points[0]["stratum"]["wall_s"] / points[0]["transactions"]
    print("| customers / transactions | stratum wall | stratum peak | DuckDB wall | DuckDB peak | "
          "wall ratio | memory ratio | stratum ns per transaction | vs the smallest |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in points:
        s, d = p["stratum"], p["duckdb"]
        per = s["wall_s"] / p["transactions"]
        print(f"| {p['customers'] / 1e6:.0f}M / {p['transactions'] / 1e6:.0f}M | {s['wall_s']:.2f} s | "
              f"{s['peak_rss_mib']:,.0f} MiB | {d['wall_s']:.2f} s | {d['peak_rss_mib']:,.0f} MiB | "
              f"{p['wall_ratio']:.2f}× | {p['memory_ratio']:.2f}× | {per * 1e9:.0f} | {per / base - 1:+.0%} |")


if __name__ == "__main__":
    main()
