/** One task's page: its progress and its jobs. */
import { getJson, type JobRow, type TaskRow } from "../api.js";
import { fmtTime, h, link, message, section, stateBadge, table } from "../dom.js";
import { throttled } from "../live.js";
import { routeOf, type View } from "../view.js";

const SEGMENTS = ["finished", "failed", "cancelled", "closed"] as const;

/** Ended jobs as coloured segments of the task's job count; the rest is still live. */
export function progressBar(task: Pick<TaskRow, "jobCount" | "counts">): HTMLElement {
  const total = Math.max(1, task.jobCount);
  const ended = SEGMENTS.reduce((sum, s) => sum + (task.counts[s] ?? 0), 0);
  const bar = h("div", { class: "progress", title: `${ended} of ${task.jobCount} jobs ended` });
  for (const s of SEGMENTS) {
    const n = task.counts[s] ?? 0;
    if (n > 0) bar.append(h("span", { class: `seg seg-${s}`, style: `width:${(100 * n) / total}%` }));
  }
  bar.append(h("em", {}, `${Math.round((100 * ended) / total)}%`));
  return bar;
}

interface TaskDetail extends TaskRow {
  failuresByClass?: Record<string, number>;
}

export async function taskPage(root: HTMLElement, taskId: string): Promise<View> {
  const body = h("div", {}, message("loading..."));
  root.replaceChildren(h("h1", {}, "Task ", h("code", {}, taskId)), body);
  const load = async () => {
    const [task, { jobs }] = await Promise.all([
      getJson<TaskDetail>(`/api/v1/tasks/${encodeURIComponent(taskId)}`),
      getJson<{ jobs: JobRow[] }>(`/api/v1/jobs?task=${encodeURIComponent(taskId)}&limit=10000`),
    ]);
    body.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "state"),
        h("dd", {}, stateBadge(task.state)),
        h("dt", {}, "user"),
        h("dd", {}, task.user),
        h("dt", {}, "type"),
        h("dd", {}, task.type),
        h("dt", {}, "output dataset"),
        h("dd", {}, link(routeOf(["dataset", task.outputDataset]), task.outputDataset)),
        h("dt", {}, "submitted"),
        h("dd", {}, fmtTime(Object.values(task.timestamps)[0])),
      ),
      section("Progress", progressBar(task), table(Object.keys(task.counts), [Object.values(task.counts)])),
      section(
        `Jobs (${jobs.length} attempts)`,
        link(routeOf(["jobs"], { task: taskId }), "filter the job list by this task"),
        table(
          ["job", "attempt", "state", "site", "error"],
          jobs.map((j) => [
            link(routeOf(["job", j.jobId]), j.jobId),
            j.attempt,
            stateBadge(j.state),
            j.site ?? "",
            j.error ? `${j.error.class}: ${j.error.message}` : "",
          ]),
        ),
      ),
    );
  };
  await load();
  const reload = throttled(load, 1000);
  return {
    onLive(m) {
      if (
        m.type === "resync" ||
        m.changes.some((c) => (c.kind === "task" && c.id === taskId) || c.id.startsWith(`${taskId}-`))
      )
        reload();
    },
  };
}
