/**
 * The draw of a site among the best candidates, each in proportion to its weight, over exact running
 * sums.
 */
import { exceeds, type Partials, prefixPartials, roundedSum } from "./exact-sum.js";

/** The weights a draw is among, in rank order (best first): how many, and their exact running sums. */
export interface RankedWeights {
  readonly count: number;
  /** The exact sum of the first `count` weights. */
  prefix(count: number): readonly number[];
}

export interface DrawOutcome {
  /** The rank of the site drawn. */
  index: number;
  /** The weights' sum: each one's chance of being drawn is its weight over this. */
  totalWeight: number;
}

/**
 * Draws one of the ranked weights with a chance in proportion to its weight
 * (all alike when every weight is 0): the first whose exact running sum
 * exceeds `random` x the total, the last when none does (`random` 1). Exact
 * sums make the outcome independent of the order the weights are added in,
 * so a caller may keep running sums of a longer list and patch them.
 */
export function drawIndex(weights: RankedWeights, random: number): DrawOutcome {
  const n = weights.count;
  const totalWeight = roundedSum(weights.prefix(n));
  if (totalWeight <= 0) return { index: Math.min(n - 1, Math.floor(random * n)), totalWeight };
  const target = random * totalWeight;
  // Weights are not negative, so running sums never fall: the first above the target is found by halving.
  let low = 1;
  let high = n;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (exceeds(weights.prefix(mid), target)) high = mid;
    else low = mid + 1;
  }
  return { index: low - 1, totalWeight };
}

/** Ranked weights held in full. */
export function rankedWeightsOf(weights: Iterable<number>): RankedWeights {
  const prefixes: Partials[] = prefixPartials(weights);
  return { count: prefixes.length - 1, prefix: (count) => prefixes[count]! };
}
