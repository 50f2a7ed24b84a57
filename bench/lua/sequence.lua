-- One request after another, each once: BENCH_ITEMS is a file of request lines, "<method> <path> [<form body>]";
-- run with one thread and one connection (wrk -t1 -c1), so that wrk's latencies are the server's answer plus
-- the loopback, without a Python client's own cost. After the last answer the thread stops and writes the file
-- BENCH_DONE (run.py's `until` then ends wrk, which would otherwise run its whole duration).
-- Code exchanges: every answer must be 200 and carry tokens (a code is single-use, so none is sent twice).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
items = lines_of("BENCH_ITEMS")
index = 1
local form = {["Content-Type"] = "application/x-www-form-urlencoded"}

-- request() only reads: wrk also calls it once before the run to check the script; response() moves on.
function request()
  local method, path, body = string.match(items[index], "^(%S+) (%S+) ?(.*)$")
  if method == "POST" then return wrk.format("POST", path, form, body) end
  return wrk.format(method, path)
end

function response(status, headers, body)
  if count(status, body) and string.sub(items[index], 1, 4) == "POST" and
      not string.find(body, '"access_token"', 1, true) then
    ok = ok - 1
    failed = failed + 1
    if first_failure == "" then first_failure = "200 without tokens" end
  end
  index = index + 1
  if items[index] == nil then
    local done = io.open(os.getenv("BENCH_DONE"), "w")
    done:write("done")
    done:close()
    wrk.thread:stop()
  end
end
