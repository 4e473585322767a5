/**
 * The storage element sandboxes are kept on, built from the server's
 * configuration (`sandbox.storage`): `local`, a directory on the node (by
 * default `<dataDir>/sandboxes`), or `xrootd`, a directory on an XRootD
 * server, configured as a site's (src/transfer/storage-config.ts). On XRootD
 * nodes share nothing of sandboxes but Redis, and pilots fetch the archives
 * from the server with xrdcp, not through a node.
 */
import { join, resolve } from "node:path";
import { z } from "zod";
import { localStorageElement, xrootdStorageConfigSchema } from "../transfer/storage-config.js";
import type { StorageElement } from "../transfer/storage-element.js";
import { XrootdStorageElement } from "../transfer/xrootd-storage-element.js";
import { sandboxConfigSchema } from "./sandbox-store.js";

export const sandboxStorageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("local"), path: z.string().min(1).optional() }).strict(),
  xrootdStorageConfigSchema,
]);
export type SandboxStorageConfig = z.output<typeof sandboxStorageSchema>;

/** `sandbox` of the server's options: the limits, the retention and where archives are kept. */
export const serverSandboxSchema = sandboxConfigSchema.extend({
  storage: sandboxStorageSchema.default({ type: "local" }),
});

/** The configured storage element; a local one's directory defaults to `defaultDir`. */
export function sandboxElementFrom(storage: SandboxStorageConfig, defaultDir: string): StorageElement {
  if (storage.type === "xrootd") return new XrootdStorageElement(storage);
  return localStorageElement(resolve(storage.path ?? defaultDir));
}

export function defaultSandboxDir(dataRoot: string): string {
  return join(dataRoot, "sandboxes");
}
