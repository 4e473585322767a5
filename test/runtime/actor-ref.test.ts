import { describe, expect, it } from "vitest";
import { type ActorRef, actorKeyOf, actorRefSchema } from "../../src/runtime/actor-ref.js";
import { RuntimeError } from "../../src/runtime/errors.js";

const refs: unknown[] = [
  { kind: "job", id: "t-1-0.1" },
  { kind: "site", id: "CERN-PROD" },
  { kind: "a", id: "x".repeat(200) },
  { kind: "a", id: "x".repeat(201) },
  { kind: "a", id: "" },
  { kind: "Job", id: "x" },
  { kind: "1job", id: "x" },
  { kind: "k".repeat(32), id: "x" },
  { kind: "k".repeat(33), id: "x" },
  { kind: "job", id: "a/b" },
  { kind: "job", id: "a#b" },
  { kind: "job", id: "a b" },
  { kind: "job", id: "a\u00a0b" },
  { kind: "job", id: "a\u0001b" },
  { kind: "job", id: "a\u007fb" },
  { kind: "job", id: "été-😀" },
  { kind: "job", id: 5 },
  { kind: "job" },
  null,
  "job/x",
];

describe("actorKeyOf", () => {
  it("accepts exactly the refs the schema accepts, and names what is wrong with the others", () => {
    for (const ref of refs) {
      const valid = actorRefSchema.safeParse(ref).success;
      if (valid) {
        const { kind, id } = ref as ActorRef;
        expect(actorKeyOf(ref as ActorRef), JSON.stringify(ref)).toBe(`${kind}/${id}`);
      } else {
        let error: unknown = null;
        try {
          actorKeyOf(ref as ActorRef);
        } catch (err) {
          error = err;
        }
        expect(error, JSON.stringify(ref)).toBeInstanceOf(RuntimeError);
        expect((error as RuntimeError).code).toBe("BAD_ACTOR_REF");
      }
    }
  });
});
