/**
 * `panda why`: a job's situation in the sentences a person asks for (where
 * it is, why there, what next), put together from what the actors recorded
 * (the job's context, its brokerage decision in its history, the site queue,
 * the quota) so an operator needs no look at raw state.
 */
import { laneOf, shareOfJob } from "../actors/job/projections.js";
import { decideRetry, type RetryDecision, reassignedAttempt } from "../actors/job/retry.js";
import type { JobContext, JobState } from "../actors/job/schema.js";
import { jobStateOf } from "../actors/job/state.js";
import { refs } from "../actors/shared/names.js";
import type { BrokerageDecision, CandidateVerdict } from "../brokerage/types.js";
import { drawHeadline, drawOdds, drawSize, isDraw, oddsText } from "../monitor/brokerage-draw.js";
import { lastBrokeredDecision } from "../monitor/brokerage-history.js";
import { jobLogLocation, openJobLog, tailOf } from "../monitor/job-log.js";
import type { HistoryEntry } from "../runtime/records.js";
import { queueNames } from "../store/index-names.js";
import { readContext, type WorkloadContext } from "../workload/context.js";
import type { IncidentLog } from "../workload/incident-log.js";

export interface CandidateExplanation {
  site: string;
  score: number | null;
  /** In a random draw among the best sites: the site's weight and chance of being drawn; null otherwise. */
  draw: { weight: number; chance: number } | null;
  /** Why it did not win: the filters it failed, a lost draw, or its lower score. Null for the winner. */
  lostBecause: string | null;
}

export interface JobExplanation {
  jobId: string;
  state: string;
  site: string | null;
  /** One line per fact, in the order a person would ask: where, why there, what next. */
  summary: string[];
  brokerage: {
    chosenSite: string | null;
    atMs: number;
    tries: number;
    /** How the winner was picked: the best score, or a weighted draw among this many of the best. */
    pickedBy: { kind: "bestScore" } | { kind: "draw"; among: number };
    candidates: CandidateExplanation[];
  } | null;
  waitingFor: {
    subscription?: { id: string; state: string; filesDone: number; files: number; pendingFiles: string[] };
    unproducedInputs?: string[];
    queue?: { site: string; lane: string; share: string; position: number; length: number };
    userQuota?: { user: string; active: number; max: number; throttledPosition: number | null };
  } | null;
  failure: {
    errorClass: string;
    code: string;
    message: string;
    /** The last lines of the job's log file as the pilot uploaded it (empty when there is none). */
    logTail: string[];
    /** What pilots and the server reported about the job (the incident log), oldest first. */
    reports: string[];
    retry: { willRetry: boolean; why: string; nextJobId: string | null };
  } | null;
}

const LOG_TAIL_BYTES = 4096;
const LOG_TAIL_LINES = 20;
/** Entries read back to find the last brokerage decision: the runtime keeps at most 200. */
const HISTORY_FOR_DECISION = 200;

function isDecision(value: unknown): value is BrokerageDecision {
  return (
    typeof value === "object" && value !== null && Array.isArray((value as BrokerageDecision).candidates)
  );
}

function formatScore(score: number): string {
  return score.toPrecision(3);
}

/** Each candidate site with its score, its odds in a draw, and for the losers the reason. */
export function explainDecision(decision: BrokerageDecision): CandidateExplanation[] {
  const winner = decision.candidates.find((c) => c.site === decision.chosenSite);
  const drawn = isDraw(decision.draw) ? decision.draw : null;
  const odds = new Map((drawn ? drawOdds(drawn) : []).map((o) => [o.site, o] as const));
  // Listed best first, the lowest of the draw last (in a compact record too).
  const lowestDrawn = [...odds.values()].at(-1);
  const lostBecause = (c: CandidateVerdict): string | null => {
    if (c.site === decision.chosenSite) return null;
    if (c.excluded && c.excluded.length > 0)
      return c.excluded.map((e) => `${e.filter}: ${e.reason}`).join("; ");
    const inDraw = odds.get(c.site);
    if (inDraw) return `not drawn (${oddsText(inDraw)})`;
    if (drawn && lowestDrawn && c.score !== undefined)
      return `score ${formatScore(c.score)}, below the ${drawSize(drawn)} best sites drawn among (the lowest: ${lowestDrawn.site}'s ${formatScore(lowestDrawn.weight)})`;
    if (winner?.score !== undefined && c.score !== undefined) {
      // A decision recorded before draws were: a higher score than the winner's means a draw it lost.
      if (c.score > winner.score)
        return `score ${formatScore(c.score)} above ${decision.chosenSite}'s ${formatScore(winner.score)}, yet not drawn: brokerage drew among its best sites (their weights were not recorded)`;
      return `score ${formatScore(c.score)} below ${decision.chosenSite}'s ${formatScore(winner.score)}`;
    }
    if (decision.chosenSite === null) return "no site was chosen";
    return "not picked among the best sites";
  };
  return [...decision.candidates]
    .sort((a, b) => (b.score ?? -1) - (a.score ?? -1))
    .map((c) => {
      const inDraw = odds.get(c.site);
      return {
        site: c.site,
        score: c.score ?? null,
        draw: inDraw ? { weight: inDraw.weight, chance: inDraw.chance } : null,
        lostBecause: lostBecause(c),
      };
    });
}

