/** Line charts drawn as inline SVG: no chart library, nothing fetched. */

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

export function colorOf(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Seconds on the axis only when the chart spans minutes, not hours. */
function clock(ms: number, spanMs: number): string {
  return new Date(ms).toISOString().slice(11, spanMs < 600_000 ? 19 : 16);
}

/** A time-series chart with a legend; the y axis starts at zero and ends at a round maximum. */
export function lineChart(title: string, series: Series[], width = 520, height = 180): HTMLElement {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption);
  const pad = { left: 40, right: 10, top: 10, bottom: 22 };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  root.setAttribute("aria-label", title);
  const all = series.flatMap((s) => s.points);
  if (all.length < 2) {
    root.append(
      svg(
        "text",
        { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" },
        "collecting samples...",
      ),
    );
    figure.append(root);
    return figure;
  }
  const xs = all.map((p) => p[0]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const rawMax = Math.max(1, ...all.map((p) => p[1]));
  const magnitude = 10 ** Math.floor(Math.log10(rawMax));
  const yMax = Math.ceil(rawMax / magnitude) * magnitude;
  const px = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const py = (y: number) => height - pad.bottom - (y / yMax) * (height - pad.top - pad.bottom);
  for (const y of [0, yMax / 2, yMax]) {
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: py(y), y2: py(y), class: "grid" }));
    root.append(
      svg("text", { x: pad.left - 4, y: py(y) + 4, "text-anchor": "end" }, String(Math.round(y * 10) / 10)),
    );
  }
  for (const [x, anchor] of [
    [x0, "start"],
    [(x0 + x1) / 2, "middle"],
    [x1, "end"],
  ] as const) {
    root.append(svg("text", { x: px(x), y: height - 6, "text-anchor": anchor }, clock(x, x1 - x0)));
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points
      .map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join("");
    const path = svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8 });
    path.append(svg("title", {}, s.name));
    root.append(path);
  }
  figure.append(root);
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    item.style.setProperty("--c", s.color);
    item.textContent = s.name;
    legend.append(item);
  }
  figure.append(legend);
  return figure;
}
