// Routes of `/tokens` (admins): list, create, revoke.
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { HttpError } from "../http-util.js";

export function registerTokenRoutes(host: RouteHost, { tokens }: ApiDeps): void {
  host.on("GET", "tokens", async ({ req }) => {
    host.withRole(req, ["admin"], "listing tokens");
    return { tokens: tokens.list() };
  });
  host.on("POST", "tokens", async ({ req }) => {
    const admin = host.withRole(req, ["admin"], "creating tokens");
    const { ttlSec, ...forWhom } = await host.readBody(schemas.tokenBodySchema, req);
    const { token, principal, expiresAtMs } = await tokens.create(
      forWhom,
      admin.user,
      host.nowMs(),
      ttlSec === undefined ? null : ttlSec * 1000,
    );
    return host.created({
      token,
      tokenId: principal.tokenId,
      principal,
      expiresAtMs,
      note: "the token is shown only now: keep it",
    });
  });
  host.on("DELETE", "tokens/:id", async ({ req, params }) => {
    host.withRole(req, ["admin"], "revoking tokens");
    if (!(await tokens.revoke(params.id!)))
      throw new HttpError(
        404,
        "NOT_FOUND",
        `no created token ${params.id} (configured tokens are revoked in the configuration)`,
      );
    return { ok: true, tokenId: params.id };
  });
}
