/**
 * Hand-built tar.gz archives for the sandbox tests: any header a hostile user
 * could write (`..`, absolute paths, links out, devices), made with the same
 * tar library the pilot reads with, so nothing on the way cleans them up.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { type Header, pack } from "tar-stream";

export interface RawEntry {
  header: Partial<Header> & { name: string };
  body?: string | Buffer;
}

/** The tar.gz bytes of these entries, in this order, headers as given. */
export async function buildArchive(entries: readonly RawEntry[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of tar) chunks.push(chunk as Buffer);
  })();
  for (const { header, body } of entries) {
    const bytes = body === undefined ? undefined : Buffer.from(body);
    const type = header.type ?? "file";
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file")
        tar.entry({ mode: 0o644, ...header, size: bytes?.length ?? 0 }, bytes ?? Buffer.alloc(0), cb);
      else tar.entry({ mode: 0o755, ...header }, cb);
    });
  }
  tar.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

export async function writeArchive(path: string, entries: readonly RawEntry[]): Promise<Buffer> {
  const bytes = await buildArchive(entries);
  await writeFile(path, bytes);
  return bytes;
}

export function sha256Of(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * One archive per way out of the directory: each begins with a harmless file,
 * so a test also sees that nothing of a refused archive is written. `canary`
 * is a path outside the work directory (relative to it: `../canary`, or
 * absolute) that a successful attack would create.
 */
export function hostileArchives(
  canaryAbsolute: string,
): Record<string, { entries: RawEntry[]; refusal: RegExp }> {
  const harmless: RawEntry = { header: { name: "ok.txt" }, body: "fine\n" };
  return {
    dotdot: {
      entries: [harmless, { header: { name: "../canary" }, body: "pwned\n" }],
      refusal: /'\.\.' component/,
    },
    nestedDotdot: {
      entries: [harmless, { header: { name: "a/../../canary" }, body: "pwned\n" }],
      refusal: /'\.\.' component/,
    },
    absolute: {
      entries: [harmless, { header: { name: canaryAbsolute }, body: "pwned\n" }],
      refusal: /absolute path/,
    },
    symlinkOut: {
      entries: [
        harmless,
        { header: { name: "escape", type: "symlink", linkname: "../" } },
        { header: { name: "escape/canary" }, body: "pwned\n" },
      ],
      refusal: /points outside the directory/,
    },
    symlinkAbsolute: {
      entries: [harmless, { header: { name: "passwd", type: "symlink", linkname: canaryAbsolute } }],
      refusal: /points outside the directory/,
    },
    symlinkChain: {
      // Each link alone resolves inside; followed one through the other they would lead out.
      entries: [
        harmless,
        { header: { name: "d", type: "symlink", linkname: "." } },
        { header: { name: "d/x", type: "symlink", linkname: ".." } },
      ],
      refusal: /lies below symlink/,
    },
    hardlinkOut: {
      entries: [harmless, { header: { name: "hard", type: "link", linkname: canaryAbsolute } }],
      refusal: /absolute path/,
    },
    hardlinkUp: {
      entries: [harmless, { header: { name: "hard", type: "link", linkname: "../canary" } }],
      refusal: /'\.\.' component/,
    },
    device: {
      entries: [harmless, { header: { name: "null", type: "character-device", devmajor: 1, devminor: 3 } }],
      refusal: /is a character-device/,
    },
    fifo: {
      entries: [harmless, { header: { name: "pipe", type: "fifo" } }],
      refusal: /is a fifo/,
    },
    duplicate: {
      entries: [harmless, { header: { name: "./ok.txt" }, body: "replaced\n" }],
      refusal: /appears twice/,
    },
  };
}
