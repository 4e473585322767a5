/** Storage paths checked once, where they enter: no `..`, no absolute path, nothing under the reserved directory. */
import { StorageError } from "./storage-element.js";

/** The directory a storage element keeps its own temp files and metadata in; never a user path. */
export const RESERVED_TOP_DIRECTORY = ".panda-se";

const MAX_PATH_CHARS = 1024;

function badPath(path: string, why: string): StorageError {
  return new StorageError("BAD_PATH", path, `bad storage path ${JSON.stringify(path)}: ${why}`);
}

/**
 * Checks a relative storage path and answers its segments. Paths are plain
 * `a/b/c`: anything that could climb out of the storage root or mean
 * different things on different systems is refused rather than normalised.
 */
export function storagePathSegments(path: string): string[] {
  if (path.length === 0) throw badPath(path, "empty");
  if (path.length > MAX_PATH_CHARS) throw badPath(path, `longer than ${MAX_PATH_CHARS} characters`);
  if (path.includes("\0")) throw badPath(path, "contains a NUL byte");
  if (path.includes("\\")) throw badPath(path, "contains a backslash");
  if (path.startsWith("/")) throw badPath(path, "absolute");
  const segments = path.split("/");
  for (const segment of segments) {
    if (segment === "") throw badPath(path, "empty segment");
    if (segment === "." || segment === "..") throw badPath(path, `segment ${segment}`);
  }
  if (segments[0] === RESERVED_TOP_DIRECTORY) throw badPath(path, `${RESERVED_TOP_DIRECTORY} is reserved`);
  return segments;
}

/**
 * Checks a listing prefix: "" lists everything, "a/b/" a directory, "a/b"
 * anything starting so. Answers the directory to walk, as segments.
 */
export function listPrefixDirectory(prefix: string): string[] {
  if (prefix === "") return [];
  const namesDirectory = prefix.endsWith("/");
  const segments = storagePathSegments(namesDirectory ? prefix.slice(0, -1) : prefix);
  // Without a trailing slash the last segment may be a partial name, so walk its parent.
  return namesDirectory ? segments : segments.slice(0, -1);
}
