import { runCli } from "../../src/cli/program.js";
import type { PandaRun } from "./panda-process.js";

/**
 * Runs one `panda` command line in this process, with `env` as its PANDA_*
 * environment and its stdout and stderr captured: the same code path as the
 * binary without the seconds a child process costs to start.
 */
export async function runPandaHere(args: readonly string[], env: Record<string, string>): Promise<PandaRun> {
  const saved = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith("PANDA_"))
      .map((k) => [k, process.env[k]]),
  );
  for (const key of Object.keys(saved)) delete process.env[key];
  Object.assign(process.env, env);
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await runCli(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    for (const key of Object.keys(env)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}
