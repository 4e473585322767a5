--[[
  Commits a batch of actor transitions of one shard. The fence is checked once
  for the whole batch; after that every record is applied in order and on its
  own: a record that conflicts or acknowledges a stale delivery changes nothing,
  and the records after it are still applied.

    Input:
      KEYS[1]       lease hash (owner, epoch, expiresAtMs)
      KEYS[2i]      actor hash of record i (v = version, s = snapshot)
      KEYS[2i + 1]  history list of record i
      then only the shard keys the batch needs, in this order:
        actor index zset (members score 0, ordered by name)  if a record creates its actor
        timers zset (timer key scored by dueAtMs),
        timer fire ids hash (timer key -> fire id),
        timer payloads hash (timer key -> payload)           if a record acks, cancels or arms a timer
        inbox zset (event id scored by seq),
        inbox payloads hash (event id -> payload)            if a record acks an inbox entry
        outbox zset (effect id scored by seq),
        outbox payloads hash (effect id -> payload),
        outbox seq counter                                   if a record has effects
        seen zset (dedupe id scored by the nowMs
          of the commit that saw it)                         if a record has a dedupe id
        counters hash (name -> integer, 0 removed)           if a record changes counters

      ARGV[1]  header, little-endian binary:
                 batch, struct "<dI4I4c0I4c0I4c0": fence epoch, record count n,
                   fence owner, nowMs, dedupe horizon (seen ids scored below it
                   are forgotten by a batch that dedupes); the last three are
                   length-prefixed strings
                 then n records of 35 bytes, struct "<ddBBBI4I4I4I4":
                   expectedVersion, historyCap, hasSnapshot (1|0),
                   hasDedupeId (1|0), ackKind (0 none | 1 inbox | 2 timer),
                   cancel count c, timer add count a, outbox count o,
                   counter count k
      then per record, in order, only the fields its header announces:
        snapshot                             if hasSnapshot
        history entry
        actor (kind/id, for the actor index) if hasSnapshot and expectedVersion is 0
        dedupeId                             if hasDedupeId
        ack event id                         if ackKind is inbox
        ack timer key, ack fire id           if ackKind is timer
        c x timerKey
        a x (timerKey, fireId, dueAtMs, payload)
        o x (effectId, payload)
        k x (counter name, integer delta)

    Output:
      array of n outcome codes: 0 ok, 1 duplicate, 2 conflict, 3 stale
      -1 FENCED: the lease is not held by the fence owner at the fence epoch
      -2 BAD_ARGUMENT: KEYS or ARGV do not follow the layout above

  Why this layout: each argument costs ioredis and Redis time, and in Redis's
  Lua so does each tonumber() and table (one table per record used to be most
  of a commit's cost). So the numbers travel in one binary header read with
  struct.unpack, no table is built per record, and a plain transition sends
  the lease, its own two keys, the header, its snapshot and its history.
]]
local rcall, unpack = redis.call, struct.unpack

local OK, DUPLICATE, CONFLICT, STALE = 0, 1, 2, 3
-- ackKind 0 is no ack; kinds are numbered by how many ARGV fields they carry.
local INBOX_ACK, TIMER_ACK = 1, 2
local BATCH_FORMAT = "<dI4I4c0I4c0I4c0"
local RECORD_FORMAT, RECORD_SIZE = "<ddBBBI4I4I4I4", 35
local FIRST_FIELD = 2

local header = ARGV[1]
-- Set once the layout is checked. A shard key stays nil when the batch does not need it.
local nowMs
local actorIndexKey, timersKey, timerFireKey, timerDataKey
local inboxKey, inboxDataKey, outboxKey, outboxDataKey, outboxSeqKey, seenKey, countersKey

-- How many ARGV fields follow a record's header. `creates` is whether the record
-- creates its actor (a snapshot at expectedVersion 0), which adds the actor key.
local function fieldCount(creates, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters)
  return hasSnapshot + 1 + (creates and 1 or 0) + hasDedupeId + ackKind + cancels + 4 * adds + 2 * effects + 2 * counters
end

-- One optional group of shard keys starting at KEYS[k]: where the next group
-- starts, then the group's keys (a caller takes `size` of them), or none if the
-- batch does not need the group.
local function keyGroup(needed, k, size)
  if not needed then return k end
  return k + size, KEYS[k], KEYS[k + 1], KEYS[k + 2]
end

local function removeTimer(timerKey)
  rcall("ZREM", timersKey, timerKey)
  rcall("HDEL", timerFireKey, timerKey)
  rcall("HDEL", timerDataKey, timerKey)
end

-- Applies record i, whose fields start at ARGV[at]; returns its outcome code.
local function applyRecord(i, at, expectedVersion, historyCap, creates, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters)
  local actorKey, historyKey = KEYS[2 * i], KEYS[2 * i + 1]
  local storedVersion = tonumber(rcall("HGET", actorKey, "v")) or 0
  if storedVersion ~= expectedVersion then return CONFLICT end

  local snapshot
  if hasSnapshot == 1 then
    snapshot = ARGV[at]
    at = at + 1
  end
  local history = ARGV[at]
  at = at + 1
  local actor
  if creates then
    actor = ARGV[at]
    at = at + 1
  end
  local dedupeId
  if hasDedupeId == 1 then
    dedupeId = ARGV[at]
    at = at + 1
  end

  if ackKind == TIMER_ACK then
    local timerKey = ARGV[at]
    if rcall("HGET", timerFireKey, timerKey) ~= ARGV[at + 1] then return STALE end
    removeTimer(timerKey)
  elseif ackKind == INBOX_ACK then
    local eventId = ARGV[at]
    if not rcall("ZSCORE", inboxKey, eventId) then return STALE end
    rcall("ZREM", inboxKey, eventId)
    rcall("HDEL", inboxDataKey, eventId)
  end
  at = at + ackKind

  -- A duplicate still consumes its delivery (above), so it is not redelivered forever.
  if dedupeId then
    if rcall("ZSCORE", seenKey, dedupeId) then return DUPLICATE end
    rcall("ZADD", seenKey, nowMs, dedupeId)
  end

  if snapshot then
    rcall("HSET", actorKey, "v", expectedVersion + 1, "s", snapshot)
    -- An actor past version 0 is indexed already: by the commit that created it or by its import.
    if actor then rcall("ZADD", actorIndexKey, 0, actor) end
  end

  local historyLength = rcall("RPUSH", historyKey, history)
  if historyLength > historyCap then
    if historyCap <= 0 then
      rcall("DEL", historyKey)
    elseif historyLength == historyCap + 1 then
      -- A full history is one over after each push; LPOP drops that one for about half what LTRIM costs.
      rcall("LPOP", historyKey)
    else
      rcall("LTRIM", historyKey, -historyCap, -1)
    end
  end

  for j = at, at + cancels - 1 do
    removeTimer(ARGV[j])
  end
  at = at + cancels
  for j = at, at + 4 * (adds - 1), 4 do
    local timerKey = ARGV[j]
    rcall("ZADD", timersKey, ARGV[j + 2], timerKey)
    rcall("HSET", timerFireKey, timerKey, ARGV[j + 1])
    rcall("HSET", timerDataKey, timerKey, ARGV[j + 3])
  end
  at = at + 4 * adds
  for j = at, at + 2 * (effects - 1), 2 do
    local effectId = ARGV[j]
    if not rcall("ZSCORE", outboxKey, effectId) then
      rcall("ZADD", outboxKey, rcall("INCR", outboxSeqKey), effectId)
      rcall("HSET", outboxDataKey, effectId, ARGV[j + 1])
    end
  end
  at = at + 2 * effects
  for j = at, at + 2 * (counters - 1), 2 do
    local name = ARGV[j]
    if rcall("HINCRBY", countersKey, name, ARGV[j + 1]) == 0 then rcall("HDEL", countersKey, name) end
  end
  return OK
end

-- Check the whole layout before anything is written, so a malformed call
-- changes nothing. Inline rather than a function: in Redis's Lua every local a
-- closure captures costs each call, and this would capture nearly all of them.
if type(header) ~= "string" then return -2 end
local parsed, fenceEpoch, n, fenceOwner, dedupeHorizon, firstRecordAt
parsed, fenceEpoch, n, fenceOwner, nowMs, dedupeHorizon, firstRecordAt = pcall(unpack, BATCH_FORMAT, header)
if not parsed or #header ~= firstRecordAt - 1 + n * RECORD_SIZE then return -2 end

local pos, fields = firstRecordAt, FIRST_FIELD - 1
local indexes, timers, inbox, outbox, dedupes, counting = false, false, false, false, false, false
for _ = 1, n do
  local expectedVersion, _, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters
  expectedVersion, _, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters, pos =
    unpack(RECORD_FORMAT, header, pos)
  if hasSnapshot > 1 or hasDedupeId > 1 or ackKind > TIMER_ACK then return -2 end
  local creates = hasSnapshot == 1 and expectedVersion == 0
  fields = fields + fieldCount(creates, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters)
  indexes = indexes or creates
  timers = timers or ackKind == TIMER_ACK or cancels > 0 or adds > 0
  inbox = inbox or ackKind == INBOX_ACK
  outbox = outbox or effects > 0
  dedupes = dedupes or hasDedupeId == 1
  counting = counting or counters > 0
end
if fields ~= #ARGV then return -2 end

local k = 2 * n + 2
k, actorIndexKey = keyGroup(indexes, k, 1)
k, timersKey, timerFireKey, timerDataKey = keyGroup(timers, k, 3)
k, inboxKey, inboxDataKey = keyGroup(inbox, k, 2)
k, outboxKey, outboxDataKey, outboxSeqKey = keyGroup(outbox, k, 3)
k, seenKey = keyGroup(dedupes, k, 1)
k, countersKey = keyGroup(counting, k, 1)
if k - 1 ~= #KEYS then return -2 end

local lease = rcall("HMGET", KEYS[1], "owner", "epoch")
if lease[1] ~= fenceOwner or tonumber(lease[2]) ~= fenceEpoch then return -1 end

-- Only dedupe checks read the seen ids, and a batch that checks trims first.
if seenKey then rcall("ZREMRANGEBYSCORE", seenKey, "-inf", "(" .. dedupeHorizon) end

local outcomes, at = {}, FIRST_FIELD
pos = firstRecordAt
for i = 1, n do
  local expectedVersion, historyCap, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters
  expectedVersion, historyCap, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters, pos =
    unpack(RECORD_FORMAT, header, pos)
  local creates = hasSnapshot == 1 and expectedVersion == 0
  outcomes[i] = applyRecord(i, at, expectedVersion, historyCap, creates, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters)
  at = at + fieldCount(creates, hasSnapshot, hasDedupeId, ackKind, cancels, adds, effects, counters)
end
return outcomes
