import { Redis } from "ioredis";
import { RedisStore } from "../../src/store/redis-store.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { describeRuntimeBehaviour } from "./runtime-behaviour.js";

describeRuntimeBehaviour("RedisStore", async () => {
  const url = await getRedisUrl();
  const prefix = uniquePrefix("runtime");
  const store = await RedisStore.connect({ url, prefix });
  return {
    store,
    cleanup: async () => {
      await store.close();
      const redis = new Redis(url);
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    },
  };
});
