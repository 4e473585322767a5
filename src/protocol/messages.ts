/**
 * Every message on the pilot WebSocket: the single source of the types on
 * both sides. Frames are binary msgpack maps (`useRecords: false`) with a
 * `type` (`noun.verb`), a protocol version `v` and a frame `id`. See
 * docs/protocol.md for each message with an example.
 */
import { z } from "zod";

/**
 * The versions this code speaks, oldest first. They differ only in the `ack`
 * frame: version 1 acknowledges one frame per `ack` (`ref`), version 2 every
 * frame the server finished handling in one turn (`refs`).
 */
export const PROTOCOL_VERSIONS = [1, 2] as const;
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];
/** The newest version: what this code's pilots prefer and the server picks when offered. */
export const PROTOCOL_VERSION = 2 satisfies ProtocolVersion;

/** The WebSocket subprotocol that negotiates a version: offered by the pilot, echoed by the server. */
export function subprotocolOf(version: ProtocolVersion): string {
  return `panda.v${version}`;
}

export const PROTOCOL_SUBPROTOCOL = subprotocolOf(PROTOCOL_VERSION);

/** Every subprotocol this code speaks, newest first (the pilot's order of preference). */
export const PROTOCOL_SUBPROTOCOLS: readonly string[] = [...PROTOCOL_VERSIONS].reverse().map(subprotocolOf);

/** The version a subprotocol stands for, if this code speaks it. */
export function versionOfSubprotocol(subprotocol: string): ProtocolVersion | undefined {
  return PROTOCOL_VERSIONS.find((version) => subprotocolOf(version) === subprotocol);
}

/** The newest version among offered subprotocols, if this code speaks any of them. */
export function newestOffered(offered: Iterable<string>): ProtocolVersion | undefined {
  let newest: ProtocolVersion | undefined;
  for (const subprotocol of offered) {
    const version = versionOfSubprotocol(subprotocol);
    if (version !== undefined && (newest === undefined || version > newest)) newest = version;
  }
  return newest;
}

/** Most frame ids one version 2 `ack` lists; more handled in one turn take more acks. */
export const MAX_REFS_PER_ACK = 256;

const base = {
  /** Any version this code speaks; the receiver checks it is the one its socket negotiated. */
  v: z.literal(PROTOCOL_VERSIONS),
  /** Unique per sender and session; replies name it in `ref`. */
  id: z.string().min(1).max(64),
};

const jobRef = {
  jobId: z.string().min(1).max(256),
  /** Reports for another attempt than the server's current one are answered with a kill, never applied. */
  attempt: z.number().int().min(1),
};

export const threadSchema = z.enum(["primary", "secondary"]);
export type Thread = z.infer<typeof threadSchema>;

export const errorClassSchema = z.enum([
  "pilot",
  "payload",
  "stagein",
  "stageout",
  "lostHeartbeat",
  "timeout",
  "killed",
  "system",
  "brokerage",
]);
export type ErrorClass = z.infer<typeof errorClassSchema>;

export const fileReportSchema = z.object({
  lfn: z.string().min(1).max(512),
  sizeBytes: z.number().int().nonnegative(),
  checksum: z.string().min(1).max(80),
});
export type FileReport = z.infer<typeof fileReportSchema>;

// Pilot -> server.

export const pilotHelloSchema = z.object({
  ...base,
  type: z.literal("pilot.hello"),
  site: z.string().min(1).max(128),
  hostname: z.string().max(255).default(""),
  cores: z.number().int().min(1).max(4096),
  memoryMb: z.number().int().nonnegative(),
  diskMb: z.number().int().nonnegative(),
  walltimeLeftSec: z.number().int().nonnegative(),
  multitask: z.boolean(),
  /** Present when reconnecting: the id and token from the last `pilot.welcome`. */
  resume: z.object({ pilotId: z.string().min(1).max(128), token: z.string().min(16).max(256) }).optional(),
  agent: z.string().max(128).default("unknown"),
});

export const pilotReadySchema = z.object({
  ...base,
  type: z.literal("pilot.ready"),
  /** A thread with nothing to do: late binding asks for work only when it can run it. */
  thread: threadSchema,
});

export const pilotDrainingSchema = z.object({
  ...base,
  type: z.literal("pilot.draining"),
  reason: z.string().max(512).default(""),
});

export const jobAckSchema = z.object({ ...base, type: z.literal("job.ack"), ...jobRef });

export const jobStatusSchema = z.object({
  ...base,
  type: z.literal("job.status"),
  ...jobRef,
  state: z.enum(["starting", "running"]),
});

export const jobHeartbeatSchema = z.object({ ...base, type: z.literal("job.heartbeat"), ...jobRef });

export const jobEndedSchema = z.object({
  ...base,
  type: z.literal("job.ended"),
  ...jobRef,
  outcome: z.enum(["finished", "failed", "cancelled"]),
  exitCode: z.number().int().nullable(),
  errorClass: errorClassSchema.optional(),
  errorCode: z.number().int().optional(),
  errorMessage: z.string().max(4096).optional(),
  outputs: z.array(fileReportSchema).max(10_000).default([]),
  log: fileReportSchema.optional(),
  /** A build job's product (the spec's `build`): the sandbox the pilot packed and uploaded. */
  sandbox: z
    .object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), sizeBytes: z.number().int().positive() })
    .optional(),
});

const pilotMessageSchemas = [
  pilotHelloSchema,
  pilotReadySchema,
  pilotDrainingSchema,
  jobAckSchema,
  jobStatusSchema,
  jobHeartbeatSchema,
  jobEndedSchema,
] as const;

