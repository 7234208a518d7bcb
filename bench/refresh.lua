-- wrk script: POST grant_type=refresh_token with refresh-token rotation, authenticated with
-- HTTP Basic (BASIC_AUTH = base64(id:secret)). Every refresh token is single use; each answer
-- carries the next one.
--   TOKENS_FILE  one refresh token per line
--   WRK_THREADS  the -t given to wrk: thread i takes the lines with index % WRK_THREADS == i,
--                so no two threads ever hold the same chain
--   TOKENS_OUT   optional: at the end, the chain heads still queued are written there (one per
--                line), for a next run; chains whose request was in flight when wrk stopped are lost
-- Each thread keeps a FIFO of usable tokens: request() takes the oldest, response() puts the new
-- one back. wrk answers in order per connection but says nothing of which connection, and a FIFO
-- needs no such identity. The pool of a thread must be larger than its connections.
local auth = os.getenv("BASIC_AUTH")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")

local counter = 0
local threads = {}

setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- queue[head .. tail - 1] are the usable tokens of this thread.
queue = {}
local head, tail = 1, 1
local last = nil
failures = 0
queue_empty = 0

init = function(args)
  local index = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if #line > 0 then
      if index % nthreads == id then
        queue[tail] = line
        tail = tail + 1
      end
      index = index + 1
    end
  end
  if tail == head then
    io.stderr:write("thread " .. id .. ": no refresh tokens for this thread\n")
  end
end

local function pop()
  if head < tail then
    local token = queue[head]
    queue[head] = nil
    head = head + 1
    last = token
    return token
  end
  -- Dry: earlier answers failed (or the pool is too small). Reuse the last token so the run goes
  -- on; the request is counted as a failure here (its answer may be counted again, the sum is
  -- an upper bound, and any non-zero figure makes the run meaningless anyway).
  queue_empty = queue_empty + 1
  failures = failures + 1
  return last or ""
end

request = function()
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, "grant_type=refresh_token&refresh_token=" .. pop())
end

response = function(status, headers, body)
  local token = status == 200 and string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    queue[tail] = token
    tail = tail + 1
  else
    failures = failures + 1
    if failures <= 3 then io.stderr:write("unexpected answer: " .. status .. " " .. body .. "\n") end
  end
end

done = function(summary, latency, requests)
  local total, dry = 0, 0
  local out = os.getenv("TOKENS_OUT")
  local file = out and #out > 0 and io.open(out, "w")
  for _, thread in ipairs(threads) do
    total = total + (thread:get("failures") or 0)
    dry = dry + (thread:get("queue_empty") or 0)
    if file then
      for _, token in pairs(thread:get("queue") or {}) do file:write(token, "\n") end
    end
  end
  if file then file:close() end
  if dry > 0 then io.stderr:write("queue ran dry " .. dry .. " times (counted in not_active)\n") end
  io.write("not_active: " .. total .. "\n")
end
