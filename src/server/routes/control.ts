// Kill and reassign, shared by jobs and tasks: who may, then the event or the reassignment.
import type { IncomingMessage } from "node:http";
import { refs } from "../../actors/shared/names.js";
import { readContext } from "../../workload/context.js";
import type { Grid } from "../../workload/grid.js";
import { reassignJob, reassignTask } from "../../workload/reassign.js";
import { notFound, type RouteHost, type User } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { HttpError } from "../http-util.js";

function mayActOn(user: User, owner: string): boolean {
  return user.role !== "user" || user.user === owner;
}

/** The caller, once the job or task exists and the caller may change it: its owner, or an operator. */
export async function ownerOrOperator(
  host: RouteHost,
  grid: Grid,
  req: IncomingMessage,
  kind: "job" | "task",
  id: string,
  verb: string,
): Promise<User> {
  const user = host.user(req);
  const actor = await readContext(grid.ctx, kind, id);
  if (!actor) throw notFound(`${kind} ${id}`);
  if (!mayActOn(user, actor.context.user))
    throw new HttpError(
      403,
      "FORBIDDEN",
      `${kind} ${id} belongs to ${actor.context.user}; users may ${verb} only their own ${kind}s`,
    );
  return user;
}

export async function kill(
  host: RouteHost,
  grid: Grid,
  req: IncomingMessage,
  kind: "job" | "task",
  id: string,
) {
  const user = await ownerOrOperator(host, grid, req, kind, id, "kill");
  const { reason } = await host.readBody(schemas.killBodySchema, req);
  await grid.runtime.send(refs[kind](id), { type: "kill", by: user.user, reason, atMs: host.nowMs() });
  return { ok: true, kind, id };
}

/** Operators only: a reassignment moves work between sites, which is the grid's business, not a user's. */
export async function reassign(
  host: RouteHost,
  grid: Grid,
  req: IncomingMessage,
  kind: "job" | "task",
  id: string,
) {
  const user = host.withRole(req, ["operator", "admin"], `reassigning a ${kind}`);
  const body = await host.readBody(schemas.reassignBodySchema, req);
  const request = { by: user.user, reason: body.reason, site: body.site ?? null };
  const reassignOne = kind === "job" ? reassignJob : reassignTask;
  return { ok: true, kind, id, ...(await reassignOne(grid.ctx, id, request)) };
}
