-- wrk script: realistic pixel traffic for the edge (docs/performance.md).
--
--   wrk -s scripts/bench/realistic.lua http://127.0.0.1:18080 -- requests.tsv
--
-- requests.tsv comes from `psbench gen` (test/bench): one request per line,
-- tab-separated: path, User-Agent, X-Forwarded-For, Referer,
-- Accept-Language, Sec-CH-UA, Sec-CH-UA-Mobile, Sec-CH-UA-Platform, DNT.
-- Every request is formatted once in init(); request() only hands out the
-- next one, so the script costs wrk almost nothing per request. Headers
-- given with -H (e.g. 'Connection: close') are added to every request.
-- done() prints one machine-readable line: WRK_RESULT rps=… p50_us=… …

local reqs = {}
local n = 0
local idx = 0
local thread_no = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

local function split_tabs(line)
  local out = {}
  local start = 1
  while true do
    local i = string.find(line, "\t", start, true)
    if not i then
      table.insert(out, string.sub(line, start))
      return out
    end
    table.insert(out, string.sub(line, start, i - 1))
    start = i + 1
  end
end

local names = { nil, "User-Agent", "X-Forwarded-For", "Referer", "Accept-Language",
  "Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform", "DNT" }

function init(args)
  local file = args[1] or "requests.tsv"
  local f = assert(io.open(file, "r"), "cannot open " .. file)
  for line in f:lines() do
    local fields = split_tabs(line)
    local h = {}
    for k, v in pairs(wrk.headers) do h[k] = v end
    h["Accept"] = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
    h["Accept-Encoding"] = "gzip, deflate, br, zstd"
    h["Sec-Fetch-Dest"] = "image"
    h["Sec-Fetch-Mode"] = "no-cors"
    h["Sec-Fetch-Site"] = "cross-site"
    for i = 2, #names do
      local v = fields[i]
      if v ~= nil and v ~= "" then h[names[i]] = v end
    end
    n = n + 1
    reqs[n] = wrk.format("GET", fields[1], h)
  end
  f:close()
  -- Threads start at different places in the list.
  idx = ((thread_no or 0) * 7919) % n
end

function request()
  idx = idx + 1
  if idx > n then idx = 1 end
  return reqs[idx]
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d seconds=%.2f rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect_err=%d read_err=%d write_err=%d timeout_err=%d status_err=%d\n",
    summary.requests, s, summary.requests / s,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
