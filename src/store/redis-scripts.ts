/**
 * The store's Lua scripts, loaded from `lua/` once and called by name on an
 * ioredis client (EVALSHA, with EVAL on a node that has not seen the script),
 * and, when asked, each write made durable on replicas (WAIT) before its
 * caller hears of it.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";
import { StoreError } from "./errors.js";
import { type ReplicaWait, waitedWrite } from "./redis-replica-wait.js";

export type RedisClient = Redis | Cluster;
export type ScriptArg = string | number | Buffer;

/** Every Lua script of the store; each file's header names its KEYS, ARGV and replies. */
const SCRIPT_NAMES = [
  "commit",
  "acquire-lease",
  "set-lease-expiry",
  "import-actor",
  "append-inbox",
  "ack-outbox",
  "heartbeat-node",
  "load-actors",
  "read-indexed",
  "rebuild-indexes",
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

/**
 * The scripts that change state a caller then acts on (all but these): with a
 * replica wait, each is followed by WAIT. The node heartbeat is not among
 * them: a lost one is written again within its period.
 */
const NOT_WAITED: ReadonlySet<ScriptName> = new Set(["heartbeat-node", "load-actors", "read-indexed"]);
const WRITE_SCRIPTS: ReadonlySet<ScriptName> = new Set(SCRIPT_NAMES.filter((name) => !NOT_WAITED.has(name)));

type ScriptCall = (numberOfKeys: number, keysThenArgs: ScriptArg[]) => Promise<unknown>;

let sources: Map<ScriptName, string> | undefined;

/**
 * Read once per process. The files sit beside this module in `lua/`, in `src/`
 * as in `dist/` (the build copies them), so `import.meta.url` finds them in both.
 */
function scriptSources(): Map<ScriptName, string> {
  sources ??= new Map(
    SCRIPT_NAMES.map((name) => [name, readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8")]),
  );
  return sources;
}

/** `acquire-lease` -> `pandaAcquireLease`: prefixed so it cannot shadow a caller's own commands on a shared client. */
function commandName(name: ScriptName): string {
  return "panda" + name.replace(/(^|-)(\w)/g, (_, _dash: string, letter: string) => letter.toUpperCase());
}

/** Built once: the names are needed on every call, and a commit is a hot path. */
const COMMAND_NAMES = new Map(SCRIPT_NAMES.map((name) => [name, commandName(name)]));
const BINARY_COMMAND_NAMES = new Map(SCRIPT_NAMES.map((name) => [name, `${commandName(name)}Buffer`]));

/**
 * The store's Lua scripts registered on one ioredis client (EVALSHA, falling
 * back to EVAL on a node that has not seen the script yet).
 */
export class StoreScripts {
  private readonly shas = new Map<ScriptName, string>();

  /** `replicaWait`: every write script is followed by WAIT for that many replicas (see `redis-replica-wait.ts`). */
  constructor(
    private readonly client: RedisClient,
    private readonly replicaWait: ReplicaWait | null = null,
  ) {
    for (const [name, lua] of scriptSources()) {
      client.defineCommand(COMMAND_NAMES.get(name)!, { lua });
      this.shas.set(name, createHash("sha1").update(lua).digest("hex"));
    }
  }

  /** Replies come back as strings and numbers. */
  run(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    if (this.replicaWait && WRITE_SCRIPTS.has(name)) {
      return waitedWrite(this.client, this.replicaWait, {
        sha: this.shas.get(name)!,
        keys,
        args,
        runAlone: () => this.call(COMMAND_NAMES.get(name)!, keys, args),
      });
    }
    return this.call(COMMAND_NAMES.get(name)!, keys, args);
  }

  /** Bulk replies come back as Buffers, for scripts that return stored bytes. */
  runBinary(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    return this.call(BINARY_COMMAND_NAMES.get(name)!, keys, args);
  }

  private call(command: string, keys: string[], args: ScriptArg[]): Promise<unknown> {
    const call = (this.client as unknown as Record<string, ScriptCall>)[command];
    if (!call) throw new StoreError("SCRIPT", `script command ${command} is not defined on this client`);
    // One array rather than spread arguments: a big commit has tens of thousands of them.
    return call.call(this.client, keys.length, (keys as ScriptArg[]).concat(args));
  }
}
