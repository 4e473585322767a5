import type { JobContext } from "../actors/job/schema.js";
import type { SiteContext } from "../actors/site/schema.js";
import { parseActorKey } from "../runtime/actor-ref.js";
import type { Logger } from "../runtime/logger.js";
import type { Runtime } from "../runtime/runtime.js";
import type { CommittedTransition } from "../runtime/shard-host.js";
import { catalogQueues } from "../store/index-names.js";
import type { QueueIndex } from "../store/queue-index.js";
import type { IncidentLog } from "./incidents.js";

function topState(state: string | null): string | null {
  return state === null ? null : (state.split(".")[0] ?? state);
}

/**
 * Every node hears the commits of the shards it owns, and every actor is
 * committed by its shard's owner, so together the nodes see every creation
 * once (a crash between a commit and the index write loses that entry from
 * the search, not from the store). Failures are logged, never thrown into
 * the commit path.
 */
export function feedCatalog(
  runtime: Runtime,
  index: QueueIndex,
  incidents: IncidentLog,
  log: Logger,
): () => void {
  const failed = (err: unknown) => log.warn({ err: (err as Error).message }, "catalog update failed");
  return runtime.onTransitions((transitions) => {
    for (const transition of transitions) {
      if (transition.entry.refused) continue;
      const { kind, id } = parseActorKey(transition.actor);
      const created = transition.entry.from === null;
      if (kind === "dataset" && created && !id.startsWith("dis."))
        index.add(catalogQueues.datasets, id, transition.entry.at).catch(failed);
      else if (kind === "subscription" && created)
        index.add(catalogQueues.subscriptions, id, transition.entry.at).catch(failed);
      else if (kind === "site") recordSiteIncident(incidents, id, transition)?.catch(failed);
      else if (kind === "job") recordPilotFailure(incidents, transition)?.catch(failed);
    }
  });
}

function recordSiteIncident(incidents: IncidentLog, site: string, t: CommittedTransition) {
  const to = topState(t.entry.to);
  if (to !== "brokeroff" || topState(t.entry.from) === "brokeroff") return;
  const context = t.state?.context as SiteContext | undefined;
  const byOperator = t.entry.event.type === "setStatus";
  const incident = context?.incidents.at(-1);
  const message = byOperator
    ? `site ${site} set brokeroff by ${String(t.entry.event.by)}: ${String(t.entry.event.reason)}`
    : `site ${site} turned itself brokeroff: ${incident?.failed ?? "?"} of ${incident?.jobs ?? "?"} recent jobs failed`;
  return incidents.record({
    atMs: t.entry.at,
    source: "site",
    level: byOperator ? "info" : "error",
    message,
    site,
    jobId: null,
    errorClass: null,
    errorCode: null,
    reporter: byOperator ? String(t.entry.event.by) : `site/${site}`,
    details: byOperator || !incident ? {} : { ...incident },
  });
}

/** A pilot's report of a failed payload, with its error and the log file it left. */
function recordPilotFailure(incidents: IncidentLog, t: CommittedTransition) {
  const event = t.entry.event;
  if (event.type !== "pilot.ended" || (event.exitCode === 0 && event.errorClass === undefined)) return;
  const job = t.state?.context as JobContext | undefined;
  const errorClass = typeof event.errorClass === "string" ? event.errorClass : (job?.error?.class ?? null);
  const errorCode = event.errorCode === undefined ? String(event.exitCode) : String(event.errorCode);
  return incidents.record({
    atMs: t.entry.at,
    source: "pilot",
    level: "error",
    message:
      typeof event.errorMessage === "string" && event.errorMessage !== ""
        ? event.errorMessage
        : `payload exited with ${String(event.exitCode)}`,
    site: job?.site ?? null,
    jobId: job?.jobId ?? parseActorKey(t.actor).id,
    errorClass,
    errorCode,
    reporter: String(event.pilotId),
    details: { exitCode: event.exitCode, log: event.log ?? null, attempt: event.attempt },
  });
}
