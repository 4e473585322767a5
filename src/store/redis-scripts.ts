/**
 * The store's Lua scripts, loaded from `lua/` once and called by name on an
 * ioredis client (EVALSHA, with EVAL on a node that has not seen the script).
 */
import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";
import { StoreError } from "./errors.js";

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
  constructor(private readonly client: RedisClient) {
    for (const [name, lua] of scriptSources()) client.defineCommand(COMMAND_NAMES.get(name)!, { lua });
  }

  /** Replies come back as strings and numbers. */
  run(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
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
