/**
 * Where tokens created through the API are kept (as digests, never secrets),
 * so that every node of a deployment opens the same doors: in memory (a node
 * alone for a test), in a file of the data directory (the embedded store), or
 * on Redis (several nodes that share nothing else). Lookups are synchronous
 * and answer from the node's copy; the stores keep that copy current.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { z } from "zod";
import type { Logger } from "../runtime/logger.js";
import type { NodeBus } from "./node-bus.js";
import type { RedisClient } from "./redis-connection.js";

export const roleSchema = z.enum(["user", "operator", "admin"]);
export type Role = z.infer<typeof roleSchema>;

/** A token created through the API, as it is kept: its digest, never the secret. */
export const storedTokenSchema = z.object({
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  principal: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("pilot"), site: z.string().min(1), tokenId: z.string() }),
    z.object({ kind: z.literal("user"), user: z.string().min(1), role: roleSchema, tokenId: z.string() }),
  ]),
  createdAtMs: z.number(),
  createdBy: z.string(),
  /** After this the token opens nothing; absent or null: it does not expire. */
  expiresAtMs: z.number().nullable().optional(),
});
export type StoredToken = z.infer<typeof storedTokenSchema>;

export interface CreatedTokenStore {
  /** The created token with this digest, from the node's copy. */
  get(digest: string): StoredToken | undefined;
  all(): StoredToken[];
  /** Kept durably before it resolves: the secret is shown only after. */
  put(token: StoredToken): Promise<void>;
  /** True when it was there to forget. */
  remove(digest: string): Promise<boolean>;
  close(): void;
}

/** One node's tokens that go with it: tests and simulations. */
export class MemoryCreatedTokens implements CreatedTokenStore {
  protected readonly tokens = new Map<string, StoredToken>();

  get(digest: string): StoredToken | undefined {
    return this.tokens.get(digest);
  }
  all(): StoredToken[] {
    return [...this.tokens.values()];
  }
  async put(token: StoredToken): Promise<void> {
    this.tokens.set(token.digest, token);
  }
  async remove(digest: string): Promise<boolean> {
    return this.tokens.delete(digest);
  }
  close(): void {}
}

const tokensFileSchema = z.object({ tokens: z.array(storedTokenSchema) });

/**
 * `<dataDir>/tokens.json`, re-read whenever it changed (a stat per lookup),
 * so processes sharing the data directory see each other's creations and
 * revocations. Written whole to a temp file and renamed: a crash never
 * leaves half a file.
 */
export class FileCreatedTokens implements CreatedTokenStore {
  private readonly tokens = new Map<string, StoredToken>();
  private loadedMtimeMs = -1;

  constructor(private readonly path: string) {
    this.reloadIfChanged();
  }

  private reloadIfChanged(): void {
    if (!existsSync(this.path)) return;
    const mtimeMs = statSync(this.path).mtimeMs;
    if (mtimeMs === this.loadedMtimeMs) return;
    const parsed = tokensFileSchema.safeParse(JSON.parse(readFileSync(this.path, "utf8")));
    if (!parsed.success) throw new Error(`${this.path} is not a panda tokens file: delete it or fix it`);
    this.tokens.clear();
    for (const stored of parsed.data.tokens) this.tokens.set(stored.digest, stored);
    this.loadedMtimeMs = mtimeMs;
  }

  get(digest: string): StoredToken | undefined {
    this.reloadIfChanged();
    return this.tokens.get(digest);
  }
  all(): StoredToken[] {
    this.reloadIfChanged();
    return [...this.tokens.values()];
  }
  async put(token: StoredToken): Promise<void> {
    this.reloadIfChanged();
    this.tokens.set(token.digest, token);
    this.write();
  }
  async remove(digest: string): Promise<boolean> {
    this.reloadIfChanged();
    if (!this.tokens.delete(digest)) return false;
    this.write();
    return true;
  }
  close(): void {}

  private write(): void {
    const temp = `${this.path}.tmp`;
    writeFileSync(temp, `${JSON.stringify({ tokens: [...this.tokens.values()] }, null, 2)}\n`, {
      mode: 0o600,
    });
    renameSync(temp, this.path);
    this.loadedMtimeMs = statSync(this.path).mtimeMs;
  }
}

/** The field of the tokens hash that counts its changes; no digest looks like it. */
const VERSION_FIELD = "version";
const NOTICE_TOPIC = "tokens";

/** The hash of a deployment's created tokens: digest -> JSON, plus a version. */
export function createdTokensKey(prefix: string): string {
  return `${prefix}:tokens`;
}

/**
 * The created tokens of a deployment on Redis: one hash, changed with its
 * version in one transaction. A node's copy is the whole hash read at once
 * (so it is never a mix of two moments), read again when a node says it
 * changed something (a notice: milliseconds) and every `refreshMs` in case
 * a notice was lost; a reply older than the copy is dropped, so reads that
 * cross never bring back a revoked token. A token created on one node opens
 * every other within that delay; a revoked one stops opening them within it.
 */
export class RedisCreatedTokens implements CreatedTokenStore {
  private tokens = new Map<string, StoredToken>();
  private version = -1;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private readonly bus: NodeBus,
    private readonly log: Logger,
    refreshMs: number,
  ) {
    bus.subscribe(NOTICE_TOPIC, () => void this.refresh());
    this.timer = setInterval(() => void this.refresh(), refreshMs);
    this.timer.unref();
  }

  static async open(options: {
    client: RedisClient;
    prefix: string;
    bus: NodeBus;
    log: Logger;
    refreshMs?: number;
  }): Promise<RedisCreatedTokens> {
    const store = new RedisCreatedTokens(
      options.client,
      createdTokensKey(options.prefix),
      options.bus,
      options.log,
      options.refreshMs ?? 2_000,
    );
    await store.read();
    return store;
  }

  get(digest: string): StoredToken | undefined {
    return this.tokens.get(digest);
  }
  all(): StoredToken[] {
    return [...this.tokens.values()];
  }

  async put(token: StoredToken): Promise<void> {
    await this.change((multi) => multi.hset(this.key, token.digest, JSON.stringify(token)));
  }

  async remove(digest: string): Promise<boolean> {
    const replies = await this.change((multi) => multi.hdel(this.key, digest));
    return replies[0]?.[1] === 1;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async change(
    write: (multi: ReturnType<RedisClient["multi"]>) => unknown,
  ): Promise<[Error | null, unknown][]> {
    const multi = this.client.multi();
    write(multi);
    multi.hincrby(this.key, VERSION_FIELD, 1);
    const replies = (await multi.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    await this.read();
    this.bus.publish(NOTICE_TOPIC, String(replies.at(-1)?.[1] ?? ""));
    return replies;
  }

  private async refresh(): Promise<void> {
    try {
      await this.read();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "created tokens not re-read from Redis");
    }
  }

  private async read(): Promise<void> {
    const fields = await this.client.hgetall(this.key);
    const version = Number(fields[VERSION_FIELD] ?? 0);
    if (version <= this.version) return;
    const tokens = new Map<string, StoredToken>();
    for (const [field, text] of Object.entries(fields)) {
      if (field === VERSION_FIELD) continue;
      const parsed = storedTokenSchema.safeParse(parseJson(text));
      if (parsed.success) tokens.set(parsed.data.digest, parsed.data);
      else this.log.warn({ key: this.key, field }, "a created token on Redis is malformed: ignored");
    }
    this.tokens = tokens;
    this.version = version;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
