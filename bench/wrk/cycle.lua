-- wrk script: POST pre-rendered JSON bodies, one per line of a file, cycling through them.
-- usage: wrk ... -s cycle.lua URL -- BODIES_FILE [BEARER_TOKEN]
-- Every request is formatted once in init(); request() only hands the next one out.
-- done() prints one machine-readable line, prefixed WRKJSON, that bench/loopback.py parses.

local requests = {}
local n = 0
local i = 0

function init(args)
  local path = args[1]
  local token = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", wrk.path, nil, line)
    end
  end
  if n == 0 then
    error("no bodies in " .. path)
  end
  -- threads start at different offsets so they do not send the same bodies in lockstep
  i = math.random(0, n - 1)
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
