/**
 * Late binding: puts a pilot thread that waits for work and an activated job
 * of its site together, from whichever side arrives second. A job being
 * activated is offered a waiting thread inline, in the commit that activates
 * it; a thread that becomes ready (or a queue that gains jobs) takes the
 * best job of the site's queues. The job actor arbitrates: its `dispatch` is
 * accepted once, so two threads on any nodes never hold one job.
 */
import type { JobContext } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import type { Thread } from "../protocol/messages.js";
import type { TimerHandle } from "../runtime/clock.js";
import type { MachineState } from "../runtime/compiled-machine.js";
import type { Logger } from "../runtime/logger.js";
import { pollWithBackoff } from "../runtime/poll-with-backoff.js";
import type { CommittedTransition } from "../runtime/settle-batch.js";
import { queueNames } from "../store/queue-index.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";
import { jobSpec } from "../workload/job-spec.js";
import type { QueueEntry, ThreadOffer } from "../workload/queue-service.js";
import { LocalNodeBus, type NodeBus } from "./node-bus.js";
import type { PilotEntry, PilotSessions } from "./pilot-sessions.js";
import { SharePicker } from "./share-picker.js";
import { SharedHeadReads } from "./shared-head-reads.js";
import { type SiteGate, type SiteGateView, siteTakes } from "./site-gate.js";

export interface ThreadBinderOptions {
  /** The base URL pilots use for storage (inputs and uploads); read at each push, so it may be a getter. */
  publicUrl: string;
  /** Secondary threads take only analysis jobs at most this long. */
  shortAnalysisWalltimeSec: number;
  /** Safety net for activations another node heard about: idle threads look at their queue this often. */
  idlePollMs: number;
  /**
   * How long a thread waits for its dispatch of a job on another node's
   * shard (queued in that shard's inbox) to be decided there before it gives
   * the job up and looks for another. Long enough to outlast a takeover (the
   * owner may die with the dispatch in its inbox; the next owner decides it):
   * by default two lease periods and a second. A thread that gave up too
   * early would leave a job committed as sent to it that nobody pushes.
   */
  remoteDispatchWaitMs?: number;
  /** Where this node tells the others that a site has work queued (see `NodeBus`); none for a node alone. */
  bus?: NodeBus;
  log: Logger;
}

/** The notice that jobs were queued at these sites (one per line) on a shard of the node that says so. */
const SITE_WORK_TOPIC = "site-work";
/** The notice that a dispatch from another node's thread committed here: `jobId pilotId thread` per line. */
const JOB_SENT_TOPIC = "job-sent";

/** The first read of a job after its dispatch was queued on another node, then twice as long each time... */
const REMOTE_DISPATCH_FIRST_POLL_MS = 20;
/** ...up to this: a takeover's wait costs a few reads a second, not fifty. */
const REMOTE_DISPATCH_MAX_POLL_MS = 250;

const PRIMARY_LANES = ["production", "analysis"] as const;
const SECONDARY_LANES = ["analysis"] as const;

/** Candidates taken from the head of a local queue at a time. */
const LOCAL_CANDIDATES = 16;

export class ThreadBinder {
  /** Jobs a thread of this node is binding right now: other local threads look elsewhere. */
  private readonly claiming = new Set<string>();
  /** Sites whose queue gained jobs this turn: filled once, after the turn. */
  private readonly fillsDue = new Set<string>();
  private readonly heads: SharedHeadReads;
  private readonly shares: SharePicker;
  private readonly remoteDispatchWaitMs: number;
  /** On the runtime's clock, so a simulation's virtual time drives it like every other timer. */
  private idleTimer: TimerHandle | null = null;
  private readonly bus: NodeBus;
  /** Sites to announce at the end of this turn. */
  private readonly announcing = new Set<string>();
  private closed = false;
  /** Dispatches begun (a queue read's bind, or a thread offered to an activation) and not yet settled. */
  private dispatching = 0;
  private dispatchesSettled: (() => void) | null = null;
  private readonly dispatchLatency = new Set<(site: string, ms: number) => void>();

