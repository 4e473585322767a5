import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encode } from "../../src/protocol/codec.js";
import { TOKEN } from "./fake-server.js";
import {
  isAlive,
  type PilotFixture,
  PilotProcess,
  payloadPid,
  until,
  usePilotFixture,
} from "./pilot-process.js";

const startPilot = usePilotFixture();

/** Pushes a payload that writes its pid and sleeps for as long as it is let; answers its job id and pid. */
async function startLongJob({ server, workdir }: PilotFixture): Promise<{ jobId: string; pid: number }> {
  await server.waitFor("pilot.ready");
  const job = server.push("primary", { command: ["sh", "-c", "echo $$ > pid; exec sleep 600"] });
  await server.waitFor("job.status", (status) => status.state === "running");
  return { jobId: job.jobId, pid: await payloadPid(workdir, job.jobId) };
}

describe("pilot session", () => {
  it("says hello with its resources, asks for work, ignores malformed frames and exits when idle", async () => {
    const { server, pilot } = await startPilot({
      flags: ["--stay", "--idle-timeout", "1", "--walltime", "3600"],
    });
    const hello = await server.waitFor("pilot.hello");
    expect(hello).toMatchObject({ site: "TEST", multitask: false });
    expect(hello.resume).toBeUndefined();
    expect(hello.cores).toBeGreaterThanOrEqual(1);
    expect(hello.memoryMb).toBeGreaterThan(0);
    expect(hello.diskMb).toBeGreaterThan(0);
    expect(hello.walltimeLeftSec).toBeGreaterThan(3590);
    expect(hello.walltimeLeftSec).toBeLessThanOrEqual(3600);
    expect(hello.hostname).not.toBe("");
    expect(hello.agent).toMatch(/^panda-pilot\//);
    await server.waitFor("pilot.ready");

    server.sendBytes(Buffer.from([0xc1, 0xff, 0x00]));
    server.sendBytes(encode({ type: "job.push", v: 1, id: "bad-1", thread: "primary" }));
    server.send({ type: "error", code: "INTERNAL", message: "something broke" });
    server.kill("no-such-job");
    await until(() => (pilot.log.includes("kill for a job not running here ignored") ? true : undefined));

    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.all("pilot.ready").map((ready) => ready.thread)).toEqual(["primary"]);
    const lines = pilot.log
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.filter((line) => line.msg === "malformed server frame ignored")).toHaveLength(2);
    expect(lines.some((line) => line.msg === "idle timeout: no work arrived")).toBe(true);
    for (const line of lines)
      expect(line).toMatchObject({ t: expect.any(String), level: expect.any(String) });
    expect(pilot.log).not.toContain(TOKEN);
    expect(pilot.log).not.toContain(server.resumeToken);
  });

  it("exits 3 when the server refuses the credential at the upgrade", async () => {
    const { pilot } = await startPilot({ token: "not-the-token" });
    expect(await pilot.exited).toEqual({ code: 3, signal: null });
    expect(pilot.log).toContain("the server refused the credential");
  });

  it("exits 4 when no session opens within --call-home-timeout", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const workdir = await mkdtemp(join(tmpdir(), "panda-pilot-nohome-"));
    const pilot = new PilotProcess([
      "--server",
      `http://127.0.0.1:${port}`,
      "--site",
      "SITE",
      "--token",
      "t0ken",
      "--workdir",
      workdir,
      "--call-home-timeout",
      "1",
    ]);
    expect(await pilot.exited).toEqual({ code: 4, signal: null });
    expect(pilot.log).toContain("could not call home");
    await rm(workdir, { recursive: true, force: true });
  });

  it("exits 3 when the server closes the session with 4001", async () => {
    const { server, pilot } = await startPilot({ server: { refuseSessions: true } });
    expect(await pilot.exited).toEqual({ code: 3, signal: null });
    expect(server.sessions).toBe(1);
  });

  it("reconnects after a dropped socket, resumes, and resends job.ended until it is acked", async () => {
    let ackEnded = false;
    const { server, pilot } = await startPilot({
      server: { shouldAck: (report) => report.type !== "job.ended" || ackEnded },
    });
    const firstHello = await server.waitFor("pilot.hello");
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["sleep", "1"] });
    await server.waitFor("job.status", (status) => status.state === "running");

    const afterFirstDrop = server.received.length;
    server.dropSocket();
    const resumed = await server.waitFor("pilot.hello", undefined, afterFirstDrop);
    expect(resumed.resume).toEqual({ pilotId: server.pilotId, token: server.resumeToken });
    expect(resumed.walltimeLeftSec).toBeLessThanOrEqual(firstHello.walltimeLeftSec);
    // The payload carried on: heartbeats for it on the new session, and it ends there.
    await server.waitFor("job.heartbeat", (beat) => beat.jobId === job.jobId, afterFirstDrop);
    const ended = await server.ended(job.jobId, afterFirstDrop);
    expect(ended.outcome).toBe("finished");

    const afterSecondDrop = server.received.length;
    server.dropSocket();
    ackEnded = true;
    const resent = await server.ended(job.jobId, afterSecondDrop);
    expect(resent.id).toBe(ended.id);
    expect(server.all("pilot.hello")).toHaveLength(3);

    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.all("job.status").filter((status) => status.state === "running")).toHaveLength(1);
    expect(server.invalid).toEqual([]);
  });

  it("kills a job the server gave up on while the socket was down, without reporting it", async () => {
    const fixture = await startPilot();
    const { server, pilot } = fixture;
    const { pid } = await startLongJob(fixture);

    server.assigned.clear();
    server.dropSocket();
    await until(() => (isAlive(pid) ? undefined : true), 2_000);
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.all("job.ended")).toEqual([]);
  });

  it("drains on SIGTERM: announces it, asks for nothing more, finishes the job, exits 0", async () => {
    const { server, pilot } = await startPilot({ flags: ["--stay", "--multitask"] });
    await server.waitFor("pilot.ready", (ready) => ready.thread === "primary");
    const job = server.push("primary", { command: ["sleep", "1"] });
    await server.waitFor("job.status", (status) => status.state === "running");

    pilot.signal("SIGTERM");
    const draining = await server.waitFor("pilot.draining");
    expect(draining.reason).toContain("SIGTERM");
    expect((await server.ended(job.jobId)).outcome).toBe("finished");
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.after(draining, "pilot.ready")).toEqual([]);
  });

  it("on a second SIGTERM kills the payload, reports it failed (pilot) and exits", async () => {
    const fixture = await startPilot();
    const { server, pilot } = fixture;
    const { jobId, pid } = await startLongJob(fixture);

    pilot.signal("SIGTERM");
    await server.waitFor("pilot.draining");
    pilot.signal("SIGTERM");
    expect(await server.ended(jobId)).toMatchObject({ outcome: "failed", errorClass: "pilot" });
    expect(await pilot.exited).toEqual({ code: 143, signal: null });
    expect(isAlive(pid)).toBe(false);
  });

  it("drains when the server says pilot.drain", async () => {
    const { server, pilot } = await startPilot({ flags: ["--stay", "--multitask"] });
    await server.waitFor("pilot.ready", (ready) => ready.thread === "secondary");
    server.send({ type: "pilot.drain", reason: "site going down" });
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
  });
});
