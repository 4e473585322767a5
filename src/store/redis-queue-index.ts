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

/**
 * One sorted set per queue. Each operation is a single Redis command, atomic
 * by itself; the queue name is the hash tag, so a queue lives in one cluster slot.
 */
export class RedisQueueIndex implements QueueIndex {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
  ) {
    if (!("pandaIndexAddIfBelow" in client)) {
      client.defineCommand("pandaIndexAddIfBelow", { numberOfKeys: 1, lua: ADD_IF_BELOW_LUA });
    }
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
    const run = (this.client as unknown as Record<string, (...args: (string | number)[]) => Promise<number>>)
      .pandaIndexAddIfBelow!;
    return (await run.call(this.client, this.key(queue), member, score, limit)) === 1;
  }

  async remove(queue: string, member: string): Promise<boolean> {
    return (await this.client.zrem(this.key(queue), member)) > 0;
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
}

function pairs(flat: string[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ member: flat[i]!, score: Number(flat[i + 1]) });
  return entries;
}
