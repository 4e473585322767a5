/**
 * The storage element sandboxes are kept on, built from the server's
 * configuration: `local` (a directory, by default `<dataDir>/sandboxes`) is
 * the one there is; another type (a remote endpoint) is one more member of
 * the union and one more case here.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { DirectoryStorageElement } from "../transfer/directory-storage-element.js";
import type { StorageElement } from "../transfer/storage-element.js";
import { sandboxConfigSchema } from "./sandbox-store.js";

export const sandboxStorageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("local"), path: z.string().min(1).optional() }),
]);

/** `sandbox` of the server's options: the limits, the retention and where archives are kept. */
export const serverSandboxSchema = sandboxConfigSchema.extend({
  storage: sandboxStorageSchema.default({ type: "local" }),
});

/** The configured storage element; a local one's directory defaults to `defaultDir`. */
export function sandboxElementFrom(
  storage: z.output<typeof sandboxStorageSchema>,
  defaultDir: string,
): StorageElement {
  const dir = resolve(storage.path ?? defaultDir);
  mkdirSync(dir, { recursive: true });
  return new DirectoryStorageElement(dir);
}

export function defaultSandboxDir(dataRoot: string): string {
  return join(dataRoot, "sandboxes");
}
