/**
 * How a brokerage decision drawn at random among the best sites is put into
 * words: the winner, how many candidates were in the draw, and each one's
 * weight and chance of being drawn. No imports, so `panda why`, the API's
 * `why` and the browser's job page say the same thing.
 */

/**
 * The draw a decision records (`BrokerageDecision.draw`): sites drawn among,
 * best first, each weighted by its score. A compact record lists only some of
 * them and carries how many there were and their total weight; a record of
 * the older shape lists every one and nothing else.
 */
export interface DrawShape {
  candidates: { site: string; weight: number }[];
  among?: number;
  totalWeight?: number;
}

export interface DrawOdds {
  site: string;
  weight: number;
  /** The chance of being drawn, in [0, 1]. */
  chance: number;
}

export function isDraw(value: unknown): value is DrawShape {
  const draw = value as DrawShape | null;
  const candidates = draw?.candidates;
  return (
    Array.isArray(candidates) &&
    candidates.every((c) => typeof c?.site === "string" && typeof c.weight === "number") &&
    (draw?.among === undefined || typeof draw.among === "number") &&
    (draw?.totalWeight === undefined || typeof draw.totalWeight === "number")
  );
}

/** How many sites were drawn among: recorded, or (older records) every one listed. */
export function drawSize(draw: DrawShape): number {
  return draw.among ?? draw.candidates.length;
}

/** Each listed site's chance: its weight over the draw's total (equal chances when every weight is 0). */
export function drawOdds(draw: DrawShape): DrawOdds[] {
  const total = draw.totalWeight ?? draw.candidates.reduce((sum, c) => sum + c.weight, 0);
  const n = drawSize(draw);
  return draw.candidates.map((c) => ({ ...c, chance: total > 0 ? c.weight / total : 1 / n }));
}

export function formatWeight(weight: number): string {
  return weight.toPrecision(3);
}

export function formatChance(chance: number): string {
  return `${(chance * 100).toFixed(1)}%`;
}

/** e.g. "SITE-B was drawn at random among 3 candidates, each weighted by its score". */
export function drawHeadline(chosenSite: string, among: number): string {
  return `${chosenSite} was drawn at random among ${among} candidates, each weighted by its score`;
}

/** e.g. "weight 0.103, chance 35.0% of being drawn". */
export function oddsText(odds: DrawOdds): string {
  return `weight ${formatWeight(odds.weight)}, chance ${formatChance(odds.chance)} of being drawn`;
}
