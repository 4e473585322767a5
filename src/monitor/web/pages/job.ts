/** One job attempt's page: state, error, log, every transition and the brokerage decision. */
import { drawHeadline, drawOdds, drawSize, formatChance, isDraw } from "../../brokerage-draw.js";
import { lastBrokeredDecision } from "../../brokerage-history.js";
import { type ActorView, getJson, getText, type HistoryEntry, type JobError } from "../api.js";
import { storedToken, withToken } from "../auth.js";
import { fmtBytes, fmtTime, h, link, message, section, stateBadge, table, topState } from "../dom.js";
import { throttled } from "../live.js";
import { routeOf, type View } from "../view.js";

interface Candidate {
  site: string;
  score?: number;
  excluded?: { filter: string; reason: string }[];
  components?: Record<string, number>;
}

interface Decision {
  chosenSite: string | null;
  candidates: Candidate[];
  filesToMove: string[];
  bytesToMove: number;
  atMs: number;
  /** The weighted draw the winner came out of (see `DrawShape`, `BrokerageDecision.draw`). */
  draw?: unknown;
}

interface JobContext {
  jobId: string;
  taskId: string;
  index: number;
  attempt: number;
  user: string;
  type: string;
  priority: number;
  site: string | null;
  pilot: { pilotId: string; thread: string } | null;
  error: JobError | null;
  exitCode: number | null;
  brokerage: { tries: number };
  producedFiles: { lfn: string; sizeBytes: number }[];
  payload: { command: string[] } | null;
}

const LOG_TAIL_BYTES = 4000;

function isDecision(value: unknown): value is Decision {
  return typeof value === "object" && value !== null && Array.isArray((value as Decision).candidates);
}

/** What an event said beyond its type, in one short line. */
function eventDetail(entry: HistoryEntry): string {
  const { type: _type, atMs: _at, input: _input, decision: _decision, ...rest } = entry.event;
  const text = Object.entries(rest)
    .filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(" ");
  return text.length > 140 ? `${text.slice(0, 140)}...` : text;
}

function timeline(history: HistoryEntry[]): HTMLElement {
  const start = history[0]?.at ?? 0;
  return table(
    ["v", "time", "+s", "event", "from", "to", "cause", "detail"],
    history.map((e) => [
      e.refused ? "refused" : e.v,
      h("span", { title: fmtTime(e.at) }, fmtTime(e.at).slice(11)),
      ((e.at - start) / 1000).toFixed(1),
      e.event.type,
      e.from ?? "",
      e.refused ? "" : e.to,
      e.cause,
      e.refused ? h("span", { class: "bad" }, `${e.refused.code}: ${e.refused.message}`) : eventDetail(e),
    ]),
    { id: "timeline", class: "timeline" },
  );
}

/** How the winner was picked, in the words `panda why` uses. */
function howPicked(decision: Decision): string {
  if (!decision.chosenSite) return "no site chosen";
  if (isDraw(decision.draw)) return drawHeadline(decision.chosenSite, drawSize(decision.draw));
  return `${decision.chosenSite} had the best score`;
}

function decisionTable(decision: Decision): HTMLElement {
  const ordered = [...decision.candidates].sort((a, b) => (b.score ?? -1) - (a.score ?? -1));
  const odds = new Map((isDraw(decision.draw) ? drawOdds(decision.draw) : []).map((o) => [o.site, o]));
  const fmt = (n: number | undefined) => (n === undefined ? "" : n.toPrecision(3));
  const verdict = (c: Candidate) => {
    if (c.site === decision.chosenSite)
      return h("strong", { class: "good" }, odds.has(c.site) ? "chosen (drawn)" : "chosen");
    if (c.excluded) return h("span", { class: "bad" }, "excluded");
    return odds.has(c.site) ? "not drawn" : "candidate";
  };
  const chance = (c: Candidate) => {
    const o = odds.get(c.site);
    return o ? formatChance(o.chance) : "";
  };
  return h(
    "div",
    {},
    h(
      "p",
      {},
      h("span", { id: "brokerage-pick" }, howPicked(decision)),
      ` at ${fmtTime(decision.atMs)}`,
      decision.filesToMove.length
        ? `; ${decision.filesToMove.length} files (${fmtBytes(decision.bytesToMove)}) to move`
        : "",
    ),
    table(
      [
        "site",
        "verdict",
        "score (weight)",
        "chance of being drawn",
        "load",
        "locality",
        "failure",
        "pilot rate",
        "why excluded",
      ],
      ordered.map((c) => [
        c.site,
        verdict(c),
        fmt(c.score),
        chance(c),
        fmt(c.components?.load),
        fmt(c.components?.locality),
        fmt(c.components?.failure),
        fmt(c.components?.pilotRate),
        (c.excluded ?? []).map((x) => `${x.filter}: ${x.reason}`).join("; "),
      ]),
      { id: "brokerage" },
    ),
  );
}

