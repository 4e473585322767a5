/** What a pilot tells the server of its slot in `pilot.hello`: cores, memory, disk, walltime left, measured on the worker node. */
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { availableParallelism, hostname, totalmem } from "node:os";

const BYTES_PER_MB = 1024 * 1024;

/** What `pilot.hello` tells the server about this slot. */
export interface SlotResources {
  hostname: string;
  cores: number;
  memoryMb: number;
  diskMb: number;
  walltimeLeftSec: number;
  agent: string;
}

/** The slot as it is now: disk is measured again and walltime keeps running down between reconnects. */
export async function measureSlot(
  workdir: string,
  walltimeSec: number,
  startedAtMs: number,
): Promise<SlotResources> {
  const elapsedSec = Math.floor((Date.now() - startedAtMs) / 1000);
  return {
    hostname: hostname().slice(0, 255),
    cores: availableParallelism(),
    memoryMb: Math.floor(totalmem() / BYTES_PER_MB),
    diskMb: await freeDiskMb(workdir),
    walltimeLeftSec: Math.max(0, walltimeSec - elapsedSec),
    agent: PILOT_AGENT,
  };
}

async function freeDiskMb(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return Math.floor((fs.bavail * fs.bsize) / BYTES_PER_MB);
}

/** `panda-pilot/<package version>`; the package file sits two levels up from both src/pilot and dist/pilot. */
export const PILOT_AGENT = `panda-pilot/${packageVersion()}`;

/** Set by the bundler in dist/panda-pilot.cjs, where no package.json sits beside the code. */
declare const __PANDA_VERSION__: string | undefined;

function packageVersion(): string {
  if (typeof __PANDA_VERSION__ === "string") return __PANDA_VERSION__;
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    const version: unknown = JSON.parse(text).version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
