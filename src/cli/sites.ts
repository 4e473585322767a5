/** `panda sites`: the sites with their live job counts and factories; operators set a site's status or drain its pilots. */
import { Argument, type Command } from "commander";
import { SITE_STATUSES } from "../actors/site/schema.js";
import type { FactoryRow, SiteRow } from "./client.js";
import { usageError } from "./errors.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  checkedName,
  clientFor,
} from "./options.js";
import { printAnswer, renderTable } from "./output.js";

interface SitesFlags extends ConnectionOptions {
  json?: boolean;
  reason?: string;
}

export function renderSites(sites: readonly SiteRow[]): string {
  if (sites.length === 0) return "no sites";
  const n = (site: SiteRow, state: string) => site.jobs[state] ?? 0;
  return renderTable(
    [
      "site",
      "status",
      "activated",
      "assigned",
      "running",
      "transferring",
      "finished",
      "failed",
      "fail% (1h)",
      "pilots/min",
    ],
    sites.map((s) => [
      s.name,
      s.status,
      n(s, "activated"),
      n(s, "assigned"),
      n(s, "running") + n(s, "starting") + n(s, "sent"),
      n(s, "transferring"),
      s.totals.finished,
      s.totals.failed,
      (100 * s.recent.failureFraction).toFixed(0),
      s.pilots.requestsPerMin.toFixed(1),
    ]),
  );
}

type IncidentRow = Awaited<ReturnType<ReturnType<typeof clientFor>["listIncidents"]>>[number];

/** Factory incidents while any queue is throttled: when and why it started, as the incident log has it. */
function renderFactoryIncidents(incidents: readonly IncidentRow[]): string {
  if (incidents.length === 0) return "";
  const lines = incidents.map((i) => `  ${new Date(i.atMs).toISOString()} ${i.level} ${i.message}`);
  return ["", "factory incidents (newest first)", ...lines].join("\n");
}

/** One row per factory queue: where its pilots go, how many are out, and whether it is throttled (and why). */
export function renderFactories(factories: readonly FactoryRow[], nowMs = Date.now()): string {
  const rows = factories.flatMap((f) => f.queues.map((q) => ({ factory: f.name, ...q })));
  if (rows.length === 0) return "";
  const table = renderTable(
    ["factory", "queue", "site", "batch", "queued", "running", "submits/min", "state", "report"],
    rows.map((q) => [
      q.factory,
      q.name,
      q.site,
      q.batchSystem,
      q.jobs.queued + q.jobs.submitting,
      q.jobs.running,
      q.submissionsPerMin,
      q.throttle.throttled
        ? `THROTTLED (one submission per ${q.throttle.backoffSec} s)`
        : q.lastError
          ? "error"
          : "ok",
      q.reportedAtMs === null ? "never" : `${Math.round((nowMs - q.reportedAtMs) / 1000)} s ago`,
    ]),
  );
  const notes = rows.flatMap((q) => [
    ...(q.throttle.throttled ? [`  ${q.factory}/${q.name} throttled: ${q.throttle.reason}`] : []),
    ...(q.lastError ? [`  ${q.factory}/${q.name} last error: ${q.lastError}`] : []),
  ]);
  return ["", "pilot factories", table, ...notes].join("\n");
}

export function registerSitesCommand(program: Command): void {
  const sites = program
    .command("sites")
    .description(
      "list sites with live job counts; `panda sites status SITE STATUS --reason R` and `panda sites drain SITE` (operators)",
    );
  addJsonOption(addConnectionOptions(sites)).action(async (flags: SitesFlags) => {
    const client = clientFor(flags);
    const [list, factories, incidents] = await Promise.all([
      client.listSites(),
      client.listFactories(),
      client.listIncidents({ source: "factory", limit: 5 }),
    ]);
    const throttled = factories.some((f) => f.queues.some((q) => q.throttle.throttled));
    const shownIncidents = throttled ? incidents : [];
    printAnswer(
      flags.json,
      { sites: list, factories, factoryIncidents: incidents },
      () => renderSites(list) + renderFactories(factories) + renderFactoryIncidents(shownIncidents),
    );
  });
  const status = sites
    .command("status")
    .description("set a site's status (operator or admin token)")
    .argument("<site>", "the site")
    .addArgument(new Argument("<status>", "the new status").choices(SITE_STATUSES))
    .option("--reason <text>", "why (recorded with the status; required)");
  addJsonOption(addConnectionOptions(status)).action(
    async (site: string, value: string, flags: SitesFlags) => {
      if (!flags.reason)
        throw usageError("--reason is required: say why the status changes, e.g. --reason 'downtime'");
      const answer = await clientFor(flags).setSiteStatus(site, value, flags.reason);
      printAnswer(flags.json, answer, () => `site ${site}: ${value}`);
    },
  );
  const drain = sites
    .command("drain")
    .description("tell the site's connected pilots to finish their work and exit (operator or admin token)")
    .argument("<site>", "the site")
    .option("--reason <text>", "why (sent to the pilots)");
  addJsonOption(addConnectionOptions(drain)).action(async (site: string, flags: SitesFlags) => {
    const answer = await clientFor(flags).drainSite(checkedName("<site>", site), flags.reason);
    printAnswer(
      flags.json,
      answer,
      () =>
        `site ${site}: drain sent to ${answer.pilotsTold} pilot(s) here; pilots on other nodes hear it when they ask for work`,
    );
  });
}
