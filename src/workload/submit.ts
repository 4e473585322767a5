/**
 * Task submission: a task as users send it (CLI, API), validated, its input
 * resolved and split into jobs, and created, idempotently per task id, so a
 * client that resubmits after a lost answer makes no second task.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { payloadSchema, resourcesSchema, retryPolicySchema, watchdogsSchema } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import { jobTypeSchema, nameSchema } from "../actors/shared/schemas.js";
import { taskListed } from "../actors/task/global-projections.js";
import type { TaskInput } from "../actors/task/schema.js";
import { shareOf } from "../brokerage/shares.js";
import { describeIssues } from "../protocol/codec.js";
import { type SandboxRef, sandboxRefSchema } from "../sandbox/sandbox-ref.js";
import { SandboxError } from "../sandbox/sandbox-store.js";
import { readContext, type WorkloadContext } from "./context.js";
import { WorkloadError } from "./errors.js";
import { writeIndexEffect } from "./global-indexes.js";

/** A task as users submit it (CLI, API); everything else is derived. */
export const taskSubmissionSchema = z
  .object({
    /** Chosen by the caller for idempotent resubmission; generated otherwise. */
    taskId: nameSchema.optional(),
    name: z.string().max(200).optional(),
    group: z.string().min(1).nullable().default(null),
    type: jobTypeSchema.default("production"),
    priority: z.number().int().min(-1_000_000).max(1_000_000).default(100),
    /** Run only at this site. */
    site: nameSchema.nullable().default(null),
    /** A test job: the only kind a site in status `test` takes (and online sites take it too). */
    test: z.boolean().default(false),
    resources: resourcesSchema.partial().default({}),
    release: z.string().min(1).nullable().default(null),
    /** Set only from `sandbox` and `build` below: a payload's own `sandbox`, `build` and `producesSandbox` are dropped. */
    payload: payloadSchema.omit({ sandbox: true, build: true, producesSandbox: true }),
    /** An uploaded sandbox of the submitter's (PUT /sandboxes/<sha256>), unpacked into each job's directory. */
    sandbox: sandboxRefSchema.optional(),
    /**
     * pathena's build step: at each site the jobs are placed at, one build job
     * runs this command in the unpacked sandbox; the directory it leaves is
     * the sandbox the site's jobs run in.
     */
    build: z.object({ command: z.array(z.string().min(1)).min(1) }).optional(),
    input: z
      .object({ dataset: nameSchema, filesPerJob: z.number().int().min(1).max(10_000).default(1) })
      .optional(),
    /** Number of jobs for a task without input files. */
    jobs: z.number().int().min(1).max(100_000).optional(),
    outputDataset: nameSchema.optional(),
    destination: nameSchema.nullable().default(null),
    retry: retryPolicySchema.partial().optional(),
    watchdogs: watchdogsSchema.partial().optional(),
  })
  .refine((s) => !(s.input && s.jobs), {
    message: "give either input (files per job) or jobs (a count), not both",
  });
export type TaskSubmission = z.input<typeof taskSubmissionSchema>;

const DEFAULT_RESOURCES = { cores: 1, memoryMb: 2000, diskMb: 5000, walltimeSec: 3600 };

export function newTaskId(nowMs: number): string {
  return `t-${nowMs.toString(36)}${randomBytes(3).toString("hex")}`;
}

/** One entry per job: its share of the input dataset's files, in lfn order. */
async function splitInputs(
  ctx: WorkloadContext,
  input: NonNullable<z.output<typeof taskSubmissionSchema>["input"]>,
) {
  const dataset = await readContext(ctx, "dataset", input.dataset);
  if (!dataset) {
    throw new WorkloadError("DATASET_NOT_FOUND", `input dataset ${input.dataset} does not exist`, {
      dataset: input.dataset,
    });
  }
  const lfns = Object.keys(dataset.context.files).sort();
  if (lfns.length === 0) {
    throw new WorkloadError("DATASET_EMPTY", `input dataset ${input.dataset} has no files`, {
      dataset: input.dataset,
    });
  }
  const jobs: TaskInput["jobs"] = [];
  for (let i = 0; i < lfns.length; i += input.filesPerJob) {
    jobs.push({
      inputs: lfns.slice(i, i + input.filesPerJob).map((lfn) => ({
        lfn,
        ...dataset.context.files[lfn]!,
        dataset: input.dataset,
      })),
    });
  }
  return jobs;
}

