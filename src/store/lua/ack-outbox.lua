--[[
  Removes delivered effects from the outboxes of one or more shards; unknown
  ids are ignored.

    Input:
      KEYS[2i-1] shard i's outbox zset (effect id scored by seq)
      KEYS[2i]   shard i's outbox payloads hash (effect id -> payload)

      ARGV[i]    for each shard i (1..#KEYS/2), how many ids follow for it
      ARGV[n+1..] the effect ids, shard 1's first (n = #KEYS/2)

    Output:
      how many effects were removed

  Several shards go in one call only where they share a server (one Redis,
  not a Cluster): acknowledgements of a whole node come in one round trip.
  Two commands per shard, in chunks well under Lua's C stack limit.
]]
local rcall, tunpack = redis.call, unpack
local CHUNK = 4000

local shards = #KEYS / 2
local removed = 0
local first = shards + 1
for i = 1, shards do
  local last = first + tonumber(ARGV[i]) - 1
  for from = first, last, CHUNK do
    local to = math.min(from + CHUNK - 1, last)
    removed = removed + rcall("ZREM", KEYS[2 * i - 1], tunpack(ARGV, from, to))
    rcall("HDEL", KEYS[2 * i], tunpack(ARGV, from, to))
  end
  first = last + 1
end
return removed
