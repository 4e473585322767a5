import { describe, expect, it } from "vitest";
import { addExact, exceeds, prefixPartials, roundedSum } from "../../src/brokerage/exact-sum.js";
import { drawIndex, rankedWeightsOf } from "../../src/brokerage/weighted-draw.js";
import { seededStream } from "./fixtures.js";

/** A double as an exact integer multiple of 2^-1074 (the smallest subnormal): sums of these are exact. */
function scaled(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  return sign * (mantissa << BigInt(Math.max(exponent, 1) - 1));
}

/** The next double above (1) or below (-1) a positive one. */
function neighbour(x: number, step: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(step));
  return view.getFloat64(0);
}

/** Weights of the spread brokerage scores have: a few orders of magnitude, some equal, some 0. */
function weights(next: () => number, n: number): number[] {
  return Array.from({ length: n }, () => {
    const r = next();
    return r < 0.05 ? 0 : r < 0.2 ? 0.125 : next() * 10 ** Math.floor(next() * 4 - 2);
  });
}

describe("exact sums", () => {
  it("round once, whatever the order of the values", () => {
    expect(roundedSum(prefixPartials([1e16, 1, -1e16]).at(-1)!)).toBe(1);
    expect(roundedSum(prefixPartials(Array(10).fill(0.1)).at(-1)!)).toBe(1);
    const next = seededStream(7);
    for (let trial = 0; trial < 200; trial++) {
      const values = weights(next, 1 + Math.floor(next() * 300));
      const sum = roundedSum(prefixPartials(values).at(-1)!);
      const shuffled = [...values].sort(() => next() - 0.5);
      expect(roundedSum(prefixPartials(shuffled).at(-1)!)).toBe(sum);
      // The nearest double to the exact sum: no double lies closer.
      const exact = values.reduce((s, v) => s + scaled(v), 0n);
      const error = (x: number) => (scaled(x) > exact ? scaled(x) - exact : exact - scaled(x));
      if (sum > 0)
        expect(error(sum) <= error(neighbour(sum, -1)) && error(sum) <= error(neighbour(sum, 1))).toBe(true);
    }
  });

  it("compare with a value exactly", () => {
    const partials: number[] = [];
    addExact(partials, 0.1);
    addExact(partials, 0.2);
    // The doubles 0.1 and 0.2 add up to more than the double 0.3 and less than the double 0.1 + 0.2.
    expect(exceeds(partials, 0.3)).toBe(true);
    expect(exceeds(partials, 0.1 + 0.2)).toBe(false);
    expect(exceeds([], 0)).toBe(false);
  });
});

describe("the weighted draw", () => {
  it("draws the first site whose exact running sum exceeds random x total", () => {
    const next = seededStream(11);
    for (let trial = 0; trial < 500; trial++) {
      const values = weights(next, 2 + Math.floor(next() * 300));
      const random = next();
      const { index, totalWeight } = drawIndex(rankedWeightsOf(values), random);
      expect(totalWeight).toBe(roundedSum(prefixPartials(values).at(-1)!));
      if (totalWeight === 0) {
        expect(index).toBe(Math.floor(random * values.length));
        continue;
      }
      const target = scaled(random * totalWeight);
      const sums: bigint[] = [];
      for (const v of values) sums.push((sums.at(-1) ?? 0n) + scaled(v));
      const expected = sums.findIndex((s) => s > target);
      expect(index).toBe(expected === -1 ? values.length - 1 : expected);
    }
  });

  it("gives the ends to random 0 and 1, and equal chances when every weight is 0", () => {
    const ranked = rankedWeightsOf([0.5, 0.25, 0.25]);
    expect(drawIndex(ranked, 0).index).toBe(0);
    expect(drawIndex(ranked, 0.5).index).toBe(1);
    expect(drawIndex(ranked, 1).index).toBe(2);
    expect(drawIndex(rankedWeightsOf([0, 0, 0, 0]), 0.6).index).toBe(2);
    expect(drawIndex(rankedWeightsOf([0, 0.3, 0]), 0).index).toBe(1);
  });

  it("decides as the running float sum did (they can differ only within rounding error of a boundary)", () => {
    // The draw before exact sums: subtract each weight from random x (float total) until below 0.
    const floatWalk = (values: number[], random: number) => {
      let target = random * values.reduce((s, v) => s + v, 0);
      for (const [i, v] of values.entries()) {
        target -= v;
        if (target < 0) return i;
      }
      return values.length - 1;
    };
    const next = seededStream(13);
    let differ = 0;
    for (let trial = 0; trial < 20_000; trial++) {
      const values = weights(next, 2 + Math.floor(next() * 300));
      const random = next();
      if (drawIndex(rankedWeightsOf(values), random).index !== floatWalk(values, random)) differ++;
    }
    expect(differ).toBe(0);
  });
});