/**
 * A plain link cannot carry the bearer header: with a token stored, the log
 * is fetched with it and shown from a blob in the new tab instead.
 */
function openWithToken(path: string): (event: Event) => void {
  return (event) => {
    if (storedToken() === null) return;
    event.preventDefault();
    // Opened now, inside the click, so no popup blocker stops it; filled once the log is here.
    const tab = window.open("", "_blank");
    void fetch(path, { headers: withToken() })
      .then(async (res) => {
        const text = res.ok ? await res.text() : `could not read the log: ${res.status} ${res.statusText}`;
        const url = URL.createObjectURL(new Blob([text], { type: "text/plain; charset=utf-8" }));
        if (tab) tab.location.href = url;
      })
      .catch((err: unknown) => {
        if (tab) tab.document.body.textContent = `could not read the log: ${(err as Error).message}`;
      });
  };
}

function errorBox(error: JobError, exitCode: number | null): HTMLElement {
  return h(
    "div",
    { class: "error-box", id: "job-error" },
    h("strong", {}, `${error.class} error`),
    ` code ${error.code}`,
    exitCode !== null ? `, exit code ${exitCode}` : "",
    h("p", {}, error.message),
  );
}

/** One job attempt: state, error, log, every transition and the brokerage decision. */
export async function jobPage(root: HTMLElement, jobId: string): Promise<View> {
  const body = h("div", {}, message("loading..."));
  root.replaceChildren(h("h1", {}, "Job ", h("code", {}, jobId)), body);
  const load = async () => {
    const view = await getJson<ActorView<JobContext>>(
      `/api/v1/actors/job/${encodeURIComponent(jobId)}?history=1000`,
    );
    const job = view.context;
    const recorded = lastBrokeredDecision(view.history);
    const decision = isDecision(recorded) ? recorded : null;
    const logPath = `/api/v1/monitor/jobs/${encodeURIComponent(jobId)}/log`;
    const hasLog = job.producedFiles.some((f) => f.lfn.endsWith(".log.txt"));
    const logTail = hasLog ? await getText(`${logPath}?tail=${LOG_TAIL_BYTES}`) : null;
    const base = `${job.taskId}-${job.index}`;
    // A retry, if there was one, is the next attempt's job; ask rather than guess.
    const retried = await getJson(
      `/api/v1/actors/job/${encodeURIComponent(`${base}.${job.attempt + 1}`)}?history=0`,
    ).then(
      () => true,
      () => false,
    );
    const attempts = Array.from({ length: job.attempt + (retried ? 1 : 0) }, (_, i) => i + 1);
    body.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "state"),
        h("dd", {}, stateBadge(view.state), " ", h("small", { class: "muted" }, view.state)),
        h("dt", {}, "task"),
        h("dd", {}, link(routeOf(["task", job.taskId]), job.taskId), ` job #${job.index}`),
        h("dt", {}, "attempts"),
        h(
          "dd",
          {},
          ...attempts.flatMap((a): (string | HTMLElement)[] => [
            " ",
            a === job.attempt
              ? h("strong", {}, String(a))
              : link(routeOf(["job", `${base}.${a}`]), String(a)),
            " ",
          ]),
        ),
        h("dt", {}, "site"),
        h("dd", {}, job.site ? link(routeOf(["site", job.site]), job.site) : "not yet brokered"),
        h("dt", {}, "pilot"),
        h("dd", {}, job.pilot ? `${job.pilot.pilotId} (${job.pilot.thread} thread)` : ""),
        h("dt", {}, "user / type / priority"),
        h("dd", {}, `${job.user} / ${job.type} / ${job.priority}`),
        h("dt", {}, "command"),
        h("dd", {}, h("code", {}, job.payload?.command.join(" ") ?? "(simulated)")),
      ),
      job.error ? errorBox(job.error, job.exitCode) : "",
      section(
        "Log",
        hasLog
          ? h(
              "div",
              { id: "job-log" },
              h(
                "p",
                {},
                h(
                  "a",
                  { href: logPath, id: "full-log-link", target: "_blank", onclick: openWithToken(logPath) },
                  "open the full log",
                ),
                ` (last ${LOG_TAIL_BYTES} bytes below)`,
              ),
              h("pre", { class: "log" }, logTail ?? "(the log could not be read)"),
            )
          : message(
              topState(view.state) === "failed" || topState(view.state) === "finished"
                ? "the pilot uploaded no log"
                : "no log yet",
            ),
      ),
      section(`Timeline (${view.history.length} entries)`, timeline(view.history)),
      section(
        `Brokerage (${job.brokerage.tries} ${job.brokerage.tries === 1 ? "try" : "tries"})`,
        decision ? decisionTable(decision) : message("no brokerage decision recorded"),
      ),
    );
  };
  await load();
  const reload = throttled(load, 500);
  return {
    onLive(m) {
      if (m.type === "resync" || m.changes.some((c) => c.kind === "job" && c.id === jobId)) reload();
    },
  };
}
