-- wrk script: POST /introspect with a random token from TOKENS_FILE, authenticated with
-- HTTP Basic (BASIC_AUTH = base64(id:secret)). Used by examples/bench.rs.
local tokens = {}
local auth = os.getenv("BASIC_AUTH")

init = function(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  math.randomseed(os.time() + #tostring({}))
end

request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, "token=" .. token)
end

-- Any answer but an active token would make the figures meaningless: count them.
failures = 0
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"active":true', 1, true) then
    failures = failures + 1
    if failures <= 3 then io.stderr:write("unexpected answer: " .. status .. " " .. body .. "\n") end
  end
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("failures") or 0)
  end
  io.write("not_active: " .. total .. "\n")
end
