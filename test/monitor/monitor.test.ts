import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { QueueReport } from "../../src/actors/factory/schema.js";
import { bundleMonitor } from "../../src/monitor/bundle.js";
import { api, type GridFixture, pilotToken, USER_TOKEN, useGrid } from "../e2e/grid-fixture.js";
import { until } from "../pilot/pilot-process.js";
import { queueReport, reportBody } from "../support/factory-report.js";
import { findChromium, launchChromium } from "./browser.js";

const chromiumPath = findChromium();
const inCi = process.env.CI === "true";
if (!chromiumPath && !inCi) {
  process.stderr.write(
    "\n!!! SKIPPING the monitor's browser tests: no chromium found (apt-get install chromium, or set PANDA_CHROMIUM) !!!\n\n",
  );
}
const DOCS_IMG = fileURLToPath(new URL("../../docs/img/", import.meta.url));

/** Screenshots go to a scratch directory, and to docs/img/ when PANDA_MONITOR_SCREENSHOT asks for them. */
async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(mkdtempSync(join(tmpdir(), "panda-monitor-")), name);
  await page.screenshot({ path, fullPage: true });
  if (process.env.PANDA_MONITOR_SCREENSHOT) copyFileSync(path, join(DOCS_IMG, name));
}
const grid = useGrid();

