import { describe, expect, it } from "vitest";
import { readContext } from "../../src/workload/context.js";
import { jobSpec } from "../../src/workload/job-spec.js";
import { pilotToken } from "../e2e/grid-fixture.js";
import { until } from "../pilot/pilot-process.js";
import { buildArchive, sha256Of } from "../sandbox/hostile-archives.js";
import { OPERATOR_TOKEN, OTHER_USER_TOKEN, STORES, USER_TOKEN, useApiGrid } from "./api-fixture.js";

const grid = useApiGrid();

/** Every field the tests read of an answer (each answer has some of them). */
interface Answer {
  error: { code: string; message: string; details: Record<string, unknown> };
  taskId: string;
  sandbox: unknown;
  sandboxes: { sha256: string; lastUsedMs: number }[];
}

async function call(url: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text === "" ? {} : JSON.parse(text)) as Answer,
  };
}

async function archive(text: string) {
  const bytes = await buildArchive([{ header: { name: "run.py" }, body: text }]);
  return { bytes, sha256: sha256Of(bytes) };
}

describe.each(STORES)("sandboxes on %s", (store) => {
  it("are uploaded once per content, and found only by their owners", async () => {
    const { node } = await grid(store);
    const { bytes, sha256 } = await archive("print('a')\n");
    const url = `${node.url}/sandboxes/${sha256}`;
    const missing = await call(url, { method: "HEAD", token: USER_TOKEN });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-panda-sandbox-max-bytes")).toBe(String(64 * 1024 * 1024));

    expect(await call(url, { method: "PUT", token: USER_TOKEN, body: bytes })).toMatchObject({
      status: 201,
      body: { sha256, sizeBytes: bytes.length, created: true },
    });
    const head = await call(url, { method: "HEAD", token: USER_TOKEN });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(bytes.length));
    // The same bytes again: accepted, nothing new stored.
    expect(await call(url, { method: "PUT", token: USER_TOKEN, body: bytes })).toMatchObject({
      status: 200,
      body: { created: false },
    });

    // Another user does not see it by its hash alone; sending the bytes proves they have them.
    expect((await call(url, { method: "HEAD", token: OTHER_USER_TOKEN })).status).toBe(404);
    expect((await call(url, { token: OTHER_USER_TOKEN })).status).toBe(404);
    expect((await call(url, { method: "PUT", token: OTHER_USER_TOKEN, body: bytes })).body).toMatchObject({
      created: false,
    });
    expect((await call(url, { method: "HEAD", token: OTHER_USER_TOKEN })).status).toBe(200);

    // Pilots and operators fetch any sandbox; the bytes are the uploaded ones.
    for (const token of [pilotToken("SITE-A"), OPERATOR_TOKEN]) {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-panda-checksum")).toBe(`sha256:${sha256}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it("are immutable, capped and checked: each refusal names what was wrong", async () => {
    const { node } = await grid(store, { sandbox: { maxBytes: 4096 } });
    const { bytes, sha256 } = await archive("print('a')\n");
    const other = await archive("print('b')\n");
    const url = `${node.url}/sandboxes/${sha256}`;
    await call(url, { method: "PUT", token: USER_TOKEN, body: bytes });

    const forged = await call(url, { method: "PUT", token: USER_TOKEN, body: other.bytes });
    expect(forged.status).toBe(422);
    expect(forged.body.error.code).toMatch(/MISMATCH/);
    const stored = await fetch(url, { headers: { authorization: `Bearer ${USER_TOKEN}` } });
    expect(Buffer.from(await stored.arrayBuffer()).equals(bytes)).toBe(true);

    const big = Buffer.alloc(5000, 1);
    const tooBig = await call(`${node.url}/sandboxes/${sha256Of(big)}`, {
      method: "PUT",
      token: USER_TOKEN,
      body: big,
    });
    expect(tooBig).toMatchObject({
      status: 413,
      body: { error: { code: "TOO_LARGE", details: { maxBytes: 4096 } } },
    });
    expect(tooBig.body.error.message).toMatch(/5000 bytes exceeds the sandbox limit of 4096/);

    const badHash = await call(`${node.url}/sandboxes/ABC`, {
      method: "PUT",
      token: USER_TOKEN,
      body: bytes,
    });
    expect(badHash).toMatchObject({ status: 400, body: { error: { code: "BAD_PATH" } } });
    expect(badHash.body.error.message).toMatch(/not a sandbox's sha256/);

    expect((await call(url, { method: "PUT", body: bytes })).status).toBe(401);
    const pilotPut = await call(url, { method: "PUT", token: pilotToken("SITE-A"), body: bytes });
    expect(pilotPut.status).toBe(403);
    expect(pilotPut.body.error.message).toMatch(/only a build job's sandbox/);
    // Naming a job that is not a build job running at the pilot's site opens nothing either.
    const notBuild = await call(`${url}?job=t-none-0.1&attempt=1`, {
      method: "PUT",
      token: pilotToken("SITE-A"),
      body: bytes,
    });
    expect(notBuild.status).toBe(403);
    expect(notBuild.body.error.message).toMatch(/is not a build job running at site SITE-A/);
    expect((await call(url, { method: "DELETE", token: USER_TOKEN })).status).toBe(405);
  });

  it("are recorded by the tasks that use them, listed per owner, and swept after their retention", async () => {
    const { node } = await grid(store, { sandbox: { retentionMs: 60_000 } });
    const mine = await archive("print('mine')\n");
    const theirs = await archive("print('theirs')\n");
    await call(`${node.url}/sandboxes/${mine.sha256}`, {
      method: "PUT",
      token: USER_TOKEN,
      body: mine.bytes,
    });
    await call(`${node.url}/sandboxes/${theirs.sha256}`, {
      method: "PUT",
      token: OTHER_USER_TOKEN,
      body: theirs.bytes,
    });
    const submit = (token: string, sandbox: object) =>
      call(`${node.url}/api/v1/tasks`, {
        method: "POST",
        token,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          taskId: `t-sb-${Math.random().toString(36).slice(2, 8)}`,
          jobs: 1,
          payload: { command: ["python3", "run.py"] },
          sandbox,
        }),
      });

    // Someone else's sandbox, by its hash: not found (not "forbidden", which would confirm it exists).
    const foreign = await submit(USER_TOKEN, { sha256: theirs.sha256, sizeBytes: theirs.bytes.length });
    expect(foreign).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
    const bad = await submit(USER_TOKEN, { sha256: "zz", sizeBytes: 1 });
    expect(bad).toMatchObject({ status: 400 });
    expect(bad.body.error.message).toMatch(/sandbox\.sha256: must be a sha256/);

    const buildWithout = await call(`${node.url}/api/v1/tasks`, {
      method: "POST",
      token: USER_TOKEN,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jobs: 1, payload: { command: ["true"] }, build: { command: ["make"] } }),
    });
    expect(buildWithout).toMatchObject({ status: 400, body: { error: { code: "BAD_REQUEST" } } });
    expect(buildWithout.body.error.message).toMatch(/build: a build needs a sandbox/);

    const accepted = await submit(USER_TOKEN, { sha256: mine.sha256, sizeBytes: mine.bytes.length });
    expect(accepted.status).toBe(201);
    const taskId = accepted.body.taskId as string;
    const task = await call(`${node.url}/api/v1/tasks/${taskId}`, { token: USER_TOKEN });
    expect(task.body.sandbox).toEqual({ sha256: mine.sha256, sizeBytes: mine.bytes.length });
    const job = await until(
      () => readContext(node.grid.ctx, "job", `${taskId}-0.1`).then((j) => j ?? undefined),
      10_000,
    );
    const spec = jobSpec({ ...job.context, site: "SITE-A" }, node.url);
    expect(spec.sandbox).toEqual({
      url: `${node.url}/sandboxes/${mine.sha256}`,
      sha256: mine.sha256,
      sizeBytes: mine.bytes.length,
      maxUnpackedBytes: 1024 * 1024 * 1024,
      maxEntries: 100_000,
    });

    const own = await call(`${node.url}/api/v1/sandboxes`, { token: USER_TOKEN });
    expect(own.body.sandboxes).toEqual([
      expect.objectContaining({
        sha256: mine.sha256,
        sizeBytes: mine.bytes.length,
        owners: ["alice"],
        tasks: [taskId],
      }),
    ]);
    expect((await call(`${node.url}/api/v1/sandboxes?scope=all`, { token: USER_TOKEN })).status).toBe(403);
    const all = await call(`${node.url}/api/v1/sandboxes?scope=all`, { token: OPERATOR_TOKEN });
    expect(all.body.sandboxes.map((s: { sha256: string }) => s.sha256).sort()).toEqual(
      [mine.sha256, theirs.sha256].sort(),
    );
    expect(
      (await call(`${node.url}/api/v1/sandboxes?limit=0`, { token: USER_TOKEN })).body.error.message,
    ).toMatch(/limit/);

    const sandboxes = node.grid.ctx.sandboxes!;
    const listed = all.body.sandboxes as { sha256: string; lastUsedMs: number }[];
    const usedMs = listed.find((s) => s.sha256 === mine.sha256)!.lastUsedMs;
    // Within the retention nothing goes; past it, each node's sweep deletes (only one wins each).
    expect(await sandboxes.sweep(usedMs + 59_000)).toEqual([]);
    const swept = await Promise.all([
      sandboxes.sweep(Date.now() + 61_000),
      sandboxes.sweep(Date.now() + 61_000),
    ]);
    expect(swept.flat().sort()).toEqual([mine.sha256, theirs.sha256].sort());
    expect(
      (await call(`${node.url}/sandboxes/${mine.sha256}`, { method: "HEAD", token: USER_TOKEN })).status,
    ).toBe(404);
    expect(
      (await call(`${node.url}/api/v1/sandboxes?scope=all`, { token: OPERATOR_TOKEN })).body.sandboxes,
    ).toEqual([]);
    // A task submitted with a swept sandbox is refused, clearly, rather than failing at the pilot.
    const late = await submit(USER_TOKEN, { sha256: mine.sha256, sizeBytes: mine.bytes.length });
    expect(late).toMatchObject({ status: 404 });
    expect(late.body.error.message).toMatch(/not on the server or not yours/);
  });
});