  constructor(
    private readonly grid: Grid,
    private readonly sessions: PilotSessions,
    private readonly sites: SiteGate,
    private readonly options: ThreadBinderOptions,
  ) {
    this.heads = new SharedHeadReads((queue, count) => grid.runtime.readIndex(queue, 0, count));
    this.shares = new SharePicker(grid.runtime, grid.ctx.settings, grid.ctx.settings.liveJobsMaxAgeMs);
    this.remoteDispatchWaitMs = options.remoteDispatchWaitMs ?? 2 * grid.runtime.leaseMs + 1000;
    this.bus = options.bus ?? new LocalNodeBus();
    grid.setThreadOffer((entry, nowMs) => this.offerThread(entry, nowMs));
    // A job joined a site's queue on a shard of this node (its commit landed): waiting threads may take it.
    grid.runtime.local.onChange((key, _member, score) => {
      if (score === null) return;
      const queue = queueNames.siteQueueParts(key);
      if (queue === null) return;
      this.heads.changed(key);
      this.scheduleFill(queue.site);
      this.announceWork(queue.site);
    });
    this.bus.subscribe(SITE_WORK_TOPIC, (message) => {
      for (const site of message.split("\n")) {
        if ((this.sessions.readyBySite.get(site)?.size ?? 0) > 0) this.scheduleFill(site);
      }
    });
    grid.runtime.onTransitions((transitions) => this.heardCommits(transitions));
    this.bus.subscribe(JOB_SENT_TOPIC, (message) => {
      for (const line of message.split("\n")) {
        const [jobId, pilotId, thread] = line.split(" ");
        if (jobId && pilotId && (thread === "primary" || thread === "secondary"))
          void this.pushIfUnheard(jobId, pilotId, thread);
      }
    });
    this.scheduleIdlePoll();
  }

  /**
   * Tells the other nodes, once per turn, the sites whose queues on this
   * node's shards gained jobs: their idle threads there look at once instead
   * of at their next poll. A node that owns every shard has no one to tell.
   */
  private announceWork(site: string): void {
    if (this.grid.runtime.ownsAllShards()) return;
    this.announcing.add(site);
    if (this.announcing.size > 1) return;
    setImmediate(() => {
      const sites = [...this.announcing];
      this.announcing.clear();
      this.bus.publish(SITE_WORK_TOPIC, sites.join("\n"));
    });
  }

  /**
   * Dispatches committed here for pilots this node does not hold are told
   * to every node: the node that asked may have given up its wait, or died,
   * and the pilot may be connected anywhere now. Whoever holds the pilot
   * pushes the job if that thread waits for work and was not given it.
   */
  private heardCommits(transitions: readonly CommittedTransition[]): void {
    let lines = "";
    for (const { actor, entry } of transitions) {
      if (
        entry.refused ||
        entry.event.type !== "dispatch" ||
        entry.to !== "sent" ||
        !actor.startsWith("job/")
      )
        continue;
      const { pilotId, thread } = entry.event as { pilotId?: string; thread?: string };
      if (!pilotId || !thread) continue;
      const jobId = actor.slice("job/".length);
      if (this.sessions.get(pilotId)) {
        void this.pushIfUnheard(jobId, pilotId, thread as Thread);
        continue;
      }
      if (!this.grid.runtime.ownsAllShards()) lines += `${lines ? "\n" : ""}${jobId} ${pilotId} ${thread}`;
    }
    if (lines) this.bus.publish(JOB_SENT_TOPIC, lines);
  }

  /**
   * A job committed as sent to a pilot of this node whose thread still waits
   * for work and was not pushed it (its dispatch outlived the wait of the
   * thread that asked, or of a node that died): pushed now, so it does not
   * sit in `sent` until its watchdog. A thread that moved on to other work
   * leaves it to the watchdog.
   */
  private async pushIfUnheard(jobId: string, pilotId: string, thread: Thread): Promise<void> {
    const entry = this.sessions.get(pilotId);
    if (!entry || entry.pushed.has(jobId) || !entry.ready.has(thread) || !entry.session.open) return;
    this.sessions.markBusy(entry, thread);
    const job = await readContext(this.grid.ctx, "job", jobId).catch(() => null);
    if (job?.state === "sent" && job.context.pilot?.pilotId === pilotId && !entry.pushed.has(jobId)) {
      this.push(entry, thread, job.context, performance.now());
      return;
    }
    if (entry.session.open && !entry.draining && this.sessions.isCurrent(entry))
      this.sessions.markReady(entry, thread);
  }

