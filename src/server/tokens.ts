/**
 * Who a bearer token is (a site's pilot, or a user with a role), for the API
 * and the pilot gateway alike, so both authenticate one way. Tokens are
 * created, listed and revoked here; see `TokenRegistry` for how they are
 * kept without a usable secret.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { type CreatedTokenStore, MemoryCreatedTokens, type Role, roleSchema } from "./created-tokens.js";
import { mintPilotJobToken, verifyPilotJobToken } from "./pilot-job-tokens.js";

export { type Role, roleSchema };

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
 * dump, a log line or a store never holds a usable secret. Tokens created
 * through the API are kept in `created` (see `created-tokens.ts`: memory, the
 * data directory, or Redis for nodes that share nothing else); tokens from
 * the configuration are not written anywhere.
 */
export class TokenRegistry {
  /** The configuration's tokens. */
  private readonly configured = new Map<string, Principal>();

  constructor(
    tokens: TokenConfig[] = [],
    private readonly created: CreatedTokenStore = new MemoryCreatedTokens(),
    /** Signs per-batch-job pilot tokens; shared by every node on the same data. */
    private readonly pilotJobSecret: Buffer | null = null,
  ) {
    for (const token of tokens) this.add(token);
  }

  add(config: TokenConfig): void {
    const tokenId = tokenIdOf(config.token);
    this.configured.set(
      digestOf(config.token),
      config.kind === "pilot"
        ? { kind: "pilot", site: config.site, tokenId }
        : { kind: "user", user: config.user, role: config.role, tokenId },
    );
  }

  /** Makes a fresh random token, keeps its digest, and answers the secret: shown once, never again. */
  async create(
    spec: { kind: "pilot"; site: string } | { kind: "user"; user: string; role: Role },
    createdBy: string,
    nowMs: number,
    ttlMs: number | null = null,
  ): Promise<{ token: string; principal: Principal; expiresAtMs: number | null }> {
    const token = `panda_${randomBytes(24).toString("base64url")}`;
    const tokenId = tokenIdOf(token);
    const principal: Principal = spec.kind === "pilot" ? { ...spec, tokenId } : { ...spec, tokenId };
    const digest = digestOf(token);
    const expiresAtMs = ttlMs === null ? null : nowMs + ttlMs;
    await this.created.put({ digest, principal, createdAtMs: nowMs, createdBy, expiresAtMs });
    return { token, principal, expiresAtMs };
  }

  /** When a created token expired, if it did by `nowMs`; null for a token that is live or not known. */
  expiredAtMs(token: string | null | undefined, nowMs = Date.now()): number | null {
    if (!token) return null;
    return this.expiryPassed(digestOf(token), nowMs);
  }

  private expiryPassed(digest: string, nowMs: number): number | null {
    const expiresAtMs = this.configured.has(digest) ? null : (this.created.get(digest)?.expiresAtMs ?? null);
    return expiresAtMs !== null && expiresAtMs <= nowMs ? expiresAtMs : null;
  }

  /** Revokes a created token by its id; configured tokens are revoked by editing the configuration. */
  async revoke(tokenId: string): Promise<boolean> {
    const stored = this.created.all().find((t) => t.principal.tokenId === tokenId);
    return stored ? this.created.remove(stored.digest) : false;
  }

  list(): TokenListing[] {
    const configured = [...this.configured.values()].map(
      (principal): TokenListing => ({
        tokenId: principal.tokenId,
        principal,
        source: "config",
        createdAtMs: null,
        createdBy: null,
        expiresAtMs: null,
      }),
    );
    const created = this.created.all().map(
      (stored): TokenListing => ({
        tokenId: stored.principal.tokenId,
        principal: stored.principal,
        source: "api",
        createdAtMs: stored.createdAtMs,
        createdBy: stored.createdBy,
        expiresAtMs: stored.expiresAtMs ?? null,
      }),
    );
    return [...configured, ...created];
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
    const digest = digestOf(token);
    const configured = this.configured.get(digest);
    if (configured) return configured;
    const stored = this.created.get(digest);
    if (!stored || this.expiryPassed(digest, nowMs) !== null) return null;
    return stored.principal;
  }

  /** The principal behind a request's `Authorization: Bearer` header, or null. */
  fromRequest(req: IncomingMessage): Principal | null {
    return this.lookup(bearerToken(req));
  }
}

export function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}
