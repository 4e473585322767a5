/**
 * One server node of `bench:dispatch --nodes` in a process of its own, so N
 * nodes use N event loops as N machines would. Options arrive as JSON in
 * PANDA_BENCH_NODE_OPTIONS; over IPC it says where it listens, takes task
 * submissions, answers how many shards it holds and its CPU, and reports
 * the jobs' `activated` commits (epoch ms) and finals as they happen.
 */
import { serverModule } from "./server-module.js";

export type NodeChildCommand =
  | { cmd: "submit"; taskId: string; jobs: number; user: string }
  | { cmd: "shards" }
  | { cmd: "cpu" }
  | { cmd: "close" };

export type NodeChildReport =
  | { type: "ready"; url: string }
  | { type: "jobs"; activated: [string, number][]; finished: number; finals: number }
  | { type: "shards"; owned: number }
  | { type: "cpu"; ms: number }
  | { type: "submitted"; taskId: string; error: string | null };

/** How often the transitions seen are sent up: small against the latencies measured, which are stamped at commit. */
const REPORT_EVERY_MS = 20;
const JOB_FINALS = new Set(["finished", "failed", "cancelled", "closed"]);

const send = (report: NodeChildReport) => process.send?.(report);
const { startServerNode } = await serverModule();
const node = await startServerNode(JSON.parse(process.env.PANDA_BENCH_NODE_OPTIONS ?? "{}"));
let activated: [string, number][] = [];
let finished = 0;
let finals = 0;
node.grid.runtime.onTransitions((transitions) => {
  const epochMs = performance.timeOrigin + performance.now();
  for (const t of transitions) {
    if (t.entry.refused || !t.actor.startsWith("job/")) continue;
    if (t.entry.to === "activated") activated.push([t.actor.slice(4), epochMs]);
    else if (t.entry.to === "finished") finished++;
    if (JOB_FINALS.has(t.entry.to) && t.entry.from !== t.entry.to) finals++;
  }
});
const reporter = setInterval(() => {
  if (activated.length === 0 && finished === 0 && finals === 0) return;
  send({ type: "jobs", activated, finished, finals });
  activated = [];
  finished = 0;
  finals = 0;
}, REPORT_EVERY_MS);

process.on("message", (command: NodeChildCommand) => {
  if (command.cmd === "submit") {
    const { taskId, jobs, user } = command;
    node.grid.submit({ taskId, jobs, type: "production", payload: { command: ["true"] } }, user).then(
      () => send({ type: "submitted", taskId, error: null }),
      (err: unknown) => send({ type: "submitted", taskId, error: (err as Error).message }),
    );
  } else if (command.cmd === "shards") {
    send({ type: "shards", owned: node.grid.runtime.ownedShards().length });
  } else if (command.cmd === "cpu") {
    const { user, system } = process.cpuUsage();
    send({ type: "cpu", ms: (user + system) / 1000 });
  } else if (command.cmd === "close") {
    clearInterval(reporter);
    void node.close().then(() => process.exit(0));
  }
});
send({ type: "ready", url: node.url });
