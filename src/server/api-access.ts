// Who may call the API: readers, users and roles, from the request's bearer token.
import type { IncomingMessage } from "node:http";
import type { User } from "./api-routing.js";
import { HttpError } from "./http-util.js";
import { bearerToken, type TokenRegistry } from "./tokens.js";

export class ApiAccess {
  constructor(
    private readonly tokens: TokenRegistry,
    private readonly readRequiresToken: boolean,
  ) {}

  /** Why a request's token opens nothing: expired (and when), or not known at all. */
  private refusedToken(req: IncomingMessage): HttpError {
    const expiredAtMs = this.tokens.expiredAtMs(bearerToken(req));
    return new HttpError(
      401,
      "UNAUTHORIZED",
      expiredAtMs !== null
        ? `the token expired at ${new Date(expiredAtMs).toISOString()}: ask an admin for a new one (panda token create)`
        : "the token is not known: check PANDA_TOKEN or --token",
    );
  }

  /** Anyone may read unless reads were configured to need a token; a bad token is refused either way. */
  reader(req: IncomingMessage): User | null {
    const principal = this.tokens.fromRequest(req);
    if (principal?.kind === "pilot") throw new HttpError(403, "FORBIDDEN", "pilot tokens cannot use the API");
    if (principal) return principal;
    if (req.headers.authorization) throw this.refusedToken(req);
    if (this.readRequiresToken)
      throw new HttpError(
        401,
        "UNAUTHORIZED",
        "this server needs a user token to read: Authorization: Bearer <token>",
      );
    return null;
  }

  user(req: IncomingMessage): User {
    const principal = this.tokens.fromRequest(req);
    if (!principal) {
      if (req.headers.authorization) throw this.refusedToken(req);
      throw new HttpError(401, "UNAUTHORIZED", "a user token is required: Authorization: Bearer <token>");
    }
    if (principal.kind !== "user") throw new HttpError(403, "FORBIDDEN", "pilot tokens cannot use the API");
    return principal;
  }

  withRole(req: IncomingMessage, roles: User["role"][], what: string): User {
    const user = this.user(req);
    if (!roles.includes(user.role))
      throw new HttpError(
        403,
        "FORBIDDEN",
        `${what} needs the ${roles.join(" or ")} role; ${user.user} is ${user.role}`,
      );
    return user;
  }
}