/** The lines `panda why` prints about brokerage: how the winner was picked, then each other site. */
export function brokerageLines(brokerage: NonNullable<JobExplanation["brokerage"]>): string[] {
  const losers = brokerage.candidates.filter((c) => c.lostBecause !== null);
  if (!brokerage.chosenSite)
    return [`brokerage found no site (try ${brokerage.tries})`, ...loserLines(losers)];
  if (brokerage.pickedBy.kind === "bestScore")
    return [
      `brokerage chose ${brokerage.chosenSite} over ${losers.length} other site(s)`,
      ...loserLines(losers),
    ];
  const winner = brokerage.candidates.find((c) => c.site === brokerage.chosenSite);
  return [
    `brokerage: ${drawHeadline(brokerage.chosenSite, brokerage.pickedBy.among)}`,
    ...(winner?.draw ? [`  ${winner.site}: drawn (${oddsText({ site: winner.site, ...winner.draw })})`] : []),
    ...loserLines(losers),
  ];
}

function loserLines(losers: CandidateExplanation[]): string[] {
  return losers.map((loser) => `  ${loser.site}: ${loser.lostBecause}`);
}

/**
 * The decision carried by the job's last applied `brokered` event. It lives
 * in the history entry, not in the job's snapshot (see `JobContext.brokerage`).
 */
export function lastDecision(history: readonly HistoryEntry[]): BrokerageDecision | null {
  const decision = lastBrokeredDecision(history);
  return isDecision(decision) ? decision : null;
}

/** The job's last brokerage decision with every candidate explained; null before brokerage answered. */
export function brokerageOf(job: JobContext, history: readonly HistoryEntry[]): JobExplanation["brokerage"] {
  const decision = lastDecision(history);
  if (!decision) return null;
  return {
    chosenSite: decision.chosenSite,
    atMs: decision.atMs,
    tries: job.brokerage.tries,
    pickedBy: isDraw(decision.draw)
      ? { kind: "draw", among: drawSize(decision.draw) }
      : { kind: "bestScore" },
    candidates: explainDecision(decision),
  };
}

/**
 * `panda why job ID`: where the job is and why, from its context, its
 * brokerage decision, its dispatch subscription, its place in the site queue
 * and the user's quota, and for a failure the error, the pilot's report and
 * what the retry policy does.
 */
export async function explainJob(
  ctx: WorkloadContext,
  incidents: IncidentLog,
  jobId: string,
): Promise<JobExplanation | null> {
  // The history holds the brokerage decision; a job has a few dozen entries, rebrokering aside.
  const view = await ctx.runtime.inspect(refs.job(jobId), HISTORY_FOR_DECISION);
  if (!view) return null;
  const job = view.context as JobContext;
  const state = jobStateOf(view);
  const summary: string[] = [
    `job ${jobId} is ${state}${job.site ? ` at ${job.site}` : ""} (attempt ${job.attempt})`,
  ];
  const brokerage = brokerageOf(job, view.history);
  if (brokerage) {
    summary.push(...brokerageLines(brokerage));
  } else if (state === "defined" || state === "pending") {
    summary.push("brokerage has not decided yet");
  }
  const waitingFor = await whatItWaitsFor(ctx, job, state, summary);
  const failure =
    state === "failed" || state === "cancelled" || state === "closed"
      ? await whyItEnded(ctx, incidents, job, state, summary)
      : null;
  return { jobId, state, site: job.site, summary, brokerage, waitingFor, failure };
}

