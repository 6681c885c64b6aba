-- GET /kv/PREFIX<n> for n cycling through 1..KEYS, keys a previous put_unique run stored.
local prefix = os.getenv("KEY_PREFIX") or "key"
local keys = tonumber(os.getenv("KEYS") or "1000")
local counter = 0
request = function()
  counter = counter % keys + 1
  return wrk.format("GET", "/kv/" .. prefix .. counter)
end
