/**
 * Running XRootD's command-line clients (xrdcp, xrdfs) as child processes:
 * their output collected, their failures turned into errors that say which
 * XRootD error it was (a missing file is told apart from a dead server).
 */
import { spawn } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";

/** kXR_NotFound: the server answered, and there is no such file. */
export const XRD_NOT_FOUND = 3011;

const MAX_CAPTURE_BYTES = 1024 * 1024;

/** An XRootD client exited non-zero; `xrdCode` is the server's kXR error number when it gave one. */
export class XrootdCommandError extends Error {
  override readonly name = "XrootdCommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly xrdCode: number | null,
  ) {
    super(`${command} failed (${exitCode === null ? "killed" : `exit ${exitCode}`}): ${summarize(stderr)}`);
  }

  /** No such file, including a path that runs through a file where a directory would be. */
  get notFound(): boolean {
    return this.xrdCode === XRD_NOT_FOUND || /not a directory/i.test(this.stderr);
  }
}

export function isXrootdNotFound(err: unknown): boolean {
  return err instanceof XrootdCommandError && err.notFound;
}

export interface XrdRunOptions {
  /** Piped to the child's stdin; ended when it ends. */
  stdin?: AsyncIterable<Uint8Array>;
  /** Killed (and failed) when it runs longer. */
  timeoutMs?: number;
}

export interface XrdResult {
  stdout: string;
  stderr: string;
}

/** The last kXR error number in a client's complaint ("[3011] Unable to locate ..."). */
function xrdCodeOf(stderr: string): number | null {
  const codes = [...stderr.matchAll(/\[(3\d{3})\]/g)].map((m) => Number(m[1]));
  return codes.at(-1) ?? null;
}

function summarize(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return lines.at(-1)?.slice(0, 500) ?? "no message";
}

/** Runs an XRootD client to its end; resolves with its output, rejects with XrootdCommandError. */
export function runXrd(command: string, args: string[], options: XrdRunOptions = {}): Promise<XrdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let stdinError: Error | null = null;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < MAX_CAPTURE_BYTES) stdout += chunk;
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < MAX_CAPTURE_BYTES) stderr += chunk;
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            stderr += `\nno answer within ${options.timeoutMs} ms`;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    if (options.stdin && child.stdin) {
      const stdin = child.stdin;
      // A child that dies early closes its stdin: the write error is not the failure, its exit is.
      stdin.on("error", () => undefined);
      void feed(options.stdin, stdin).catch((err: unknown) => {
        stdinError = err instanceof Error ? err : new Error(String(err));
        child.kill("SIGKILL");
      });
    }
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (stdinError) reject(stdinError);
      else if (code === 0) resolve({ stdout, stderr });
      else reject(new XrootdCommandError(command, code, stderr, xrdCodeOf(stderr)));
    });
  });
}

/**
 * Writes a byte source into a child's stdin, waiting for drain so a large
 * file never sits in memory; stops (closing the source) once the child has
 * closed its stdin, as one that failed does.
 */
async function feed(
  source: AsyncIterable<Uint8Array>,
  stdin: NodeJS.WritableStream & { destroyed: boolean },
) {
  let closed = false;
  stdin.once("close", () => {
    closed = true;
  });
  for await (const chunk of source) {
    if (closed || stdin.destroyed) return;
    if (!stdin.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off("drain", done);
          stdin.off("close", done);
          resolve();
        };
        stdin.on("drain", done);
        stdin.on("close", done);
        if (closed) done();
      });
    }
  }
  stdin.end();
}

/**
 * A file's bytes from `xrdcp -s <url> -`, as a stream that fails (instead
 * of ending short) when the copy fails half-way.
 */
export function streamFromXrdcp(url: string): Readable {
  const child = spawn("xrdcp", ["-s", url, "-"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    if (stderr.length < MAX_CAPTURE_BYTES) stderr += chunk;
  });
  const out = child.stdout;
  // stdout ends before 'close' tells the exit code; hold its end back until the copy is known to be whole.
  const stream = new PassThrough();
  out.pipe(stream, { end: false });
  let outEnded = false;
  let exit: number | null | undefined;
  let settled = false;
  const settle = () => {
    if (settled || !outEnded || exit === undefined) return;
    settled = true;
    if (exit === 0) stream.end();
    else stream.destroy(new XrootdCommandError("xrdcp", exit, stderr, xrdCodeOf(stderr)));
  };
  out.on("end", () => {
    outEnded = true;
    settle();
  });
  child.on("close", (code) => {
    exit = code;
    outEnded = true;
    settle();
  });
  child.on("error", (err) => stream.destroy(err));
  // A reader that stops early (destroys the stream) stops the copy too.
  stream.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return stream;
}
