/**
 * What a job tells others because its top-level state changed, declared
 * once for the kind (`KindDefinition.transitionEffects`) instead of in the
 * entry of every state: the runtime computes it from the states before and
 * after each transition. A job that ends reports it to its site (`job.state`,
 * from and to), frees what it held while live (`job.final`, which says the
 * state it ended from), and, killed or closed, undoes the work its state held
 * outside the store (its pilot's process, its dispatch transfer).
 */
import type { EmitEffectParams, SendEventParams } from "../../runtime/effects.js";
import type { ActorChange, TransitionEffects } from "../../runtime/kinds.js";
import { refs } from "../shared/names.js";
import { isJobOutcome } from "../shared/schemas.js";
import { timeField } from "../shared/time.js";
import type { SubscriptionEvent } from "../subscription/schema.js";
import { pilotKill, siteReport } from "./outbound.js";
import type { JobContext, JobEvent, JobState } from "./schema.js";
import { jobStateOf } from "./state.js";

const NONE: readonly never[] = [];
const ON_PILOT: ReadonlySet<JobState> = new Set(["sent", "starting", "running"]);

export const jobTransitionEffects: TransitionEffects = (change: ActorChange) => {
  const to = jobStateOf(change.after);
  if (!isJobOutcome(to)) return NONE;
  const from = change.before ? jobStateOf(change.before) : null;
  if (from === to) return NONE;
  const job = change.after.context as JobContext;
  const effects: (SendEventParams | EmitEffectParams)[] = [];
  if (to === "cancelled" || to === "closed") abandonWork(change, job, from, effects);
  if (job.site) effects.push({ to: refs.site(job.site), event: siteReport(job, from, to, job.lastAtMs) });
  effects.push({
    effect: "job.final",
    // The state it ended from: only a job that ends while throttled holds a throttled entry.
    data: { jobId: job.jobId, user: job.user, site: job.site, outcome: to, from },
  });
  return effects;
};

/** A kill, close or reassignment undoes what the state it left holds outside the store. */
function abandonWork(
  change: ActorChange,
  job: JobContext,
  from: JobState | null,
  effects: (SendEventParams | EmitEffectParams)[],
): void {
  const event = change.event as JobEvent;
  const reason =
    event.type === "kill" || event.type === "close" || event.type === "reassign"
      ? event.reason
      : (job.reassignment?.reason ?? event.type);
  if (from !== null && ON_PILOT.has(from) && job.pilot) {
    effects.push({ effect: "pilot.kill", data: pilotKill(job, reason) });
  } else if (from === "assigned" && job.dispatch) {
    const cancel: SubscriptionEvent = { type: "cancel", reason, ...timeField(job.lastAtMs) };
    effects.push({ to: refs.subscription(job.dispatch.subscription), event: cancel });
  }
}
