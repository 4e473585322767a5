--[[
  Reads the version and snapshot of several actors of one shard at once.

    Input:
      KEYS[1..n] actor hashes (v = version, s = snapshot)

    Output:
      2n values: version and snapshot of each actor in KEYS order,
      both nil for an actor that does not exist
]]
local rcall = redis.call

local values = {}
for i = 1, #KEYS do
  local actor = rcall("HMGET", KEYS[i], "v", "s")
  values[2 * i - 1] = actor[1]
  values[2 * i] = actor[2]
end
return values
