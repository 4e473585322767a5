/**
 * Quantities in scenario files carry their unit ("90m", "2GB", "1Gbps",
 * "120/h"); a bare number takes the unit named in each schema's description.
 * Parsed values are always in milliseconds, bytes, bytes per second, or
 * events per hour.
 */
import { z } from "zod";

const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Decimal (SI) sizes, as storage and network vendors quote them. */
const SIZE_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
};

const RATE_PER_HOUR: Record<string, number> = {
  s: 3600,
  sec: 3600,
  m: 60,
  min: 60,
  h: 1,
  d: 1 / 24,
};

const QUANTITY = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([a-zA-Z/]*)\s*$/;

function parseWithUnits(text: string, units: Record<string, number>, what: string): number | string {
  const match = QUANTITY.exec(text);
  if (!match) return `not a ${what}: "${text}"`;
  const factor = units[match[2]!.toLowerCase()];
  if (factor === undefined)
    return `unknown unit "${match[2]}" in ${what} "${text}" (use ${Object.keys(units).join(", ")})`;
  return Number(match[1]) * factor;
}

function quantitySchema(units: Record<string, number>, bareFactor: number, what: string) {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    if (typeof value === "number") {
      if (!Number.isFinite(value) || value < 0) {
        ctx.addIssue({ code: "custom", message: `a ${what} must be a non-negative number` });
        return z.NEVER;
      }
      return value * bareFactor;
    }
    const parsed = parseWithUnits(value, units, what);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });
}

/** "90s", "15m", "2h", "1.5d"; a bare number is seconds. Parsed to milliseconds. */
export const durationSchema = quantitySchema(DURATION_MS, 1000, "duration").describe(
  "a duration: 90s, 15m, 2h, 1d (a bare number is seconds)",
);

/** "500MB", "2GB"; a bare number is bytes. Parsed to bytes. */
export const sizeSchema = quantitySchema(SIZE_BYTES, 1, "size").describe(
  "a size: 500MB, 2GB, 1TB (decimal units; a bare number is bytes)",
);

/** "1Gbps", "10Gb/s", "100MB/s"; a bare number is bytes per second. Parsed to bytes per second. */
export const bandwidthSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return value;
  // A lower-case b (or "bps") is bits, an upper-case B is bytes, as network and storage people write them.
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(bps|b\/s|B\/s)\s*$/.exec(value);
  if (!match) {
    ctx.addIssue({ code: "custom", message: `not a bandwidth: "${value}" (use e.g. 10Gbps or 500MB/s)` });
    return z.NEVER;
  }
  const prefix = SIZE_BYTES[`${match[2]!.toLowerCase()}b`] ?? 1;
  const perSecond = Number(match[1]) * prefix;
  return match[3] === "B/s" ? perSecond : perSecond / 8;
});

/** "120/h", "2/min", "0.5/s"; a bare number is per hour. Parsed to events per hour. */
export const ratePerHourSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([a-z]+)\s*$/i.exec(value);
  const factor = match ? RATE_PER_HOUR[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    ctx.addIssue({ code: "custom", message: `not a rate: "${value}" (use e.g. 120/h, 2/min, 0.5/s)` });
    return z.NEVER;
  }
  return Number(match[1]) * factor;
});

/** Milliseconds as the shortest readable text ("1d 2h", "15m", "850ms"), for reports. */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, seconds] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (rest >= seconds) {
      parts.push(`${Math.floor(rest / seconds)}${unit}`);
      rest %= seconds;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["PB", 1e15],
    ["TB", 1e12],
    ["GB", 1e9],
    ["MB", 1e6],
    ["kB", 1e3],
  ] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(bytes >= 100 * size ? 0 : 1)} ${unit}`;
  }
  return `${bytes} B`;
}
