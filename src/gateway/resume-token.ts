/**
 * Pilot ids and resume tokens: an HMAC of the pilot id and site under a shared
 * secret, so any node with the secret can welcome a pilot back.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Separates resume tokens from any other MAC made with the same secret. */
const RESUME_TOKEN_DOMAIN = "panda.pilot-resume.v1";

/** Resume secrets shorter than this are too easy to guess; 32 random bytes is the intended size. */
export const MIN_RESUME_SECRET_BYTES = 16;

export function newPilotId(): string {
  return `p-${randomBytes(6).toString("hex")}`;
}

/**
 * The token that lets a pilot take its session back: a MAC of its id (and
 * site, so a credential of another site cannot take it over) under the
 * cluster's resume secret. Stateless, so any node holding the secret, or the
 * same node after a restart, can verify it.
 */
export function issueResumeToken(secret: Buffer, site: string, pilotId: string): string {
  return createHmac("sha256", secret)
    .update(JSON.stringify([RESUME_TOKEN_DOMAIN, site, pilotId]))
    .digest("base64url");
}

export function verifyResumeToken(secret: Buffer, site: string, pilotId: string, token: string): boolean {
  const expected = Buffer.from(issueResumeToken(secret, site, pilotId));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
