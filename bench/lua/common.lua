-- Shared by the bench's wrk scripts: count every response that is not the expected status (wrk itself counts
-- only non-2xx/3xx) and print the totals of all threads at the end, on one line run.py parses:
--   BENCH ok=<n> failed=<n> first_failure=<status>
-- A script sets `expected` (default 200) and may set `on_success(body)` to read the answer.
local threads = {}
expected = expected or 200

function setup(thread)
  thread:set("ok", 0)
  thread:set("failed", 0)
  thread:set("first_failure", "")
  table.insert(threads, thread)
end

function count(status, body)
  if status == expected then
    ok = ok + 1
    return true
  end
  failed = failed + 1
  if first_failure == "" then
    first_failure = tostring(status) .. " " .. string.sub(body or "", 1, 160):gsub("%s", " ")
  end
  return false
end

function done(summary, latency, requests)
  local ok, failed, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("ok")
    failed = failed + thread:get("failed")
    if first == "" then first = thread:get("first_failure") end
  end
  io.write(string.format("BENCH ok=%d failed=%d first_failure=%s\n", ok, failed, first))
end

-- Lines of a file named by an environment variable (tokens, paths), one item a line.
function lines_of(variable)
  local items = {}
  for line in io.lines(os.getenv(variable)) do table.insert(items, line) end
  return items
end