export const pilotMessageSchema = z.discriminatedUnion("type", pilotMessageSchemas);
export type PilotMessage = z.infer<typeof pilotMessageSchema>;
export type PilotMessageInput = z.input<typeof pilotMessageSchema>;
export type PilotMessageType = PilotMessage["type"];

/**
 * The schema of each pilot message by its `type`, for a receiver that picks
 * the schema itself (cheaper than the union trying its way to it).
 */
export const pilotMessageSchemaByType: ReadonlyMap<string, z.ZodType<PilotMessage>> = new Map(
  pilotMessageSchemas.map((schema) => [schema.shape.type.value, schema]),
);

// Server -> pilot.

export const pilotWelcomeSchema = z.object({
  ...base,
  type: z.literal("pilot.welcome"),
  ref: z.string(),
  pilotId: z.string(),
  /** Secret: present it in `pilot.hello.resume` to take this session back after a dropped socket. */
  resumeToken: z.string(),
  heartbeatMs: z.number().int().positive(),
  /**
   * The session's frame limit: frames beyond `burst` at once, then beyond
   * `perSec` on average, are dropped with `RATE_LIMITED`. A pilot paces its
   * frames to stay under it. Absent from servers that predate it.
   */
  frameRate: z.object({ perSec: z.number().positive(), burst: z.number().int().positive() }).optional(),
  /** Jobs the server believes this pilot runs (after a resume): the pilot kills any others it has. */
  jobs: z.array(z.object({ ...jobRef, thread: threadSchema })),
});

export const jobSpecSchema = z.object({
  ...jobRef,
  taskId: z.string(),
  type: z.enum(["production", "analysis"]),
  command: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).default({}),
  walltimeSec: z.number().int().positive(),
  /** Files to fetch into the work directory before the payload starts. */
  inputs: z.array(fileReportSchema.extend({ url: z.string() })),
  /** Where outputs and the log go: PUT `${uploadUrl}/${lfn}` with the checksum header. */
  uploadUrl: z.string(),
  /** Output files the payload is expected to write in its work directory. */
  outputs: z.array(z.string()),
  /**
   * The user's code: fetch `url` as an input is fetched (http(s): GET with
   * the pilot's credential; root://: xrdcp from the XRootD server), check
   * size and sha256, unpack the tar.gz into the work directory within the
   * limits (refusing unsafe entries: job fails with class stagein), then run.
   */
  sandbox: z
    .object({
      url: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      sizeBytes: z.number().int().positive(),
      maxUnpackedBytes: z.number().int().positive(),
      maxEntries: z.number().int().positive(),
    })
    .optional(),
  /**
   * A build job: once the command succeeded, pack the work directory (less
   * the payload's log) as a sandbox of at most `maxBytes`, PUT it to
   * `${uploadUrl}/<sha256>?job=<jobId>&attempt=<attempt>` and report it in
   * `job.ended`'s `sandbox`.
   */
  build: z.object({ uploadUrl: z.string(), maxBytes: z.number().int().positive() }).optional(),
});
export type JobSpec = z.infer<typeof jobSpecSchema>;

export const jobPushSchema = z.object({
  ...base,
  type: z.literal("job.push"),
  thread: threadSchema,
  job: jobSpecSchema,
});

export const jobKillSchema = z.object({
  ...base,
  type: z.literal("job.kill"),
  ...jobRef,
  reason: z.string(),
});

export const pilotDrainSchema = z.object({ ...base, type: z.literal("pilot.drain"), reason: z.string() });

/**
 * Confirms frames were handled: a report durably applied (or knowingly
 * ignored as a duplicate); the pilot may forget it. Version 1 names one frame
 * per ack, version 2 every frame of the session handled in one turn.
 */
export const ackSchema = z.discriminatedUnion("v", [
  z.object({ ...base, v: z.literal(1), type: z.literal("ack"), ref: z.string() }),
  z.object({
    ...base,
    v: z.literal(2),
    type: z.literal("ack"),
    refs: z.array(z.string()).min(1).max(MAX_REFS_PER_ACK),
  }),
]);
export type AckFrame = z.infer<typeof ackSchema>;

/** The frame ids an ack acknowledges, whichever its version. */
export function ackedRefs(ack: AckFrame): readonly string[] {
  return ack.v === 1 ? [ack.ref] : ack.refs;
}

export const protocolErrorCodes = [
  "MALFORMED",
  "SCHEMA",
  "TOO_LARGE",
  "RATE_LIMITED",
  "UNAUTHORIZED",
  "NOT_YOUR_JOB",
  "STALE_ATTEMPT",
  "NOT_READY",
  "INTERNAL",
] as const;
export type ProtocolErrorCode = (typeof protocolErrorCodes)[number];

export const errorFrameSchema = z.object({
  ...base,
  type: z.literal("error"),
  /** The id of the frame that caused it, when it could be read. */
  ref: z.string().optional(),
  code: z.enum(protocolErrorCodes),
  message: z.string(),
});

export const serverMessageSchema = z.discriminatedUnion("type", [
  pilotWelcomeSchema,
  jobPushSchema,
  jobKillSchema,
  pilotDrainSchema,
  ackSchema,
  errorFrameSchema,
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;

/** WebSocket close codes the server uses (4000-4999 are the application's). */
export const closeCodes = {
  protocolError: 1002,
  policyViolation: 1008,
  tooLarge: 1009,
  /** The server failed to set the session up (its hello handler failed); reconnect later. */
  internalError: 1011,
  serverShutdown: 1001,
  unauthorized: 4001,
  replaced: 4002,
  rateLimited: 4003,
  heartbeatTimeout: 4004,
} as const;
