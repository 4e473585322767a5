/**
 * The CLI's side of sandboxes: `panda submit --sandbox DIR` packs the
 * directory and uploads it once (`shipSandbox`), and `panda sandbox ls`
 * lists them (a user's own; an operator's `--all`).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { packDirectory, SandboxPackError } from "../sandbox/archive-pack.js";
import type { SandboxRef } from "../sandbox/sandbox-ref.js";
import type { SandboxRow } from "./api-answers.js";
import type { PandaClient } from "./client.js";
import { usageError } from "./errors.js";
import { addConnectionOptions, addJsonOption, type ConnectionOptions, clientFor } from "./options.js";
import { isoTime, printAnswer, renderTable } from "./output.js";

/** What the CLI packs at most before it even asks the server (whose own limit is usually lower). */
const LOCAL_MAX_PACK_BYTES = 1024 * 1024 * 1024;

export interface ShippedSandbox extends SandboxRef {
  /** False when the server already held it: nothing was sent. */
  uploaded: boolean;
}

/**
 * Packs `dir` (reproducibly, so unchanged code has the same hash), asks the
 * server whether it holds that hash for us, and uploads it only if not.
 */
export async function shipSandbox(
  client: PandaClient,
  dir: string,
  exclude: readonly string[],
): Promise<ShippedSandbox> {
  const tempDir = await mkdtemp(join(tmpdir(), "panda-sandbox-"));
  try {
    let packed: Awaited<ReturnType<typeof packDirectory>>;
    try {
      packed = await packDirectory(dir, join(tempDir, "sandbox.tar.gz"), {
        exclude,
        maxBytes: LOCAL_MAX_PACK_BYTES,
      });
    } catch (err) {
      if (err instanceof SandboxPackError) throw usageError(`--sandbox: ${err.message}`);
      throw err;
    }
    const ref = { sha256: packed.sha256, sizeBytes: packed.sizeBytes };
    const probe = await client.probeSandbox(packed.sha256);
    if (probe.present) return { ...ref, uploaded: false };
    if (probe.maxBytes !== null && packed.sizeBytes > probe.maxBytes) {
      throw usageError(
        `--sandbox: ${dir} packs to ${packed.sizeBytes} bytes, over the server's limit of ${probe.maxBytes}: leave files out with --exclude GLOB`,
      );
    }
    await client.uploadSandbox(packed.sha256, await readFile(packed.archivePath));
    return { ...ref, uploaded: true };
  } finally {
    await rm(tempDir, { recursive: true, force: true });
  }
}

export function renderSandboxes(rows: readonly SandboxRow[]): string {
  if (rows.length === 0) return "no sandboxes";
  return renderTable(
    ["sha256", "bytes", "created", "last used", "owners", "tasks"],
    rows.map((s) => [
      s.sha256.slice(0, 16),
      s.sizeBytes,
      isoTime(s.createdMs),
      isoTime(s.lastUsedMs),
      s.owners.join(","),
      s.tasks.length > 3 ? `${s.tasks.slice(0, 3).join(",")} +${s.tasks.length - 3}` : s.tasks.join(","),
    ]),
  );
}

interface SandboxLsFlags extends ConnectionOptions {
  all?: boolean;
  json?: boolean;
}

export function registerSandboxCommand(program: Command): void {
  const sandbox = program
    .command("sandbox")
    .description("users' code shipped with tasks (panda submit --sandbox)");
  const ls = sandbox
    .command("ls")
    .description("list sandboxes, least recently used first: your own, or with --all (operators) everyone's")
    .option("--all", "every user's sandboxes (operator or admin role)");
  addJsonOption(addConnectionOptions(ls)).action(async (flags: SandboxLsFlags) => {
    const answer = await clientFor(flags).listSandboxes(flags.all ? "all" : "mine");
    printAnswer(flags.json, answer.sandboxes, () => renderSandboxes(answer.sandboxes));
  });
}
