/**
 * Random quantities in a scenario: a plain value (fixed) or an object naming
 * the distribution. Parameters are parsed with the quantity's own unit
 * schema, so `{dist: lognormal, median: 2h, sigma: 0.5}` is in milliseconds
 * once parsed. `min` and `max` clamp every draw.
 */
import { z } from "zod";
import type { RandomStream } from "./random.js";

export type Distribution =
  | { dist: "fixed"; value: number; min?: number; max?: number }
  | { dist: "uniform"; low: number; high: number; min?: number; max?: number }
  | { dist: "exponential"; mean: number; min?: number; max?: number }
  | { dist: "lognormal"; median: number; sigma: number; min?: number; max?: number }
  | { dist: "normal"; mean: number; sd: number; min?: number; max?: number };

export function distributionSchema<S extends z.ZodType<number, unknown>>(quantity: S) {
  const bounds = { min: quantity.optional(), max: quantity.optional() };
  const shaped = z.discriminatedUnion("dist", [
    z.object({ dist: z.literal("fixed"), value: quantity, ...bounds }).strict(),
    z.object({ dist: z.literal("uniform"), low: quantity, high: quantity, ...bounds }).strict(),
    z.object({ dist: z.literal("exponential"), mean: quantity, ...bounds }).strict(),
    z
      .object({
        dist: z.literal("lognormal"),
        median: quantity,
        /** The standard deviation of the log: 0.5 gives a p90/p50 ratio of about 1.9. */
        sigma: z.number().nonnegative(),
        ...bounds,
      })
      .strict(),
    z.object({ dist: z.literal("normal"), mean: quantity, sd: quantity, ...bounds }).strict(),
  ]);
  return z.union([quantity.transform((value) => ({ dist: "fixed" as const, value })), shaped]) as z.ZodType<
    Distribution,
    unknown
  >;
}

/** One draw, clamped to [min, max] and never negative. */
export function sample(distribution: Distribution, random: RandomStream): number {
  let value: number;
  switch (distribution.dist) {
    case "fixed":
      value = distribution.value;
      break;
    case "uniform":
      value = random.uniform(distribution.low, distribution.high);
      break;
    case "exponential":
      value = random.exponential(distribution.mean);
      break;
    case "lognormal":
      value = distribution.median * Math.exp(distribution.sigma * random.normal());
      break;
    case "normal":
      value = distribution.mean + distribution.sd * random.normal();
      break;
  }
  if (distribution.min !== undefined) value = Math.max(distribution.min, value);
  if (distribution.max !== undefined) value = Math.min(distribution.max, value);
  return Math.max(0, value);
}

/** The distribution's mean before clamping: for sizing a scenario and for reports. */
export function meanOf(distribution: Distribution): number {
  switch (distribution.dist) {
    case "fixed":
      return distribution.value;
    case "uniform":
      return (distribution.low + distribution.high) / 2;
    case "exponential":
      return distribution.mean;
    case "lognormal":
      return distribution.median * Math.exp((distribution.sigma * distribution.sigma) / 2);
    case "normal":
      return distribution.mean;
  }
}
