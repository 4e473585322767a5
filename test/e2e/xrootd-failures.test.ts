import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { subscriptionIdOf } from "../../src/actors/shared/names.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { storedFileMatches } from "../../src/transfer/storage-element.js";
import { readContext } from "../../src/workload/context.js";
import { subscribeDataset } from "../../src/workload/replication.js";
import { until } from "../pilot/pilot-process.js";
import { bytes } from "../transfer/helpers.js";
import { runXrootdTests, useXrootdGrid } from "./xrootd-fixture.js";

// B pulls third-party copies at 2 MB/s, so a 12 MB file is mid-copy for seconds: long enough to kill B during it.
const grid = useXrootdGrid({ "SITE-B": { tpcRate: "2m" } });

function tempFiles(exportDir: string, basePath: string): string[] {
  try {
    return readdirSync(join(exportDir, basePath, ".panda-se", "tmp"));
  } catch {
    return [];
  }
}

/** The size of the biggest temp file a storage element's directory on a server holds now (0 for none). */
function biggestTempFile(exportDir: string, basePath: string): number {
  const dir = join(exportDir, basePath, ".panda-se", "tmp");
  return Math.max(
    0,
    ...tempFiles(exportDir, basePath).map(
      (name) => statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0,
    ),
  );
}

describe.skipIf(!runXrootdTests)("an XRootD storage element killed mid-transfer", () => {
  it("the subscription retries, completes once the server is back, and registers only the right bytes", async () => {
    const fixture = await grid({
      grid: {
        transfer: { retryBaseDelayMs: 200, retryMaxDelayMs: 1_000, maxAttempts: 60 },
        // Any temp file is abandoned for the sweep at the end of the test.
        storageTempMaxAgeMs: 1,
      },
    });
    const data = bytes(12 * 1024 * 1024, 21);
    await fixture.node.grid.putFiles("user.alice.big", "SITE-A", [{ lfn: "big.dat", bytes: data }]);
    const seB = fixture.element("SITE-B");
    const copies = vi.spyOn(seB, "copyFrom");
    const id = subscriptionIdOf("user.alice.big", "SITE-B");
    const done = fixture.node.grid.runtime.waitForTransition(
      { kind: "subscription", id },
      (t) => t.state?.status === "done",
    );

    await subscribeDataset(fixture.node.grid.ctx, "user.alice.big", "SITE-B");
    const serverB = fixture.servers["SITE-B"];
    // Killed once a good part of the file has arrived at B, and well before all of it.
    await until(
      () => (biggestTempFile(serverB.exportDir, seB.basePath) > 1024 * 1024 ? true : undefined),
      30_000,
    );
    expect(biggestTempFile(serverB.exportDir, seB.basePath)).toBeLessThan(data.length);
    await serverB.kill();
    // The copy under way fails, and so do attempts while B is down.
    await until(
      () => (copies.mock.settledResults.some((r) => r.type === "rejected") ? true : undefined),
      30_000,
    );
    expect(await readContext(fixture.node.grid.ctx, "subscription", id)).toMatchObject({
      state: "requested",
    });
    await serverB.restart();

    const end = await done;
    // Done, not failed: both end the actor.
    expect(end.state?.value).toBe("done");
    expect(copies.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(copies.mock.settledResults.filter((r) => r.type === "fulfilled")).toHaveLength(1);
    // Registered at B, and what B holds under the name is exactly the file.
    // The subscription's completion reaches the dataset as an event of its own.
    const dataset = await until(async () => {
      const view = await readContext(fixture.node.grid.ctx, "dataset", "user.alice.big");
      return view?.context.replicas["SITE-B"] ? view : undefined;
    }, 10_000);
    expect(dataset.context.replicas["SITE-B"]).toEqual(["big.dat"]);
    for (const lfn of dataset.context.replicas["SITE-B"]!) {
      const catalog = dataset.context.files[lfn]!;
      expect(catalog.checksum).toBe(checksumOfBytes(data));
      const stored = await seB.stat(lfn);
      expect(stored && storedFileMatches(stored, catalog)).toBe(true);
    }
    expect(await seB.list("")).toEqual(["big.dat"]);
    // The copy cut short by the kill left its temp file at B; the node's sweep clears it.
    expect(biggestTempFile(serverB.exportDir, seB.basePath)).toBeGreaterThan(0);
    expect(await fixture.node.grid.sweepStorage()).toBeGreaterThanOrEqual(1);
    expect(tempFiles(serverB.exportDir, seB.basePath)).toEqual([]);
  });
});
