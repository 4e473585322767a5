/** The queue index on Redis: one sorted set per queue (records in a hash beside it), the compound steps as Lua scripts. */
import type { Cluster, Redis } from "ioredis";
import type { IndexEntry, QueueIndex } from "./queue-index.js";

/*
 * KEYS[1] the queue's sorted set
 * ARGV[1] member, ARGV[2] score, ARGV[3] limit
 * returns 1 when the member is in the queue (already, or added under the limit), 0 when the queue was full
 */
const ADD_IF_BELOW_LUA = `
if redis.call("ZSCORE", KEYS[1], ARGV[1]) then return 1 end
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
return 1
`;

/*
 * KEYS[1] the queue's sorted set, KEYS[2] its records (a hash, same hash tag)
 * ARGV[1] member, ARGV[2] score, ARGV[3] record
 * returns 1
 */
const PUT_RECORD_LUA = `
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
return 1
`;

/*
 * KEYS[1] the queue's sorted set, KEYS[2] its records
 * ARGV[1] member
 * returns 1 when the member was there; its record goes with it
 */
const REMOVE_LUA = `
local removed = redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
return removed
`;

/*
 * KEYS[1] the queue's sorted set, KEYS[2] its records
 * ARGV[1] member, ARGV[2] the score it must be below
 * returns 1 when the member was there below that score and is removed (its record with it), else 0
 */
const REMOVE_IF_SCORE_BELOW_LUA = `
local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not score or tonumber(score) >= tonumber(ARGV[2]) then return 0 end
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
return 1
`;

/*
 * KEYS[1] the queue's sorted set, KEYS[2] its records
 * ARGV[1] how many of the highest-scored members to keep
 * returns how many members (and their records) were removed
 */
const TRIM_RECORDS_LUA = `
local excess = redis.call("ZCARD", KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local popped = redis.call("ZPOPMIN", KEYS[1], excess)
local members = {}
for i = 1, #popped, 2 do members[#members + 1] = popped[i] end
for i = 1, #members, 500 do
  redis.call("HDEL", KEYS[2], unpack(members, i, math.min(i + 499, #members)))
end
return #members
`;

type ScriptCommand = (...args: (string | number)[]) => Promise<number>;

/**
 * One sorted set per queue (and a hash of records beside it for a record
 * log, under the same hash tag). Each operation is a single Redis command, atomic
 * by itself; the queue name is the hash tag, so a queue lives in one cluster slot.
 */
export class RedisQueueIndex implements QueueIndex {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
  ) {
    if (!("pandaIndexAddIfBelow" in client)) {
      client.defineCommand("pandaIndexAddIfBelow", { numberOfKeys: 1, lua: ADD_IF_BELOW_LUA });
      client.defineCommand("pandaIndexPutRecord", { numberOfKeys: 2, lua: PUT_RECORD_LUA });
      client.defineCommand("pandaIndexTrimRecords", { numberOfKeys: 2, lua: TRIM_RECORDS_LUA });
      client.defineCommand("pandaIndexRemove", { numberOfKeys: 2, lua: REMOVE_LUA });
      client.defineCommand("pandaIndexRemoveIfScoreBelow", {
        numberOfKeys: 2,
        lua: REMOVE_IF_SCORE_BELOW_LUA,
      });
    }
  }

  private script(name: string): ScriptCommand {
    const run = (this.client as unknown as Record<string, ScriptCommand>)[name]!;
    return (...args) => run.call(this.client, ...args);
  }

  private key(queue: string): string {
    // Braces would move the hash tag; escaping them (and the escape) keeps names distinct.
    const tag = queue.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
    return `${this.prefix}:index:{${tag}}`;
  }

  async add(queue: string, member: string, score: number): Promise<void> {
    await this.client.zadd(this.key(queue), score, member);
  }

  async addIfBelow(queue: string, member: string, score: number, limit: number): Promise<boolean> {
    return (await this.script("pandaIndexAddIfBelow")(this.key(queue), member, score, limit)) === 1;
  }

  async remove(queue: string, member: string): Promise<boolean> {
    const key = this.key(queue);
    return (await this.script("pandaIndexRemove")(key, `${key}:records`, member)) > 0;
  }

  async removeIfScoreBelow(queue: string, member: string, maxScore: number): Promise<boolean> {
    const key = this.key(queue);
    return (await this.script("pandaIndexRemoveIfScoreBelow")(key, `${key}:records`, member, maxScore)) > 0;
  }

  async popMin(queue: string, count: number): Promise<IndexEntry[]> {
    if (count <= 0) return [];
    return pairs(await this.client.zpopmin(this.key(queue), count));
  }

  async range(queue: string, offset: number, count: number): Promise<IndexEntry[]> {
    if (count <= 0) return [];
    return pairs(
      await this.client.zrange(this.key(queue), String(offset), String(offset + count - 1), "WITHSCORES"),
    );
  }

  async rank(queue: string, member: string): Promise<number | null> {
    return this.client.zrank(this.key(queue), member);
  }

  async size(queue: string): Promise<number> {
    return this.client.zcard(this.key(queue));
  }

  async putRecord(queue: string, member: string, score: number, record: string): Promise<void> {
    const key = this.key(queue);
    await this.script("pandaIndexPutRecord")(key, `${key}:records`, member, score, record);
  }

  async readRecords(queue: string, members: readonly string[]): Promise<(string | null)[]> {
    if (members.length === 0) return [];
    return this.client.hmget(`${this.key(queue)}:records`, ...members);
  }

  async trimRecords(queue: string, keep: number): Promise<number> {
    const key = this.key(queue);
    return this.script("pandaIndexTrimRecords")(key, `${key}:records`, Math.max(0, keep));
  }
}

function pairs(flat: string[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ member: flat[i]!, score: Number(flat[i + 1]) });
  return entries;
}
