/**
 * Exact sums of doubles (Shewchuk's non-overlapping partials, as Python's
 * `math.fsum`). A running sum of floats depends on the order it is added
 * in; an exact sum does not, so a sum over a list with a few sites taken
 * out and put back elsewhere can be had from precomputed partial sums
 * without adding the whole list again, and still equal the sum of the list.
 *
 * `Partials` hold the exact value as doubles of increasing magnitude that do
 * not overlap; every operation keeps them exact (no rounding happens until
 * `roundedSum`).
 */
export type Partials = number[];

/** Adds `value` to `partials` exactly, in place. Values must be finite. */
export function addExact(partials: Partials, value: number): void {
  let x = value;
  let kept = 0;
  for (let j = 0; j < partials.length; j++) {
    let y = partials[j]!;
    if (Math.abs(x) < Math.abs(y)) {
      const larger = y;
      y = x;
      x = larger;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) partials[kept++] = lo;
    x = hi;
  }
  partials.length = kept;
  partials.push(x);
}

/** Adds every partial of `other`, times `sign` (1 or -1), to `partials` exactly, in place. */
export function addPartials(partials: Partials, other: readonly number[], sign: 1 | -1): void {
  // Indexed: brokerage sums partials for every job, and the iterator was most of those sums' garbage.
  for (let i = 0; i < other.length; i++) addExact(partials, sign * other[i]!);
}

/** The exact sum rounded once to the nearest double (ties to even), as `math.fsum` returns it. */
export function roundedSum(partials: readonly number[]): number {
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-way between two doubles: the partials below say which way the exact value lies.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

/** Whether the exact sum exceeds `value` (no rounding involved). */
export function exceeds(partials: readonly number[], value: number): boolean {
  const difference = [...partials];
  addExact(difference, -value);
  // Non-overlapping partials: the sign of the sum is the sign of the largest non-zero one.
  for (let i = difference.length - 1; i >= 0; i--) if (difference[i] !== 0) return difference[i]! > 0;
  return false;
}

/** The exact running sums of `values`: entry `c` holds the sum of the first `c` (entry 0 is empty). */
export function prefixPartials(values: Iterable<number>): Partials[] {
  const prefixes: Partials[] = [[]];
  let running: Partials = [];
  for (const value of values) {
    running = [...running];
    addExact(running, value);
    prefixes.push(running);
  }
  return prefixes;
}
