// XRootD servers for tests, standing in for sites' storage elements: each on a free port with a private export directory, adler32 checksums and third-party copy, stoppable, killable and restartable on the same port and directory.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.js";

export const XROOTD_BINARIES = ["/usr/bin/xrootd", "/usr/bin/xrdcp", "/usr/bin/xrdfs"];

/** Whether Debian's xrootd-server and xrootd-client are installed (`.ci/run` installs them). */
export function xrootdAvailable(): boolean {
  return XROOTD_BINARIES.every((path) => existsSync(path));
}

/**
 * What XRootD's clients (ours, and the copy program a server runs for a
 * third-party copy) do when a server is gone: give up within seconds instead
 * of reconnecting for minutes, so a dead server shows as a failed attempt.
 */
export const XRD_CLIENT_ENV = {
  XRD_CONNECTIONRETRY: "1",
  XRD_CONNECTIONWINDOW: "5",
  XRD_STREAMTIMEOUT: "10",
  XRD_REQUESTTIMEOUT: "60",
};

export interface XrootdServerOptions {
  /** Caps the rate of third-party copies this server pulls (`xrdcp --xrate`, e.g. "2m"), to make a copy last. */
  tpcRate?: string;
}

export interface XrootdServer {
  port: number;
  /** `root://127.0.0.1:<port>/`: the address third-party copies match their grants by (no reverse DNS). */
  endpoint: string;
  /** The directory the server exports; a path `/p` on the server is `<exportDir>/p`. */
  exportDir: string;
  pid(): number | undefined;
  /** SIGKILL, as a crash: the port and directory stay for `restart`. */
  kill(): Promise<void>;
  /** Starts again on the same port and directory and waits until it answers. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

/** The unprivileged user a server started by root runs as (xrootd refuses to run as root). */
function serviceUser(): { name: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  for (const name of ["xrootd", "nobody"]) {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${name}:`));
    if (line) {
      const [, , uid, gid] = line.split(":");
      return { name, uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new Error("running as root and no xrootd or nobody user to run xrootd as");
}

function config(dir: string, exportDir: string, options: XrootdServerOptions): string {
  const rate = options.tpcRate ? ` --xrate ${options.tpcRate}` : "";
  return `all.export /
oss.localroot ${exportDir}
xrootd.chksum adler32
ofs.tpc pgm /usr/bin/xrdcp --server${rate}
all.adminpath ${join(dir, "admin")}
all.pidpath ${join(dir, "admin")}
`;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      "xrdfs",
      [`127.0.0.1:${port}`, "query", "config", "version"],
      { env: { ...process.env, ...XRD_CLIENT_ENV }, timeout: 5_000 },
      (err) => resolve(err === null),
    );
  });
}

/** Starts one server; retries on another port if its first pick was taken meanwhile. */
export async function startXrootd(options: XrootdServerOptions = {}): Promise<XrootdServer> {
  const dir = mkdtempSync(join(tmpdir(), "panda-xrootd-"));
  const exportDir = join(dir, "export");
  const user = serviceUser();
  for (const sub of ["export", "admin", "logs"]) mkdirSync(join(dir, sub));
  chmodSync(dir, 0o755);
  if (user) for (const sub of ["export", "admin", "logs"]) chownSync(join(dir, sub), user.uid, user.gid);
  const configPath = join(dir, "xrootd.cfg");
  writeFileSync(configPath, config(dir, exportDir, options));
  const logPath = join(dir, "logs", "xrootd.log");
  let child: ChildProcess | undefined;
  let port = 0;

  const launch = async (): Promise<boolean> => {
    const args = ["-p", String(port), "-c", configPath, "-l", logPath, "-n", "panda"];
    if (user) args.unshift("-R", user.name);
    const proc = spawn("xrootd", args, {
      env: { ...process.env, ...XRD_CLIENT_ENV },
      stdio: "ignore",
    });
    child = proc;
    const exited = new Promise<boolean>((resolve) => proc.once("exit", () => resolve(false)));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const up = await Promise.race([answers(port), exited]);
      if (up) return true;
      if (proc.exitCode !== null || proc.signalCode !== null) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    proc.kill("SIGKILL");
    throw new Error(`xrootd on port ${port} did not answer within 20 s\n${readLog()}`);
  };
  const readLog = () => {
    // -n puts the log under a directory named for the instance.
    const path = join(dir, "logs", "panda", "xrootd.log");
    return existsSync(path)
      ? readFileSync(path, "utf8")
      : existsSync(logPath)
        ? readFileSync(logPath, "utf8")
        : "";
  };
  const exitOf = (proc: ChildProcess | undefined) =>
    proc === undefined || proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => proc.once("exit", () => resolve()));

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    if (await launch()) break;
    if (attempt >= 5) throw new Error(`xrootd would not start\n${readLog()}`);
  }
  return {
    port,
    endpoint: `root://127.0.0.1:${port}/`,
    exportDir,
    pid: () => child?.pid,
    async kill() {
      const done = exitOf(child);
      child?.kill("SIGKILL");
      await done;
    },
    async restart() {
      await exitOf(child);
      // The old socket may linger a moment after a kill; try again until the port is ours.
      const deadline = Date.now() + 20_000;
      while (!(await launch())) {
        if (Date.now() > deadline) throw new Error(`xrootd would not restart on port ${port}\n${readLog()}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async stop() {
      const done = exitOf(child);
      child?.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), 5_000);
      await done;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
    log: readLog,
  };
}

/** Sets the XRootD client environment for this process's own xrdcp/xrdfs runs; answers how to undo it. */
export function useXrootdClientEnv(): () => void {
  const before = Object.fromEntries(Object.keys(XRD_CLIENT_ENV).map((k) => [k, process.env[k]]));
  Object.assign(process.env, XRD_CLIENT_ENV);
  return () => {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
