import { MemoryStore } from "../../src/store/memory-store.js";
import { describeRuntimeBehaviour } from "./runtime-behaviour.js";

describeRuntimeBehaviour("MemoryStore", async () => ({ store: new MemoryStore(), cleanup: async () => {} }));
