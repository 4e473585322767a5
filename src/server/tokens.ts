import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { z } from "zod";

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
  | { kind: "pilot"; site: string; tokenId: string }
  | { kind: "user"; user: string; role: Role; tokenId: string };

/** A short, non-secret handle for a token: what logs and limits may name. */
function tokenIdOf(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 12);
}

/**
 * Who a bearer token is. Tokens are kept only as SHA-256 digests, so a memory
 * dump or a log line never holds a usable secret.
 */
export class TokenRegistry {
  private readonly byDigest = new Map<string, Principal>();

  constructor(tokens: TokenConfig[] = []) {
    for (const token of tokens) this.add(token);
  }

  add(config: TokenConfig): void {
    const tokenId = tokenIdOf(config.token);
    const digest = createHash("sha256").update(config.token).digest("hex");
    this.byDigest.set(
      digest,
      config.kind === "pilot"
        ? { kind: "pilot", site: config.site, tokenId }
        : { kind: "user", user: config.user, role: config.role, tokenId },
    );
  }

  lookup(token: string | null | undefined): Principal | null {
    if (!token) return null;
    return this.byDigest.get(createHash("sha256").update(token).digest("hex")) ?? null;
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
