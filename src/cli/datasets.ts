/** `panda ds`: lists datasets, shows one with its files and replicas, registers files, subscribes a dataset to a site. */
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Command } from "commander";
import { checksumOfBytes } from "../transfer/checksum.js";
import { downloadFile, storageUrl } from "../transfer/http-client.js";
import type { DatasetDetail, DatasetRow, PandaClient } from "./client.js";
import { CliError, EXIT, usageError } from "./errors.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  integerArg,
} from "./options.js";
import { printAnswer, renderTable } from "./output.js";
import { humanBytes, ProgressBar } from "./progress-bar.js";

interface DsFlags extends ConnectionOptions {
  json?: boolean;
  limit?: number;
  dest?: string;
  site?: string;
}

export function renderDatasets(datasets: readonly DatasetRow[]): string {
  if (datasets.length === 0) return "no datasets match";
  return renderTable(
    ["dataset", "state", "files", "size", "sites"],
    datasets.map((d) => [d.name, d.state, d.fileCount, humanBytes(d.totalBytes), d.sites.join(",") || null]),
  );
}

/** The site to read each file from: the preferred site when it holds the file, else the first that does. */
export function sourcesFor(dataset: DatasetDetail, preferred?: string): Map<string, string> {
  const sources = new Map<string, string>();
  const replicas = [...dataset.replicas].sort(
    (a, b) => Number(b.site === preferred) - Number(a.site === preferred),
  );
  for (const replica of replicas)
    for (const lfn of replica.lfns) if (!sources.has(lfn)) sources.set(lfn, replica.site);
  return sources;
}

/** Downloads every file (each verified against the catalog's size and checksum) into `destDir`. */
async function getDataset(client: PandaClient, name: string, destDir: string, site: string | undefined) {
  const dataset = await client.getDataset(name);
  const sources = sourcesFor(dataset, site);
  const missing = dataset.files.filter((f) => !sources.has(f.lfn)).map((f) => f.lfn);
  if (missing.length > 0)
    throw new CliError(
      EXIT.failed,
      `no site holds ${missing.join(", ")} of ${name}: nothing to download them from`,
    );
  const bar = new ProgressBar(`get ${name}`, dataset.files.length);
  const headers: Record<string, string> = client.token ? { authorization: `Bearer ${client.token}` } : {};
  let bytes = 0;
  const got: { lfn: string; site: string; path: string; sizeBytes: number; checksum: string }[] = [];
  for (const [i, file] of dataset.files.entries()) {
    bar.update(i, humanBytes(bytes));
    const from = sources.get(file.lfn)!;
    const path = join(destDir, file.lfn);
    try {
      await downloadFile(storageUrl(client.server, from, file.lfn), path, {
        headers,
        expected: { sizeBytes: file.sizeBytes, checksum: file.checksum },
      });
    } catch (err) {
      bar.finish();
      throw new CliError(EXIT.failed, `${file.lfn} from ${from}: ${(err as Error).message}`);
    }
    bytes += file.sizeBytes;
    got.push({ lfn: file.lfn, site: from, path, sizeBytes: file.sizeBytes, checksum: file.checksum });
  }
  bar.update(dataset.files.length, humanBytes(bytes));
  bar.finish();
  return got;
}

async function putDataset(client: PandaClient, name: string, site: string, paths: string[]) {
  const bar = new ProgressBar(`put ${name}`, paths.length);
  const stored = [];
  for (const [i, path] of paths.entries()) {
    bar.update(i);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      bar.finish();
      throw usageError(
        `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    // The checksum travels with the bytes, so the server refuses a file damaged on the way.
    stored.push(await client.putFile(name, site, basename(path), bytes, checksumOfBytes(bytes)));
  }
  bar.update(paths.length);
  bar.finish();
  return stored;
}

export function registerDatasetCommands(program: Command): void {
  const ds = program.command("ds").description("datasets: ls, get, put, subscribe");
  const ls = ds
    .command("ls")
    .description("datasets whose names match a wildcard pattern (quote it: 'mc11.*RDO*')")
    .argument("[pattern]", "* matches any run of characters, ? one character", "*")
    .option("--limit <count>", "at most this many", integerArg(1, 10_000));
  addJsonOption(addConnectionOptions(ls)).action(async (pattern: string, flags: DsFlags) => {
    const datasets = await clientFor(flags).listDatasets(pattern, flags.limit);
    printAnswer(flags.json, { datasets }, () => renderDatasets(datasets));
  });
  const get = ds
    .command("get")
    .description("download every file of a dataset, checksums verified")
    .argument("<dataset>", "the dataset name")
    .option("--dest <dir>", "where to put the files (default: a directory named after the dataset)")
    .option("--site <site>", "read from this site when it holds a file");
  addJsonOption(addConnectionOptions(get)).action(async (name: string, flags: DsFlags) => {
    const dest = resolve(flags.dest ?? name);
    const files = await getDataset(clientFor(flags), name, dest, flags.site);
    printAnswer(
      flags.json,
      { dataset: name, dest, files },
      () => `${files.length} file(s) of ${name} in ${dest}, checksums verified`,
    );
  });
  const put = ds
    .command("put")
    .description("store files at a site and register them in a dataset (created if needed)")
    .argument("<dataset>", "the dataset name")
    .argument("<files...>", "local files; each is registered under its base name")
    .requiredOption("--site <site>", "the site whose storage receives the files");
  addJsonOption(addConnectionOptions(put)).action(async (name: string, paths: string[], flags: DsFlags) => {
    const stored = await putDataset(clientFor(flags), name, flags.site!, paths);
    printAnswer(
      flags.json,
      { dataset: name, site: flags.site, files: stored },
      () => `${stored.length} file(s) stored at ${flags.site} and registered in ${name}`,
    );
  });
  const subscribe = ds
    .command("subscribe")
    .description("make a dataset complete at a site (a replication subscription)")
    .argument("<dataset>", "the dataset name")
    .argument("<site>", "the site that should hold it");
  addJsonOption(addConnectionOptions(subscribe)).action(
    async (name: string, site: string, flags: DsFlags) => {
      const answer = await clientFor(flags).subscribe(name, site);
      printAnswer(
        flags.json,
        answer,
        () =>
          `${answer.subscription}: ${answer.created ? "created" : "exists"}, ${answer.files} file(s) to move`,
      );
    },
  );
}
