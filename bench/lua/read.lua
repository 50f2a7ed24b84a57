-- An authorised read: GET wrk.path with the bearer token of BENCH_TOKEN (a file holding one access token).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local token = lines_of("BENCH_TOKEN")[1]

function init(args)
  request_bytes = wrk.format("GET", wrk.path, {["Authorization"] = "Bearer " .. token})
end

function request()
  return request_bytes
end

function response(status, headers, body)
  count(status, body)
end
