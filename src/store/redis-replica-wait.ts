/**
 * A write made durable on replicas before its caller hears of it: the write
 * script and `WAIT replicas timeout` go out in one pipeline on the connection
 * of the master that owns the script's keys, so WAIT covers that very write.
 *
 * Why: Redis replicates asynchronously. A master that dies right after it
 * answered a commit may not have passed it on, and the replica promoted in
 * its place never saw it: a transition a pilot was told of is gone. With WAIT
 * the answer comes only once `replicas` replicas have the write, and a
 * failover promotes one of them (with one replica per master, the one).
 */
import type { Cluster, Redis } from "ioredis";
import { StoreError } from "./errors.js";

type RedisClient = Redis | Cluster;
type ScriptArg = string | number | Buffer;

export interface ReplicaWait {
  /** How many replicas must have a write before it counts as done. */
  replicas: number;
  /** How long WAIT blocks for them; fewer by then fails the write (which is retried). */
  timeoutMs: number;
}

/** The default bound of a WAIT: well above a healthy replica's lag, well below a shard lease. */
export const DEFAULT_REPLICA_WAIT_TIMEOUT_MS = 1000;

export interface WriteScriptCall {
  sha: string;
  keys: string[];
  args: ScriptArg[];
  /** The script as a plain call (EVALSHA then EVAL, redirections followed): for when the pipeline cannot take it. */
  runAlone(): Promise<unknown>;
}

/**
 * Errors after which the write goes again by itself, then WAIT: a Cluster's
 * redirections and resharding (the pipeline does not follow them when the
 * WAIT beside the script succeeded), and a node that has not loaded the script.
 */
const RUN_ALONE_ERRORS = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|NOSCRIPT)\b/;

export async function waitedWrite(
  client: RedisClient,
  wait: ReplicaWait,
  call: WriteScriptCall,
): Promise<unknown> {
  const replies = await client
    .pipeline()
    .call("evalsha", [call.sha, call.keys.length, ...call.keys, ...call.args])
    .call("wait", wait.replicas, wait.timeoutMs)
    .exec();
  const [scriptError, reply] = replies?.[0] ?? [new Error("no reply to the write script"), null];
  if (scriptError) {
    if (!RUN_ALONE_ERRORS.test(scriptError.message)) throw scriptError;
    const aloneReply = await call.runAlone();
    await waitOnKeyOwner(client, call.keys[0]!, wait);
    return aloneReply;
  }
  const [waitError, acknowledged] = replies?.[1] ?? [new Error("no reply to WAIT"), null];
  if (waitError) throw waitError;
  checkAcknowledged(Number(acknowledged), wait);
  return reply;
}

/** WAIT on the connection to the master of `key`'s slot: a keyed no-op in the pipeline routes it there. */
async function waitOnKeyOwner(client: RedisClient, key: string, wait: ReplicaWait): Promise<void> {
  const replies = await client.pipeline().exists(key).call("wait", wait.replicas, wait.timeoutMs).exec();
  const [waitError, acknowledged] = replies?.[1] ?? [new Error("no reply to WAIT"), null];
  if (waitError) throw waitError;
  checkAcknowledged(Number(acknowledged), wait);
}

/**
 * Fewer replicas than asked: the write is on the master but not yet safe, so
 * it is not acknowledged. The caller retries it; every record carries its
 * event's id, so a retry of a write that did land finds it applied.
 */
function checkAcknowledged(acknowledged: number, wait: ReplicaWait): void {
  if (acknowledged >= wait.replicas) return;
  throw new StoreError(
    "UNAVAILABLE",
    `write reached ${acknowledged} of ${wait.replicas} replicas within ${wait.timeoutMs} ms (WAIT)`,
  );
}
