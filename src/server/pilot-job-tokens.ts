// Short-lived pilot tokens minted per batch job: signed, so any node sharing the data directory verifies them without storing them.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";

const PREFIX = "pandapj_";

const claimsSchema = z.object({
  site: z.string().min(1),
  pilotJobId: z.string().min(1),
  expiresAtMs: z.number().int().positive(),
});
export type PilotJobClaims = z.infer<typeof claimsSchema>;

function signature(secret: Buffer, payload: string): Buffer {
  return createHmac("sha256", secret).update(`pilot-job-token:${payload}`).digest();
}

/** `pandapj_<claims>.<hmac>`: the claims are readable, but only the server's secret makes a valid one. */
export function mintPilotJobToken(secret: Buffer, claims: PilotJobClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${PREFIX}${payload}.${signature(secret, payload).toString("base64url")}`;
}

export function isPilotJobToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

/** The claims of a genuine token that has not expired; null for anything else. */
export function verifyPilotJobToken(secret: Buffer, token: string, nowMs: number): PilotJobClaims | null {
  if (!isPilotJobToken(token)) return null;
  const [payload, mac] = token.slice(PREFIX.length).split(".");
  if (!payload || !mac) return null;
  const expected = signature(secret, payload);
  const given = Buffer.from(mac, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let claims: PilotJobClaims;
  try {
    const parsed = claimsSchema.safeParse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    if (!parsed.success) return null;
    claims = parsed.data;
  } catch {
    return null;
  }
  return claims.expiresAtMs > nowMs ? claims : null;
}
