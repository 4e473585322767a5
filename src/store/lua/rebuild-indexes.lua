--[[
  Replaces every index zset of a shard and the counters its index rules own
  with what the actors' states say, and records the rules' version: how a
  node brings a shard that older code wrote up to date. Fenced like a commit.

    Input:
      KEYS[1]           lease hash (owner, epoch)
      KEYS[2]           index names set
      KEYS[3]           counters hash
      KEYS[4]           index version string
      KEYS[5 .. 4+d]    the index zsets there are now (d of them), to be dropped
      KEYS[5+d ..]      the index zsets to write (w of them)

      ARGV[1]  fence owner
      ARGV[2]  fence epoch
      ARGV[3]  version
      ARGV[4]  d
      ARGV[5]  p, the number of counter name prefixes
      then p x prefix
      then c, the number of counters, and c x (name, value)
      then per index zset to write, in KEYS order: its member count m, then
        m x (score, member); the names set gets each zset's key

    Output:
      0 done
      -1 FENCED: the lease is not held by the fence owner at the fence epoch
]]
local rcall = redis.call

local lease = rcall("HMGET", KEYS[1], "owner", "epoch")
if lease[1] ~= ARGV[1] or tonumber(lease[2]) ~= tonumber(ARGV[2]) then return -1 end

local dropped = tonumber(ARGV[4])
for k = 5, 4 + dropped do rcall("DEL", KEYS[k]) end
rcall("DEL", KEYS[2])

local at = 5
local prefixCount = tonumber(ARGV[at])
local prefixes = {}
for j = at + 1, at + prefixCount do prefixes[#prefixes + 1] = ARGV[j] end
at = at + prefixCount + 1

-- Counters the rules own are dropped, then set to what the states say.
local owned = {}
local fields = rcall("HKEYS", KEYS[3])
for _, name in ipairs(fields) do
  for _, prefix in ipairs(prefixes) do
    if string.sub(name, 1, #prefix) == prefix then
      owned[#owned + 1] = name
      break
    end
  end
end
for first = 1, #owned, 4000 do
  rcall("HDEL", KEYS[3], unpack(owned, first, math.min(first + 3999, #owned)))
end
local counterCount = tonumber(ARGV[at])
at = at + 1
for j = at, at + 2 * (counterCount - 1), 2 do
  if tonumber(ARGV[j + 1]) ~= 0 then rcall("HSET", KEYS[3], ARGV[j], ARGV[j + 1]) end
end
at = at + 2 * counterCount

for k = 5 + dropped, #KEYS do
  local count = tonumber(ARGV[at])
  at = at + 1
  for first = at, at + 2 * count - 1, 4000 do
    rcall("ZADD", KEYS[k], unpack(ARGV, first, math.min(first + 3999, at + 2 * count - 1)))
  end
  at = at + 2 * count
  if count > 0 then rcall("SADD", KEYS[2], KEYS[k]) end
end
rcall("SET", KEYS[4], ARGV[3])
return 0
