-- create_user.lua: wrk script for POST /api/v1/users with unique users.
--
-- Environment (read in every wrk thread):
--   ROSTER_TOKEN  API key sent as "Authorization: Bearer <token>" (required)
--   BENCH_LABEL   name printed in the result line (optional)
--
-- Usernames are unique across threads and across reruns against the same
-- database: "<first>.<last>-<run prefix><thread id>-<counter>", where the run
-- prefix is 6 random base-36 characters drawn from /dev/urandom per thread and
-- the counter is per thread. First and last names mix ASCII, Latin letters with
-- diacritics, Greek and Cyrillic, so the server's NFC/NFKC-casefold path does
-- real work. Emails are ASCII and carry the same unique suffix.
--
-- response() counts every status code; done() prints one line
-- "BENCH_RESULT {json}" with the totals, created/s (201s only) and a
-- "statuses" object, so non-201 answers (409, 422, 5xx...) are visible.

local FIRST = {
    "Anna", "Åsa", "Örjan", "Łukasz", "Jürgen", "Zoë", "José", "François", "Søren", "Ævar",
    "Γιώργος", "Ελένη", "Νίκος", "Иван", "Мария", "Ольга", "Dmitrij", "Ingrid", "Björn", "Małgorzata",
}
local LAST = {
    "Smith", "Öberg", "Åberg", "Müller", "Łęcki", "Nuñez", "Dvořák", "Straße", "Ødegård", "Zając",
    "Παπαδόπουλος", "Σωτηρίου", "Иванова", "Смирнов", "Kovačević", "Lindqvist", "Ümit", "Çelik", "Weiß", "Søndergaard",
}

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    table.insert(threads, thread)
end

local function random_bytes(n)
    local f = io.open("/dev/urandom", "rb")
    if not f then return nil end
    local s = f:read(n)
    f:close()
    return s
end

local prefix
local seq = 0
local headers
statuses = {}

function init(args)
    local token = os.getenv("ROSTER_TOKEN")
    if not token or token == "" then error("ROSTER_TOKEN not set") end
    local rb = random_bytes(10) or tostring(os.time() .. tid)
    local seed = os.time() + tid * 7919
    for i = 1, 4 do seed = seed + rb:byte(i) * 256 ^ (i - 1) end
    math.randomseed(seed % 2147483647)
    for _ = 1, 10 do math.random() end
    local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    local p = {}
    for i = 1, 6 do
        local b = rb:byte(4 + i) % 36 + 1
        p[i] = alphabet:sub(b, b)
    end
    prefix = table.concat(p)
    headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json",
    }
end

function request()
    seq = seq + 1
    local first = FIRST[math.random(#FIRST)]
    local last = LAST[math.random(#LAST)]
    local uniq = prefix .. tid .. "-" .. seq
    local body = '{"username":"' .. first .. "." .. last .. "-" .. uniq
        .. '","email":"c.' .. uniq .. '@bench.example.com"'
        .. ',"first_name":"' .. first .. '","last_name":"' .. last .. '"}'
    return wrk.format("POST", "/api/v1/users", headers, body)
end

function response(status, hdrs, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local merged = {}
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if type(s) == "table" then
            for code, n in pairs(s) do
                merged[code] = (merged[code] or 0) + n
            end
        end
    end
    local parts = {}
    local created = merged[201] or 0
    for code, n in pairs(merged) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(code), n)
    end
    table.sort(parts)
    local secs = summary.duration / 1e6
    local e = summary.errors
    print(string.format(
        'BENCH_RESULT {"label":"%s","kind":"create","threads":%d,"requests":%d,"duration_s":%.6f,'
            .. '"rps":%.1f,"created":%d,"created_per_s":%.1f,"non_201":%d,"statuses":{%s},'
            .. '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_min_us":%d,"lat_max_us":%d,'
            .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,'
            .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non_2xx":%d}',
        os.getenv("BENCH_LABEL") or "create", #threads, summary.requests, secs,
        summary.requests / secs, created, created / secs, summary.requests - created,
        table.concat(parts, ","), latency.mean, latency.stdev, latency.min, latency.max,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), e.connect, e.read, e.write, e.timeout, e.status))
end
