-- wrk script for notify.py: bench.lua (auth, the RESULT line), plus UpdateItem over BENCH_ITEMS (comma-separated
-- ids), each request moving the next item to the other of two statuses (BENCH_STATUSES: "down,up"), so every
-- write is a status change with its events.
dofile(os.getenv("BENCH_DIR") .. "/bench.lua")

local items, statuses = {}, {}
for id in string.gmatch(os.getenv("BENCH_ITEMS"), "[^,]+") do items[#items + 1] = id end
for id in string.gmatch(os.getenv("BENCH_STATUSES"), "[^,]+") do statuses[#statuses + 1] = id end

local n = 0
function request()
  n = n + 1
  -- (threads take alternate items, so two never write the same item at once)
  local position = (n - 1) * 2 + (tid - 1)
  local body = string.format('{"itemId":"%s","statusId":"%s"}', items[position % #items + 1],
                             statuses[math.floor(position / #items) % 2 + 1])
  return wrk.format("POST", "/statusthing.v1.ItemsService/UpdateItem", nil, body)
end
