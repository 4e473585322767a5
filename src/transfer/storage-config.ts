/**
 * How a site's storage element is configured (`storage:` in a site's
 * configuration) and the element each configuration makes: a directory on the
 * node (`local`, the default and what `panda up` uses) or an XRootD server.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DirectoryStorageElement } from "./directory-storage-element.js";
import type { StorageElement } from "./storage-element.js";
import { xrootdBasePathSchema, xrootdEndpointSchema } from "./xrootd-endpoint.js";
import { XrootdStorageElement } from "./xrootd-storage-element.js";

/**
 * Files under `basePath` on the XRootD server at `endpoint`; nodes then share
 * nothing but Redis. Also where a server keeps users' sandboxes
 * (src/sandbox/sandbox-element.ts).
 */
export const xrootdStorageConfigSchema = z
  .object({
    type: z.literal("xrootd"),
    endpoint: xrootdEndpointSchema,
    basePath: xrootdBasePathSchema,
    /** How long a metadata request to the server (stat, checksum, move, listing) may take. */
    requestTimeoutMs: z.number().int().positive().optional(),
  })
  .strict();
export type XrootdStorageConfig = z.infer<typeof xrootdStorageConfigSchema>;

export const storageConfigSchema = z.discriminatedUnion("type", [
  /** `<storageRoot>/<site>` on the server node: one node, or nodes sharing a file system. */
  z.object({ type: z.literal("local") }).strict(),
  xrootdStorageConfigSchema,
]);
export type StorageConfig = z.infer<typeof storageConfigSchema>;

/** The element a site's configuration names; a local one's directory is made here. */
export function createStorageElement(
  config: StorageConfig,
  site: string,
  storageRoot: string,
): StorageElement {
  if (config.type === "xrootd") return new XrootdStorageElement(config);
  return localStorageElement(join(storageRoot, site));
}

/** A directory on this node as a storage element, made when missing. */
export function localStorageElement(dir: string): DirectoryStorageElement {
  mkdirSync(dir, { recursive: true });
  return new DirectoryStorageElement(dir);
}
