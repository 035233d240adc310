#!/usr/bin/env bash
# Preliminary lock-mode comparison on one hot code (claim + release per transaction),
# used to choose claim()'s default lock mode. The full benchmark is `make bench` (issue 4).
#   DATABASE_URL=postgresql://... bench/lock_modes_pgbench.sh [seconds] [clients...]
# Needs pgcapacity installed in DATABASE_URL. pgbench stops a client at its first error,
# so for nowait the number of aborted clients is printed: its tps is then not comparable.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL}"
seconds=${1:-8}; shift || true
clients=${*:-8 32 64}
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
psql -X -q "$DATABASE_URL" -c "SELECT capacity.upsert_codes('[{\"code\":\"BENCH-HOT\",\"max_uses\":100000000}]')" >/dev/null
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
printf '%-9s %7s %9s %12s %8s\n' mode clients tps latency_ms aborted
for c in $clients; do
  for mode in wait advisory nowait; do
    cat > "$dir/$mode.sql" <<SQL
\set h random(1, 1000000000)
SELECT claim_id FROM capacity.claim('BENCH-HOT', 'h' || :h, '$mode') \gset
SELECT released FROM capacity.release(:claim_id);
SQL
    out=$("$pgbench" -n -f "$dir/$mode.sql" -c "$c" -j 4 -T "$seconds" "$DATABASE_URL" 2>&1 || true)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
    lat=$(sed -n 's/^latency average = \([0-9.]*\).*/\1/p' <<<"$out")
    printf '%-9s %7s %9.0f %12s %8s\n' "$mode" "$c" "${tps:-0}" "${lat:--}" "$(grep -c 'aborted' <<<"$out" || true)"
  done
done
psql -X -q "$DATABASE_URL" -c "SELECT capacity.revoke_code('BENCH-HOT')" >/dev/null
