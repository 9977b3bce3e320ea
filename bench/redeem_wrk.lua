-- wrk script for bench/redeem.py: POST pre-signed vouchers to /redeem, each exactly once.
--   wrk -t T -c C -d SECONDS -s bench/redeem_wrk.lua URL -- BODIES_FILE T QUOTA_PER_THREAD
-- BODIES_FILE holds one JSON request body a line; thread i sends lines i, i+T, i+2T, ...
-- (a voucher nonce is accepted once, so no body is sent twice) and stops after QUOTA
-- responses; the file must hold T * (QUOTA + connections per thread) lines.
-- done() prints one line: "WRK_RESULT {json}" with latencies in microseconds; "wall_us" runs
-- from the first request sent to the last response received (wrk's own duration is the -d
-- time even when every thread stopped early; the bench sends SIGINT once each thread printed
-- WRK_THREAD_DONE, which ends that sleep).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gm_timespec;
int clock_gettime(int clk_id, gm_timespec *tp);
]]
local ts = ffi.new("gm_timespec")

local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC: one clock for every thread
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  quota = tonumber(args[3])
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      reqs[#reqs + 1] = wrk.format("POST", "/redeem", {["Content-Type"] = "application/json"}, line)
    end
    i = i + 1
  end
  sent, received, non_200 = 0, 0, 0
end

function request()
  if sent == 0 and not first_us then first_us = now_us() end
  sent = sent + 1
  if sent > #reqs then
    overrun = true
    sent = 1  -- replayed vouchers are refused (409) and counted as errors
  end
  return reqs[sent]
end

function response(status, headers, body)
  received = received + 1
  last_us = now_us()
  if status ~= 200 then non_200 = non_200 + 1 end
  if received == quota then
    wrk.thread:stop()
    io.write("WRK_THREAD_DONE\n")  -- bench/redeem.py interrupts wrk's -d sleep once every thread is done
    io.flush()
  end
end

function done(summary, latency, requests)
  local received_total, non_200_total, overruns = 0, 0, 0
  local first, last = math.huge, 0
  for _, t in ipairs(threads) do
    first = math.min(first, t:get("first_us") or math.huge)
    last = math.max(last, t:get("last_us") or 0)
    received_total = received_total + t:get("received")
    non_200_total = non_200_total + t:get("non_200")
    if t:get("overrun") then overruns = overruns + 1 end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"responses":%d,"non_200":%d,"duration_us":%d,"wall_us":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"overrun_threads":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, received_total, non_200_total, summary.duration, last - first, e.connect, e.read, e.write, e.timeout,
    overruns, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
