--[[
  Removes delivered effects from a shard's outbox; unknown ids are ignored.

    Input:
      KEYS[1] outbox zset (effect id scored by seq)
      KEYS[2] outbox payloads hash (effect id -> payload)

      ARGV[1..] effect ids

    Output:
      how many effects were removed

  Two commands for the whole call, in chunks well under Lua's C stack limit:
  acknowledgements come in batches of hundreds.
]]
local rcall, tunpack = redis.call, unpack
local CHUNK = 4000

local removed = 0
for first = 1, #ARGV, CHUNK do
  local last = math.min(first + CHUNK - 1, #ARGV)
  removed = removed + rcall("ZREM", KEYS[1], tunpack(ARGV, first, last))
  rcall("HDEL", KEYS[2], tunpack(ARGV, first, last))
end
return removed
