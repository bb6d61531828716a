-- get_user.lua: wrk script for GET /api/v1/users/{id} with random ids.
--
-- Environment (read in every wrk thread):
--   ROSTER_TOKEN     API key sent as "Authorization: Bearer <token>" (required)
--   ROSTER_IDS_FILE  file with one existing user id per line (required)
--   BENCH_LABEL      name printed in the result line (optional)
--
-- Each thread pre-builds a ring of requests for ids drawn at random (uniform
-- over the ids file) so the per-request Lua cost stays close to zero: wrk runs
-- on the same 2 cores as the server and every cycle it spends is a cycle the
-- server does not get.
--
-- done() prints one line "BENCH_RESULT {json}" that bench/tools.py parses:
-- requests, duration, req/s, latency percentiles in microseconds, socket errors,
-- and non-2xx/3xx responses (wrk's "status" errors).

local RING = 32768

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    table.insert(threads, thread)
end

local function seed_random(extra)
    local seed = os.time() + (extra or 0) * 7919
    local f = io.open("/dev/urandom", "rb")
    if f then
        local s = f:read(4)
        f:close()
        if s and #s == 4 then
            seed = seed + s:byte(1) + s:byte(2) * 256 + s:byte(3) * 65536 + (s:byte(4) % 64) * 16777216
        end
    end
    math.randomseed(seed)
    -- LuaJIT's first few numbers after seeding are poorly mixed.
    for _ = 1, 10 do math.random() end
end

local reqs = {}
local nreqs = 0
local pos = 0

function init(args)
    seed_random(tid)
    local token = os.getenv("ROSTER_TOKEN")
    local path = os.getenv("ROSTER_IDS_FILE")
    if not token or token == "" then error("ROSTER_TOKEN not set") end
    if not path or path == "" then error("ROSTER_IDS_FILE not set") end
    local ids = {}
    local f = assert(io.open(path, "r"))
    for line in f:lines() do
        if line:match("^%d+$") then ids[#ids + 1] = line end
    end
    f:close()
    if #ids == 0 then error("no ids in " .. path) end
    local headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Accept"] = "application/json",
    }
    for i = 1, RING do
        reqs[i] = wrk.format("GET", "/api/v1/users/" .. ids[math.random(#ids)], headers)
    end
    nreqs = RING
    pos = math.random(RING) - 1
end

function request()
    pos = pos + 1
    if pos > nreqs then pos = 1 end
    return reqs[pos]
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    print(string.format(
        'BENCH_RESULT {"label":"%s","kind":"get","threads":%d,"requests":%d,"duration_s":%.6f,'
            .. '"rps":%.1f,"bytes":%d,"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_min_us":%d,'
            .. '"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,'
            .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non_2xx":%d}',
        os.getenv("BENCH_LABEL") or "get", #threads, summary.requests, secs,
        summary.requests / secs, summary.bytes, latency.mean, latency.stdev, latency.min,
        latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), e.connect, e.read, e.write, e.timeout, e.status))
end
