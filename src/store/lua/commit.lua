--[[
  Commits a batch of actor transitions of one shard. The fence is checked once
  for the whole batch; after that every record is applied in order and on its
  own: a record that conflicts or acknowledges a stale delivery changes nothing,
  and the records after it are still applied.

    Input:
      KEYS[1]  lease hash (owner, epoch, expiresAtMs)
      KEYS[2]  actor index zset (every member scores 0, so it is ordered by name)
      KEYS[3]  timers zset (timer key scored by dueAtMs)
      KEYS[4]  timer fire ids hash (timer key -> fire id)
      KEYS[5]  timer payloads hash (timer key -> payload)
      KEYS[6]  inbox zset (event id scored by seq)
      KEYS[7]  inbox payloads hash (event id -> payload)
      KEYS[8]  outbox zset (effect id scored by seq)
      KEYS[9]  outbox payloads hash (effect id -> payload)
      KEYS[10] outbox seq counter
      KEYS[11] seen zset (dedupe id scored by the nowMs of the commit that saw it)
      KEYS[10 + 2i] actor hash of record i (v = version, s = snapshot)
      KEYS[11 + 2i] history list of record i

      ARGV[1]  fence owner
      ARGV[2]  fence epoch
      ARGV[3]  nowMs
      ARGV[4]  dedupe horizon: seen ids scored below it are forgotten
      ARGV[5]  record count n
      then per record, in order, 14 fields:
        actor, expectedVersion, hasSnapshot (1|0), snapshot, history, historyCap,
        hasDedupeId (1|0), dedupeId, ackKind ("" | inbox | timer),
        ackId (event id or timer key), ackFireId,
        cancel count c, timer add count a, outbox count o
      followed by its lists:
        c x timerKey
        a x (timerKey, fireId, dueAtMs, payload)
        o x (effectId, payload)

    Output:
      array of n outcome codes: 0 ok, 1 duplicate, 2 conflict, 3 stale
      -1 FENCED: the lease is not held by ARGV[1] at epoch ARGV[2]
      -2 BAD_ARGUMENT: KEYS or ARGV do not follow the layout above
]]
local rcall = redis.call

local OK, DUPLICATE, CONFLICT, STALE = 0, 1, 2, 3
local FIXED_KEYS = 11
local RECORD_FIELDS = 14

local leaseKey, actorIndexKey = KEYS[1], KEYS[2]
local timersKey, timerFireKey, timerDataKey = KEYS[3], KEYS[4], KEYS[5]
local inboxKey, inboxDataKey = KEYS[6], KEYS[7]
local outboxKey, outboxDataKey, outboxSeqKey = KEYS[8], KEYS[9], KEYS[10]
local seenKey = KEYS[11]
local nowMs = ARGV[3]

-- Parse everything before writing anything, so a malformed call changes nothing.
local function parseRecords()
  local n = tonumber(ARGV[5])
  if not n or #KEYS ~= FIXED_KEYS + 2 * n then return nil end
  local records = {}
  local pos = 6
  for i = 1, n do
    if pos + RECORD_FIELDS - 1 > #ARGV then return nil end
    local r = {
      actorKey = KEYS[FIXED_KEYS - 1 + 2 * i],
      historyKey = KEYS[FIXED_KEYS + 2 * i],
    }
    r.actor = ARGV[pos]
    r.expectedVersion = tonumber(ARGV[pos + 1])
    r.hasSnapshot = ARGV[pos + 2] == "1"
    r.snapshot = ARGV[pos + 3]
    r.history = ARGV[pos + 4]
    r.historyCap = tonumber(ARGV[pos + 5])
    r.hasDedupeId = ARGV[pos + 6] == "1"
    r.dedupeId = ARGV[pos + 7]
    r.ackKind = ARGV[pos + 8]
    r.ackId = ARGV[pos + 9]
    r.ackFireId = ARGV[pos + 10]
    local cancels = tonumber(ARGV[pos + 11])
    local adds = tonumber(ARGV[pos + 12])
    local effects = tonumber(ARGV[pos + 13])
    if not (r.expectedVersion and r.historyCap and cancels and adds and effects) then return nil end
    r.cancelsAt = pos + RECORD_FIELDS
    r.cancels = cancels
    r.addsAt = r.cancelsAt + cancels
    r.adds = adds
    r.effectsAt = r.addsAt + 4 * adds
    r.effects = effects
    pos = r.effectsAt + 2 * effects
    if pos - 1 > #ARGV then return nil end
    records[i] = r
  end
  if pos - 1 ~= #ARGV then return nil end
  return records
end

local function removeTimer(timerKey)
  rcall("ZREM", timersKey, timerKey)
  rcall("HDEL", timerFireKey, timerKey)
  rcall("HDEL", timerDataKey, timerKey)
end

local function applyRecord(r)
  local storedVersion = tonumber(rcall("HGET", r.actorKey, "v")) or 0
  if storedVersion ~= r.expectedVersion then return CONFLICT end

  if r.ackKind == "timer" then
    if rcall("HGET", timerFireKey, r.ackId) ~= r.ackFireId then return STALE end
    removeTimer(r.ackId)
  elseif r.ackKind == "inbox" then
    if not rcall("ZSCORE", inboxKey, r.ackId) then return STALE end
    rcall("ZREM", inboxKey, r.ackId)
    rcall("HDEL", inboxDataKey, r.ackId)
  end

  -- A duplicate still consumes its delivery (above), so it is not redelivered forever.
  if r.hasDedupeId then
    if rcall("ZSCORE", seenKey, r.dedupeId) then return DUPLICATE end
    rcall("ZADD", seenKey, nowMs, r.dedupeId)
  end

  if r.hasSnapshot then
    rcall("HSET", r.actorKey, "v", r.expectedVersion + 1, "s", r.snapshot)
    -- An actor past version 0 is indexed already: by the commit that created it or by its import.
    if r.expectedVersion == 0 then rcall("ZADD", actorIndexKey, 0, r.actor) end
  end

  local historyLength = rcall("RPUSH", r.historyKey, r.history)
  if historyLength > r.historyCap then
    if r.historyCap > 0 then
      rcall("LTRIM", r.historyKey, -r.historyCap, -1)
    else
      rcall("DEL", r.historyKey)
    end
  end

  for j = r.cancelsAt, r.cancelsAt + r.cancels - 1 do
    removeTimer(ARGV[j])
  end
  for j = r.addsAt, r.addsAt + 4 * (r.adds - 1), 4 do
    local timerKey = ARGV[j]
    rcall("ZADD", timersKey, ARGV[j + 2], timerKey)
    rcall("HSET", timerFireKey, timerKey, ARGV[j + 1])
    rcall("HSET", timerDataKey, timerKey, ARGV[j + 3])
  end
  for j = r.effectsAt, r.effectsAt + 2 * (r.effects - 1), 2 do
    local effectId = ARGV[j]
    if not rcall("ZSCORE", outboxKey, effectId) then
      rcall("ZADD", outboxKey, rcall("INCR", outboxSeqKey), effectId)
      rcall("HSET", outboxDataKey, effectId, ARGV[j + 1])
    end
  end
  return OK
end

local records = parseRecords()
if not records then return -2 end

local lease = rcall("HMGET", leaseKey, "owner", "epoch")
if lease[1] ~= ARGV[1] or tonumber(lease[2]) ~= tonumber(ARGV[2]) then return -1 end

rcall("ZREMRANGEBYSCORE", seenKey, "-inf", "(" .. ARGV[4])

local outcomes = {}
for i = 1, #records do
  outcomes[i] = applyRecord(records[i])
end
return outcomes
