--[[
  Writes an actor's snapshot and version outside the runtime (restores, repair
  tools), fenced like a commit.

    Input:
      KEYS[1] lease hash (owner, epoch, expiresAtMs)
      KEYS[2] actor index zset (every member scores 0)
      KEYS[3] actor hash (v = version, s = snapshot, c = constants: dropped, the snapshot is whole)

      ARGV[1] fence owner
      ARGV[2] fence epoch
      ARGV[3] actor
      ARGV[4] version
      ARGV[5] snapshot

    Output:
      0 written
      -1 FENCED: the lease is not held by ARGV[1] at epoch ARGV[2]
]]
local rcall = redis.call

local lease = rcall("HMGET", KEYS[1], "owner", "epoch")
if lease[1] ~= ARGV[1] or tonumber(lease[2]) ~= tonumber(ARGV[2]) then return -1 end

rcall("HSET", KEYS[3], "v", ARGV[4], "s", ARGV[5])
rcall("HDEL", KEYS[3], "c")
rcall("ZADD", KEYS[2], 0, ARGV[3])
return 0
