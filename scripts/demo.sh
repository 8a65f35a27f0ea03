#!/usr/bin/env bash
# Builds stratum, creates a demo workspace and runs it end to end: every example policy of
# the domain notes, the pyramid tables, an explanation, the REST API, and the lint of a flawed policy.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "stratum needs a Rust toolchain (cargo); install it with rustup, then run this again" >&2
  exit 1
fi

echo "== building stratum (first build takes a few minutes)"
# The whole workspace, as the tests build it: a `-p` build would compile DataFusion again
# with other features.
cargo build --quiet --workspace
stratum=target/debug/stratum
ws=${1:-demo-workspace}

echo "== stratum init $ws"
"$stratum" init "$ws" --force
# The demo starts from a clean history every time, so its output matches README's: a store
# kept from an earlier demo would bring its overrides, users and runs along.
rm -f "$ws/stratum.db" "$ws/stratum.db-wal" "$ws/stratum.db-shm"

echo
echo "== stratum -C $ws run --as-of 2026-09-30   (last month's run, kept in $ws/stratum.db)"
"$stratum" -C "$ws" run --as-of 2026-09-30 | tail -1

echo
echo "== stratum -C $ws override add C00003 ...  (a pin kept in the store, with who and why)"
"$stratum" -C "$ws" --by demo override add C00003 --ladder pyramid --level key \
  --until 2026-12-31 --reason "board member's company"

echo
echo "== stratum -C $ws run        (pyramid, ABC, RFM, credit watch, lifecycle)"
"$stratum" -C "$ws" run

echo
echo "== stratum -C $ws diff       (who moved between the two runs)"
"$stratum" -C "$ws" diff --export "$ws/out/moves.csv" | sed -n '1,/^ladder abc/p' | sed '$d'

echo
echo "== stratum -C $ws history C00031     (ranked lower this month: held by the pyramid's hold)"
"$stratum" -C "$ws" history C00031 | sed -n '1,4p'

echo
echo "== stratum -C $ws export-run --out $ws/out/run.parquet   (the latest run's rows, for SQL tools)"
"$stratum" -C "$ws" export-run --out "$ws/out/run.parquet"

echo
echo "== stratum -C $ws --policy draft.toml simulate   (what if the key tier were 2%?)"
sed 's/top_share = 0.01/top_share = 0.02/' "$ws/stratum.toml" > "$ws/draft.toml"
"$stratum" -C "$ws" --policy draft.toml simulate 2>/dev/null | sed -n '1,/benefit cost/p'

for p in bank b2b property retail_members segments; do
  echo
  echo "== stratum -C $ws --policy policies/$p.toml run"
  "$stratum" -C "$ws" --policy "policies/$p.toml" run --out "$ws/out-$p" | sed -n '/^ladder/,$p'
done

echo
echo "== stratum -C $ws --policy policies/lifecycle.toml run   (lifecycle stages on BG/NBD + Gamma-Gamma; a July run first)"
"$stratum" -C "$ws" --policy policies/lifecycle.toml run --as-of 2026-07-31 --out "$ws/out-lifecycle-jul" >/dev/null
"$stratum" -C "$ws" --policy policies/lifecycle.toml run --out "$ws/out-lifecycle" | sed -n '/^lifetime models/,/Pareto/p'

echo
echo "== stratum -C $ws --policy policies/lifecycle.toml churn   (who is slipping away since July, by value at risk)"
"$stratum" -C "$ws" --policy policies/lifecycle.toml churn --limit 8 --out "$ws/out-lifecycle/churn.csv"

echo
echo "== stratum -C $ws explain C00042"
"$stratum" -C "$ws" explain C00042

