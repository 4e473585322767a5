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
]]
local rcall = redis.call

local entries = rcall("ZRANGEBYSCORE", KEYS[1], ARGV[1], ARGV[2], "WITHSCORES", "LIMIT", 0, tonumber(ARGV[3]))
local values = {}
for i = 1, #entries, 2 do
  local member = entries[i]
  values[#values + 1] = member
  values[#values + 1] = entries[i + 1]
  for k = 2, #KEYS do
    values[#values + 1] = rcall("HGET", KEYS[k], member)
  end
end
return values
