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

async function readSites(ctx: WorkloadContext): Promise<SiteContext[]> {
  const names = await siteNames(ctx);
  const sites = await Promise.all(names.map((name) => readContext(ctx, "site", name)));
  return sites.flatMap((site) => (site ? [site.context] : []));
}

/** The read of every site that callers asking in the current microtask checkpoint will share. */
const nextRead = new WeakMap<WorkloadContext, Promise<SiteContext[]>>();

/**
 * Every site's current state, read from its actor. Calls made together (a
 * commit's batch of `broker.request` effects: one per job) share one read,
 * which starts after the last of them asked, so each still sees state read
 * after its call; without this each job read and decoded every site.
 */
export function listSites(ctx: WorkloadContext): Promise<SiteContext[]> {
  let read = nextRead.get(ctx);
  if (!read) {
    read = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
      nextRead.delete(ctx);
      return readSites(ctx);
    });
    nextRead.set(ctx, read);
  }
  return read.then((sites) => [...sites]);
}
