--[[
  Removes delivered effects from a shard's outbox; unknown ids are ignored.

    Input:
      KEYS[1] outbox zset (effect id scored by seq)
      KEYS[2] outbox payloads hash (effect id -> payload)

      ARGV[1..] effect ids

    Output:
      how many effects were removed
]]
local rcall = redis.call

local removed = 0
for i = 1, #ARGV do
  removed = removed + rcall("ZREM", KEYS[1], ARGV[i])
  rcall("HDEL", KEYS[2], ARGV[i])
end
return removed
