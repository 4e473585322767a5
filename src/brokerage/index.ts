export { broker } from "./broker.js";
export { compareByAge, compareForDispatch, orderForDispatch, type QueuedJob } from "./dispatch-order.js";
export { exclusionsFor, type FilterContext, siteBadJobs } from "./filter.js";
export { type InputLocality, inputLocality, scoreComponents, scoreOf } from "./score.js";
export {
  type ActiveCounts,
  decideActivation,
  emptyShareUsage,
  pickJobsToRelease,
  resolveSharePolicy,
  type SharePolicy,
  type SharePolicyInput,
  SharePolicySchema,
  type ShareSubject,
  type ShareUsage,
  type ShareVerdict,
  servedRatio,
  type ThrottledJob,
  userPriority,
} from "./shares.js";
export * from "./types.js";