/** Records the task's use of its sandbox (which must be the user's) and gives it the grid's unpacking limits. */
async function useSandbox(
  ctx: WorkloadContext,
  ref: SandboxRef,
  user: string,
  taskId: string,
  nowMs: number,
) {
  const store = ctx.sandboxes;
  if (store === null) {
    throw new WorkloadError("BAD_REQUEST", "bad task: sandbox: this grid keeps no sandboxes", {
      field: "sandbox",
    });
  }
  try {
    await store.useForTask(ref, user, taskId, nowMs);
  } catch (err) {
    if (err instanceof SandboxError) throw new WorkloadError("NOT_FOUND", err.message, err.details);
    throw err;
  }
  return { ...ref, maxUnpackedBytes: store.config.maxUnpackedBytes, maxEntries: store.config.maxEntries };
}

/**
 * Validates a submission, resolves its input dataset, splits it into jobs and
 * creates the task actor (which creates its jobs). Idempotent per task id.
 * Accepted means committed: the jobs are created as admission control lets
 * them in, behind `queuedAhead` jobs of earlier submissions this node holds.
 */
export async function submitTask(
  ctx: WorkloadContext,
  raw: unknown,
  user: string,
): Promise<{ taskId: string; jobs: number; queuedAhead: number }> {
  const parsed = taskSubmissionSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new WorkloadError(
      "BAD_REQUEST",
      `bad task: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      {
        issues,
      },
    );
  }
  const spec = parsed.data;
  const nowMs = ctx.runtime.clock.nowMs();
  const taskId = spec.taskId ?? newTaskId(nowMs);
  if (spec.site && !(await readContext(ctx, "site", spec.site))) {
    throw new WorkloadError("NOT_FOUND", `site ${spec.site} does not exist`, { site: spec.site });
  }
  if (spec.build && !spec.sandbox) {
    throw new WorkloadError("BAD_REQUEST", "bad task: build: a build needs a sandbox to build from", {
      field: "build",
    });
  }
  const sandbox = spec.sandbox ? await useSandbox(ctx, spec.sandbox, user, taskId, nowMs) : undefined;
  const payload = {
    ...spec.payload,
    ...(sandbox ? { sandbox } : {}),
    ...(spec.build && ctx.sandboxes
      ? { build: { ...spec.build, maxBytes: ctx.sandboxes.config.maxBytes } }
      : {}),
  };
  const jobs = spec.input
    ? await splitInputs(ctx, spec.input)
    : Array.from({ length: spec.jobs ?? 1 }, () => ({ inputs: [] }));
  const input: TaskInput = {
    taskId,
    user,
    group: spec.group,
    type: spec.type,
    priority: spec.priority,
    resources: { ...DEFAULT_RESOURCES, ...spec.resources },
    release: spec.release,
    outputs: { dataset: spec.outputDataset ?? `${taskId}.out`, destination: spec.destination },
    payload,
    requestedSite: spec.site,
    ...(spec.test ? { test: true } : {}),
    share: shareOf({ user, group: spec.group ?? null, type: spec.type }, ctx.settings.shares),
    ...(spec.retry ? { retry: spec.retry } : {}),
    ...(spec.watchdogs ? { watchdogs: spec.watchdogs } : {}),
    jobs,
    atMs: nowMs,
  };
  const queuedAhead = ctx.runtime.intakeQueued();
  // Built from the submission checked above: the task's event schema need not check it again. Applied
  // before the answer wherever the task's shard is, so that the submitter reads it through any node.
  await ctx.runtime.sendApplied(
    refs.task(taskId),
    { type: "create", input },
    { eventId: `submit:${taskId}`, trusted: true },
  );
  // The create's commit carries this entry in its outbox; written here too so the caller lists what it submitted.
  await writeIndexEffect(ctx.index, taskListed(taskId, nowMs));
  return { taskId, jobs: jobs.length, queuedAhead };
}
