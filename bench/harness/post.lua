-- wrk script of bench/harness.mjs: POSTs one body with the given headers and, when done, prints
-- one line `BENCH_JSON {...}`: requests, duration (µs), bytes, errors by kind, and the latency
-- percentiles in µs (p50, p90, p99, p99.9, max).
-- Environment: BENCH_BODY (file holding the request body), BENCH_HEADERS (header lines "K: V"
-- separated by newlines; Content-Type defaults to application/json).
local body_file = os.getenv("BENCH_BODY")
local f = assert(io.open(body_file, "rb"), "cannot read BENCH_BODY")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local k, v = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
  if k then
    wrk.headers[k] = v
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
