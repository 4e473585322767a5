--[[
  Commits batches of actor records, one batch per shard, in one call (on one
  Redis a node commits all its shards at once; on a Cluster each shard is a
  call of its own, its keys in one slot). A record is one actor's transition,
  or a chain of several events of one actor folded into one write. Each
  batch's fence is checked once; after that every record is decided in order
  and on its own, as if the records before it were written: a record that
  conflicts or acknowledges a stale delivery changes nothing, and the records
  after it are still applied. The shard-wide writes of a batch's applied
  records (timers, inbox, seen ids, outbox, counters, indexes, actor index)
  then go out as one command per key, leaving what record-by-record writes
  would leave. Every batch is checked before anything is written, so a
  malformed call changes nothing; a fenced batch changes nothing of its shard
  and nothing else.

    Input:
      F[1]  the call's header, struct "<I4" then s x "<I4I4": the batch
               count s, then each batch's KEYS count and field count
      F[2]  every batch's fields, in order, each one as struct "<I4c0"
               (its byte length, then its bytes): F[2], F[3], ... below,
               F[1] being the call's header. The batches' KEYS follow in
               order. Each batch is laid out as below, with KEYS and F
               indexes relative to its first key and field.

    Why one blob: a Redis argument costs the client a header, a length and a
    copy each, thousands per call; one blob costs one, and Lua cuts it up.

    One batch:
      KEYS[1]       lease hash (owner, epoch, expiresAtMs)
      KEYS[2i]      actor hash of record i (v = version, s = snapshot, c = constants)
      KEYS[2i + 1]  history list of record i
      then only the shard keys the batch needs, in this order:
        actor index zset (members score 0, ordered by name)  if a record creates its actor
        timers zset (timer key scored by dueAtMs),
        timer fire ids hash (timer key -> fire id),
        timer payloads hash (timer key -> payload)           if a record acks, cancels or arms a timer
        inbox zset (event id scored by seq),
        inbox payloads hash (event id -> payload)            if a record acks an inbox entry
        outbox zset (effect id scored by seq),
        outbox payloads hash (effect id -> payload)          if a record has effects
        outbox seq counter                                   if so and the first seq is 0
        seen zset (dedupe id scored by the seen score
          of the commit that saw it, about its nowMs)        if a record has a dedupe id
        counters hash (name -> integer; a counter back at 0
          stays as 0, which readers skip)                    if a record changes counters
        index names set (names of the shard's index
          zsets that may hold members)                       if r > 0 (below)
        x index zsets, numbered 1..x, the r to register
          first, then in the order the records name them     if a record changes an index

      F[1]     header, little-endian binary:
                 batch, struct "<dddBI4I4I4I4c0I4c0": fence epoch, first seq
                   (the batch's new effects are scored first seq, first seq + 1,
                   ... in order; 0: taken from the outbox seq counter), seen
                   score (the score of the dedupe ids the batch adds: the
                   commit's nowMs, or less than 1 above it), seen by add (1: no
                   seen id of the shard holds the seen score, so the dedupe ids
                   are checked and added by one ZADD NX, an id scored with the
                   seen score after it being one it added; 0: checked by a
                   ZMSCORE first, added by a ZADD after), record count n, index
                   zset count x,
                   count r (<= x) of the index zsets to register (add to the
                   index names set when an applied record gives one a member;
                   the node knows the others are named there already), fence
                   owner, dedupe horizon (seen ids scored below it are
                   forgotten; "" leaves them for a later batch); the last two
                   are length-prefixed strings
                 then n records of 58 bytes, struct "<ddBBI4I4I4I4I4I4I4I4I4I4":
                   expectedVersion, historyCap (0: keep none), hasSnapshot (1|0),
                   hasConstants (1|0, only with a snapshot), versionStep,
                   history count h (>= 1), dedupe id count u, inbox ack count
                   ai, timer ack count at, cancel count c, timer add count a,
                   outbox count o, counter count k, index change count ix
      then per record, in order, only the fields its header announces:
        snapshot                             if hasSnapshot
        constants                            if hasConstants
        h x history entry, oldest first
        actor (kind/id, for the actor index) if hasSnapshot and expectedVersion is 0
        u x dedupeId
        ai x inbox event id
        at x (timer key, fire id)
        c x timerKey
        a x (timerKey, fireId, dueAtMs, payload)
        o x (effectId, payload)
        k x (counter name, integer delta)
        ix x (index zset number 1..x, member, score; "" removes the member)

    Output: an array with one element per batch:
      an array of n outcome codes: 0 ok, 1 duplicate, 2 conflict, 3 stale, 4 split
        (split: a record of several events with a seen dedupe id or a stale
        delivery; nothing of it applied. A record of one event that is a
        duplicate applies its acks and nothing else.)
      or -1 FENCED: the lease is not held by the fence owner at the fence epoch
    or, for the whole call, -2 BAD_ARGUMENT: KEYS or ARGV do not follow the layout

  Why this layout: each argument and each Redis command costs time, and in
  Redis's Lua so does each table. So the numbers travel in one binary header
  read with struct.unpack; the stored state the checks need (fire ids, inbox
  entries) is read with one command per key before the records are decided;
  seen ids (seen by add) and effects already queued are found by the ZADD NX
  that adds the new ones (a ZMSCORE follows only when it added fewer than it
  was given: the score it gave tells its own); and only the per-actor writes
  (snapshot, history) are issued per record.
]]
local rcall, unpack, tunpack = redis.call, struct.unpack, unpack

