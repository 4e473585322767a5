--[[
  Takes a shard's lease if it is free, expired, or already ours (then renews it).
  The epoch grows whenever the lease is not a live renewal by the same owner,
  which is what fences out a previous holder.

    Input:
      KEYS[1] lease hash (owner, epoch, expiresAtMs)

      ARGV[1] owner
      ARGV[2] expiresAtMs of the new lease
      ARGV[3] nowMs

    Output:
      the lease epoch (>= 1) when taken or renewed
      0 when another owner holds a live lease
]]
local rcall = redis.call

local lease = rcall("HMGET", KEYS[1], "owner", "epoch", "expiresAtMs")
local holder = lease[1]
local epoch = tonumber(lease[2]) or 0
local live = holder and (tonumber(lease[3]) or 0) > tonumber(ARGV[3])

if live and holder ~= ARGV[1] then return 0 end
if not live then epoch = epoch + 1 end

rcall("HSET", KEYS[1], "owner", ARGV[1], "epoch", epoch, "expiresAtMs", ARGV[2])
return epoch
