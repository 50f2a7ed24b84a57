-- Refresh-token chains: one connection per thread (wrk -t N -c N), each thread carries its own chain: it
-- presents its refresh token, reads the rotated one from the answer and presents that next. A reused or
-- refused token ends the chain in failures, which run.py reports as a failed run.
-- BENCH_TOKENS: a file of refresh tokens, one per chain; BENCH_BODY: the form fields besides the token;
-- BENCH_AUTH: an Authorization header value (a confidential client's Basic credentials) or empty.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
one_line_per_thread("BENCH_TOKENS", "token")

function init(args)
  fields = os.getenv("BENCH_BODY") or "grant_type=refresh_token"
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local auth = os.getenv("BENCH_AUTH") or ""
  if auth ~= "" then headers["Authorization"] = auth end
end

function request()
  return wrk.format("POST", wrk.path, headers, fields .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  if count(status, body) then
    token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  end
end
