--[[
  Reads the version, snapshot and constants of several actors of one shard at once.

    Input:
      KEYS[1..n] actor hashes (v = version, s = snapshot, c = constants)

    Output:
      3n values: version, snapshot and constants of each actor in KEYS order,
      all nil for an actor that does not exist; constants nil when none are stored
]]
local rcall = redis.call

local values = {}
for i = 1, #KEYS do
  local actor = rcall("HMGET", KEYS[i], "v", "s", "c")
  values[3 * i - 2] = actor[1]
  values[3 * i - 1] = actor[2]
  values[3 * i] = actor[3]
end
return values
