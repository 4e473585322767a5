/**
 * Who a bearer token is (a site's pilot, or a user with a role), for the API
 * and the pilot gateway alike, so both authenticate one way. Tokens are
 * created, listed and revoked here; see `TokenRegistry` for how they are
 * kept without a usable secret.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { mintPilotJobToken, verifyPilotJobToken } from "./pilot-job-tokens.js";

export const roleSchema = z.enum(["user", "operator", "admin"]);
export type Role = z.infer<typeof roleSchema>;

export const tokenConfigSchema = z.discriminatedUnion("kind", [
  z.object({
    token: z.string().min(16, "tokens must be at least 16 characters"),
    kind: z.literal("pilot"),
    site: z.string().min(1),
  }),
  z.object({
    token: z.string().min(16, "tokens must be at least 16 characters"),
    kind: z.literal("user"),
    user: z.string().min(1),
    role: roleSchema,
  }),
]);
export type TokenConfig = z.infer<typeof tokenConfigSchema>;

export type Principal =
  | {
      kind: "pilot";
      site: string;
      tokenId: string;
      /** Set for a short-lived token minted for one batch job: it may run pilots, nothing more. */
      pilotJobId?: string;
    }
  | { kind: "user"; user: string; role: Role; tokenId: string };

/** A token created through the API, as it is kept: its digest, never the secret. */
const storedTokenSchema = z.object({
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
type StoredToken = z.infer<typeof storedTokenSchema>;
const storedTokensFileSchema = z.object({ tokens: z.array(storedTokenSchema) });

export interface TokenListing {
  tokenId: string;
  principal: Principal;
  /** `config` for tokens given at start (flags, tokens file), `api` for created ones. */
  source: "config" | "api";
  createdAtMs: number | null;
  createdBy: string | null;
  /** When a created token stops opening anything; null: never. */
  expiresAtMs: number | null;
}

function digestOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A short, non-secret handle for a token: what logs, limits and `panda token ls` may name. */
function tokenIdOf(token: string): string {
  return digestOf(token).slice(0, 12);
}

/**
 * Who a bearer token is. Tokens are kept only as SHA-256 digests, so a memory
 * dump, a log line or the tokens file never holds a usable secret. Tokens
 * created through the API are written to `persistPath` (when given) so they
 * survive restarts; tokens from the configuration are not written anywhere.
 */
export class TokenRegistry {
  private readonly byDigest = new Map<string, Principal>();
  private readonly created = new Map<string, StoredToken>();

  /** When the tokens file was last read: another node sharing the data directory may have written it since. */
  private loadedMtimeMs = -1;

  constructor(
    tokens: TokenConfig[] = [],
    private readonly persistPath: string | null = null,
    /** Signs per-batch-job pilot tokens; shared by every node on the same data. */
    private readonly pilotJobSecret: Buffer | null = null,
  ) {
    for (const token of tokens) this.add(token);
    this.reloadIfChanged();
  }

  /** Re-reads created tokens when the file changed (a stat per lookup): creations and revocations on any node count. */
  private reloadIfChanged(): void {
    if (!this.persistPath || !existsSync(this.persistPath)) return;
    const mtimeMs = statSync(this.persistPath).mtimeMs;
    if (mtimeMs === this.loadedMtimeMs) return;
    const parsed = storedTokensFileSchema.safeParse(JSON.parse(readFileSync(this.persistPath, "utf8")));
    if (!parsed.success)
      throw new Error(`${this.persistPath} is not a panda tokens file: delete it or fix it`);
    for (const digest of this.created.keys()) this.byDigest.delete(digest);
    this.created.clear();
    for (const stored of parsed.data.tokens) {
      this.created.set(stored.digest, stored);
      this.byDigest.set(stored.digest, stored.principal);
    }
    this.loadedMtimeMs = mtimeMs;
  }

  add(config: TokenConfig): void {
    const tokenId = tokenIdOf(config.token);
    this.byDigest.set(
      digestOf(config.token),
      config.kind === "pilot"
        ? { kind: "pilot", site: config.site, tokenId }
        : { kind: "user", user: config.user, role: config.role, tokenId },
    );
  }

  /** Makes a fresh random token, remembers its digest (persisted), and answers the secret: shown once, never again. */
  create(
    spec: { kind: "pilot"; site: string } | { kind: "user"; user: string; role: Role },
    createdBy: string,
    nowMs: number,
    ttlMs: number | null = null,
  ): { token: string; principal: Principal; expiresAtMs: number | null } {
    this.reloadIfChanged();
    const token = `panda_${randomBytes(24).toString("base64url")}`;
    const tokenId = tokenIdOf(token);
    const principal: Principal = spec.kind === "pilot" ? { ...spec, tokenId } : { ...spec, tokenId };
    const digest = digestOf(token);
    const expiresAtMs = ttlMs === null ? null : nowMs + ttlMs;
    this.byDigest.set(digest, principal);
    this.created.set(digest, { digest, principal, createdAtMs: nowMs, createdBy, expiresAtMs });
    this.persist();
    return { token, principal, expiresAtMs };
  }

  /** When a created token expired, if it did by `nowMs`; null for a token that is live or not known. */
  expiredAtMs(token: string | null | undefined, nowMs = Date.now()): number | null {
    if (!token) return null;
    this.reloadIfChanged();
    return this.expiryPassed(digestOf(token), nowMs);
  }

  private expiryPassed(digest: string, nowMs: number): number | null {
    const expiresAtMs = this.created.get(digest)?.expiresAtMs ?? null;
    return expiresAtMs !== null && expiresAtMs <= nowMs ? expiresAtMs : null;
  }

  /** Revokes a created token by its id; configured tokens are revoked by editing the configuration. */
  revoke(tokenId: string): boolean {
    this.reloadIfChanged();
    for (const [digest, stored] of this.created) {
      if (stored.principal.tokenId !== tokenId) continue;
      this.created.delete(digest);
      this.byDigest.delete(digest);
      this.persist();
      return true;
    }
    return false;
  }

  list(): TokenListing[] {
    return [...this.byDigest].map(([digest, principal]) => {
      const stored = this.created.get(digest);
      return {
        tokenId: principal.tokenId,
        principal,
        source: stored ? "api" : "config",
        createdAtMs: stored?.createdAtMs ?? null,
        createdBy: stored?.createdBy ?? null,
        expiresAtMs: stored?.expiresAtMs ?? null,
      };
    });
  }

  /**
   * A pilot token for one batch job of `site`, valid for `ttlMs`: it is not
   * stored, so there is nothing to revoke; it expires on its own. Pilots use
   * it only to open their session (resume tokens carry them after that).
   */
  mintPilotJobToken(site: string, pilotJobId: string, ttlMs: number, nowMs: number) {
    if (!this.pilotJobSecret) throw new Error("this registry has no secret for pilot-job tokens");
    const expiresAtMs = nowMs + ttlMs;
    return { token: mintPilotJobToken(this.pilotJobSecret, { site, pilotJobId, expiresAtMs }), expiresAtMs };
  }

  lookup(token: string | null | undefined, nowMs = Date.now()): Principal | null {
    if (!token) return null;
    if (this.pilotJobSecret) {
      const claims = verifyPilotJobToken(this.pilotJobSecret, token, nowMs);
      if (claims)
        return {
          kind: "pilot",
          site: claims.site,
          tokenId: `pj:${claims.pilotJobId}`,
          pilotJobId: claims.pilotJobId,
        };
    }
    this.reloadIfChanged();
    const digest = digestOf(token);
    if (this.expiryPassed(digest, nowMs) !== null) return null;
    return this.byDigest.get(digest) ?? null;
  }

  /** The principal behind a request's `Authorization: Bearer` header, or null. */
  fromRequest(req: IncomingMessage): Principal | null {
    return this.lookup(bearerToken(req));
  }

  /** Written whole to a temp file and renamed: a crash never leaves half a tokens file. */
  private persist(): void {
    if (!this.persistPath) return;
    const temp = `${this.persistPath}.tmp`;
    writeFileSync(temp, `${JSON.stringify({ tokens: [...this.created.values()] }, null, 2)}\n`, {
      mode: 0o600,
    });
    renameSync(temp, this.persistPath);
    this.loadedMtimeMs = statSync(this.persistPath).mtimeMs;
  }
}

export function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}
