import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { describeWorkloadFlow } from "./workload-flow.js";

describeWorkloadFlow("MemoryStore", async () => ({
  store: new MemoryStore(),
  index: new MemoryQueueIndex(),
  cleanup: async () => {},
}));
