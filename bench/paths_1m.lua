-- paths_1m.lua: wrk script that replays a list of GET paths (bench/users_1m.sh).
--
-- Environment (read in every wrk thread):
--   ROSTER_TOKEN       API key sent as "Authorization: Bearer <token>" (required)
--   ROSTER_PATHS_FILE  file with one request path per line, e.g.
--                      /api/v1/users?department=Sales&sort=last_name&limit=50 (required)
--   BENCH_LABEL        name printed in the result line (optional)
--
-- Each thread pre-builds every request once and walks the list round-robin
-- from a random start, so the per-request Lua cost stays near zero (wrk shares
-- the 2 cores with the server). response() counts statuses; done() prints
-- one line "BENCH_RESULT {json}" in the format bench/tools.py record-wrk
-- parses (the same fields as get_user.lua, plus "statuses").

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    table.insert(threads, thread)
end

local reqs = {}
local nreqs = 0
local pos = 0
statuses = {}

function init(args)
    local token = os.getenv("ROSTER_TOKEN")
    local path = os.getenv("ROSTER_PATHS_FILE")
    if not token or token == "" then error("ROSTER_TOKEN not set") end
    if not path or path == "" then error("ROSTER_PATHS_FILE not set") end
    local headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Accept"] = "application/json",
    }
    local f = assert(io.open(path, "r"))
    for line in f:lines() do
        if line:sub(1, 1) == "/" then
            nreqs = nreqs + 1
            reqs[nreqs] = wrk.format("GET", line, headers)
        end
    end
    f:close()
    if nreqs == 0 then error("no paths in " .. path) end
    local seed = os.time() + tid * 7919
    local u = io.open("/dev/urandom", "rb")
    if u then
        local s = u:read(3)
        u:close()
        if s and #s == 3 then seed = seed + s:byte(1) + s:byte(2) * 256 + s:byte(3) * 65536 end
    end
    math.randomseed(seed)
    for _ = 1, 10 do math.random() end
    pos = math.random(nreqs) - 1
end

function request()
    pos = pos + 1
    if pos > nreqs then pos = 1 end
    return reqs[pos]
end

function response(status, hdrs, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local merged = {}
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if type(s) == "table" then
            for code, n in pairs(s) do merged[code] = (merged[code] or 0) + n end
        end
    end
    local parts = {}
    for code, n in pairs(merged) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(code), n)
    end
    table.sort(parts)
    local secs = summary.duration / 1e6
    local e = summary.errors
    print(string.format(
        'BENCH_RESULT {"label":"%s","kind":"paths","threads":%d,"requests":%d,"duration_s":%.6f,'
            .. '"rps":%.1f,"bytes":%d,"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_min_us":%d,'
            .. '"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,'
            .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non_2xx":%d,'
            .. '"statuses":{%s}}',
        os.getenv("BENCH_LABEL") or "paths", #threads, summary.requests, secs,
        summary.requests / secs, summary.bytes, latency.mean, latency.stdev, latency.min,
        latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), e.connect, e.read, e.write, e.timeout, e.status,
        table.concat(parts, ",")))
end
