import { describe, expect, it } from "vitest";
import { ContextCopier } from "../../src/runtime/context-copier.js";

/** The copy and the spread it stands for: equal, with the same fields in the same order. */
function expectSpreadOf(copier: ContextCopier, base: object, over: object): object {
  const copy = copier.copy(base, over);
  const spread = { ...base, ...over };
  expect(copy).toEqual(spread);
  expect(Object.keys(copy)).toEqual(Object.keys(spread));
  expect(copy).not.toBe(base);
  return copy;
}

describe("a machine's context copier", () => {
  it("copies as a spread does, over a run of contexts of one field list", () => {
    const copier = new ContextCopier();
    let context: object = { id: "j-1", site: null, attempt: 1, timestamps: {}, lastAtMs: 0 };
    for (let step = 0; step < 200; step++) {
      const before = structuredClone(context);
      context = expectSpreadOf(copier, context, { attempt: step, site: `S-${step % 3}`, lastAtMs: step });
      // The base is never changed: earlier states stay as they were committed.
      expect(structuredClone(before)).toEqual(before);
    }
  });

  it("adds fields the partial brings, after the base's, and keeps undefined values", () => {
    const copier = new ContextCopier();
    const base = { a: 1, b: 2 };
    expectSpreadOf(copier, base, { b: 3 });
    const grown = expectSpreadOf(copier, base, { z: 9, a: undefined });
    expect(Object.keys(grown)).toEqual(["a", "b", "z"]);
    expect("a" in grown).toBe(true);
  });

  it("copies a context whose fields differ from the list learned, by count and by order", () => {
    const copier = new ContextCopier();
    expectSpreadOf(copier, { a: 1, b: 2, c: 3 }, {});
    expectSpreadOf(copier, { a: 1, b: 2 }, { c: 4 });
    expectSpreadOf(copier, { a: 1, b: 2, c: 3, d: 4 }, {});
    expectSpreadOf(copier, { b: 2, a: 1, c: 3 }, { a: 5 });
    // The learned list still serves its own shape.
    expectSpreadOf(copier, { a: 7, b: 8, c: 9 }, { b: 0 });
  });

  it("learns the fields again after a run of contexts that differ from the list", () => {
    const copier = new ContextCopier();
    expectSpreadOf(copier, { old: 1 }, {});
    for (let i = 0; i < 200; i++) expectSpreadOf(copier, { renamed: i, added: true }, { renamed: i + 1 });
    expectSpreadOf(copier, { old: 2 }, {});
  });

  it("leaves to the spread what a literal cannot make: an own __proto__, symbols, inherited fields", () => {
    const copier = new ContextCopier();
    const withProto = JSON.parse('{"a": 1, "__proto__": {"x": 1}}') as object;
    const copy = expectSpreadOf(copier, withProto, { a: 2 });
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy, "__proto__")).toBe(true);
    const tag = Symbol("tag");
    expectSpreadOf(new ContextCopier(), { a: 1, [tag]: "t" }, {});
    const inheriting = Object.create({ inherited: 1 }) as Record<string, unknown>;
    inheriting.own = 2;
    expectSpreadOf(new ContextCopier(), inheriting, {});
  });

  it("never reads a field name as code", () => {
    const copier = new ContextCopier();
    const strange = { 'a"}; throw new Error("x"); ({"': 1, "b\\u2028c": 2, "": 3, "1": 4 };
    expectSpreadOf(copier, strange, {});
    expectSpreadOf(copier, strange, { "": 5 });
  });
});
