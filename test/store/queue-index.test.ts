import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import type { QueueIndex } from "../../src/store/queue-index.js";
import { RedisQueueIndex } from "../../src/store/redis-queue-index.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";

function describeQueueIndex(name: string, make: () => QueueIndex) {
  describe(`QueueIndex on ${name}`, () => {
    it("orders by score then member, re-scores, removes and ranks", async () => {
      const index = make();
      await index.add("q", "b", 2);
      await index.add("q", "a", 2);
      await index.add("q", "c", 1);
      await index.add("q", "d", 5);
      await index.add("q", "d", 0);
      expect((await index.range("q", 0, 10)).map((e) => e.member)).toEqual(["d", "c", "a", "b"]);
      expect(await index.rank("q", "a")).toBe(2);
      expect(await index.rank("q", "zz")).toBeNull();
      expect(await index.remove("q", "c")).toBe(true);
      expect(await index.remove("q", "c")).toBe(false);
      expect(await index.size("q")).toBe(3);
      expect(await index.range("q", 1, 1)).toEqual([{ member: "a", score: 2 }]);
    });

    it("pops each member once, lowest first", async () => {
      const index = make();
      for (let i = 0; i < 50; i++) await index.add("jobs", `j${i}`, 50 - i);
      const popped = (await Promise.all(Array.from({ length: 10 }, () => index.popMin("jobs", 6)))).flat();
      expect(popped).toHaveLength(50);
      expect(new Set(popped.map((e) => e.member)).size).toBe(50);
      expect(await index.popMin("jobs", 3)).toEqual([]);
      expect(await index.size("jobs")).toBe(0);
    });

    it("admits under a limit atomically, however many callers race", async () => {
      const index = make();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => index.addIfBelow("quota", `j${i}`, i, 3)),
      );
      expect(results.filter(Boolean)).toHaveLength(3);
      expect(await index.size("quota")).toBe(3);
      const [first] = await index.range("quota", 0, 1);
      expect(await index.addIfBelow("quota", first!.member, 0, 3)).toBe(true);
    });

    it("keeps records beside members, idempotently, and trims both together", async () => {
      const index = make();
      await index.putRecord("log", "b", 2, '{"n":2}');
      await index.putRecord("log", "a", 1, '{"n":1}');
      await index.putRecord("log", "c", 3, '{"n":3}');
      // A redelivered write changes nothing.
      await index.putRecord("log", "a", 1, '{"n":1}');
      expect(await index.size("log")).toBe(3);
      expect(await index.readRecords("log", ["c", "zz", "a"])).toEqual(['{"n":3}', null, '{"n":1}']);
      expect(await index.readRecords("log", [])).toEqual([]);
      expect(await index.trimRecords("log", 5)).toBe(0);
      expect(await index.trimRecords("log", 1)).toBe(2);
      expect((await index.range("log", 0, 10)).map((e) => e.member)).toEqual(["c"]);
      expect(await index.readRecords("log", ["a", "b", "c"])).toEqual([null, null, '{"n":3}']);
      // A member removed takes its record with it.
      expect(await index.remove("log", "c")).toBe(true);
      expect(await index.readRecords("log", ["c"])).toEqual([null]);
      expect(await index.size("log")).toBe(0);
    });

    it("removes a member only while its score is below a bound, taking its record with it", async () => {
      const index = make();
      await index.putRecord("swept", "old", 10, "r-old");
      await index.putRecord("swept", "used-again", 10, "r-used");
      await index.add("swept", "used-again", 50);
      expect(await index.removeIfScoreBelow("swept", "old", 20)).toBe(true);
      expect(await index.removeIfScoreBelow("swept", "used-again", 20)).toBe(false);
      expect(await index.removeIfScoreBelow("swept", "absent", 20)).toBe(false);
      expect(await index.removeIfScoreBelow("swept", "used-again", 50)).toBe(false);
      expect((await index.range("swept", 0, 10)).map((e) => e.member)).toEqual(["used-again"]);
      expect(await index.readRecords("swept", ["old", "used-again"])).toEqual([null, "r-used"]);
    });

    it("keeps queues apart, including names with braces", async () => {
      const index = make();
      await index.add("x{1}", "m", 1);
      await index.add("x", "m", 1);
      expect(await index.size("x{1}")).toBe(1);
      expect(await index.popMin("x", 1)).toEqual([{ member: "m", score: 1 }]);
      expect(await index.size("x{1}")).toBe(1);
    });
  });
}

describeQueueIndex("memory", () => new MemoryQueueIndex());

describe("redis", () => {
  let redis: Redis;
  const prefix = uniquePrefix("qindex");
  beforeAll(async () => {
    redis = new Redis(await getRedisUrl());
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });
  let n = 0;
  describeQueueIndex("redis", () => new RedisQueueIndex(redis, `${prefix}:${n++}`));
});