echo
echo "== stratum -C $ws import-contacts data/contacts.csv   (the sales team's October: calls and visits, classes, intents)"
"$stratum" -C "$ws" --by demo import-contacts "$ws/data/contacts.csv"
echo
echo "== stratum -C $ws calls --rep rep01 --date 2026-11-02   (rep01's Monday: due by class cycle, overdue first, capped and quota'd)"
"$stratum" -C "$ws" calls --rep rep01 --date 2026-11-02
echo
echo "== stratum -C $ws funnel --from 2026-10-01 --to 2026-10-31   (the month by class: who entered, who left for where, how long they stayed)"
"$stratum" -C "$ws" funnel --from 2026-10-01 --to 2026-10-31
echo
echo "== stratum -C $ws lost --from 2026-10-01 --to 2026-10-31   (why refusals refused)"
"$stratum" -C "$ws" lost --from 2026-10-01 --to 2026-10-31
echo
echo "== stratum -C $ws escalate --date 2026-11-20   (follow-ups left overdue: the rep, then the team lead, then the pool)"
"$stratum" -C "$ws" escalate --date 2026-11-20 | head -12
echo
echo "== stratum -C $ws assign --apply   (key-account managers for the key customers, the best-rated for the most valuable)"
"$stratum" -C "$ws" --by demo assign --apply --out "$ws/assignments-km.csv"
head -6 "$ws/assignments-km.csv"

echo
echo "== stratum -C $ws serve   (the REST API: a service key, a tier lookup, the customer card, a redemption)"
if ! command -v curl >/dev/null 2>&1; then
  echo "installing curl for the API part of the demo (apt-get)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq curl; else sudo apt-get install -y -qq curl; fi
fi
"$stratum" -C "$ws" user add ivr --role service >/dev/null
key=$("$stratum" -C "$ws" key create ivr 2>/dev/null)
listen=127.0.0.1:${STRATUM_DEMO_PORT:-18080}
"$stratum" -C "$ws" serve --listen "$listen" 2>"$ws/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://$listen/health" >/dev/null && break; sleep 0.1; done
# A failed call (an error status) stops the demo with its body, instead of passing silently.
api() { curl -sS --fail-with-body -H "Authorization: Bearer $key" "$@"; echo; }
echo "\$ curl http://$listen/api/customers/C00042/levels"
api "http://$listen/api/customers/C00042/levels"
echo "\$ curl http://$listen/api/customers/C00003   (the card: levels, owner, tags, benefits with quota left)"
api "http://$listen/api/customers/C00003" | cut -c1-600
echo "\$ curl -X POST http://$listen/api/customers/C00003/redemptions -H 'Idempotency-Key: demo-1' -d '{\"benefit\":\"airport_lounge\"}'   (twice: the retry is not counted again)"
for _ in 1 2; do
  api -X POST -H 'content-type: application/json' -H 'Idempotency-Key: demo-1' \
    -d '{"benefit":"airport_lounge"}' "http://$listen/api/customers/C00003/redemptions"
done
echo "\$ curl -X POST http://$listen/api/queue/order -d '{\"waiting\": [...]}'   (by level with aging; the blacklisted C00082 last although first in)"
api -X POST -H 'content-type: application/json' \
  -d '{"waiting":[{"customer_id":"C00082","arrived_at":"2026-11-24T09:00:00+08:00"},{"customer_id":"C01999","arrived_at":"2026-11-24T09:02:00+08:00"},{"customer_id":"C00003","arrived_at":"2026-11-24T09:05:00+08:00"},{"customer_id":"C00042","arrived_at":"2026-11-24T09:01:00+08:00"}],"now":"2026-11-24T09:06:00+08:00"}' \
  "http://$listen/api/queue/order"
kill $server 2>/dev/null || true

echo
echo "== stratum -C $ws check policies/b2b.toml     (the source material's grades have holes)"
"$stratum" -C "$ws" check policies/b2b.toml

# A console login for the demo (the password is the demo's, printed on purpose).
echo "stratum-demo-1" | "$stratum" -C "$ws" user add demo --role admin --password-stdin >/dev/null
# A team lead and one of its reps, to see the console as the sales team does.
echo "stratum-lead-1" | "$stratum" -C "$ws" user add lead01 --role agent --password-stdin >/dev/null
echo "stratum-rep-1" | "$stratum" -C "$ws" user add rep01 --role agent --password-stdin >/dev/null
echo
echo "== the web console"
echo "stratum -C $ws serve      then open http://127.0.0.1:8080/ and sign in as demo / stratum-demo-1"
echo "  (the sales team: lead01 / stratum-lead-1 leads rep01 to rep04; rep01 / stratum-rep-1; the call list of 2026-11-02 at /calls?date=2026-11-02)"
