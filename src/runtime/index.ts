/** The runtime's public surface: what the rest of the system imports from it. */
export { type ActorRef, actorKeyOf, parseActorKey, shardOf } from "./actor-ref.js";
export { type Clock, systemClock } from "./clock.js";
export { type EmitEffectParams, effectActions, type SendEventParams } from "./effects.js";
export { isRuntimeError, RuntimeError, type RuntimeErrorCode } from "./errors.js";
export { type KindDefinition, KindRegistry, type PersistedState } from "./kinds.js";
export { type Logger, silentLogger } from "./logger.js";
export type { HistoryEntry } from "./records.js";
export {
  type ActorView,
  type EffectHandler,
  Runtime,
  type RuntimeOptions,
  type SendOptions,
} from "./runtime.js";
export type { CommittedTransition, SendResult } from "./shard-host.js";
