/**
 * A shape's ranking patched for one job: sites holding its inputs weighed again, failed sites left
 * out.
 */
import { addExact, addPartials, type Partials } from "./exact-sum.js";
import type { ShapeRanking } from "./shape-ranking.js";
import { byRank, type ScoredVerdict } from "./site-verdict.js";
import type { RankedWeights } from "./weighted-draw.js";

/** A stretch of the patched rank order: a run of the base ranking, or one site put in. */
type Piece =
  | { start: number; from: number; to: number; verdict?: undefined }
  | { start: number; verdict: ScoredVerdict };

/**
 * One job's rank order: a shape's ranking with a few sites taken out (those
 * the job weighs again or leaves out) and the re-weighed eligible ones put
 * in at their rank. Held as a handful of pieces over the base ranking, so
 * reading a rank or an exact running sum costs the number of patches, not
 * the number of sites.
 */
export class PatchedRanking implements RankedWeights {
  readonly count: number;
  private readonly pieces: Piece[] = [];

  constructor(
    private readonly base: ShapeRanking,
    removed: ReadonlySet<string>,
    inserted: readonly ScoredVerdict[],
  ) {
    const removedRanks = [...removed]
      .map((site) => base.rankOf.get(site))
      .filter((rank) => rank !== undefined)
      .sort((a, b) => a - b);
    const puts = [...inserted]
      .sort(byRank)
      .map((verdict) => ({ verdict, at: rankAfter(base.ranked, verdict) }));
    const n = base.ranked.length;
    let start = 0;
    let from = 0;
    let r = 0;
    let q = 0;
    for (;;) {
      while (q < puts.length && puts[q]!.at <= from)
        this.pieces.push({ start: start++, verdict: puts[q++]!.verdict });
      if (from >= n) break;
      if (removedRanks[r] === from) {
        r++;
        from++;
        continue;
      }
      const to = Math.min(removedRanks[r] ?? n, puts[q]?.at ?? n);
      this.pieces.push({ start, from, to });
      start += to - from;
      from = to;
    }
    this.count = start;
  }

  /** The site at rank `index` (0 is the best). */
  at(index: number): ScoredVerdict {
    const piece = this.pieceAt(index);
    return piece.verdict ?? this.base.ranked[piece.from + index - piece.start]!;
  }

  /** A site's rank, or undefined when it is not eligible here. */
  rankOf(site: string): number | undefined {
    const baseRank = this.base.rankOf.get(site);
    for (const piece of this.pieces) {
      if (piece.verdict) {
        if (piece.verdict.site === site) return piece.start;
      } else if (baseRank !== undefined && baseRank >= piece.from && baseRank < piece.to) {
        return piece.start + baseRank - piece.from;
      }
    }
    return undefined;
  }

  prefix(count: number): readonly number[] {
    const only = this.pieces[0];
    // Nothing patched: the base's running sums as they are.
    if (this.pieces.length === 1 && only && !only.verdict && only.from === 0)
      return this.base.prefixes[count]!;
    const sum: Partials = [];
    let left = count;
    for (const piece of this.pieces) {
      if (left === 0) break;
      if (piece.verdict) {
        addExact(sum, piece.verdict.score);
        left--;
      } else {
        const take = Math.min(left, piece.to - piece.from);
        addPartials(sum, this.base.prefixes[piece.from + take]!, 1);
        addPartials(sum, this.base.prefixes[piece.from]!, -1);
        left -= take;
      }
    }
    return sum;
  }

  private pieceAt(index: number): Piece {
    let low = 0;
    let high = this.pieces.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.pieces[mid]!.start <= index) low = mid;
      else high = mid - 1;
    }
    return this.pieces[low]!;
  }
}

/** How many of `ranked` come before `verdict` in rank order. */
function rankAfter(ranked: readonly ScoredVerdict[], verdict: ScoredVerdict): number {
  let low = 0;
  let high = ranked.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (byRank(ranked[mid]!, verdict) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}
