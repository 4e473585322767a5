import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DurableStore } from "../../src/store/durable-store.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { cleanupPrefix, findRedisUrl, keysOnNode, uniquePrefix } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";
import { redisBinariesAvailable, reportUnavailable } from "../support/redis-process.js";
import { reopeningStore } from "./reopening-store.js";
import { describeStoreContract } from "./store-contract.js";

describeStoreContract("MemoryStore", async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

// Fsynced at every change: the strictest setting, and the path no other test takes.
describeStoreContract("DurableStore", async () => {
  const dir = mkdtempSync(join(tmpdir(), "panda-durable-contract-"));
  const store = DurableStore.open({ dir, fsyncIntervalMs: 0 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Every call answered by a store just opened from the files the calls before it left.
describeStoreContract("DurableStore reopened from disk before every call", async () => {
  const dir = mkdtempSync(join(tmpdir(), "panda-durable-reopen-"));
  const store = reopeningStore(dir);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const redisUrl = await findRedisUrl();

describe.skipIf(!redisUrl)("RedisStore on one Redis", () => {
  let admin: Redis;

  beforeAll(() => {
    admin = new Redis(redisUrl!);
  });

  afterAll(async () => {
    await admin.quit();
  });

  describeStoreContract("RedisStore", async () => {
    const prefix = uniquePrefix("contract");
    const store = await RedisStore.connect({ url: redisUrl!, prefix });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await cleanupPrefix(admin, prefix);
      },
    };
  });
});

const canRunCluster = redisBinariesAvailable();
if (!canRunCluster) reportUnavailable("Redis Cluster (no redis-server/redis-cli binary)");

describe.skipIf(!canRunCluster)("RedisStore on a 3-master Redis Cluster", () => {
  const held = useRedisCluster();

  describeStoreContract("RedisStore (cluster)", async () => {
    const prefix = uniquePrefix("cluster");
    const store = await RedisStore.connect({ clusterNodes: held.cluster.nodes, prefix });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await cleanupPrefix(held.admin, prefix);
      },
    };
  });

  it("spreads the shards over every master", async () => {
    const prefix = uniquePrefix("spread");
    const store = new RedisStore({ client: held.admin, prefix });
    try {
      for (let shard = 0; shard < 16; shard++)
        await store.appendInbox(shard, [{ eventId: "e", payload: Buffer.from("p") }]);
      const keysPerMaster = await Promise.all(
        held.admin.nodes("master").map((node) => keysOnNode(node, prefix)),
      );
      expect(keysPerMaster.map((keys) => keys.length > 0)).toEqual([true, true, true]);
    } finally {
      await store.close();
      await cleanupPrefix(held.admin, prefix);
    }
  });
});
