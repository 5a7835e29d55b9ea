-- wrk script for notify.py: UpdateItem over BENCH_ITEMS (comma-separated ids), each request moving the next item
-- to the other of two statuses (BENCH_STATUSES: "up,down"), so every write is a status change with its events.
-- Prints the RESULT line of bench.lua.
local items, statuses = {}, {}
for id in string.gmatch(os.getenv("BENCH_ITEMS"), "[^,]+") do items[#items + 1] = id end
for id in string.gmatch(os.getenv("BENCH_STATUSES"), "[^,]+") do statuses[#statuses + 1] = id end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH_HEADER")

local n = 0
function request()
  n = n + 1
  -- (threads take alternate items, so two never write the same item at once)
  local index = ((n - 1) * 2 + (tid - 1)) % #items + 1
  local round = math.floor(((n - 1) * 2 + (tid - 1)) / #items)
  local body = string.format('{"itemId":"%s","statusId":"%s"}', items[index], statuses[round % 2 + 1])
  return wrk.format(nil, "/statusthing.v1.ItemsService/UpdateItem", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %s %.1f %.2f %.2f %d %d %.1f\n",
    os.getenv("BENCH_CASE") or "case",
    summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout,
    (summary.requests - e.status) / secs))
end
