-- Shared by the bench's wrk scripts: count every response that is not the expected status (wrk itself counts
-- only non-2xx/3xx) and print the totals of all threads at the end, on one line run.py parses:
--   BENCH ok=<n> failed=<n> first_failure=<status>
-- A script sets `expected` (default 200) and may set `on_success(body)` to read the answer.
-- BENCH_PAUSE_MS (optional): each connection waits a random 0 to 2 x that many milliseconds after an answer
-- before its next request, so a run offers a set load (about connections / (latency + pause) per second)
-- instead of as many requests as the servers can take.
local threads = {}
expected = expected or 200
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "0")
if pause > 0 then
  -- each thread has its own Lua state: seed it apart (a fresh table's address differs per state)
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003))
  function delay()
    return math.random(0, 2 * pause)
  end
end

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

-- Give each thread (wrk -t N -c N: one connection each) its own line of the file named by `variable`, as the
-- global `name` in that thread's Lua state (a refresh chain's first token, a person's session cookie).
function one_line_per_thread(variable, name)
  local items, handed = lines_of(variable), 0
  local base_setup = setup
  function setup(thread)
    base_setup(thread)
    handed = handed + 1
    thread:set(name, items[handed])
  end
end
