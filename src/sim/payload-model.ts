/**
 * The simulated payloads. A logical job's run time depends only on the seed
 * and the job (every attempt runs the same work); whether an attempt fails
 * depends on the seed, the attempt and the site's failure probabilities.
 * Neither depends on which pilot got it or when, so a change elsewhere in the
 * grid does not reshuffle the work itself.
 */
import type { ErrorClass } from "../actors/shared/schemas.js";
import type { JobType } from "../brokerage/types.js";
import { type Distribution, sample } from "./distribution.js";
import { RandomStream } from "./random.js";
import type { Scenario } from "./scenario.js";

/** The argv a simulated payload carries: the pilot finds the kind of work from it. */
export const SIM_PAYLOAD_COMMAND = "sim-payload";

/** What a kind of work does once a pilot runs it. */
export interface WorkKind {
  name: string;
  type: JobType;
  duration: Distribution;
  walltimeMs: number;
  outputSize: Distribution | null;
}

/** How one attempt goes, decided when the pilot gets it. */
export interface AttemptPlan {
  /** Payload run time if nothing goes wrong (the logical job's own, the same on every attempt). */
  durationMs: number;
  /** null: the attempt succeeds. */
  failure: {
    errorClass: Extract<ErrorClass, "pilot" | "payload" | "lostHeartbeat" | "stageout">;
    atFraction: number;
  } | null;
  outputBytes: number[];
}

export type SiteFailures = Scenario["sites"][number]["failures"];

/** What the model reads of a pushed job. */
export interface JobSpec {
  jobId: string;
  command: string[];
  outputs: string[];
}

export class PayloadModel {
  private readonly kinds = new Map<string, WorkKind>();

  constructor(private readonly seed: number) {}

  add(kind: WorkKind): void {
    this.kinds.set(kind.name, kind);
  }

  kindOf(spec: JobSpec): WorkKind {
    const name = spec.command[0] === SIM_PAYLOAD_COMMAND ? spec.command[1] : undefined;
    const kind = name === undefined ? undefined : this.kinds.get(name);
    if (!kind)
      throw new Error(`job ${spec.jobId} carries no simulated payload kind (${spec.command.join(" ")})`);
    return kind;
  }

  plan(spec: JobSpec, failures: SiteFailures): AttemptPlan {
    const kind = this.kindOf(spec);
    const logicalId = spec.jobId.slice(0, spec.jobId.lastIndexOf("."));
    const work = new RandomStream(this.seed, `work:${logicalId}`);
    const durationMs = Math.max(1000, Math.min(sample(kind.duration, work), kind.walltimeMs));
    const outputBytes = spec.outputs.map(() =>
      kind.outputSize ? Math.round(sample(kind.outputSize, work)) : 0,
    );
    const luck = new RandomStream(this.seed, `attempt:${spec.jobId}`);
    // One draw per class in a fixed order, so each probability is what the scenario says.
    const draws = {
      pilot: luck.chance(failures.pilot),
      lostHeartbeat: luck.chance(failures.lostHeartbeat),
      payload: luck.chance(failures.payload),
      stageout: luck.chance(failures.stageout),
    };
    const atFraction = luck.next();
    const errorClass = draws.pilot
      ? "pilot"
      : draws.lostHeartbeat
        ? "lostHeartbeat"
        : draws.payload
          ? "payload"
          : draws.stageout
            ? "stageout"
            : null;
    return { durationMs, failure: errorClass ? { errorClass, atFraction } : null, outputBytes };
  }
}

/** A stand-in checksum for a file that has no bytes: stable per lfn and in the format transfers accept. */
export function simChecksum(lfn: string): string {
  let a = 1;
  let b = 0;
  for (let i = 0; i < lfn.length; i++) {
    a = (a + lfn.charCodeAt(i)) % 65_521;
    b = (b + a) % 65_521;
  }
  return `adler32:${((b << 16) | a).toString(16).padStart(8, "0").slice(-8)}`;
}
