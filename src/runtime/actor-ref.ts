import { z } from "zod";
import type { ActorKey } from "../store/types.js";
import { RuntimeError } from "./errors.js";

/** An actor's name: its kind (a registered machine) and its id within that kind. */
export interface ActorRef {
  kind: string;
  id: string;
}

export const actorKindSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,31}$/,
    "kind must be lowercase letters, digits and dashes, starting with a letter",
  );

export const actorIdSchema = z
  .string()
  .min(1, "id must not be empty")
  .max(200, "id must be at most 200 characters")
  .refine((id) => !/[\s/#]/.test(id) && ![...id].some((c) => c.charCodeAt(0) < 0x20), {
    message: "id must not contain whitespace, control characters, '/' or '#'",
  });

export const actorRefSchema = z.object({ kind: actorKindSchema, id: actorIdSchema });

/** Validates a ref and returns its key, `kind/id`; throws `RuntimeError("BAD_ACTOR_REF")`. */
export function actorKeyOf(ref: ActorRef): ActorKey {
  const parsed = actorRefSchema.safeParse(ref);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new RuntimeError("BAD_ACTOR_REF", `bad actor reference ${JSON.stringify(ref)}: ${detail}`);
  }
  return `${ref.kind}/${ref.id}`;
}

export function parseActorKey(key: ActorKey): ActorRef {
  const slash = key.indexOf("/");
  if (slash <= 0) throw new RuntimeError("BAD_ACTOR_REF", `bad actor key ${JSON.stringify(key)}`);
  return { kind: key.slice(0, slash), id: key.slice(slash + 1) };
}

/**
 * FNV-1a over the key's UTF-16 code units: cheap, stable across processes and
 * languages, and spreads sequential ids evenly.
 */
export function shardOf(key: ActorKey, shardCount: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shardCount;
}
