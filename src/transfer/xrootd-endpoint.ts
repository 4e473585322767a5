/**
 * Where an XRootD storage element lives: `root://host:port/` and a base path,
 * parsed and checked, and the root:// URLs of the files under it.
 */
import { z } from "zod";
import { StorageError } from "./storage-element.js";
import { storagePathSegments } from "./storage-path.js";

/** `root://host:port/` (the port may be left out: 1094, XRootD's). */
const ENDPOINT_PATTERN = /^(?:root|xroot):\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/;
/** Characters xrdcp and xrdfs read as something other than a file name (CGI, fragments, word breaks). */
const UNSAFE_PATH_CHARS = /[?#&\s\p{Cc}]/u;

export const xrootdEndpointSchema = z
  .string()
  .regex(ENDPOINT_PATTERN, "must be root://host[:port]/ (no path: the base path is given apart)");

export const xrootdBasePathSchema = z
  .string()
  .regex(/^\/[^?#&\s]*$/, "must be an absolute path without ?, #, & or spaces")
  .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "must not contain . or .. segments");

export interface XrootdLocation {
  /** `host:port`, as xrdfs takes it. */
  hostPort: string;
  /** Absolute, no trailing slash ("" for the export root). */
  basePath: string;
}

/** Parses an endpoint and base path already checked by the schemas above. */
export function xrootdLocation(endpoint: string, basePath: string): XrootdLocation {
  const match = ENDPOINT_PATTERN.exec(endpoint);
  if (match === null) throw new Error(`bad XRootD endpoint ${JSON.stringify(endpoint)}`);
  const port = Number(match[2] ?? "1094");
  if (port < 1 || port > 65_535) throw new Error(`bad port in XRootD endpoint ${JSON.stringify(endpoint)}`);
  return { hostPort: `${match[1]}:${port}`, basePath: basePath.replace(/\/+$/, "") };
}

/**
 * Splits a file or directory URL (`root://host:port//base/dir`) into its
 * server and absolute path; null when it is not a root:// URL.
 */
export function splitXrootdUrl(url: string): { hostPort: string; path: string } | null {
  const match = /^(?:root|xroot):\/\/([^/]+)\/(\/.*)$/.exec(url);
  if (match === null) return null;
  const [hostPart, path] = [match[1]!, match[2]!];
  const hostPort = hostPart.includes(":") && !hostPart.endsWith("]") ? hostPart : `${hostPart}:1094`;
  if (UNSAFE_PATH_CHARS.test(path)) return null;
  return { hostPort, path: path.replace(/\/+$/, "") || "/" };
}

export function isXrootdUrl(url: string): boolean {
  return /^(?:root|xroot):\/\//.test(url);
}

/** The URL of an absolute path on a server: `root://host:port//abs/path`. */
export function xrootdUrl(hostPort: string, absolutePath: string): string {
  return `root://${hostPort}/${absolutePath}`;
}

/** A storage path's segments, also refused when XRootD's clients would read part of it as options. */
export function xrootdPathSegments(path: string): string[] {
  const segments = storagePathSegments(path);
  if (UNSAFE_PATH_CHARS.test(path)) {
    throw new StorageError(
      "BAD_PATH",
      path,
      `bad storage path ${JSON.stringify(path)}: ?, #, & and white space cannot be stored on XRootD`,
    );
  }
  return segments;
}
