// How many pilot jobs a queue should submit or cancel now, from the site's demand and the queue's jobs: a pure function.

export interface SiteDemand {
  /** Jobs ready for a pilot at the site now. */
  activated: number;
  /** Jobs bound to the site whose inputs are on their way: they want pilots soon. */
  assigned: number;
  /** Pilot threads at the site asking for work now. */
  idleThreads: number;
}

export interface QueueJobs {
  /** Batch jobs waiting in the batch system, or being submitted. */
  queued: number;
  running: number;
}

export interface QueueCaps {
  maxQueued: number;
  maxRunning: number;
  pilotsPerJob: number;
}

export interface Decision {
  submit: number;
  /** Queued batch jobs no longer needed. */
  cancel: number;
}

/**
 * Each waiting job needs a pilot that is not already there: an idle thread
 * at the site or a pilot still queued in the batch system. What is missing
 * is submitted, in batch jobs of `pilotsPerJob`, within the caps; queued
 * batch jobs beyond what is missing are cancelled. The two never both happen,
 * so a queue does not churn.
 */
export function decide(demand: SiteDemand, jobs: QueueJobs, caps: QueueCaps): Decision {
  const waiting = demand.activated + demand.assigned;
  const uncovered = Math.max(0, waiting - demand.idleThreads);
  const jobsNeeded = Math.ceil(uncovered / caps.pilotsPerJob);
  if (jobsNeeded <= jobs.queued) return { submit: 0, cancel: jobs.queued - jobsNeeded };
  const room = Math.min(caps.maxQueued - jobs.queued, caps.maxRunning - jobs.queued - jobs.running);
  return { submit: Math.max(0, Math.min(jobsNeeded - jobs.queued, room)), cancel: 0 };
}
