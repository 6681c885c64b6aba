-- GET /kv/PREFIX<n> for n cycling through 2..KEYS+1, keys a previous put_unique run stored
-- (wrk calls request() once before sending, so put_unique never sends its first key).
local prefix = os.getenv("KEY_PREFIX") or "key"
local keys = tonumber(os.getenv("KEYS") or "1000")
local counter = 0
request = function()
  counter = counter % keys + 2
  return wrk.format("GET", "/kv/" .. prefix .. counter)
end
