-- Reading submissions: BENCH_ITEMS is a file of "<path> <access token> <json body>" lines, one per meter;
-- one connection per thread (wrk -t N -c N), thread i of N submits items i, i+N, i+2N… once each and stops
-- after its last answer (a meter takes one reading per period, so no item is sent twice).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
expected = 201
items = lines_of("BENCH_ITEMS")
local thread_count = 0

local base_setup = setup
function setup(thread)
  base_setup(thread)
  thread_count = thread_count + 1
  thread:set("index", thread_count)
end

function init(args)
  step = tonumber(os.getenv("BENCH_THREADS"))
end

-- request() only reads: wrk also calls it once before the run to check the script (a thread's first item
-- would be lost if it moved on here); response() moves on.
function request()
  local path, token, body = string.match(items[index], "^(%S+) (%S+) (.*)$")
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token,
                                   ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  count(status, body)
  index = index + step
  if items[index] == nil then wrk.thread:stop() end
end
