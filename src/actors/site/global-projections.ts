/** The site kind's global projections: the sites list, and an incident whenever a site turns brokeroff. */
import type { EmitEffectParams } from "../../runtime/effects.js";
import type { ActorChange, GlobalProjections } from "../../runtime/kinds.js";
import { queueNames } from "../../store/index-names.js";
import { incidentRaised, indexPut, topStateOf } from "../shared/global-effects.js";
import type { SiteContext } from "./schema.js";

/** A site's entry in the sites list: the same write its creation's effect makes. */
export function siteListed(site: string): EmitEffectParams {
  return indexPut(queueNames.sites(), site, 0);
}

/** An operator's `setStatus` says who and why; a site that judged itself gives its failure counts. */
function brokeroffIncident({ id: site, after, event, atMs }: ActorChange): EmitEffectParams {
  const byOperator = event.type === "setStatus";
  const incident = (after.context as SiteContext).incidents.at(-1);
  const { by, reason } = event as { by?: unknown; reason?: unknown };
  return incidentRaised({
    atMs,
    source: "site",
    level: byOperator ? "info" : "error",
    message: byOperator
      ? `site ${site} set brokeroff by ${String(by)}: ${String(reason)}`
      : `site ${site} turned itself brokeroff: ${incident?.failed ?? "?"} of ${incident?.jobs ?? "?"} recent jobs failed`,
    site,
    jobId: null,
    errorClass: null,
    errorCode: null,
    reporter: byOperator ? String(by) : `site/${site}`,
    details: byOperator || !incident ? {} : { ...incident },
  });
}

export const siteGlobalProjections: GlobalProjections = (change) => {
  const effects: EmitEffectParams[] = [];
  if (!change.before) effects.push(siteListed(change.id));
  const wasBrokeroff = change.before !== null && topStateOf(change.before.value) === "brokeroff";
  if (!wasBrokeroff && topStateOf(change.after.value) === "brokeroff")
    effects.push(brokeroffIncident(change));
  return effects;
};
