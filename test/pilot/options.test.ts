import { describe, expect, it } from "vitest";
import { reconnectDelayMs } from "../../src/pilot/backoff.js";
import { pilotSocketUrl } from "../../src/pilot/connection.js";
import { PilotUsageError, parsePilotArgs } from "../../src/pilot/options.js";

const REQUIRED = ["--server", "https://panda.example.org", "--site", "CERN", "--token", "t0ken"];

function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parsePilotArgs(argv, env);
  } catch (err) {
    if (err instanceof PilotUsageError) return err.message;
    throw err;
  }
  throw new Error("expected a usage error");
}

describe("pilot options", () => {
  it("parses every flag", () => {
    const options = parsePilotArgs(
      [
        ...REQUIRED,
        "--multitask",
        "--workdir",
        "/scratch/pilot",
        "--max-jobs",
        "5",
        "--idle-timeout",
        "2.5",
        "--stay",
        "--walltime",
        "7200",
        "--call-home-timeout",
        "30",
      ],
      {},
    );
    expect(options).toEqual({
      serverUrl: "https://panda.example.org",
      serverUrls: ["https://panda.example.org"],
      site: "CERN",
      token: "t0ken",
      multitask: true,
      workdir: "/scratch/pilot",
      maxJobs: 5,
      idleTimeoutSec: 2.5,
      stay: true,
      walltimeSec: 7200,
      callHomeTimeoutSec: 30,
    });
  });

  it("takes several server nodes, in order, and names a bad one", () => {
    const args = ["--server", "http://a:8080, http://b:8080", "--site", "S", "--token", "t"];
    expect(parsePilotArgs(args, {})).toMatchObject({
      serverUrl: "http://a:8080",
      serverUrls: ["http://a:8080", "http://b:8080"],
    });
    expect(() =>
      parsePilotArgs(["--server", "http://a:8080,ftp://b", "--site", "S", "--token", "t"], {}),
    ).toThrow(/--server: must be an http, https, ws or wss URL, or several separated by commas/);
  });

  it("defaults: one primary job, 24 h walltime, the current directory", () => {
    expect(parsePilotArgs(REQUIRED, {})).toMatchObject({
      multitask: false,
      stay: false,
      maxJobs: undefined,
      idleTimeoutSec: undefined,
      walltimeSec: 86_400,
      workdir: process.cwd(),
    });
  });

  it("takes the token from PANDA_PILOT_TOKEN when --token is absent", () => {
    const argv = ["--server", "http://localhost:8080", "--site", "CERN"];
    expect(parsePilotArgs(argv, { PANDA_PILOT_TOKEN: "from-env" })).toMatchObject({ token: "from-env" });
  });

  it("names the bad flag", () => {
    expect(usageError(["--site", "CERN", "--token", "t"])).toMatch(/^--server: is required/);
    expect(usageError([...REQUIRED.slice(0, 4)])).toMatch(/^--token: is required/);
    expect(usageError([...REQUIRED, "--max-jobs", "0"])).toMatch(/^--max-jobs: /);
    expect(usageError([...REQUIRED, "--max-jobs", "two"])).toMatch(/^--max-jobs: /);
    expect(usageError([...REQUIRED, "--idle-timeout=-1"])).toMatch(/^--idle-timeout: /);
    expect(usageError([...REQUIRED, "--walltime", "1.5"])).toMatch(/^--walltime: /);
    expect(usageError([...REQUIRED, "--call-home-timeout", "0"])).toMatch(/^--call-home-timeout: /);
    expect(usageError(["--server", "ftp://x", "--site", "CERN", "--token", "t"])).toMatch(
      /^--server: must be/,
    );
    expect(usageError([...REQUIRED, "--colour"])).toContain("--colour");
    expect(usageError([...REQUIRED, "--site"])).toContain("--site");
  });

  it("answers help", () => {
    expect(parsePilotArgs(["--help"], {})).toBe("help");
  });
});

describe("pilot socket URL and backoff", () => {
  it("turns the server URL into its /pilot socket URL", () => {
    expect(pilotSocketUrl("http://localhost:8080")).toBe("ws://localhost:8080/pilot");
    expect(pilotSocketUrl("https://panda.example.org/grid/")).toBe("wss://panda.example.org/grid/pilot");
    expect(pilotSocketUrl("wss://panda.example.org")).toBe("wss://panda.example.org/pilot");
  });

  it("doubles from 100 ms to 5 s, jittered into the upper half", () => {
    const low = () => 0;
    const high = () => 1;
    expect([0, 1, 2, 3, 6, 20].map((n) => reconnectDelayMs(n, undefined, high))).toEqual([
      100, 200, 400, 800, 5000, 5000,
    ]);
    expect(reconnectDelayMs(0, undefined, low)).toBe(50);
    expect(reconnectDelayMs(20, undefined, low)).toBe(2500);
  });
});
