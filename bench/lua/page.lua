-- Pages of logged-in people: one connection per thread (wrk -t N -c N), each thread with its own person's
-- session cookie (BENCH_COOKIES: a file, one Cookie header value per line). An answer counts as a success only
-- with the expected status and, when BENCH_MARK is set, that text in its body (a page that rendered, not an
-- error page or a login form).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
one_line_per_thread("BENCH_COOKIES", "cookie")

function init(args)
  mark = os.getenv("BENCH_MARK") or ""
  request_bytes = wrk.format("GET", wrk.path, {["Cookie"] = cookie})
end

function request()
  return request_bytes
end

function response(status, headers, body)
  if mark ~= "" and status == expected and not string.find(body or "", mark, 1, true) then
    status = 0 -- a 200 without the page's mark: counted as a failure
  end
  count(status, body)
end
