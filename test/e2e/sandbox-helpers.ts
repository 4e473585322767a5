// What the sandbox end-to-end tests share: code with a build step to ship, and waiting for a task the CLI submitted (its id known only after).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ServerNode } from "../../src/server/server.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";

/**
 * Writes into `dir` code whose build (`python3 build.py`) turns a template
 * into the module the run (`python3 run.py {jobId}`) imports: the run writes
 * `out-<jobId>.txt` holding the id of the job that built it.
 */
export async function writeBuildableCode(dir: string): Promise<void> {
  await writeFile(join(dir, "greet.py.in"), "BUILT_BY = '@JOB@'\n");
  await writeFile(
    join(dir, "build.py"),
    "import os\nsrc = open('greet.py.in').read()\nopen('greet.py', 'w').write(src.replace('@JOB@', os.environ['PANDA_JOB_ID']))\n",
  );
  await writeFile(
    join(dir, "run.py"),
    "import sys\nfrom greet import BUILT_BY\nopen(f'out-{sys.argv[1]}.txt', 'w').write(BUILT_BY)\n",
  );
}

/** A task polled until it ended (done, finished or failed). */
export function endedTask(node: ServerNode, taskId: string) {
  return until(async () => {
    const t = await readContext(node.grid.ctx, "task", taskId);
    return t && ["done", "finished", "failed"].includes(t.state) ? t : undefined;
  }, 90_000);
}
