import { describe, expect, it } from "vitest";
import { EndOfTurn } from "../../src/gateway/end-of-turn.js";
import { encodeServerFrame } from "../../src/gateway/frames.js";
import { issueResumeToken, newPilotId, verifyResumeToken } from "../../src/gateway/resume-token.js";
import { decode } from "../../src/protocol/codec.js";
import { TokenBucket } from "../../src/protocol/token-bucket.js";

describe("TokenBucket", () => {
  it("allows a burst, then the rate", () => {
    let nowMs = 0;
    const bucket = new TokenBucket(10, 3, () => nowMs);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    nowMs += 100;
    expect([bucket.tryTake(), bucket.tryTake()]).toEqual([true, false]);
    nowMs += 10_000;
    const taken = Array.from({ length: 5 }, () => bucket.tryTake()).filter(Boolean).length;
    expect(taken).toBe(3);
  });

  it("says how long until the next token", () => {
    let nowMs = 0;
    const bucket = new TokenBucket(4, 1, () => nowMs);
    expect(bucket.msUntilToken()).toBe(0);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.msUntilToken()).toBe(250);
    nowMs += 100;
    expect(bucket.msUntilToken()).toBe(150);
    nowMs += 150;
    expect(bucket.tryTake()).toBe(true);
  });

  it("refuses nonsense limits", () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError);
  });
});

describe("resume tokens", () => {
  const secret = Buffer.alloc(32, 1);

  it("verify for the same secret, site and pilot only", () => {
    const pilotId = newPilotId();
    const token = issueResumeToken(secret, "CERN", pilotId);
    expect(verifyResumeToken(secret, "CERN", pilotId, token)).toBe(true);
    expect(verifyResumeToken(Buffer.alloc(32, 2), "CERN", pilotId, token)).toBe(false);
    expect(verifyResumeToken(secret, "BNL", pilotId, token)).toBe(false);
    expect(verifyResumeToken(secret, "CERN", newPilotId(), token)).toBe(false);
    expect(verifyResumeToken(secret, "CERN", pilotId, token.slice(1))).toBe(false);
  });

  it("cannot be confused by moving characters between site and pilot id", () => {
    expect(issueResumeToken(secret, "a,b", "c")).not.toBe(issueResumeToken(secret, "a", "b,c"));
  });
});

describe("server frames on the wire", () => {
  it("leave out members whose value is undefined, at any depth, as the protocol's absent fields", () => {
    const frame = {
      type: "error",
      v: 2,
      id: "s-1",
      code: "INTERNAL",
      message: "x",
      ref: undefined,
      nested: { kept: 1, dropped: undefined },
    } as unknown as Parameters<typeof encodeServerFrame>[0];
    const wire = decode(encodeServerFrame(frame)) as Record<string, unknown>;
    expect(Object.keys(wire)).toEqual(["type", "v", "id", "code", "message", "nested"]);
    expect(Object.keys(wire.nested as object)).toEqual(["kept"]);
  });
});

describe("EndOfTurn", () => {
  it("runs the turn's tasks once, after the turn's promise reactions, and a throwing one stops none", async () => {
    const errors: unknown[] = [];
    const endOfTurn = new EndOfTurn((err) => errors.push(err));
    const ran: string[] = [];
    endOfTurn.defer(() => ran.push("a"));
    endOfTurn.defer(() => {
      throw new Error("boom");
    });
    endOfTurn.defer(() => {
      ran.push("b");
      // Deferred while the turn's tasks run: the next turn's.
      endOfTurn.defer(() => ran.push("next turn"));
    });
    void Promise.resolve().then(() => ran.push("promise reaction"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(["promise reaction", "a", "b"]);
    expect(errors).toEqual([new Error("boom")]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(["promise reaction", "a", "b", "next turn"]);
  });
});
