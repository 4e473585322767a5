// The API's route table: what a route file registers with, and the parsing, auth and answer helpers it shares.
import type { IncomingMessage } from "node:http";
import type { z } from "zod";
import { describeIssues } from "../protocol/codec.js";
import { HttpError } from "./http-util.js";
import type { Principal } from "./tokens.js";

export type User = Extract<Principal, { kind: "user" }>;

export interface Call {
  req: IncomingMessage;
  url: URL;
  params: Record<string, string>;
}

/** A handler's answer for a resource it made: 201 instead of 200. */
export class Created {
  constructor(readonly body: unknown) {}
}

/** A handler answers a body (status 200) or a `Created` (201). */
export type Handler = (call: Call) => Promise<unknown>;

/** What a route file registers its routes with and checks its callers by. */
export interface RouteHost {
  on(method: string, path: string, handler: Handler): void;
  /** Anyone may read unless reads need a token; a bad token is refused either way. */
  reader(req: IncomingMessage): User | null;
  /** A user token is required. */
  user(req: IncomingMessage): User;
  /** A user token with one of `roles`; `what` names the action in the 403. */
  withRole(req: IncomingMessage, roles: User["role"][], what: string): User;
  parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S>;
  /** Reads a JSON body within the API's limit for control requests and validates it. */
  readBody<S extends z.ZodType>(schema: S, req: IncomingMessage): Promise<z.output<S>>;
  parseQuery<S extends z.ZodType>(schema: S, url: URL): z.output<S>;
  created(body: unknown): Created;
  nowMs(): number;
}

/** Validates input against a schema; a 400 naming every bad field otherwise. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: "query" | "body",
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new HttpError(
      400,
      what === "query" ? "BAD_QUERY" : "BAD_REQUEST",
      `bad ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      { issues },
    );
  }
  return parsed.data;
}

export function notFound(what: string): HttpError {
  return new HttpError(404, "NOT_FOUND", `${what} does not exist`);
}

/** Route params by name, or null when the path does not fit the pattern. */
export function matchPath(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (const [i, segment] of pattern.entries()) {
    const part = parts[i]!;
    if (segment.startsWith(":")) params[segment.slice(1)] = part;
    else if (segment !== part) return null;
  }
  return params;
}
