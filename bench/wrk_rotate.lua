-- wrk script: send the requests listed in a file, in turn (one per line, tab-separated:
-- method, path, cookie, body), then print one JSON line with the figures the benchmark reads.
local prepared = {}
local next_index = 0

function init(args)
  for line in io.lines(args[1]) do
    local method, path, cookie, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    -- A new connection per request, as nginx talks to gunicorn by default (HTTP/1.0 to the
    -- upstream): kept-alive connections would stay with whichever worker accepted them first.
    local headers = { ["Cookie"] = cookie, ["Connection"] = "close" }
    if method == "POST" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
    else
      body = nil
    end
    table.insert(prepared, wrk.format(method, path, headers, body))
  end
  next_index = math.random(#prepared) - 1
end

function request()
  next_index = next_index % #prepared + 1
  return prepared[next_index]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, ' ..
    '"non_2xx_3xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
