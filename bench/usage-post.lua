-- wrk script for bench/run.pl: POST /api/v1/test/:id/usage with a fresh
-- timestamp every time, so no request is a repeat (a repeat stores nothing).
--
-- Environment: BENCH_TOKEN (bearer token), BENCH_TESTS (comma-separated
-- test ids, all the token's own), BENCH_BASE_US (first timestamp, in
-- microseconds since the epoch), BENCH_THREADS (wrk's -t), BENCH_MEM (1:
-- every sample with a mem_usage, as a client of SPEC 6.3 sends it; else
-- none, as a version-1 client).
--
-- Timestamps are globally unique and increase: thread k of n uses
-- base + k, base + k + n, base + k + 2n, ... (microseconds), and each request
-- goes to the next test id in turn, so every test receives its samples in
-- order (the usual, cheap path of usage_add) and every (test, timestamp) is
-- new. Each thread posts to its own share of the tests (ids k, k + n, ...),
-- so two threads never race on one test and reorder its samples.

local counter = 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local base = tonumber(os.getenv("BENCH_BASE_US"))
local token = os.getenv("BENCH_TOKEN")
local with_mem = os.getenv("BENCH_MEM") == "1"
local tests = {}
for id in string.gmatch(os.getenv("BENCH_TESTS") or "", "%d+") do
	tests[#tests + 1] = id
end

-- setup() runs in the main Lua state; thread:set() makes `tid` a global of
-- each thread's own state.
local next_tid = 0
function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
end

local function rfc3339(us)
	local s = math.floor(us / 1000000)
	local frac = us - s * 1000000
	return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%06dZ", frac)
end

local headers = {
	["Authorization"] = "Bearer " .. token,
	["Content-Type"] = "application/json",
}

local mine
function request()
	if not mine then
		mine = {}
		for i = (tid or 0) + 1, #tests, nthreads do
			mine[#mine + 1] = tests[i]
		end
		if #mine == 0 then mine = tests end
	end
	local n = counter
	counter = counter + 1
	local test = mine[(n % #mine) + 1]
	local us = base + (n * nthreads + (tid or 0))
	local cpu = (n % 100) / 100
	local body
	if with_mem then
		body = string.format('{"cpu_usage":%.2f,"mem_usage":%.6f,"timestamp":"%s"}',
			cpu, 0.3 + (n % 97) / 1000, rfc3339(us))
	else
		body = string.format('{"cpu_usage":%.2f,"timestamp":"%s"}', cpu, rfc3339(us))
	end
	return wrk.format("POST", "/api/v1/test/" .. test .. "/usage", headers, body)
end
