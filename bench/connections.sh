#!/usr/bin/env bash
# Many keep-alive connections at once (issue "Hold under attack and faults"): wrk holds 500, then 1,000
# connections open against ListItems (100 items) for DURATION each and reports socket errors, timeouts and p99.
# wrk connects from one address, so the per-client cap is lifted for this run (--max-connections-per-client).
# Usage: bench/connections.sh [PYTHON]   (DURATION=10s by default; needs wrk from Debian)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
py=${1:-python3}
export DURATION=${DURATION:-10s} BENCH_AUTH=${BENCH_AUTH:-admin:password}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
trap 'kill $server_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$py" "$root/statusthing.py" --api-addr "127.0.0.1:$port" --db "$tmp/bench.db" --max-connections 2000 \
  --max-connections-per-client 2000 >"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q '"event": "start"' "$tmp/server.log" 2>/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
python3 "$here/seed.py" "$base" seed >/dev/null
printf '%-22s %10s %8s %8s %7s %14s\n' case req/s p50_ms p99_ms non2xx socket_errors
for conns in 500 1000; do
  BENCH_CASE="ListItems_c$conns" BENCH_METHOD=POST BENCH_BODY='{}' \
    wrk -t2 -c"$conns" -d"$DURATION" --timeout 5s -s "$here/bench.lua" "$base/statusthing.v1.ItemsService/ListItems" \
    | awk '/^RESULT/ {printf "%-22s %10s %8s %8s %7s %14s\n", $2, $3, $4, $5, $6, $7}'
done
echo "peak_rss_kb $(awk '/^VmHWM:/{print $2}' /proc/$server_pid/status); threads now $(ls /proc/$server_pid/task | wc -l)"