  private scheduleIdlePoll(): void {
    if (this.closed) return;
    const clock = this.grid.runtime.clock;
    this.idleTimer = clock.setTimer(() => {
      for (const [site, ready] of this.sessions.readyBySite) if (ready.size > 0) void this.fillSite(site);
      this.scheduleIdlePoll();
    }, this.options.idlePollMs);
  }

  /**
   * Binds no more jobs, then resolves once every dispatch already on its way
   * has committed and its push was written (or `maxWaitMs` passed). A node
   * that drains closes its pilots' sessions after this: a job committed as
   * sent to a pilot whose session closed first never reaches it, and waits
   * for the sent watchdog (5 minutes) to be failed and retried.
   */
  close(maxWaitMs = 5_000): Promise<void> {
    this.closed = true;
    if (this.idleTimer) this.grid.runtime.clock.clearTimer(this.idleTimer);
    if (this.dispatching === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.dispatchesSettled = null;
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      timer.unref?.();
      this.dispatchesSettled = done;
    });
  }

  private settleDispatch(): void {
    this.dispatching--;
    if (this.dispatching === 0) this.dispatchesSettled?.();
  }

  /** Observes activation -> push latency (metrics, benchmarks). */
  onDispatch(listener: (site: string, ms: number) => void): () => void {
    this.dispatchLatency.add(listener);
    return () => this.dispatchLatency.delete(listener);
  }

  /**
   * Offers the site's queue to its idle threads, pilot after pilot, until a
   * primary thread finds nothing to take: it looks at every lane, so the
   * threads after it would find nothing either (each would cost a queue read).
   */
  private async fillSite(site: string): Promise<void> {
    // A copy: a thread that finds nothing asks again, and must not be offered the queue twice here.
    for (const entry of [...(this.sessions.readyBySite.get(site) ?? [])]) {
      if (entry.ready.size === 0) continue;
      if ((await this.fillPilot(entry)) === "queue empty") return;
    }
  }

  /** Gives each of the pilot's waiting threads a job of its site's queues, if there is one. */
  async fillPilot(entry: PilotEntry): Promise<"queue empty" | undefined> {
    let outcome: "queue empty" | undefined;
    for (const thread of [...entry.ready]) {
      if (!entry.ready.has(thread) || entry.draining || !entry.session.open) continue;
      this.sessions.markBusy(entry, thread);
      const pushed = await this.dispatchTo(entry, thread).catch((err: unknown) => {
        this.options.log.error(
          { pilotId: entry.session.pilotId, err: (err as Error).message },
          "dispatch failed",
        );
        return false;
      });
      if (!pushed && thread === "primary") outcome = "queue empty";
      if (!pushed && entry.session.open && !entry.draining) this.sessions.markReady(entry, thread);
    }
    return outcome;
  }

  /**
   * Binds the best fitting job of the site to one thread and pushes it. The
   * job actor is the arbiter: its `dispatch` is accepted once, so two threads
   * (on any nodes) can never hold one job. The queue is what the jobs' states
   * say (their projections): the shards this node owns in memory first, then,
   * on a grid of several nodes, the others' from the store. The site's
   * shares are looked at in fair-share order (`SharePicker`), each share's
   * lanes production first, each lane by priority then age.
   */
  private async dispatchTo(entry: PilotEntry, thread: Thread): Promise<boolean> {
    const site = entry.session.site;
    const gate = await this.sites.fresh(site);
    if (this.drainsNow(entry, gate) || gate.status === "offline") return false;
    const lanes = thread === "primary" ? PRIMARY_LANES : SECONDARY_LANES;
    for (const share of this.shares.order(site, lanes)) {
      for (const lane of lanes) {
        const queue = queueNames.siteQueue(site, lane, share);
        const looked = new Set<string>();
        const done = this.shares.begin(site, share);
        try {
          if (await this.dispatchLocal(entry, thread, queue, looked)) return true;
          if (!this.grid.runtime.ownsAllShards() && (await this.dispatchRemote(entry, thread, queue, looked)))
            return true;
        } finally {
          done();
        }
      }
    }
    return false;
  }

  /** From the queue of the shards this node owns, held in memory: no read. */
  private async dispatchLocal(
    entry: PilotEntry,
    thread: Thread,
    queue: string,
    looked: Set<string>,
  ): Promise<boolean> {
    for (;;) {
      const candidates: string[] = [];
      this.grid.runtime.local.scan(queue, (member) => {
        if (!looked.has(member) && !this.claiming.has(member)) candidates.push(member);
        return candidates.length < LOCAL_CANDIDATES;
      });
      if (candidates.length === 0) return false;
      for (const jobId of candidates) {
        looked.add(jobId);
        if (await this.claimAndBind(entry, thread, jobId)) return true;
      }
    }
  }

  /** From every shard's queue in the store: the jobs of other nodes' shards. */
  private async dispatchRemote(
    entry: PilotEntry,
    thread: Thread,
    queue: string,
    looked: Set<string>,
  ): Promise<boolean> {
    // Jobs other local threads are binding, and the ones looked at already, still sit at the
    // head of the queue: when they are all a read finds, read past them (further each time:
    // threads reading at once take what each read). Nothing to take only when the lane holds
    // nothing more.
    let count = 16;
    for (;;) {
      const head = await this.heads.head(queue, count);
      const candidates = head.filter((c) => !looked.has(c.member) && !this.claiming.has(c.member));
      if (candidates.length === 0) {
        if (head.length < count) return false;
        // Powers of two, so the threads reading past the same head ask for the same read and share it.
        count = 2 ** Math.ceil(Math.log2(Math.max(2 * count, 16 + this.claiming.size + looked.size)));
        continue;
      }
      for (const candidate of candidates) {
        looked.add(candidate.member);
        if (await this.claimAndBind(entry, thread, candidate.member)) return true;
      }
    }
  }

  private async claimAndBind(entry: PilotEntry, thread: Thread, jobId: string): Promise<boolean> {
    if (this.claiming.has(jobId)) return false;
    this.claiming.add(jobId);
    try {
      return (await this.bind(entry, thread, jobId)) === "pushed";
    } finally {
      this.claiming.delete(jobId);
    }
  }

  private async bind(entry: PilotEntry, thread: Thread, jobId: string): Promise<"pushed" | "unfit" | "gone"> {
    if (this.closed) return "gone";
    this.dispatching++;
    try {
      return await this.bindOpen(entry, thread, jobId);
    } finally {
      this.settleDispatch();
    }
  }

  private async bindOpen(
    entry: PilotEntry,
    thread: Thread,
    jobId: string,
  ): Promise<"pushed" | "unfit" | "gone"> {
    const startedMs = performance.now();
    const session = entry.session;
    // Only a secondary thread (the job's walltime) or a site in test (whether it is a test job)
    // must look at the job first; else the dispatch itself is the check, and a job that is no
    // longer activated refuses it.
    const status = this.sites.cached(session.site)?.status ?? "online";
    if (thread === "secondary" || status === "test") {
      const current = await readContext(this.grid.ctx, "job", jobId, { resident: true });
      if (current?.state !== "activated") return "gone";
      if (
        thread === "secondary" &&
        current.context.resources.walltimeSec > this.options.shortAnalysisWalltimeSec
      )
        return "unfit";
      if (!siteTakes(status, current.context)) return "unfit";
    }
    let job: JobContext;
    try {
      const result = await this.grid.runtime.send(
        refs.job(jobId),
        { type: "dispatch", pilotId: session.pilotId, thread, atMs: this.grid.runtime.clock.nowMs() },
        {
          eventId: `dispatch:${jobId}:${session.pilotId}:${thread}`,
          cause: `dispatch:${session.pilotId}`,
          trusted: true,
        },
      );
      if (result.outcome === "committed") {
        job = result.state.context as JobContext;
      } else {
        // Committed before (a duplicate of our own dispatch) or on another node: it is ours only if the job says so.
        const bound = await this.boundTo(jobId, session.pilotId);
        if (!bound) return "gone";
        job = bound;
      }
    } catch {
      // Another thread won it, or it was killed meanwhile.
      return "gone";
    }
    this.push(entry, thread, job, startedMs);
    return "pushed";
  }

  /** Sends a bound job to its thread (the job is recorded as the pilot's by its own commit). */
  private push(entry: PilotEntry, thread: Thread, job: JobContext, startedMs: number): void {
    const session = entry.session;
    entry.pushed.set(job.jobId, job.attempt);
    if (
      !session.push({
        type: "job.push",
        thread,
        job: jobSpec(job, this.options.publicUrl, this.grid.ctx.storage),
      })
    ) {
      // The socket is gone or full: the job is sent but unheard of; the sent watchdog fails it and it is retried.
      this.options.log.warn({ pilotId: session.pilotId, jobId: job.jobId }, "push refused by the session");
      return;
    }
    const ms = performance.now() - startedMs;
    for (const listener of this.dispatchLatency) listener(session.site, ms);
  }

  /**
   * A job being activated (asked inline, before its commit): a thread of its
   * site that waits for work and fits it is bound to it at once, so the job
   * never waits in the queue. The thread is taken now and given back if the
   * dispatch does not commit.
   */
  private offerThread(job: QueueEntry, nowMs: number): ThreadOffer | null {
    if (this.closed || !job.site) return null;
    const gate = this.sites.cached(job.site);
    if (gate && !siteTakes(gate.status, job)) return null;
    const waiting = this.sessions.readyBySite.get(job.site);
    if (!waiting || waiting.size === 0) return null;
    const short =
      job.type === "analysis" && job.resources.walltimeSec <= this.options.shortAnalysisWalltimeSec;
    let chosen: { entry: PilotEntry; thread: Thread } | null = null;
    for (const entry of waiting) {
      if (entry.draining || !entry.session.open) continue;
      // A short analysis job goes to a secondary thread when one waits: primaries stay free for production.
      if (short && entry.ready.has("secondary")) {
        chosen = { entry, thread: "secondary" };
        break;
      }
      if (entry.ready.has("primary")) chosen ??= { entry, thread: "primary" };
      if (chosen && !short) break;
    }
    if (!chosen) return null;
    const { entry, thread } = chosen;
    this.sessions.markBusy(entry, thread);
    const startedMs = performance.now();
    this.dispatching++;
    return {
      dispatch: { type: "dispatch", pilotId: entry.session.pilotId, thread, atMs: nowMs },
      settled: (committed: boolean, state: MachineState | null) => {
        this.settleDispatch();
        if (committed && state) {
          this.push(entry, thread, state.context as JobContext, startedMs);
          return;
        }
        if (!entry.session.open || entry.draining || !this.sessions.isCurrent(entry)) return;
        this.sessions.markReady(entry, thread);
        void this.fillPilot(entry);
      },
    };
  }

  /** A pilot that was connected when its site was drained is drained instead of given work. */
  private drainsNow(entry: PilotEntry, gate: SiteGateView): boolean {
    if (gate.drainAtMs === null || entry.connectedAtMs > gate.drainAtMs) return false;
    if (!entry.draining) this.sessions.drain(entry, gate.drainReason);
    return true;
  }

  /** Fills a site's waiting threads once per turn however many of its jobs were queued in it. */
  private scheduleFill(site: string): void {
    if (this.fillsDue.has(site)) return;
    this.fillsDue.add(site);
    if (this.fillsDue.size > 1) return;
    setImmediate(() => {
      const sites = [...this.fillsDue];
      this.fillsDue.clear();
      for (const s of sites) void this.fillSite(s);
    });
  }

  /**
   * The job's context if it is dispatched to this pilot, waiting for a
   * dispatch queued on another node to be decided there (the job leaves
   * `activated`: sent to this pilot, or to another).
   */
  private async boundTo(jobId: string, pilotId: string): Promise<JobContext | null> {
    const poll = {
      firstMs: REMOTE_DISPATCH_FIRST_POLL_MS,
      maxMs: REMOTE_DISPATCH_MAX_POLL_MS,
      waitMs: this.remoteDispatchWaitMs,
    };
    const decided = await pollWithBackoff(this.grid.runtime.clock, poll, async () => {
      const job = await readContext(this.grid.ctx, "job", jobId);
      // Bound to this pilot only while just sent to it: a job that went on (or ended) since is not pushed again.
      if (!job || job.state === "activated") return undefined;
      return job.state === "sent" && job.context.pilot?.pilotId === pilotId ? job.context : null;
    });
    if (decided !== undefined) return decided;
    this.options.log.warn(
      { jobId, pilotId, waitedMs: this.remoteDispatchWaitMs },
      "a dispatch queued on another node was not decided in time: its sent watchdog covers it",
    );
    return null;
  }
}
