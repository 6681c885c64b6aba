-- PUT /kv/PREFIX<n> with a 16-byte value, n counting up per connection-thread: every write
-- is a new key, as in shared/bench/put_unique.lua. PREFIX comes from the environment (KEY_PREFIX).
local prefix = os.getenv("KEY_PREFIX") or "key"
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/kv/" .. prefix .. counter, nil, "0123456789abcdef")
end
