/** The brokerage's public surface: the pure functions and types the workload's brokerage service uses. */
export { broker } from "./broker.js";
export { exclusionsFor, type FilterContext, siteBadJobs } from "./filter.js";
export { type InputLocality, inputLocality, scoreComponents, scoreOf } from "./score.js";
export {
  DEFAULT_SHARE,
  effectiveShares,
  type FairShareConfig,
  fairShareConfigSchema,
  MIN_PRIORITY,
  type Share,
  type ShareStanding,
  type ShareSubject,
  shareOf,
  shareOrder,
  userPriority,
} from "./shares.js";
export * from "./types.js";
