--[[
  Moves the expiry of a lease that is still held under the given fence: a
  future expiry renews it, 0 releases it. Releasing expires rather than
  deletes, so the next owner's epoch still increases.

    Input:
      KEYS[1] lease hash (owner, epoch, expiresAtMs)

      ARGV[1] fence owner
      ARGV[2] fence epoch
      ARGV[3] new expiresAtMs

    Output:
      1 when the expiry was set
      0 when the lease is not held under this fence (nothing changed)
]]
local rcall = redis.call

local lease = rcall("HMGET", KEYS[1], "owner", "epoch")
if lease[1] ~= ARGV[1] or tonumber(lease[2]) ~= tonumber(ARGV[2]) then return 0 end

rcall("HSET", KEYS[1], "expiresAtMs", ARGV[3])
return 1
