// `GET /actors/:kind/:id`: any actor's state and history, now or as it was at a past time.
import { actorIdSchema, actorKindSchema } from "../../runtime/actor-ref.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { HttpError } from "../http-util.js";

export function registerActorRoutes(host: RouteHost, { grid }: ApiDeps): void {
  host.on("GET", "actors/:kind/:id", async ({ req, url, params }) => {
    host.reader(req);
    const { kind, id } = params as { kind: string; id: string };
    const query = host.parseQuery(schemas.actorQuerySchema, url);
    if (!actorKindSchema.safeParse(kind).success || !actorIdSchema.safeParse(id).success) {
      throw new HttpError(400, "BAD_ACTOR_REF", `bad actor reference ${kind}/${id}`);
    }
    const view = await grid.runtime.inspect({ kind, id }, query.history);
    if (!view) throw notFound(`${kind}/${id}`);
    if (query.at === undefined) return view;
    const at = query.at;
    // The state at a past time is the target of the last transition committed by then.
    const before = view.history.filter((h) => h.at <= at && !h.refused);
    const last = before.at(-1);
    if (!last)
      throw new HttpError(404, "NOT_FOUND", `${kind}/${id} did not exist at ${new Date(at).toISOString()}`);
    return { kind, id, at, version: last.v, state: last.to, history: before };
  });
}
