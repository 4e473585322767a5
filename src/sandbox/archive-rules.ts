/**
 * What a sandbox archive may hold, decided from its entries' headers alone
 * (pure, so every hostile case is a unit test): regular files, directories,
 * symlinks and hard links that stay inside the directory, within a size and
 * an entry count. Everything else is refused with a message naming the entry.
 */
import { posix } from "node:path";

export interface UnpackLimits {
  /** The sum of the regular files' sizes. */
  maxUnpackedBytes: number;
  maxEntries: number;
}

/** The part of a tar header the rules read. */
export interface EntryHeader {
  name: string;
  type?: string | null | undefined;
  size?: number | undefined;
  linkname?: string | null | undefined;
  mode?: number | undefined;
}

/** An entry that passed: its path as segments under the directory, and what to make there. */
export type PlannedEntry =
  | { kind: "directory"; path: string }
  | { kind: "file"; path: string; sizeBytes: number; executable: boolean }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "hardlink"; path: string; target: string };

/** A sandbox that must not be unpacked; the message says which entry and why. */
export class SandboxRefused extends Error {
  override readonly name = "SandboxRefused";
}

/**
 * An entry's name as a relative path (`./` and trailing `/` dropped), or a
 * refusal: absolute, `..`, backslashes, NUL, or empty.
 */
export function relativeEntryPath(name: string, what = "entry"): string {
  if (name.includes("\0")) throw new SandboxRefused(`${what} ${JSON.stringify(name)} holds a NUL byte`);
  if (name.includes("\\")) {
    throw new SandboxRefused(`${what} ${JSON.stringify(name)} holds a backslash (not a portable path)`);
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new SandboxRefused(`${what} ${JSON.stringify(name)} is an absolute path`);
  }
  const segments = name.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) {
    throw new SandboxRefused(`${what} ${JSON.stringify(name)} has a '..' component`);
  }
  return segments.join("/");
}

/** Does a symlink at `path` pointing to `target` resolve, lexically, inside the directory? */
function symlinkStaysInside(path: string, target: string): boolean {
  if (target === "" || target.startsWith("/") || target.includes("\0")) return false;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved !== ".." && !resolved.startsWith("../") && !posix.isAbsolute(resolved);
}

/**
 * Checks the entries of one archive, in order, and answers what to make.
 * Besides each entry's own checks: no path twice (a second entry could
 * replace a checked one), no entry below a symlink of the archive (writing
 * through it would land wherever it points, and a chain of links defeats a
 * lexical check), and a hard link only to a regular file made before it.
 */
export class EntryPlanner {
  readonly entries: PlannedEntry[] = [];
  private readonly kinds = new Map<string, PlannedEntry["kind"]>();
  /** Every directory some entry lies below, declared or not. */
  private readonly parents = new Set<string>();
  private unpackedBytes = 0;

  constructor(private readonly limits: UnpackLimits) {}

  add(header: EntryHeader): PlannedEntry | null {
    if (this.entries.length + 1 > this.limits.maxEntries) {
      throw new SandboxRefused(`more than ${this.limits.maxEntries} entries (the limit)`);
    }
    const path = relativeEntryPath(header.name);
    const type = header.type ?? "file";
    if (path === "") {
      if (type === "directory") return null; // `./` itself: the directory we unpack into
      throw new SandboxRefused(`a ${type} entry has an empty name`);
    }
    this.checkAncestors(path);
    const entry = this.plan(path, type, header);
    const seen = this.kinds.get(path);
    if (seen !== undefined) {
      if (seen === "directory" && entry.kind === "directory") return null;
      throw new SandboxRefused(`entry ${JSON.stringify(path)} appears twice`);
    }
    if (entry.kind !== "directory" && this.parents.has(path)) {
      throw new SandboxRefused(
        `${entry.kind} ${JSON.stringify(path)} would replace a directory of earlier entries`,
      );
    }
    this.kinds.set(path, entry.kind);
    this.entries.push(entry);
    return entry;
  }

  private plan(path: string, type: string, header: EntryHeader): PlannedEntry {
    const quoted = JSON.stringify(path);
    switch (type) {
      case "directory":
        return { kind: "directory", path };
      case "file":
      case "contiguous-file": {
        const sizeBytes = header.size ?? 0;
        this.unpackedBytes += sizeBytes;
        if (this.unpackedBytes > this.limits.maxUnpackedBytes) {
          throw new SandboxRefused(
            `unpacked size exceeds the limit of ${this.limits.maxUnpackedBytes} bytes (at entry ${quoted})`,
          );
        }
        return { kind: "file", path, sizeBytes, executable: ((header.mode ?? 0o644) & 0o111) !== 0 };
      }
      case "symlink": {
        const target = header.linkname ?? "";
        if (!symlinkStaysInside(path, target)) {
          throw new SandboxRefused(
            `symlink ${quoted} points outside the directory (to ${JSON.stringify(target)})`,
          );
        }
        return { kind: "symlink", path, target };
      }
      case "link": {
        const target = relativeEntryPath(header.linkname ?? "", `hard link ${quoted} to`);
        if (this.kinds.get(target) !== "file") {
          throw new SandboxRefused(
            `hard link ${quoted} must name a regular file earlier in the archive, not ${JSON.stringify(target)}`,
          );
        }
        return { kind: "hardlink", path, target };
      }
      default:
        throw new SandboxRefused(
          `entry ${quoted} is a ${type} (only files, directories and links are allowed)`,
        );
    }
  }

  private checkAncestors(path: string): void {
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/");
      const kind = this.kinds.get(ancestor);
      if (kind !== undefined && kind !== "directory") {
        throw new SandboxRefused(
          `entry ${JSON.stringify(path)} lies below ${kind} ${JSON.stringify(ancestor)}`,
        );
      }
      this.parents.add(ancestor);
    }
  }
}
