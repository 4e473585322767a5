import { describe, expect, it } from "vitest";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { TOKEN } from "./fake-server.js";
import { isAlive, payloadPid, until, usePilotFixture } from "./pilot-process.js";

const startPilot = usePilotFixture();

describe("pilot jobs", () => {
  it("runs a job with an input and an output and ends it finished with the right checksums", async () => {
    const { server, pilot } = await startPilot({ env: { PANDA_PILOT_TOKEN: TOKEN } });
    await server.waitFor("pilot.ready", (ready) => ready.thread === "primary");
    const data = Buffer.from("event data\n".repeat(1000));
    const input = await server.addInput("in.dat", data);
    const job = server.push("primary", {
      command: [
        "sh",
        "-c",
        'cat in.dat in.dat > out.dat; echo "job $PANDA_JOB_ID attempt $PANDA_ATTEMPT $MY_SETTING"; printenv PANDA_PILOT_TOKEN || echo token hidden',
      ],
      env: { MY_SETTING: "from-the-job" },
      inputs: [input],
      outputs: ["out.dat"],
    });

    const ended = await server.ended(job.jobId);
    const expectedOutput = Buffer.concat([data, data]);
    expect(ended).toMatchObject({ outcome: "finished", exitCode: 0, attempt: 1 });
    expect(ended.errorClass).toBeUndefined();
    expect(ended.outputs).toEqual([
      { lfn: "out.dat", sizeBytes: expectedOutput.length, checksum: checksumOfBytes(expectedOutput) },
    ]);
    expect(await server.uploaded("out.dat")).toEqual(expectedOutput);

    const logLfn = `${job.jobId}.1.log.txt`;
    const log = await server.uploaded(logLfn);
    expect(log?.toString()).toContain(`job ${job.jobId} attempt 1 from-the-job\ntoken hidden`);
    expect(ended.log).toEqual({ lfn: logLfn, sizeBytes: log?.length, checksum: checksumOfBytes(log!) });

    const order = server.received
      .filter((frame) => "jobId" in frame && frame.type !== "job.heartbeat")
      .map((frame) => (frame.type === "job.status" ? frame.state : frame.type));
    expect(order).toEqual(["job.ack", "starting", "running", "job.ended"]);
    // Without --stay the pilot's work ends with its primary job.
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.invalid).toEqual([]);
  });

  it("reports a non-zero exit as failed/payload with the exit code, and uploads the log", async () => {
    const { server, pilot } = await startPilot();
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["sh", "-c", "echo bad things >&2; exit 7"] });

    const ended = await server.ended(job.jobId);
    expect(ended).toMatchObject({ outcome: "failed", errorClass: "payload", exitCode: 7, outputs: [] });
    const log = (await server.uploaded(`${job.jobId}.1.log.txt`))?.toString();
    expect(log).toContain("bad things");
    expect(log).toContain("[pilot] payload exited with code 7");
    expect((await pilot.exited).code).toBe(0);
  });

  it("fails stage-in on a checksum mismatch without starting the payload", async () => {
    const { server } = await startPilot();
    await server.waitFor("pilot.ready");
    const input = await server.addInput("in.dat", Buffer.from("the real bytes"));
    const job = server.push("primary", {
      command: ["sh", "-c", "echo ran > ran.txt"],
      inputs: [{ ...input, checksum: "adler32:00000001" }],
    });

    const ended = await server.ended(job.jobId);
    expect(ended).toMatchObject({ outcome: "failed", errorClass: "stagein", exitCode: null });
    expect(server.all("job.status")).toEqual([]);
  });

  it("kills a payload that exceeds its walltime and reports timeout", async () => {
    const { server } = await startPilot();
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["sleep", "30"], walltimeSec: 1 });

    const running = await server.waitFor("job.status", (status) => status.state === "running");
    const startedAtMs = Date.now();
    const ended = await server.ended(job.jobId);
    expect(running.jobId).toBe(job.jobId);
    expect(ended).toMatchObject({ outcome: "failed", errorClass: "timeout" });
    expect(Date.now() - startedAtMs).toBeLessThan(5_000);
  });

  it("kills the payload's whole process group within a second on job.kill", async () => {
    const { server, pilot, workdir } = await startPilot();
    await server.waitFor("pilot.ready");
    // The leader runs a child of its own: both are in the group and both must go.
    const job = server.push("primary", {
      command: ["sh", "-c", "sleep 600 & echo $! > child.pid; echo $$ > leader.pid; wait"],
    });
    await server.waitFor("job.status", (status) => status.state === "running");
    const leaderPid = await payloadPid(workdir, job.jobId, "leader.pid");
    const childPid = await payloadPid(workdir, job.jobId, "child.pid");
    expect(isAlive(leaderPid) && isAlive(childPid)).toBe(true);

    const killedAtMs = Date.now();
    server.kill(job.jobId, 1, "user asked");
    await until(() => (!isAlive(leaderPid) && !isAlive(childPid) ? true : undefined), 2_000);
    expect(Date.now() - killedAtMs).toBeLessThan(1_000);

    const ended = await server.ended(job.jobId);
    expect(ended).toMatchObject({ outcome: "cancelled", errorClass: "killed" });
    expect(ended.errorMessage).toContain("user asked");
    expect((await pilot.exited).code).toBe(0);
  });

  it("ignores a kill for a job it does not run", async () => {
    const { server } = await startPilot();
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["sleep", "0.5"] });
    await server.waitFor("job.status", (status) => status.state === "running");
    server.kill("no-such-job");
    server.kill(job.jobId, 2);

    expect(await server.ended(job.jobId)).toMatchObject({ outcome: "finished" });
  });

  it("multitask: runs short secondaries one after another while the primary runs, then exits", async () => {
    const { server, pilot } = await startPilot({ flags: ["--multitask"] });
    await server.waitFor("pilot.ready", (ready) => ready.thread === "primary");
    await server.waitFor("pilot.ready", (ready) => ready.thread === "secondary");
    const primary = server.push("primary", { command: ["sleep", "2"] });
    await server.waitFor(
      "job.status",
      (status) => status.jobId === primary.jobId && status.state === "running",
    );

    const secondaries: string[] = [];
    const pushSecondary = () => {
      secondaries.push(server.push("secondary", { command: ["sh", "-c", "echo analysis"] }).jobId);
    };
    server.onFrame((frame) => {
      if (frame.type === "pilot.ready" && frame.thread === "secondary" && secondaries.length < 3)
        pushSecondary();
    });
    pushSecondary();

    const primaryEnded = await server.ended(primary.jobId);
    expect(primaryEnded.outcome).toBe("finished");
    expect(secondaries).toHaveLength(3);
    for (const jobId of secondaries) {
      const ended = await server.ended(jobId);
      expect(ended.outcome).toBe("finished");
      expect(server.indexOf(ended)).toBeLessThan(server.indexOf(primaryEnded));
    }
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    // Once the primary ended the pilot asked for no more work.
    expect(server.after(primaryEnded, "pilot.ready")).toEqual([]);
  });

  it("with --stay --max-jobs 2 takes a second primary job, then exits", async () => {
    const { server, pilot } = await startPilot({ flags: ["--stay", "--max-jobs", "2"] });
    await server.waitFor("pilot.ready");
    const jobs = [server.push("primary").jobId];
    server.onFrame((frame) => {
      if (frame.type === "pilot.ready") jobs.push(server.push("primary").jobId);
    });

    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(jobs).toHaveLength(2);
    for (const jobId of jobs) expect((await server.ended(jobId)).outcome).toBe("finished");
  });
});
