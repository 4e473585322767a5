/** The demo workload `panda up` submits unless `--no-demo`: a small dataset, a production task over it, and short analysis jobs beside it. */
import type { TaskSubmission } from "../workload/submit.js";
import type { PandaClient } from "./client.js";

export const DEMO_INPUT_FILES = 6;
export const DEMO_ANALYSIS_JOBS = 8;
const DEMO_INPUT_SITE = "SITE-A";

export interface DemoTasks {
  dataset: string;
  productionTaskId: string;
  analysisTaskId: string;
}

/**
 * What `panda up` shows off unless `--no-demo`: a small dataset at SITE-A, a
 * production task with one job per input file, and a task of short analysis
 * jobs (which multitasking pilots run beside the production jobs). Names carry
 * a run stamp, so a restart on the same storage or Redis never collides.
 */
export async function submitDemo(client: PandaClient, runStamp: string): Promise<DemoTasks> {
  const dataset = `demo.inputs.${runStamp}`;
  for (let i = 1; i <= DEMO_INPUT_FILES; i++) {
    const lfn = `demo.${runStamp}.input-${i}.txt`;
    await client.putFile(dataset, DEMO_INPUT_SITE, lfn, Buffer.from(`demo input ${i}\n`));
  }
  const production: TaskSubmission = {
    name: "demo production",
    type: "production",
    input: { dataset, filesPerJob: 1 },
    payload: {
      command: ["sh", "-c", "sleep 1; echo done > out-{jobId}.txt"],
      outputs: ["out-{jobId}.txt"],
    },
  };
  const analysis: TaskSubmission = {
    name: "demo analysis",
    type: "analysis",
    jobs: DEMO_ANALYSIS_JOBS,
    resources: { walltimeSec: 60 },
    payload: { command: ["sh", "-c", "echo analysing {jobId}"] },
  };
  const productionTask = await client.submitTask(production);
  const analysisTask = await client.submitTask(analysis);
  return { dataset, productionTaskId: productionTask.taskId, analysisTaskId: analysisTask.taskId };
}
