import { refs } from "../actors/shared/names.js";
import type { SiteContext, SiteInput } from "../actors/site/schema.js";
import { isRuntimeError } from "../runtime/errors.js";
import { queueNames } from "../store/queue-index.js";
import { readContext, type WorkloadContext } from "./context.js";

/**
 * Creates the site actor if it is not there yet and lists it in the grid's
 * site index. Idempotent: a second call for the same site changes nothing.
 */
export async function ensureSite(ctx: WorkloadContext, input: SiteInput): Promise<void> {
  const existing = await readContext(ctx, "site", input.name);
  if (!existing) {
    await ctx.runtime
      .send(refs.site(input.name), { type: "create", input }, { eventId: `site-create:${input.name}` })
      .catch((err: unknown) => {
        // Another node created it between our read and our send: the site exists, which is all we wanted.
        if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
      });
  }
  await ctx.index.add(queueNames.sites(), input.name, 0);
}

export async function siteNames(ctx: Pick<WorkloadContext, "index">): Promise<string[]> {
  return (await ctx.index.range(queueNames.sites(), 0, 100_000)).map((e) => e.member);
}

/** Every site's current state, read from its actor. */
export async function listSites(ctx: WorkloadContext): Promise<SiteContext[]> {
  const names = await siteNames(ctx);
  const sites = await Promise.all(names.map((name) => readContext(ctx, "site", name)));
  return sites.flatMap((site) => (site ? [site.context] : []));
}
