/**
 * Actor names: a kind and an id, their rules, the `kind/id` key the store and
 * the logs use, and the shard that key hashes to.
 */
import { z } from "zod";
import type { ActorKey } from "../store/types.js";
import { RuntimeError } from "./errors.js";

/** An actor's name: its kind (a registered machine) and its id within that kind. */
export interface ActorRef {
  kind: string;
  id: string;
}

const KIND_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_ID_CHARS = 200;

function hasForbiddenIdChar(id: string): boolean {
  if (/[\s/#]/.test(id)) return true;
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) < 0x20) return true;
  return false;
}

export const actorKindSchema = z
  .string()
  .regex(KIND_PATTERN, "kind must be lowercase letters, digits and dashes, starting with a letter");

export const actorIdSchema = z
  .string()
  .min(1, "id must not be empty")
  .max(MAX_ID_CHARS, `id must be at most ${MAX_ID_CHARS} characters`)
  .refine((id) => !hasForbiddenIdChar(id), {
    message: "id must not contain whitespace, control characters, '/' or '#'",
  });

export const actorRefSchema = z.object({ kind: actorKindSchema, id: actorIdSchema });

/** Validates a ref and returns its key, `kind/id`; throws `RuntimeError("BAD_ACTOR_REF")`. */
export function actorKeyOf(ref: ActorRef): ActorKey {
  // Every effect and send names an actor: the common, valid case is checked without zod, which only words the error.
  if (isValidRef(ref)) return `${ref.kind}/${ref.id}`;
  const parsed = actorRefSchema.safeParse(ref);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new RuntimeError("BAD_ACTOR_REF", `bad actor reference ${JSON.stringify(ref)}: ${detail}`);
  }
  return `${ref.kind}/${ref.id}`;
}

function isValidRef(ref: unknown): boolean {
  if (typeof ref !== "object" || ref === null) return false;
  const { kind, id } = ref as Record<string, unknown>;
  return (
    typeof kind === "string" &&
    typeof id === "string" &&
    KIND_PATTERN.test(kind) &&
    id.length >= 1 &&
    id.length <= MAX_ID_CHARS &&
    !hasForbiddenIdChar(id)
  );
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
