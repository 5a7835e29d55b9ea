#!/usr/bin/env bash
# The benchmark of issue 2, in one run on this machine:
#   1. statusthing.py on a fresh temporary database, seeded with 100 items (one note each);
#   2. api-bench.sh against it at 32 connections (ListItems plain and extended, GetItem, AddItem, UpdateItem,
#      and GET / , the public page);
#   3. the public page of the 100 items; ListItems at 64 connections (expect 0 errors);
#   4. ceiling_server.py (bare http.server) answering the very bytes of ListItems(100), at 32 connections;
#   5. gRPC ListItems from bench/grpc_bench.py, a separate process.
# Usage: bench/run.sh [PYTHON]   (DURATION=10s by default; needs wrk from Debian)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
py=${1:-python3}
export DURATION=${DURATION:-10s}
export BENCH_AUTH=${BENCH_AUTH:-admin:password}  # a fresh database's default login; writes need it
tmp=$(mktemp -d)
trap 'kill $server_pid $ceiling_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
"$py" "$root/statusthing.py" --api-addr "127.0.0.1:$port" --db "$tmp/bench.db" >"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q '"event": "start"' "$tmp/server.log" 2>/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"

echo "## statusthing.py, 32 connections"
SERVER_PID=$server_pid KEEP_ADDED=0 "$here/api-bench.sh" "$base" /

wrk_case() { # label url conns body [method]
  BENCH_CASE=$1 BENCH_METHOD=${5:-POST} BENCH_BODY=$4 wrk -t2 -c"$3" -d"$DURATION" --timeout 10s -s "$here/bench.lua" "$2" \
    | awk '/^RESULT/ {printf "%-20s %10s %8s %8s %7s %10s  (socket errors %s)\n", $2, $3, $4, $5, $6, $8, $7}'
}
# api-bench.sh's "page" case runs while the AddItem case's items are still there (thousands of them); this one
# measures the page of the 100 seeded items, after the clean-up.
echo "## statusthing.py public page with the 100 items, 32 connections"
wrk_case page_100_items "$base/" 32 '' GET

echo "## statusthing.py ListItems, 64 connections"
wrk_case ListItems_c64 "$base/statusthing.v1.ItemsService/ListItems" 64 '{}'

echo "## ceiling_server.py with the same ListItems bytes, 32 connections"
curl -s -d '{}' -H 'content-type: application/json' "$base/statusthing.v1.ItemsService/ListItems" >"$tmp/list.json"
echo "response bytes: $(wc -c <"$tmp/list.json")"
cport=$(free_port)
"$py" "$here/ceiling_server.py" "$cport" "$tmp/list.json" &
ceiling_pid=$!
sleep 0.5
wrk_case ceiling_ListItems "http://127.0.0.1:$cport/statusthing.v1.ItemsService/ListItems" 32 '{}'

echo "## gRPC ListItems from a separate process, 8 threads"
"$py" "$here/grpc_bench.py" "127.0.0.1:$port" "${DURATION%s}" 8
