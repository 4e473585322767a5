import { describe, expect, it } from "vitest";
import { derivedId } from "../../src/runtime/step.js";

describe("ids derived from their cause", () => {
  it("append a link to a short cause", () => {
    expect(derivedId("submit:t1:e2", "t1")).toBe("submit:t1:e2:t1");
  });

  it("stay bounded along a chain of causes as long as a job's days of rebrokering", () => {
    let id = "submit:user.0000063:e2/10:e1:a0";
    const seen = new Set<string>();
    for (let step = 0; step < 10_000; step++) {
      id = derivedId(derivedId(derivedId(id, "t1"), "e2"), "brokered");
      expect(id.length).toBeLessThanOrEqual(128 + 30);
      seen.add(id);
    }
    // Every link of the chain still has an id of its own.
    expect(seen.size).toBe(10_000);
  });

  it("give the same cause the same id, so a redelivered event's effects keep theirs", () => {
    const long = `submit:${"x:t1:e2:brokered".repeat(20)}`;
    expect(derivedId(long, "e3")).toBe(derivedId(`${long.slice(0, 10)}${long.slice(10)}`, "e3"));
    expect(derivedId(long, "e3")).not.toBe(derivedId(`${long}!`, "e3"));
    expect(derivedId(long, "e3")).not.toBe(derivedId(long, "e4"));
  });
});