-- The fields: F[1] the call's header, then F[2] cut up (nil when it is torn).
local function fields()
  local all = { ARGV[1] }
  local blob = ARGV[2]
  if type(blob) ~= "string" then return all end
  local pos, total = 1, #blob
  local ok, field
  while pos <= total do
    ok, field, pos = pcall(unpack, "<I4c0", blob, pos)
    if not ok then return nil end
    all[#all + 1] = field
  end
  return all
end
local F = fields()
if not F or #ARGV > 2 then return -2 end

local OK, DUPLICATE, CONFLICT, STALE, SPLIT = 0, 1, 2, 3, 4
local BATCH_FORMAT = "<dddBI4I4I4I4c0I4c0"
local RECORD_FORMAT, RECORD_SIZE = "<ddBBI4I4I4I4I4I4I4I4I4I4", 58
local FIRST_FIELD = 2
-- Arguments per Redis command when a bulk write is chunked: well under Lua's C stack limit, and even.
local CHUNK = 4000

-- How many fields follow a record's header.
local function fieldCount(creates, hasSnapshot, hasConstants, histories, dedupes, inboxAcks, timerAcks, cancels, adds, effects, counters, indexChanges)
  return hasSnapshot + hasConstants + histories + (creates and 1 or 0) + dedupes + inboxAcks + 2 * timerAcks + cancels + 4 * adds
    + 2 * effects + 2 * counters + 3 * indexChanges
end

-- One optional group of shard keys starting at KEYS[k]: where the next group
-- starts, then the group's keys, or none if the batch does not need the group.
local function keyGroup(needed, k, size)
  if not needed then return k end
  return k + size, tunpack(KEYS, k, k + size - 1)
end

-- Calls `command key <items...>` with the items in chunks; nothing for no items.
local function bulk(command, key, items)
  local count = #items
  for first = 1, count, CHUNK do
    rcall(command, key, tunpack(items, first, math.min(first + CHUNK - 1, count)))
  end
end

-- A table with true for each of `ids` whose score `key` holds (ZMSCORE).
local function present(key, ids)
  local found = {}
  for first = 1, #ids, CHUNK do
    local last = math.min(first + CHUNK - 1, #ids)
    local scores = rcall("ZMSCORE", key, tunpack(ids, first, last))
    for j = first, last do
      if scores[j - first + 1] then found[ids[j]] = true end
    end
  end
  return found
end

-- Checks one batch's layout (KEYS from kb + 1, nk of them; F from ab + 1,
-- na of them) and collects the ids whose stored state its checks read: a
-- table describing the batch, or nil for a malformed one.
local function parseBatch(kb, nk, ab, na)
  local header = F[ab + 1]
  if type(header) ~= "string" then return nil end
  local parsed, fenceEpoch, firstSeq, seenScore, seenByAdd, n, indexCount, registerCount, fenceOwner, dedupeHorizon, firstRecordAt =
    pcall(unpack, BATCH_FORMAT, header)
  if not parsed or #header ~= firstRecordAt - 1 + n * RECORD_SIZE then return nil end
  if registerCount > indexCount or seenByAdd > 1 then return nil end
  local lastArg = ab + na

  local pos, at = firstRecordAt, ab + FIRST_FIELD
  local indexes, timers, inbox, outbox, dedupes, counting = false, false, false, false, false, false
  local indexing = false
  local ackedTimerKeys, ackedInboxIds, dedupeIds = {}, {}, {}
  for _ = 1, n do
    local expectedVersion, _, hasSnapshot, hasConstants, h, u, ai, ta, c, a, o, k, ix
    expectedVersion, _, hasSnapshot, hasConstants, _, h, u, ai, ta, c, a, o, k, ix, pos = unpack(RECORD_FORMAT, header, pos)
    if hasSnapshot > 1 or hasConstants > hasSnapshot or h < 1 then return nil end
    local creates = hasSnapshot == 1 and expectedVersion == 0
    local fields = fieldCount(creates, hasSnapshot, hasConstants, h, u, ai, ta, c, a, o, k, ix)
    if at + fields - 1 > lastArg then return nil end
    local ixAt = at + fields - 3 * ix
    for m = ixAt, ixAt + 3 * (ix - 1), 3 do
      local zset = tonumber(F[m])
      if not zset or zset < 1 or zset > indexCount then return nil end
    end
    local j = at + hasSnapshot + hasConstants + h + (creates and 1 or 0)
    for m = j, j + u - 1 do dedupeIds[#dedupeIds + 1] = F[m] end
    j = j + u
    for m = j, j + ai - 1 do ackedInboxIds[#ackedInboxIds + 1] = F[m] end
    j = j + ai
    for m = j, j + 2 * (ta - 1), 2 do ackedTimerKeys[#ackedTimerKeys + 1] = F[m] end
    at = at + fields
    indexes = indexes or creates
    timers = timers or ta > 0 or c > 0 or a > 0
    inbox = inbox or ai > 0
    outbox = outbox or o > 0
    dedupes = dedupes or u > 0
    counting = counting or k > 0
    indexing = indexing or ix > 0
  end
  if at - 1 ~= lastArg then return nil end
  if (indexCount > 0) ~= indexing then return nil end

  local actorIndexKey, timersKey, timerFireKey, timerDataKey
  local inboxKey, inboxDataKey, outboxKey, outboxDataKey, outboxSeqKey, seenKey, countersKey
  local kk = kb + 2 * n + 2
  kk, actorIndexKey = keyGroup(indexes, kk, 1)
  kk, timersKey, timerFireKey, timerDataKey = keyGroup(timers, kk, 3)
  kk, inboxKey, inboxDataKey = keyGroup(inbox, kk, 2)
  kk, outboxKey, outboxDataKey, outboxSeqKey = keyGroup(outbox, kk, firstSeq == 0 and 3 or 2)
  kk, seenKey = keyGroup(dedupes, kk, 1)
  kk, countersKey = keyGroup(counting, kk, 1)
  local indexNamesKey, firstIndexKey
  kk, indexNamesKey = keyGroup(registerCount > 0, kk, 1)
  firstIndexKey = kk
  if kk - 1 + indexCount ~= kb + nk then return nil end
  return {
    kb = kb, ab = ab, header = header, n = n, indexCount = indexCount, registerCount = registerCount,
    fenceEpoch = fenceEpoch, firstSeq = firstSeq,
    fenceOwner = fenceOwner, seenScore = seenScore, seenByAdd = seenByAdd == 1, dedupeHorizon = dedupeHorizon,
    firstRecordAt = firstRecordAt,
    ackedTimerKeys = ackedTimerKeys, ackedInboxIds = ackedInboxIds, dedupeIds = dedupeIds,
    actorIndexKey = actorIndexKey, timersKey = timersKey, timerFireKey = timerFireKey, timerDataKey = timerDataKey,
    inboxKey = inboxKey, inboxDataKey = inboxDataKey, outboxKey = outboxKey, outboxDataKey = outboxDataKey,
    outboxSeqKey = outboxSeqKey, seenKey = seenKey, countersKey = countersKey, indexNamesKey = indexNamesKey,
    firstIndexKey = firstIndexKey, indexing = indexing,
  }
end

-- Applies one checked batch: its outcome codes, or -1 when its fence does not hold.
local function applyBatch(b)
  local kb, header, n, indexCount, dedupeHorizon = b.kb, b.header, b.n, b.indexCount, b.dedupeHorizon
  local ackedTimerKeys, ackedInboxIds, dedupeIds = b.ackedTimerKeys, b.ackedInboxIds, b.dedupeIds
  local actorIndexKey, timersKey, timerFireKey, timerDataKey = b.actorIndexKey, b.timersKey, b.timerFireKey, b.timerDataKey
  local inboxKey, inboxDataKey, outboxKey, outboxDataKey = b.inboxKey, b.inboxDataKey, b.outboxKey, b.outboxDataKey
  local outboxSeqKey, seenKey, countersKey, indexNamesKey = b.outboxSeqKey, b.seenKey, b.countersKey, b.indexNamesKey
  local firstIndexKey, indexing = b.firstIndexKey, b.indexing
  local pos, at

  local lease = rcall("HMGET", KEYS[kb + 1], "owner", "epoch")
  if lease[1] ~= b.fenceOwner or tonumber(lease[2]) ~= b.fenceEpoch then return -1 end

  -- The stored state the checks read, then what the batch's applied records
  -- change of it: `fireOf[key]` is a timer's fire id (false once removed).
  local fireOf = {}
  if #ackedTimerKeys > 0 then
    for first = 1, #ackedTimerKeys, CHUNK do
      local last = math.min(first + CHUNK - 1, #ackedTimerKeys)
      local fires = rcall("HMGET", timerFireKey, tunpack(ackedTimerKeys, first, last))
      for j = first, last do fireOf[ackedTimerKeys[j]] = fires[j - first + 1] end
    end
  end
  local inInbox = #ackedInboxIds > 0 and present(inboxKey, ackedInboxIds) or {}
  -- Only dedupe checks read the seen ids; a batch given a horizon trims them first (the node
  -- asks now and then, not in every batch: a trim is a command per batch).
  if seenKey and dedupeHorizon ~= "" then rcall("ZREMRANGEBYSCORE", seenKey, "-inf", "(" .. dedupeHorizon) end
  -- `seen[id]`: an id seen before. Checked by a ZMSCORE; or, seen by add, the batch's dedupe ids go in at
  -- once with ZADD NX, `added[id]` marking one this call added (out again at the end if no record keeps it).
  local seen, added, distinct = {}, {}, {}
  if #dedupeIds > 0 and not b.seenByAdd then
    seen = present(seenKey, dedupeIds)
  elseif #dedupeIds > 0 then
    for _, id in ipairs(dedupeIds) do
      if not added[id] then
        added[id] = true
        distinct[#distinct + 1] = id
      end
    end
    local count = 0
    for first = 1, #distinct, CHUNK / 2 do
      local scored = {}
      for m = first, math.min(first + CHUNK / 2 - 1, #distinct) do
        scored[#scored + 1] = b.seenScore
        scored[#scored + 1] = distinct[m]
      end
      count = count + rcall("ZADD", seenKey, "NX", tunpack(scored))
    end
    if count < #distinct then
      -- Some were there: no id seen before holds the batch's score, so the others are the ones added.
      for first = 1, #distinct, CHUNK do
        local last = math.min(first + CHUNK - 1, #distinct)
        local scores = rcall("ZMSCORE", seenKey, tunpack(distinct, first, last))
        for m = first, last do
          if tonumber(scores[m - first + 1]) ~= b.seenScore then
            added[distinct[m]] = nil
            seen[distinct[m]] = true
          end
        end
      end
    end
  end
  -- Effect ids the applied records queue; whether one is queued already is told by the outbox's ZADD NX.
  local queued = {}

  -- What the applied records write to shard keys, in the order they wrote it.
  local versionOf = {}
  local timerOrder, timerFinal = {}, {}
  local inboxRemoved, indexAdded = {}, {}
  -- Dedupe ids of applied records, in order: `kept[id]` (and the others this call added come out again).
  local kept, keptOrder = {}, {}
  local newEffects = {}
  local counterOrder, counterSum = {}, {}
  -- Per index zset (by number): members in the order first changed, and each one's last score (false: removed);
  -- and whether an applied record gave it a member (then its name is registered, if it is to be).
  local indexMembers, indexFinal, indexScored = {}, {}, {}

  local function touchTimer(timerKey, final)
    if timerFinal[timerKey] == nil then timerOrder[#timerOrder + 1] = timerKey end
    timerFinal[timerKey] = final
  end

  -- Decides record i, whose fields start at F[at]; applies it if it holds; returns its outcome code.
  local function applyRecord(i, at, expectedVersion, historyCap, creates, hasSnapshot, hasConstants, versionStep, h, u, ai, ta, c, a, o, k, ix)
    local actorKey, historyKey = KEYS[kb + 2 * i], KEYS[kb + 2 * i + 1]
    local storedVersion = versionOf[actorKey]
    if storedVersion == nil then storedVersion = tonumber(rcall("HGET", actorKey, "v")) or 0 end
    if storedVersion ~= expectedVersion then return CONFLICT end

    local multi = h > 1
    local snapshotAt, historyAt = at, at + hasSnapshot + hasConstants
    local actorAt = historyAt + h
    local dedupeAt = actorAt + (creates and 1 or 0)
    local inboxAt = dedupeAt + u
    local timerAckAt = inboxAt + ai
    local cancelAt = timerAckAt + 2 * ta
    local addAt = cancelAt + c
    local effectAt = addAt + 4 * a
    local counterAt = effectAt + 2 * o
    local indexAt = counterAt + 2 * k

    for j = inboxAt, inboxAt + ai - 1 do
      if not inInbox[F[j]] then return multi and SPLIT or STALE end
    end
    for j = timerAckAt, timerAckAt + 2 * (ta - 1), 2 do
      if fireOf[F[j]] ~= F[j + 1] then return multi and SPLIT or STALE end
    end
    local duplicate = false
    for j = dedupeAt, dedupeAt + u - 1 do
      if seen[F[j]] then duplicate = true end
    end
    if multi and u > 1 and not duplicate then
      -- Two events of one record with one id: the second is a duplicate of the first.
      local ids = {}
      for j = dedupeAt, dedupeAt + u - 1 do
        if ids[F[j]] then duplicate = true end
        ids[F[j]] = true
      end
    end
    if duplicate and multi then return SPLIT end

    -- A duplicate still consumes its delivery, so it is not redelivered forever.
    for j = inboxAt, inboxAt + ai - 1 do
      inInbox[F[j]] = nil
      inboxRemoved[#inboxRemoved + 1] = F[j]
    end
    for j = timerAckAt, timerAckAt + 2 * (ta - 1), 2 do
      fireOf[F[j]] = false
      touchTimer(F[j], false)
    end
    if duplicate then return DUPLICATE end

    for j = dedupeAt, dedupeAt + u - 1 do
      seen[F[j]] = true
      kept[F[j]] = true
      keptOrder[#keptOrder + 1] = F[j]
    end

    if hasSnapshot == 1 then
      versionOf[actorKey] = expectedVersion + versionStep
      if hasConstants == 1 then
        rcall("HSET", actorKey, "v", expectedVersion + versionStep, "s", F[snapshotAt], "c", F[snapshotAt + 1])
      else
        rcall("HSET", actorKey, "v", expectedVersion + versionStep, "s", F[snapshotAt])
      end
      -- An actor past version 0 is indexed already: by the commit that created it or by its import.
      if creates then
        indexAdded[#indexAdded + 1] = 0
        indexAdded[#indexAdded + 1] = F[actorAt]
      end
    else
      versionOf[actorKey] = expectedVersion
    end

    if historyCap <= 0 then
      -- No history is kept: the entries (empty) only counted the record's events.
      rcall("DEL", historyKey)
    else
      local historyLength = rcall("RPUSH", historyKey, tunpack(F, historyAt, historyAt + h - 1))
      if historyLength > historyCap then
        if historyLength <= historyCap + 2 then
          -- Usually one or two over after a push; LPOP drops those for about half what LTRIM costs.
          rcall("LPOP", historyKey, historyLength - historyCap)
        else
          rcall("LTRIM", historyKey, -historyCap, -1)
        end
      end
    end

    for j = cancelAt, cancelAt + c - 1 do
      fireOf[F[j]] = false
      touchTimer(F[j], false)
    end
    for j = addAt, addAt + 4 * (a - 1), 4 do
      fireOf[F[j]] = F[j + 1]
      touchTimer(F[j], j)
    end
    for j = effectAt, effectAt + 2 * (o - 1), 2 do
      local effectId = F[j]
      if not queued[effectId] then
        queued[effectId] = true
        newEffects[#newEffects + 1] = j
      end
    end
    for j = counterAt, counterAt + 2 * (k - 1), 2 do
      local name = F[j]
      local sum = counterSum[name]
      if sum == nil then
        counterOrder[#counterOrder + 1] = name
        sum = 0
      end
      counterSum[name] = sum + tonumber(F[j + 1])
    end
    for j = indexAt, indexAt + 3 * (ix - 1), 3 do
      local zset, member, score = tonumber(F[j]), F[j + 1], F[j + 2]
      local members, final = indexMembers[zset], indexFinal[zset]
      if not members then
        members, final = {}, {}
        indexMembers[zset], indexFinal[zset] = members, final
      end
      if final[member] == nil then members[#members + 1] = member end
      if score == "" then
        final[member] = false
      else
        final[member] = score
        indexScored[zset] = true
      end
    end
    return OK
  end

  local outcomes = {}
  pos, at = b.firstRecordAt, b.ab + FIRST_FIELD
  for i = 1, n do
    local expectedVersion, historyCap, hasSnapshot, hasConstants, versionStep, h, u, ai, ta, c, a, o, k, ix
    expectedVersion, historyCap, hasSnapshot, hasConstants, versionStep, h, u, ai, ta, c, a, o, k, ix, pos =
      unpack(RECORD_FORMAT, header, pos)
    local creates = hasSnapshot == 1 and expectedVersion == 0
    outcomes[i] = applyRecord(i, at, expectedVersion, historyCap, creates, hasSnapshot, hasConstants, versionStep, h, u, ai, ta, c, a, o, k, ix)
    at = at + fieldCount(creates, hasSnapshot, hasConstants, h, u, ai, ta, c, a, o, k, ix)
  end

  -- The shard-wide writes, one command per key (chunked for a huge batch).
  if #indexAdded > 0 then bulk("ZADD", actorIndexKey, indexAdded) end
  if #timerOrder > 0 then
    local removed, scored, fires, payloads = {}, {}, {}, {}
    for _, timerKey in ipairs(timerOrder) do
      local j = timerFinal[timerKey]
      if j then
        scored[#scored + 1] = F[j + 2]
        scored[#scored + 1] = timerKey
        fires[#fires + 1] = timerKey
        fires[#fires + 1] = F[j + 1]
        payloads[#payloads + 1] = timerKey
        payloads[#payloads + 1] = F[j + 3]
      else
        removed[#removed + 1] = timerKey
      end
    end
    if #removed > 0 then
      bulk("ZREM", timersKey, removed)
      bulk("HDEL", timerFireKey, removed)
      bulk("HDEL", timerDataKey, removed)
    end
    if #scored > 0 then
      bulk("ZADD", timersKey, scored)
      bulk("HSET", timerFireKey, fires)
      bulk("HSET", timerDataKey, payloads)
    end
  end
  if #inboxRemoved > 0 then
    bulk("ZREM", inboxKey, inboxRemoved)
    bulk("HDEL", inboxDataKey, inboxRemoved)
  end
  if b.seenByAdd then
    local unseen = {}
    for _, id in ipairs(distinct) do
      if added[id] and not kept[id] then unseen[#unseen + 1] = id end
    end
    if #unseen > 0 then bulk("ZREM", seenKey, unseen) end
  elseif #keptOrder > 0 then
    local scored = {}
    for _, id in ipairs(keptOrder) do
      scored[#scored + 1] = b.seenScore
      scored[#scored + 1] = id
    end
    bulk("ZADD", seenKey, scored)
  end
  if #newEffects > 0 then
    -- A seq one below the first: the node's own (its epoch's range), or the shard counter's.
    local seq = b.firstSeq - 1
    if b.firstSeq == 0 then seq = rcall("INCRBY", outboxSeqKey, #newEffects) - #newEffects end
    -- ZADD NX leaves an effect already queued as it is (its first payload wins) and counts the others.
    local added = 0
    for first = 1, #newEffects, CHUNK / 2 do
      local scored = {}
      for m = first, math.min(first + CHUNK / 2 - 1, #newEffects) do
        scored[#scored + 1] = seq + m
        scored[#scored + 1] = F[newEffects[m]]
      end
      added = added + rcall("ZADD", outboxKey, "NX", tunpack(scored))
    end
    local ours = newEffects
    if added < #newEffects then
      -- Some were queued already: each seq is new, so an id scored with its seq here is one this call added.
      local ids = {}
      for m, j in ipairs(newEffects) do ids[m] = F[j] end
      ours = {}
      for first = 1, #ids, CHUNK do
        local last = math.min(first + CHUNK - 1, #ids)
        local scores = rcall("ZMSCORE", outboxKey, tunpack(ids, first, last))
        for m = first, last do
          if tonumber(scores[m - first + 1]) == seq + m then ours[#ours + 1] = newEffects[m] end
        end
      end
    end
    local payloads = {}
    for _, j in ipairs(ours) do
      payloads[#payloads + 1] = F[j]
      payloads[#payloads + 1] = F[j + 1]
    end
    bulk("HSET", outboxDataKey, payloads)
  end
  -- A counter back at 0 stays (an HDEL each time would cost a command; the names are few: sites x
  -- states, users): readers skip zeros.
  for _, name in ipairs(counterOrder) do
    local sum = counterSum[name]
    if sum ~= 0 then rcall("HINCRBY", countersKey, name, sum) end
  end
  if indexing then
    local named = {}
    for zset = 1, indexCount do
      local members, final = indexMembers[zset], indexFinal[zset]
      if members then
        local removed, scored = {}, {}
        for _, member in ipairs(members) do
          local score = final[member]
          if score then
            scored[#scored + 1] = score
            scored[#scored + 1] = member
          else
            removed[#removed + 1] = member
          end
        end
        local key = KEYS[firstIndexKey + zset - 1]
        if #removed > 0 then bulk("ZREM", key, removed) end
        if #scored > 0 then bulk("ZADD", key, scored) end
        if zset <= b.registerCount and indexScored[zset] then named[#named + 1] = key end
      end
    end
    -- The set of names may keep a name whose zset emptied: readers skip it, a rebuild clears it.
    if #named > 0 then bulk("SADD", indexNamesKey, named) end
  end
  return outcomes
end

-- The call: every batch checked, then each applied.
local callHeader = F[1]
if type(callHeader) ~= "string" or #callHeader < 4 then return -2 end
local batchCount = unpack("<I4", callHeader)
if #callHeader ~= 4 + 8 * batchCount then return -2 end
local batches, kb, ab = {}, 0, 1
for i = 1, batchCount do
  local nk, na = unpack("<I4I4", callHeader, 5 + 8 * (i - 1))
  local batch = parseBatch(kb, nk, ab, na)
  if not batch then return -2 end
  batches[i] = batch
  kb, ab = kb + nk, ab + na
end
if kb ~= #KEYS or ab ~= #F then return -2 end
local results = {}
for i = 1, batchCount do results[i] = applyBatch(batches[i]) end
return results
