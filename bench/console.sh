#!/usr/bin/env bash
# The console on the 1M-customer benchmark data (python3 bench/run.py makes it): two
# recorded runs in a fresh database, a sign-in, then the server time of the dashboard, a
# customer card, a search and the runs page, 11 requests each (median and max).
# Usage: bash bench/console.sh [STRATUM_BINARY]   (default /tmp/release-target/release/stratum)
set -euo pipefail
S=${1:-/tmp/release-target/release/stratum}
D="$(cd "$(dirname "$0")" && pwd)/out/data-1000000-20000000-2000000"
DB=/tmp/console1m.db
rm -f $DB $DB-wal $DB-shm
$S --policy $D/bench.toml --database "sqlite://$DB?mode=rwc" run --as-of 2026-09-30 --out /tmp/c1m-out >/dev/null 2>&1
$S --policy $D/bench.toml --database "sqlite://$DB?mode=rwc" run --out /tmp/c1m-out 2>&1 | grep timings
echo "a long password 1" | $S --policy $D/bench.toml --database "sqlite://$DB" user add lead --role admin --password-stdin >/dev/null
$S --policy $D/bench.toml --database "sqlite://$DB" serve --listen 127.0.0.1:18111 2>/tmp/c1m-serve.log &
PID=$!
trap 'kill $PID' EXIT
for _ in $(seq 1 200); do curl -fs http://127.0.0.1:18111/health >/dev/null && break; sleep 0.2; done
rm -f /tmp/c1m-cj
curl -s -c /tmp/c1m-cj -b /tmp/c1m-cj http://127.0.0.1:18111/login > /tmp/c1m-login.html
CSRF=$(grep -o 'name="csrf" value="[^"]*"' /tmp/c1m-login.html | sed 's/.*value="//;s/"//')
curl -s -c /tmp/c1m-cj -b /tmp/c1m-cj -o /dev/null -d "name=lead&password=a+long+password+1&csrf=$CSRF" http://127.0.0.1:18111/login
for page in / /customers/42 "/customers?q=4242" /runs; do
  times=""
  for i in $(seq 1 11); do
    t=$(curl -s -b /tmp/c1m-cj -o /tmp/c1m-page.html -w "%{time_total}" "http://127.0.0.1:18111$page")
    times="$times $t"
  done
  echo "$page: $(echo $times | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms, max %.1f ms (11 requests)", a[int((NR+1)/2)]*1000, a[NR]*1000}') $(grep -c '<' /tmp/c1m-page.html) lines"
done
grep -o "Since run #[^<]*" <(curl -s -b /tmp/c1m-cj http://127.0.0.1:18111/) | head -2
