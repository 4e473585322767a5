/**
 * The grid `panda up` runs on one machine, planned before anything starts: its
 * sites, and fresh tokens for the admin and for each site's pilots.
 */
import { randomBytes } from "node:crypto";
import type { SiteInput } from "../actors/site/schema.js";
import type { TokenConfig } from "../server/tokens.js";

/** The sites of the single-node grid `panda up` runs; each has a storage directory under the data dir. */
export const LOCAL_SITE_NAMES = ["SITE-A", "SITE-B", "SITE-C"] as const;
export const LOCAL_ADMIN_USER = "admin";

/** Modest, but large enough for the submission defaults (1 core, 2000 MB, 5000 MB disk, 1 h). */
const LOCAL_SITE_RESOURCES = {
  slots: 8,
  memoryPerSlotMb: 4000,
  diskMb: 100_000,
  walltimeSec: { min: 0, max: 86_400 },
};

export interface LocalGridPlan {
  sites: Omit<SiteInput, "atMs">[];
  tokens: TokenConfig[];
  adminToken: string;
  pilotTokenBySite: Map<string, string>;
}

/** 192 random bits, URL-safe: fresh for every `panda up`, so an old local.json opens nothing. */
function newToken(): string {
  return randomBytes(24).toString("base64url");
}

export function planLocalGrid(): LocalGridPlan {
  const adminToken = newToken();
  const pilotTokenBySite = new Map(LOCAL_SITE_NAMES.map((site) => [site, newToken()]));
  return {
    sites: LOCAL_SITE_NAMES.map((name) => ({ name, resources: LOCAL_SITE_RESOURCES })),
    tokens: [
      { token: adminToken, kind: "user", user: LOCAL_ADMIN_USER, role: "admin" },
      ...[...pilotTokenBySite].map(([site, token]) => ({ token, kind: "pilot" as const, site })),
    ],
    adminToken,
    pilotTokenBySite,
  };
}
