--[[
  Queues events for a shard's owner; an event id already queued is ignored.
  Announces the shard on the inbox channel in the same step, so a notification
  can not be lost between the write and the publish.

    Input:
      KEYS[1] inbox zset (event id scored by seq)
      KEYS[2] inbox payloads hash (event id -> payload)
      KEYS[3] inbox seq counter

      ARGV[1] inbox notification channel
      ARGV[2] shard number (the message published)
      ARGV[3..] pairs of (eventId, payload)

    Output:
      how many events were new
]]
local rcall = redis.call

local added = 0
for i = 3, #ARGV - 1, 2 do
  local eventId = ARGV[i]
  if rcall("HSETNX", KEYS[2], eventId, ARGV[i + 1]) == 1 then
    rcall("ZADD", KEYS[1], rcall("INCR", KEYS[3]), eventId)
    added = added + 1
  end
end

if added > 0 then rcall("PUBLISH", ARGV[1], ARGV[2]) end
return added