async function submit(fixture: GridFixture, body: object): Promise<void> {
  const res = await api(fixture.node, "/api/v1/tasks", {
    method: "POST",
    token: USER_TOKEN,
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
}

async function startGrid(sites: string[]): Promise<GridFixture> {
  const fixture = await grid(sites, { monitorSampler: { everyMs: 300, capacity: 1000 } });
  fixture.startPilot(sites[0]!);
  await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
  return fixture;
}

/** Marks the document: the mark survives anything but a reload. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (globalThis as unknown as { pandaMark: string }).pandaMark = "loaded once";
  });
}

async function stillSameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (globalThis as unknown as { pandaMark?: string }).pandaMark === "loaded once");
}

describe.skipIf(!chromiumPath && !inCi)("web monitor in a browser", () => {
  let browser: { context: BrowserContext; close(): Promise<void> };
  /** Uncaught errors in the monitor's pages during the current test. */
  let pageErrors: string[] = [];

  beforeAll(async () => {
    // Under CI a missing chromium is a failure, not a skip: .ci/run installs it.
    if (!chromiumPath) throw new Error("CI=true but no chromium at /usr/bin/chromium (or PANDA_CHROMIUM)");
    // The tests exercise the current sources, not whatever an earlier build left in dist/.
    await bundleMonitor();
    browser = await launchChromium(chromiumPath);
  });
  afterEach(async () => {
    // Before the fixture stops the node: the pages would only see it go away.
    for (const page of browser?.context.pages() ?? []) await page.close();
    pageErrors = [];
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function openMonitor(fixture: GridFixture): Promise<Page> {
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(`${fixture.node.url}/`);
    await page.waitForSelector("#live-status[data-status=live]");
    await page.waitForSelector("#site-table");
    return page;
  }

  it("shows a submitted job on the dashboard as it happens, without reloading, and its timeline on its page", async () => {
    const fixture = await startGrid(["SITE-A", "SITE-B"]);
    const page = await openMonitor(fixture);
    await markDocument(page);
    let loads = 0;
    page.on("load", () => loads++);

    const jobId = "t-live-0.1";
    const finished = fixture.node.grid.runtime.waitForTransition({ kind: "job", id: jobId }, (t) =>
      t.entry.to.startsWith("finished"),
    );
    await submit(fixture, { taskId: "t-live", jobs: 1, payload: { command: ["sleep", "0.5"] } });
    const row = page.locator(`#live-jobs tr[data-job-id="${jobId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await finished;
    await expect.poll(() => row.locator(".state").textContent(), { timeout: 30_000 }).toBe("finished");
    expect(await stillSameDocument(page)).toBe(true);

    await row.getByRole("link", { name: jobId }).click();
    const timeline = page.locator("#timeline tbody tr");
    await timeline.first().waitFor();
    const events = await page.locator("#timeline tbody tr td:nth-child(4)").allTextContents();
    expect(events).toEqual(expect.arrayContaining(["create", "brokered", "dispatch", "pilot.ended"]));
    expect(await page.locator("#timeline").textContent()).toContain("finished");
    expect(await page.locator("#brokerage").textContent()).toContain("chosen");
    expect(await stillSameDocument(page)).toBe(true);
    expect(loads).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it("asks for a token when reads need one, keeps it for the tab, and sends it on API calls, the live stream and the log", async () => {
    const fixture = await grid(["SITE-A", "SITE-B"], { readRequiresToken: true });
    fixture.startPilot("SITE-A");
    fixture.startPilot("SITE-B");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 2 ? true : undefined), 20_000);
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    const bearers: string[] = [];
    page.on("request", (req) => {
      if (new URL(req.url()).pathname.startsWith("/api/"))
        bearers.push(req.headers().authorization ?? "none");
    });
    await page.goto(`${fixture.node.url}/`);
    await page.locator("#login").waitFor();
    await expect.poll(() => page.locator("#live-status").textContent()).toBe("signed out");

    await page.locator("#login-token").fill("not-a-token-anyone-issued");
    await page.locator("#login-submit").click();
    await expect
      .poll(() => page.locator("#login-status").textContent())
      .toMatch(/not signed in: the token is not known/);
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length,
      ),
    ).toBe(0);

    await page.locator("#login-token").fill(USER_TOKEN);
    await page.locator("#login-submit").click();
    await page.locator("#site-table").waitFor();
    await page.waitForSelector("#live-status[data-status=live]");
    await markDocument(page);

    // Pushed over the live stream, which only a request with the bearer header may open.
    const jobId = "t-login-0.1";
    const finished = fixture.node.grid.runtime.waitForTransition({ kind: "job", id: jobId }, (t) =>
      t.entry.to.startsWith("finished"),
    );
    await submit(fixture, {
      taskId: "t-login",
      jobs: 1,
      payload: { command: ["sh", "-c", "echo hello-from-login"] },
    });
    const row = page.locator(`#live-jobs tr[data-job-id="${jobId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await finished;
    await row.getByRole("link", { name: jobId }).click();
    await page.locator("#brokerage").waitFor();
    expect(await stillSameDocument(page)).toBe(true);

    // The job page says what `panda why` says: drawn among the two sites with pilots, with each one's chance.
    const why = (await api(fixture.node, `/api/v1/jobs/${jobId}/why`, { token: USER_TOKEN })).body as {
      summary: string[];
      brokerage: { candidates: { site: string; draw: { chance: number } | null }[] };
    };
    const headline = why.summary.find((line) => line.startsWith("brokerage: "))!;
    expect(headline).toMatch(/was drawn at random among 2 candidates, each weighted by its score/);
    expect(await page.locator("#brokerage-pick").textContent()).toBe(headline.slice("brokerage: ".length));
    for (const candidate of why.brokerage.candidates) {
      const cells = await page
        .locator("#brokerage tbody tr", { hasText: candidate.site })
        .locator("td")
        .allTextContents();
      expect(cells[3]).toBe(`${(candidate.draw!.chance * 100).toFixed(1)}%`);
    }

    // The full log opens in a tab of its own, fetched with the header a plain link cannot carry.
    await page.locator("#job-log pre").waitFor();
    const [logTab] = await Promise.all([
      browser.context.waitForEvent("page"),
      page.locator("#full-log-link").click(),
    ]);
    await expect.poll(() => logTab.locator("body").textContent()).toContain("hello-from-login");

    const token = `Bearer ${USER_TOKEN}`;
    expect(bearers.length).toBeGreaterThan(5);
    expect(bearers.slice(bearers.indexOf(token)).every((b) => b === token)).toBe(true);
    // Before: nothing, or the refused token while it was checked.
    const before = new Set(bearers.slice(0, bearers.indexOf(token)));
    expect([...before].sort()).toEqual(["Bearer not-a-token-anyone-issued", "none"]);

    // Kept for the tab: a reload asks nothing; signing out forgets it and asks again.
    await page.reload();
    await page.waitForSelector("#live-status[data-status=live]");
    expect(await page.locator("#login").count()).toBe(0);
    await page.locator("#sign-out").click();
    await page.locator("#login").waitFor();
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length,
      ),
    ).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it("states a compact draw on the job page: how many sites were drawn among and each recorded one's chance", async () => {
    // One candidate recorded of the three drawn among: the count and the total weight come from the record.
    const sites = ["SITE-A", "SITE-B", "SITE-C"];
    const fixture = await grid(sites, { grid: { maxRecordedCandidates: 1 } });
    for (const site of sites) fixture.startPilot(site);
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 3 ? true : undefined), 20_000);
    const jobId = "t-compact-0.1";
    const finished = fixture.node.grid.runtime.waitForTransition({ kind: "job", id: jobId }, (t) =>
      t.entry.to.startsWith("finished"),
    );
    await submit(fixture, { taskId: "t-compact", jobs: 1, payload: { command: ["true"] } });
    await finished;
    const view = (await api(fixture.node, `/api/v1/actors/job/${jobId}?history=100`)).body as {
      history: { event: { type: string; decision?: { draw: { among: number; candidates: unknown[] } } } }[];
    };
    const recorded = view.history.find((e) => e.event.type === "brokered")!.event.decision!.draw;
    // The chosen site and the lowest of the draw at most: fewer than the sites drawn among.
    expect(recorded.among).toBe(3);
    expect(recorded.candidates.length).toBeLessThan(3);
    const why = (await api(fixture.node, `/api/v1/jobs/${jobId}/why`)).body as {
      summary: string[];
      brokerage: { pickedBy: unknown; candidates: { site: string; draw: { chance: number } | null }[] };
    };
    expect(why.brokerage.pickedBy).toEqual({ kind: "draw", among: 3 });
    expect(why.brokerage.candidates).toHaveLength(1);
    const [chosen] = why.brokerage.candidates;
    // Every site had a weight: the one recorded had less than every chance.
    expect(chosen!.draw!.chance).toBeGreaterThan(0);
    expect(chosen!.draw!.chance).toBeLessThan(1);

    const page = await openMonitor(fixture);
    await page.goto(`${fixture.node.url}/#/job/${jobId}`);
    await page.locator("#brokerage").waitFor();
    const headline = why.summary.find((line) => line.startsWith("brokerage: "))!;
    expect(headline).toMatch(/was drawn at random among 3 candidates, each weighted by its score/);
    expect(await page.locator("#brokerage-pick").textContent()).toBe(headline.slice("brokerage: ".length));
    const rows = page.locator("#brokerage tbody tr");
    expect(await rows.count()).toBe(1);
    const cells = await rows.first().locator("td").allTextContents();
    expect(cells[0]).toBe(chosen!.site);
    expect(cells[3]).toBe(`${(chosen!.draw!.chance * 100).toFixed(1)}%`);
    expect(pageErrors).toEqual([]);
  });

  it("leads from the dashboard to a failed job's error and log in three clicks, and every page renders", async () => {
    const fixture = await startGrid(["SITE-A", "SITE-B"]);
    const failedId = "t-broken-0.1";
    const failed = fixture.node.grid.runtime.waitForTransition({ kind: "job", id: failedId }, (t) =>
      t.entry.to.startsWith("failed"),
    );
    await submit(fixture, { taskId: "t-ok", jobs: 3, payload: { command: ["sleep", "0.3"] } });
    await submit(fixture, {
      taskId: "t-broken",
      jobs: 1,
      payload: {
        command: [
          "sh",
          "-c",
          "echo 'opening input events.root'; echo 'FATAL: events.root is corrupt (bad magic)' >&2; exit 3",
        ],
      },
    });
    await failed;
    const page = await openMonitor(fixture);
    await page.locator("#recent-failures").waitFor();
    await screenshot(page, "monitor-dashboard.png");

    // 1: the site's failed count on the dashboard.
    await page.locator('#site-table [data-failed-site="SITE-A"]').click();
    // 2: the failed job in the filtered list.
    await page.locator("#jobs-table").getByRole("link", { name: failedId }).click();
    await page.locator("#job-error").waitFor();
    expect(await page.locator("#job-error").textContent()).toContain("payload");
    await expect
      .poll(() => page.locator("#job-log pre").textContent())
      .toContain("FATAL: events.root is corrupt");
    await screenshot(page, "monitor-failed-job.png");
    // 3: the whole log.
    const [logTab] = await Promise.all([
      browser.context.waitForEvent("page"),
      page.locator("#full-log-link").click(),
    ]);
    await logTab.waitForLoadState();
    expect(await logTab.locator("body").textContent()).toContain("opening input events.root");

    for (const [route, selector] of [
      ["#/sites", "#sites-table"],
      ["#/site/SITE-A", "text=Recent errors by class"],
      ["#/datasets?pattern=*", "text=t-ok"],
      ["#/task/t-ok", ".progress"],
      ["#/jobs?user=alice&q=broken", "#jobs-table"],
    ] as const) {
      await page.evaluate((hash) => {
        (globalThis as unknown as { location: { hash: string } }).location.hash = hash;
      }, route);
      await page.locator(selector).first().waitFor({ timeout: 30_000 });
      expect(await page.locator(".message.error").count(), route).toBe(0);
    }
    expect(pageErrors).toEqual([]);
  });

  it("shows a shifter's pages: job summary, errors linking to the failed job, subscriptions, incidents, pilots in red below the rate", async () => {
    const fixture = await startGrid(["SITE-A", "SITE-B"]);
    const failedId = "t-shift-bad-0.1";
    const failed = fixture.node.grid.runtime.waitForTransition({ kind: "job", id: failedId }, (t) =>
      t.entry.to.startsWith("failed"),
    );
    await submit(fixture, { taskId: "t-shift-ok", jobs: 2, payload: { command: ["true"] } });
    await submit(fixture, {
      taskId: "t-shift-bad",
      type: "analysis",
      jobs: 1,
      retry: { maxAttempts: 1 },
      payload: { command: ["sh", "-c", "exit 7"] },
    });
    await failed;
    const put = await fetch(
      `${fixture.node.url}/api/v1/datasets/mc.shift/files?site=SITE-A&lfn=mc.shift.f1`,
      { method: "POST", headers: { authorization: `Bearer ${USER_TOKEN}` }, body: "events" },
    );
    expect(put.status).toBe(201);
    const subscribed = await api(fixture.node, "/api/v1/datasets/mc.shift/subscriptions", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({ site: "SITE-B" }),
    });
    expect(subscribed.status).toBe(201);
    const page = await openMonitor(fixture);
    const go = (hash: string) =>
      page.evaluate((h) => {
        (globalThis as unknown as { location: { hash: string } }).location.hash = h;
      }, hash);

    await go("#/summary?hours=1");
    await expect
      .poll(() => page.locator("#summary-analysis").textContent(), { timeout: 30_000 })
      .toMatch(/SITE-A.*100%/);
    expect(await page.locator("#summary-production").textContent()).toContain("SITE-A");
    await screenshot(page, "monitor-summary.png");

    await go("#/errors");
    await page.locator("#errors").waitFor({ timeout: 30_000 });
    const errorRow = page.locator("#errors tr", { hasText: "payload" });
    expect(await errorRow.textContent()).toContain("SITE-A");
    await screenshot(page, "monitor-errors.png");
    await errorRow.getByRole("link", { name: failedId }).click();
    await page.locator("#job-error").waitFor();

    await go("#/subscriptions");
    await expect
      .poll(() => page.locator("#subscriptions").textContent(), { timeout: 30_000 })
      .toContain("mc.shift");
    await go("#/subscriptions?purpose=dispatch");
    await page.locator("text=no subscription matches").waitFor();

    await go("#/incidents?q=t-shift-bad");
    await expect
      .poll(() => page.locator("#incidents").textContent(), { timeout: 30_000 })
      .toContain(failedId);

    await go("#/pilots?min=0.01");
    await page.locator("#pilot-rates").waitFor();
    // SITE-A's pilot asked for work; no pilot ever asked at SITE-B.
    expect(await page.locator("#pilot-rates tr", { hasText: "SITE-B" }).locator(".low-rate").count()).toBe(1);
    expect(await page.locator("#pilot-rates tr", { hasText: "SITE-A" }).locator(".low-rate").count()).toBe(0);
    expect(await page.locator("#pilot-list").textContent()).toContain(fixture.node.grid.runtime.nodeId);
    await screenshot(page, "monitor-pilots.png");
    expect(await page.locator(".message.error").count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it("shows a throttled factory queue, its reason and its incident on the Factories page", async () => {
    const fixture = await startGrid(["SITE-A"]);
    const queue = queueReport({
      name: "short",
      maxRunning: 20,
      jobs: { submitting: 0, queued: 0, running: 0 },
    });
    const report = async (q: QueueReport) => {
      const res = await api(fixture.node, "/api/v1/factories/cluster-a/queues/short", {
        method: "PUT",
        token: pilotToken("SITE-A"),
        body: reportBody(q),
      });
      expect(res.status).toBe(200);
    };
    await report(queue);
    const page = await openMonitor(fixture);
    await page.evaluate(() => {
      (globalThis as unknown as { location: { hash: string } }).location.hash = "#/factories";
    });
    await page.locator("#factory-queues").waitFor();
    const reason = "3 pilot jobs in a row failed within 60 s (last: exit 10)";
    await report({
      ...queue,
      throttle: { throttled: true, reason, sinceMs: Date.now(), backoffSec: 120, consecutiveFastFailures: 3 },
    });
    await expect
      .poll(() => page.locator("#factory-queues").textContent(), { timeout: 30_000 })
      .toContain("THROTTLED");
    expect(await page.locator("#factory-queues").textContent()).toContain(reason);
    await expect
      .poll(() => page.locator("#factory-incidents").textContent(), { timeout: 30_000 })
      .toContain("factory cluster-a throttles queue short");
    await screenshot(page, "monitor-factories.png");
    expect(pageErrors).toEqual([]);
  });
});
