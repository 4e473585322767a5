/**
 * Small inline SVG charts for the offline report: no scripts, no fonts or
 * styles from elsewhere, so the file reads the same anywhere.
 */

export const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
  "#393b79",
];

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

export interface Series {
  name: string;
  points: [number, number | null][];
}

const W = 760;
const H = 280;
const M = { left: 64, right: 170, top: 28, bottom: 40 };

/** Round tick steps (1, 2, 5 x 10^n) covering [0, max]. */
function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [0];
  while (out[out.length - 1]! < max) out.push(Number((out.length * step).toPrecision(12)));
  return out;
}

function compact(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toPrecision(3)}k`;
  return Number(value.toPrecision(4)).toString();
}

function legend(names: string[]): string {
  return names
    .map((name, i) => {
      const y = M.top + 6 + i * 16;
      const color = PALETTE[i % PALETTE.length];
      return `<rect x="${W - M.right + 12}" y="${y - 8}" width="10" height="10" fill="${color}"/><text x="${W - M.right + 26}" y="${y + 1}" font-size="11">${escapeHtml(name)}</text>`;
    })
    .join("");
}

function frame(
  title: string,
  xLabel: string,
  yLabel: string,
  yTicks: number[],
  yMax: number,
  xTicks: number[],
  xMax: number,
): string {
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const parts = [`<text x="${M.left}" y="16" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`];
  for (const t of yTicks) {
    const y = M.top + plotH - (t / yMax) * plotH;
    parts.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${y + 4}" font-size="10" text-anchor="end">${compact(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = M.left + (t / xMax) * plotW;
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top + plotH}" y2="${M.top + plotH + 4}" stroke="#555"/>`);
    parts.push(
      `<text x="${x}" y="${M.top + plotH + 16}" font-size="10" text-anchor="middle">${compact(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#555"/>`,
  );
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" stroke="#555"/>`);
  parts.push(
    `<text x="${M.left + plotW / 2}" y="${H - 6}" font-size="11" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${M.top + plotH / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${M.top + plotH / 2})">${escapeHtml(yLabel)}</text>`,
  );
  return parts.join("");
}

/** Lines over a shared x axis (simulated hours); null values break a line. */
export function lineChart(options: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}): string {
  const { series } = options;
  let xMax = 0;
  let yMax = 0;
  for (const s of series) {
    for (const [x, y] of s.points) {
      xMax = Math.max(xMax, x);
      if (y !== null) yMax = Math.max(yMax, y);
    }
  }
  const yTicks = ticks(yMax);
  const yTop = yTicks[yTicks.length - 1] || 1;
  const xTicks = ticks(xMax, 8);
  const xTop = xTicks[xTicks.length - 1] || 1;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const paths = series.map((s, i) => {
    let d = "";
    let pen = false;
    for (const [x, y] of s.points) {
      if (y === null) {
        pen = false;
        continue;
      }
      const px = (M.left + (x / xTop) * plotW).toFixed(1);
      const py = (M.top + plotH - (y / yTop) * plotH).toFixed(1);
      d += `${pen ? "L" : "M"}${px},${py}`;
      pen = true;
    }
    return `<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.6"/>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif">${frame(options.title, options.xLabel, options.yLabel, yTicks, yTop, xTicks, xTop)}${paths.join("")}${legend(series.map((s) => s.name))}</svg>`;
}

/** Grouped bars: one group per category, one bar per measure. */
export function barChart(options: {
  title: string;
  yLabel: string;
  categories: string[];
  measures: { name: string; values: (number | null)[] }[];
  /**
   * A logarithmic axis from `min` (smaller values sit on it): for figures
   * that span seconds to days, so the small ones stay readable beside the
   * large ones.
   */
  log?: { min: number; ticks?: number[] };
  /** How values and axis ticks are written (default: compact numbers). */
  format?: (value: number) => string;
}): string {
  const { categories, measures } = options;
  const format = options.format ?? compact;
  let yMax = 0;
  for (const m of measures) for (const v of m.values) if (v !== null) yMax = Math.max(yMax, v);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  let yTicks: number[];
  let heightOf: (value: number) => number;
  if (options.log) {
    const min = options.log.min;
    // Ticks given (e.g. 1 min, 10 min, 1 h), else every power of ten; the axis ends at the first tick above every value.
    const decades: number[] = [];
    for (let k = Math.floor(Math.log10(min)); 10 ** (k - 1) <= Math.max(yMax, min); k++)
      decades.push(10 ** k);
    const candidates = (options.log.ticks ?? decades).filter((t) => t >= min).sort((a, b) => a - b);
    const top = candidates.find((t) => t >= yMax) ?? Math.max(yMax, min * 10);
    yTicks = [min, ...candidates.filter((t) => t > min && t <= top)];
    if (yTicks[yTicks.length - 1]! < top) yTicks.push(top);
    const low = Math.log10(min);
    const span = Math.log10(top) - low || 1;
    heightOf = (value) => ((Math.log10(Math.max(value, min)) - low) / span) * plotH;
  } else {
    yTicks = ticks(yMax);
    const yTop = yTicks[yTicks.length - 1] || 1;
    heightOf = (value) => (value / yTop) * plotH;
  }
  const groupW = plotW / Math.max(1, categories.length);
  const barW = (groupW * 0.7) / Math.max(1, measures.length);
  const parts = [
    `<text x="${M.left}" y="16" font-size="13" font-weight="bold">${escapeHtml(options.title)}</text>`,
  ];
  for (const t of yTicks) {
    const y = M.top + plotH - heightOf(t);
    parts.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${M.left - 6}" y="${y + 4}" font-size="10" text-anchor="end">${escapeHtml(format(t))}</text>`,
    );
  }
  categories.forEach((category, c) => {
    const x0 = M.left + c * groupW + groupW * 0.15;
    measures.forEach((measure, m) => {
      const value = measure.values[c];
      if (value === null || value === undefined) return;
      const h = heightOf(value);
      const x = x0 + m * barW;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${(M.top + plotH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[m % PALETTE.length]}"><title>${escapeHtml(`${category} ${measure.name}: ${value}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(x + barW / 2).toFixed(1)}" y="${(M.top + plotH - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${escapeHtml(format(value))}</text>`,
      );
    });
    parts.push(
      `<text x="${(M.left + c * groupW + groupW / 2).toFixed(1)}" y="${M.top + plotH + 16}" font-size="11" text-anchor="middle">${escapeHtml(category)}</text>`,
    );
  });
  parts.push(
    `<line x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#555"/>`,
  );
  parts.push(
    `<text x="14" y="${M.top + plotH / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${M.top + plotH / 2})">${escapeHtml(options.yLabel)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif">${parts.join("")}${legend(measures.map((m) => m.name))}</svg>`;
}
