--[[
  Announces a live node and forgets the nodes whose announcement ran out.

    Input:
      KEYS[1] nodes zset (node id scored by expiresAtMs)

      ARGV[1] node id
      ARGV[2] expiresAtMs of this announcement
      ARGV[3] nowMs

    Output:
      the ids of the nodes alive at nowMs, in expiry order
]]
local rcall = redis.call

rcall("ZADD", KEYS[1], ARGV[2], ARGV[1])
rcall("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[3])
return rcall("ZRANGE", KEYS[1], 0, -1)
