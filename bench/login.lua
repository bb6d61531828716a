-- login.lua: wrk script for POST /api/v1/auth/login, cycling through users.
--
-- Environment (read in every wrk thread):
--   ROSTER_LOGINS_FILE  file with one "username<TAB>password" per line (required);
--                       bench/login.sh writes it while creating the users
--   BENCH_LABEL         name printed in the result line (optional)
--
-- Every request signs a different user in (thread t starts at its own offset
-- and walks the list in order), without a cookie: each 200 makes a new session,
-- and the server's per-user session cap ends the oldest one, so the sessions
-- table stays bounded. The bodies are built once in init(); request() only
-- hands out the next one.
--
-- response() counts every status and keeps the first non-200 answer (status
-- and up to 300 bytes of body) so a broken endpoint shows what it said; done()
-- prints one line "BENCH_RESULT {json}" with sign-ins/s (200s only), the
-- statuses, latency percentiles in microseconds and socket errors.

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
first_error = ""

function init(args)
    local path = os.getenv("ROSTER_LOGINS_FILE")
    if not path or path == "" then error("ROSTER_LOGINS_FILE not set") end
    local headers = {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json",
    }
    local f = assert(io.open(path, "r"))
    for line in f:lines() do
        local user, pass = line:match("^([^\t]+)\t([^\t]+)$")
        if user then
            -- Usernames and passwords are ASCII without quotes or backslashes
            -- (login.sh makes them so): no JSON escaping needed.
            local body = '{"username":"' .. user .. '","password":"' .. pass .. '"}'
            nreqs = nreqs + 1
            reqs[nreqs] = wrk.format("POST", "/api/v1/auth/login", headers, body)
        end
    end
    f:close()
    if nreqs == 0 then error("no username<TAB>password lines in " .. path) end
    -- Spread the threads over the list (golden-ratio offsets) so two threads
    -- rarely sign the same user in at the same moment.
    pos = math.floor((tid - 1) * nreqs * 0.618) % nreqs
end

function request()
    pos = pos + 1
    if pos > nreqs then pos = 1 end
    return reqs[pos]
end

function response(status, hdrs, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status ~= 200 and first_error == "" then
        local b = (body or ""):sub(1, 300):gsub('[%c"\\]', " ")
        first_error = tostring(status) .. " " .. b
    end
end

function done(summary, latency, requests)
    local merged = {}
    local sample = ""
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if type(s) == "table" then
            for code, n in pairs(s) do
                merged[code] = (merged[code] or 0) + n
            end
        end
        local fe = t:get("first_error")
        if sample == "" and type(fe) == "string" then sample = fe end
    end
    local parts = {}
    local ok = merged[200] or 0
    local answered = 0
    for code, n in pairs(merged) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(code), n)
        answered = answered + n
    end
    table.sort(parts)
    local secs = summary.duration / 1e6
    local e = summary.errors
    print(string.format(
        'BENCH_RESULT {"label":"%s","kind":"login","threads":%d,"requests":%d,"duration_s":%.6f,'
            .. '"rps":%.2f,"ok":%d,"ok_per_s":%.2f,"non_200":%d,"statuses":{%s},"first_error":"%s",'
            .. '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_min_us":%d,"lat_max_us":%d,'
            .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,'
            .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non_2xx":%d}',
        os.getenv("BENCH_LABEL") or "login", #threads, summary.requests, secs,
        summary.requests / secs, ok, ok / secs, answered - ok, table.concat(parts, ","), sample,
        latency.mean, latency.stdev, latency.min, latency.max,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), e.connect, e.read, e.write, e.timeout, e.status))
end
