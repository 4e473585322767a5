// Serves the self-contained pilot at /pilot/bundle with its SHA-256, which a batch job checks before it runs the file.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";

/** Where `npm run build` writes the bundle (src/pilot/bundle.ts); the same place from src/ or dist/. */
export const PILOT_BUNDLE_PATH = fileURLToPath(new URL("../../dist/panda-pilot.cjs", import.meta.url));
export const PILOT_BUNDLE_ROUTE = "/pilot/bundle";
export const BUNDLE_CHECKSUM_HEADER = "x-panda-checksum";

interface LoadedBundle {
  mtimeMs: number;
  bytes: Buffer;
  checksum: string;
}

/**
 * GET (and HEAD) /pilot/bundle: the file, with `X-Panda-Checksum:
 * sha256:<hex>` and that as the ETag. Read once and again only when the file
 * changes (a rebuild), so a thousand batch jobs starting at once cost one read.
 */
export class PilotBundleRoute {
  private loaded: Promise<LoadedBundle> | null = null;

  constructor(private readonly path = PILOT_BUNDLE_PATH) {}

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== PILOT_BUNDLE_ROUTE || (req.method !== "GET" && req.method !== "HEAD")) return false;
    this.current().then(
      (bundle) => {
        res.writeHead(200, {
          "content-type": "application/javascript; charset=utf-8",
          "content-length": bundle.bytes.length,
          [BUNDLE_CHECKSUM_HEADER]: bundle.checksum,
          etag: `"${bundle.checksum}"`,
          "cache-control": "no-cache",
        });
        res.end(req.method === "HEAD" ? undefined : bundle.bytes);
      },
      () => {
        res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
        res.end("the pilot bundle is not built: run `npm run build`\n");
      },
    );
    return true;
  }

  private async current(): Promise<LoadedBundle> {
    const { mtimeMs } = await stat(this.path);
    const cached = this.loaded ? await this.loaded.catch(() => null) : null;
    if (cached && cached.mtimeMs === mtimeMs) return cached;
    this.loaded = readFile(this.path).then((bytes) => ({
      mtimeMs,
      bytes,
      checksum: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    }));
    return this.loaded;
  }
}
