import { Redis } from "ioredis";
import { RedisQueueIndex } from "../../src/store/redis-queue-index.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { describeWorkloadFlow } from "./workload-flow.js";

describeWorkloadFlow("RedisStore", async () => {
  const url = await getRedisUrl();
  const prefix = uniquePrefix("workload");
  const client = new Redis(url);
  const store = new RedisStore({ client, prefix });
  return {
    store,
    index: new RedisQueueIndex(client, prefix),
    cleanup: async () => {
      await store.close();
      await cleanupPrefix(client, prefix);
      client.disconnect();
    },
  };
});