async function whatItWaitsFor(ctx: WorkloadContext, job: JobContext, state: string, summary: string[]) {
  if (state === "assigned" && job.dispatch) {
    const sub = await readContext(ctx, "subscription", job.dispatch.subscription);
    const pendingFiles = sub
      ? Object.entries(sub.context.files)
          .filter(([, f]) => f.status !== "done")
          .map(([lfn]) => lfn)
      : [];
    const subscription = {
      id: job.dispatch.subscription,
      state: sub?.state ?? "unknown",
      filesDone: sub?.context.progress.filesDone ?? 0,
      files: sub?.context.progress.files ?? 0,
      pendingFiles,
    };
    summary.push(
      `waits for subscription ${subscription.id} (${subscription.state}, ${subscription.filesDone}/${subscription.files} files at ${job.site})${pendingFiles.length > 0 ? `: ${pendingFiles.join(", ")}` : ""}`,
    );
    return { subscription };
  }
  if (state === "waiting") {
    summary.push(`waits for inputs not produced yet: ${job.waitingFor.join(", ")}`);
    return { unproducedInputs: job.waitingFor };
  }
  if (state === "activated" && job.site) {
    const lane = laneOf(job.type);
    const share = shareOfJob(job);
    const name = queueNames.siteQueue(job.site, lane, share);
    const [rank, length] = await Promise.all([
      ctx.runtime.indexRank(name, job.jobId),
      ctx.runtime.indexSize(name),
    ]);
    const position = rank === null ? length + 1 : rank + 1;
    summary.push(
      `waits for a pilot at ${job.site}: position ${position} of ${length} in the ${lane} queue of share ${share} (${ctx.connectedPilots(job.site)} pilot(s) connected to this node)`,
    );
    return { queue: { site: job.site, lane, share, position, length } };
  }
  if (state === "throttled") {
    const max = ctx.settings.maxActiveJobsPerUser;
    const [counters, rank] = await Promise.all([
      ctx.runtime.readCounters(queueNames.userActive(job.user)),
      ctx.runtime.indexRank(queueNames.userThrottled(job.user), job.jobId),
    ]);
    const active = counters.get(queueNames.userActive(job.user)) ?? 0;
    summary.push(`held by the user quota: ${job.user} has ${active} active job(s), at most ${max}`);
    return { userQuota: { user: job.user, active, max, throttledPosition: rank === null ? null : rank + 1 } };
  }
  return null;
}

/** The last lines of the job's log at its site's storage; empty when the pilot left none. */
async function logTailOf(ctx: WorkloadContext, job: JobContext): Promise<string[]> {
  const location = jobLogLocation(job);
  if (!location) return [];
  const stream = await openJobLog(ctx.storage, location).catch(() => null);
  if (!stream) return [];
  const { text } = await tailOf(stream, LOG_TAIL_BYTES);
  return text
    .split("\n")
    .filter((line) => line !== "")
    .slice(-LOG_TAIL_LINES);
}

/** Whether the job's end made a next attempt (a retry, or a reassignment), and why. */
function nextAttemptOf(
  job: JobContext,
  state: JobState,
  errorClass: string,
): { retry: RetryDecision; willRetry: boolean; why: string } {
  if (state === "closed" && job.reassignment) {
    const { by, site } = job.reassignment;
    const retry: RetryDecision = { retry: true, ...reassignedAttempt(job, job.reassignment) };
    const where = site ? `at ${site}` : `anywhere but ${job.site ?? "its site"}`;
    return { retry, willRetry: true, why: `reassigned by ${by}: brokered again ${where}, nobody's failure` };
  }
  const retry = decideRetry(job);
  const willRetry = state === "failed" && retry.retry;
  const why =
    state !== "failed"
      ? `a ${state} job is not retried`
      : retry.retry
        ? `error class ${errorClass} is retried (attempt ${job.attempt} of ${job.retry.maxAttempts ?? "?"})`
        : retry.reason;
  return { retry, willRetry, why };
}

async function whyItEnded(
  ctx: WorkloadContext,
  incidents: IncidentLog,
  job: JobContext,
  state: JobState,
  summary: string[],
) {
  const error = job.error ?? { class: "system", code: "unknown", message: "no error recorded" };
  const records = await incidents.search({ jobId: job.jobId, limit: 5 });
  const reports = records
    .map((r) => `${new Date(r.atMs).toISOString()} ${r.reporter}: ${r.message}`)
    .reverse();
  const logTail = await logTailOf(ctx, job);
  const { retry, willRetry, why } = nextAttemptOf(job, state, error.class);
  summary.push(`ended ${state}: ${error.class} ${error.code}: ${error.message}`);
  for (const line of reports) summary.push(`  ${line}`);
  if (logTail.length > 0) summary.push("log tail:", ...logTail.map((line) => `  ${line}`));
  summary.push(
    willRetry && retry.retry ? `retried: the next attempt is job ${retry.nextJobId}` : `no retry: ${why}`,
  );
  return {
    errorClass: error.class,
    code: error.code,
    message: error.message,
    logTail,
    reports,
    retry: { willRetry, why, nextJobId: willRetry && retry.retry ? retry.nextJobId : null },
  };
}
