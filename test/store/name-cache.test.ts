import { describe, expect, it } from "vitest";
import { siteJobsCounter } from "../../src/actors/shared/names.js";
import { queueNames } from "../../src/store/index-names.js";
import { cachedName1, cachedName2, cachedName3 } from "../../src/store/name-cache.js";

describe("cached names", () => {
  it("builds a name once per distinct parts and hands out that string", () => {
    let built = 0;
    const name = cachedName2((a, b) => {
      built++;
      return `${a}:${b}`;
    });
    const first = name("site-A", "running");
    expect(first).toBe("site-A:running");
    expect(name(`site-${"A"}`, "running")).toBe(first);
    expect(name("site-A", "sent")).toBe("site-A:sent");
    expect(name("site-B", "running")).toBe("site-B:running");
    expect(built).toBe(3);
  });

  it("keeps names of one, two and three parts apart by every part", () => {
    const one = cachedName1((a) => `one:${a}`);
    const three = cachedName3((a, b, c) => `${a}|${b}|${c}`);
    expect(one("x")).toBe("one:x");
    expect(three("a", "b", "c")).toBe("a|b|c");
    expect(three("a", "b", "d")).toBe("a|b|d");
    expect(three("a", "c", "c")).toBe("a|c|c");
    expect(three("b", "b", "c")).toBe("b|b|c");
  });

  it("stays bounded when first parts never repeat (pilot ids), and still answers right", () => {
    let built = 0;
    const name = cachedName1((a) => {
      built++;
      return `pilot-jobs:${a}`;
    });
    for (let i = 0; i < 25_000; i++) expect(name(`p${i}`)).toBe(`pilot-jobs:p${i}`);
    expect(built).toBe(25_000);
    // The oldest were dropped: asked again, they are built again, with the same text.
    expect(name("p0")).toBe("pilot-jobs:p0");
    expect(built).toBe(25_001);
  });

  it("gives the index and counter names their documented text", () => {
    expect(siteJobsCounter("CERN", "running")).toBe("jobs:CERN:running");
    expect(queueNames.siteQueue("CERN", "analysis", "default")).toBe("site-queue:CERN:analysis:default");
    expect(queueNames.siteQueueParts(queueNames.siteQueue("A:B", "production", "s"))).toEqual({
      site: "A:B",
      lane: "production",
      share: "s",
    });
    expect(queueNames.shareRunning("CERN", "gold")).toBe("shares:CERN:gold");
    expect(queueNames.siteAssigned("CERN")).toBe("site-assigned:CERN");
    expect(queueNames.userThrottled("alice")).toBe("user-throttled:alice");
    expect(queueNames.pilotJobs("p-1")).toBe("pilot-jobs:p-1");
    expect(queueNames.userActive("alice")).toBe("users:alice:active");
    expect(queueNames.userThrottledCount("alice")).toBe("users:alice:throttled");
  });
});
