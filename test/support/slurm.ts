// A one-node Slurm cluster on localhost for tests: munged, slurmctld and slurmd on free ports with a private state directory.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.js";

export const SLURM_BINARIES = [
  "/usr/sbin/slurmctld",
  "/usr/sbin/slurmd",
  "/usr/sbin/munged",
  "/usr/bin/sbatch",
];

/** Whether Debian's slurm-wlm and munge are installed (`.ci/run` installs them) and we may run slurmd (root). */
export function slurmAvailable(): boolean {
  return SLURM_BINARIES.every((path) => existsSync(path)) && process.getuid?.() === 0;
}

export interface SlurmCluster {
  /** The environment Slurm's client commands need (SLURM_CONF). */
  env: Record<string, string>;
  dir: string;
  partition: string;
  /** Runs a Slurm client command and answers its stdout. */
  run(command: string, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function exec(command: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

function slurmConf(dir: string, ports: { ctld: number; slurmd: number }, cpus: number): string {
  return `ClusterName=pandatest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${ports.ctld}
SlurmdPort=${ports.slurmd}
AuthType=auth/munge
AuthInfo=socket=${dir}/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeHostname=${hostname()} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`;
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, logs: () => string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`slurm: timed out waiting for ${what}\n${logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Starts munged, slurmctld and slurmd in the foreground as children of this
 * process (so they cannot outlive a crashed test run for long: stop() kills
 * them, and they hold nothing outside `dir`), with a fresh controller state
 * and one node of `cpus` CPUs (more than the machine has: pilots mostly wait).
 */
export async function startSlurm(options: { cpus?: number } = {}): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), "panda-slurm-"));
  for (const sub of ["state", "spool", "munge"]) mkdirSync(join(dir, sub), { mode: 0o700 });
  writeFileSync(join(dir, "munge", "munge.key"), randomBytes(1024), { mode: 0o600 });
  const ports = { ctld: await freePort(), slurmd: await freePort() };
  const conf = join(dir, "slurm.conf");
  writeFileSync(conf, slurmConf(dir, ports, options.cpus ?? 16));
  const env = { SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const logs = () =>
    ["munge/munged.log", "slurmctld.log", "slurmd.log"]
      .map((name) => join(dir, name))
      .filter((path) => existsSync(path))
      .map((path) => `--- ${path} ---\n${readFileSync(path, "utf8").slice(-3000)}`)
      .join("\n");
  const daemon = (command: string, args: string[]) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: "ignore" });
    children.push(child);
    return child;
  };
  const cluster: SlurmCluster = {
    env,
    dir,
    partition: "debug",
    run: (command, args) => exec(command, args, env),
    async stop() {
      // Jobs first, and until Slurm has seen them end: a job's slurmstepd would otherwise outlive slurmd.
      await exec("/usr/bin/scancel", ["--user=root"], env).catch(() => {});
      await waitFor(
        "the cancelled jobs to end",
        async () =>
          (await cluster.run("squeue", ["-h", "--states=RUNNING,COMPLETING,PENDING"])).trim() === "",
        20_000,
        logs,
      ).catch(() => {});
      for (const child of [...children].reverse()) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const munge = join(dir, "munge");
    daemon("/usr/sbin/munged", [
      "--foreground",
      "--force",
      `--key-file=${munge}/munge.key`,
      `--socket=${munge}/munge.socket`,
      `--pid-file=${munge}/munged.pid`,
      `--log-file=${munge}/munged.log`,
      `--seed-file=${munge}/munged.seed`,
    ]);
    await waitFor("munged", async () => existsSync(join(munge, "munge.socket")), 10_000, logs);
    daemon("/usr/sbin/slurmctld", ["-D", "-c", "-f", conf]);
    await waitFor("slurmctld", async () => (await cluster.run("sinfo", ["-h"])).length > 0, 20_000, logs);
    daemon("/usr/sbin/slurmd", ["-D", "-f", conf, "-N", "localhost"]);
    await waitFor(
      "the node to be idle",
      async () => (await cluster.run("sinfo", ["-h", "-N", "-o", "%T"])).trim() === "idle",
      30_000,
      logs,
    );
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
