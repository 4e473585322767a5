/** `panda inspect`: any actor's state and history, for operators and for debugging the actors themselves. */
import type { Command } from "commander";
import type { ActorViewAnswer } from "./client.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  epochMsArg,
  integerArg,
} from "./options.js";
import { formatJson, indent, isoTime, print, printJson, renderTable } from "./output.js";

interface InspectFlags extends ConnectionOptions {
  at?: number;
  history?: number;
  json?: boolean;
}

/** An actor for people: where it is, its context, and every transition it took (refusals marked). */
export function renderActorView(view: ActorViewAnswer): string {
  const status = view.status ? `, status ${view.status}` : "";
  const lines = [`${view.kind} ${view.id}`];
  if (view.at !== undefined)
    lines.push(`state at ${isoTime(view.at)}: ${view.state} (version ${view.version})`);
  else lines.push(`state: ${view.state} (version ${view.version}${status})`);
  if (view.context !== undefined) lines.push("", "context:", indent(formatJson(view.context)));
  const refusals = view.history.filter((entry) => entry.refused).length;
  lines.push(
    "",
    `history: ${view.history.length} entries, oldest first${refusals > 0 ? `, ${refusals} refused` : ""}`,
  );
  if (view.history.length > 0) {
    const headers = ["v", "at", "event", "from", "to", "cause"];
    const rows = view.history.map((entry) => {
      const row = [entry.v, isoTime(entry.at), entry.event.type, entry.from, entry.to, entry.cause];
      // A refused event changed nothing; the column appears only when there is one, so it stands out.
      if (refusals > 0)
        row.push(entry.refused ? `REFUSED ${entry.refused.code}: ${entry.refused.message}` : "");
      return row;
    });
    lines.push(indent(renderTable(refusals > 0 ? [...headers, "refused"] : headers, rows)));
  }
  return lines.join("\n");
}

export function registerInspectCommand(program: Command): void {
  const command = program
    .command("inspect")
    .description("show an actor: state, context and its transition history (e.g. `panda inspect job ID`)")
    .argument("<kind>", "the actor kind: job, task, dataset, subscription, site, pilot-job, factory")
    .argument("<id>", "the actor id")
    .option("--at <time>", "the state at a past time: ISO 8601 or epoch milliseconds", epochMsArg)
    .option(
      "--history <count>",
      "at most this many newest transitions (server default 1000)",
      integerArg(0, 10_000),
    );
  addJsonOption(addConnectionOptions(command)).action(
    async (kind: string, id: string, flags: InspectFlags) => {
      const view = await clientFor(flags).inspectActor(kind, id, {
        ...(flags.history === undefined ? {} : { history: flags.history }),
        ...(flags.at === undefined ? {} : { atMs: flags.at }),
      });
      if (flags.json) printJson(view);
      else print(renderActorView(view));
    },
  );
}
