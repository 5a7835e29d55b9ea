-- wrk script: a read mix, round robin over BENCH_MIX (lines "METHOD PATH [BODY]" separated by "|").
-- done() prints:  RESULT <case> <req/s> <p50_ms> <p99_ms> <non2xx> <socket_errors>
local lines = {}
for entry in string.gmatch(os.getenv("BENCH_MIX") or "GET /", "[^|]+") do table.insert(lines, entry) end
local requests = {}
local index = 0

function init(args)
  for _, entry in ipairs(lines) do
    local method, path, body = string.match(entry, "^(%S+) (%S+) ?(.*)$")
    local headers = {}
    if method == "POST" then headers["Content-Type"] = "application/json" end
    table.insert(requests, wrk.format(method, path, headers, body ~= "" and body or nil))
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %s %.1f %.2f %.2f %d %d\n", os.getenv("BENCH_CASE") or "case",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
