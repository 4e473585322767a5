/**
 * How a brokerage decision drawn at random among the best sites is put into
 * words: the winner, how many candidates were in the draw, and each one's
 * weight and chance of being drawn. No imports, so `panda why`, the API's
 * `why` and the browser's job page say the same thing.
 */

/** The sites a decision drew among, best first, each weighted by its score (`BrokerageDecision.draw`). */
export interface DrawShape {
  candidates: { site: string; weight: number }[];
}

export interface DrawOdds {
  site: string;
  weight: number;
  /** The chance of being drawn, in [0, 1]. */
  chance: number;
}

export function isDraw(value: unknown): value is DrawShape {
  const candidates = (value as DrawShape | null)?.candidates;
  return (
    Array.isArray(candidates) &&
    candidates.every((c) => typeof c?.site === "string" && typeof c.weight === "number")
  );
}

/** Each drawn-among site's chance: its weight over the total (equal chances when every weight is 0). */
export function drawOdds(draw: DrawShape): DrawOdds[] {
  const total = draw.candidates.reduce((sum, c) => sum + c.weight, 0);
  const n = draw.candidates.length;
  return draw.candidates.map((c) => ({ ...c, chance: total > 0 ? c.weight / total : 1 / n }));
}

export function formatWeight(weight: number): string {
  return weight.toPrecision(3);
}

export function formatChance(chance: number): string {
  return `${(chance * 100).toFixed(1)}%`;
}

/** e.g. "SITE-B was drawn at random among 3 candidates, each weighted by its score". */
export function drawHeadline(chosenSite: string, draw: DrawShape): string {
  return `${chosenSite} was drawn at random among ${draw.candidates.length} candidates, each weighted by its score`;
}

/** e.g. "weight 0.103, chance 35.0% of being drawn". */
export function oddsText(odds: DrawOdds): string {
  return `weight ${formatWeight(odds.weight)}, chance ${formatChance(odds.chance)} of being drawn`;
}
