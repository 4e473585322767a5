--[[
  Reads the first entries of an index zset by score together with what the
  hashes beside it hold for each member, in one consistent step (a plain
  ZRANGE followed by HGETs could see an entry that a commit removed between them).

    Input:
      KEYS[1]    index zset
      KEYS[2..k] hashes keyed by the index's members

      ARGV[1] min score (ZRANGEBYSCORE syntax: "-inf", "(5", "17")
      ARGV[2] max score
      ARGV[3] limit

    Output:
      per entry, in score order: member, score, then the value of the member
      in each hash of KEYS[2..k] (nil where a hash lacks it)

  One HMGET per hash (chunked well under Lua's C stack limit) rather than an
  HGET per entry: a node's sweep reads up to a thousand outbox entries a shard.
]]
local rcall, tunpack = redis.call, unpack
local CHUNK = 4000

local entries = rcall("ZRANGEBYSCORE", KEYS[1], ARGV[1], ARGV[2], "WITHSCORES", "LIMIT", 0, tonumber(ARGV[3]))
local count = #entries / 2
local members = {}
for i = 1, count do members[i] = entries[2 * i - 1] end

local stride = #KEYS + 1
local values = {}
for i = 1, count do
  values[stride * (i - 1) + 1] = members[i]
  values[stride * (i - 1) + 2] = entries[2 * i]
end
for k = 2, #KEYS do
  for first = 1, count, CHUNK do
    local last = math.min(first + CHUNK - 1, count)
    local found = rcall("HMGET", KEYS[k], tunpack(members, first, last))
    for i = first, last do values[stride * (i - 1) + k + 1] = found[i - first + 1] end
  end
end
return values
