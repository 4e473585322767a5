/**
 * A run's `report.html`: one self-contained page of tables and SVG charts to
 * compare the variants of a scenario at a glance.
 */
import type { VariantResult } from "./harness.js";
import type { GridSample, SiteSample } from "./metrics.js";
import type { RunSummary } from "./outputs.js";
import type { VariantSummary } from "./summary.js";
import { barChart, escapeHtml, lineChart, type Series } from "./svg-chart.js";
import { formatBytes, formatDurationMs } from "./units.js";

const MAX_SITE_LINES = 10;

function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

function secs(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : formatDurationMs(value * 1000);
}

/** A wait as a chart label: "6s", "2m31s", "25m", "21h50m", "1d11h". */
function shortDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s <= 1) return "≤1s";
  if (s < 60) return `${s}s`;
  if (s < 600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  const minutes = Math.round(s / 60);
  if (minutes < 1440) return `${Math.floor(minutes / 60)}h${minutes % 60 ? `${minutes % 60}m` : ""}`;
  const hours = Math.round(s / 3600);
  return `${Math.floor(hours / 24)}d${hours % 24 ? `${hours % 24}h` : ""}`;
}

function num(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function table(headers: string[], rows: string[][]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function column(rows: GridSample[], key: keyof GridSample, scale = 1): [number, number | null][] {
  return rows.map((r) => {
    const value = r[key] as number | null;
    return [r.hour, value === null ? null : value * scale];
  });
}

const PER_MINUTE = 1 / 60;

/** The busiest sites by line, the rest summed as "others", so a grid of hundreds stays readable. */
function siteSeries(rows: SiteSample[], value: (r: SiteSample) => number): Series[] {
  const totals = new Map<string, number>();
  for (const r of rows) totals.set(r.site, (totals.get(r.site) ?? 0) + value(r));
  const ranked = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([s]) => s);
  const shown = new Set(ranked.slice(0, MAX_SITE_LINES));
  const series = new Map<string, Map<number, number>>();
  for (const r of rows) {
    const name = shown.has(r.site) ? r.site : `others (${ranked.length - shown.size} sites)`;
    let points = series.get(name);
    if (!points) {
      points = new Map();
      series.set(name, points);
    }
    points.set(r.hour, (points.get(r.hour) ?? 0) + value(r));
  }
  return [...series].map(([name, points]) => ({ name, points: [...points] }));
}

function variantSection(summary: VariantSummary, result: VariantResult): string {
  const grid = result.sampler.grid;
  const sites = result.sampler.sites;
  const s = summary;
  const configured = s.failures.configured;
  const classes = [
    ...new Set([...Object.keys(s.failures.byClass), ...Object.keys(configured)]),
  ].sort() as (keyof typeof configured)[];
  const failures = classes.map((c) => {
    const f = s.failures.byClass[c];
    const chance = configured[c];
    return [
      c,
      num(f?.count ?? 0),
      `${(f?.percent ?? 0).toFixed(2)}%`,
      chance === undefined
        ? "–"
        : chance.minPercent === chance.maxPercent
          ? `${chance.minPercent}%`
          : `${chance.minPercent}–${chance.maxPercent}%`,
    ];
  });
  const siteRows = s.cpu.bySite.map((site) => [
    site.site,
    num(site.slots),
    pct(site.cpuUtilisation),
    pct(site.slotOccupancy),
    num(site.finishedJobs),
    formatBytes(site.storagePeakBytes),
  ]);
  const waits = (["production", "analysis"] as const).map((type) => {
    const w = s.waitTimes[type];
    return [type, w ? num(w.count) : "0", secs(w?.p50Sec), secs(w?.p90Sec), secs(w?.p99Sec), secs(w?.maxSec)];
  });
  return `
<section>
<h2>Variant ${escapeHtml(s.variant)} <small>(pilots: ${escapeHtml(s.strategy.pilots)})</small></h2>
${s.description ? `<p>${escapeHtml(s.description)}</p>` : ""}
<div class="figures">
  <div><b>${num(s.throughput.finishedJobsPerDay)}</b> jobs/day finished<br><small>production ${num(s.throughput.productionPerDay)}, analysis ${num(s.throughput.analysisPerDay)}</small></div>
  <div><b>${pct(s.cpu.utilisation)}</b> CPU utilisation<br><small>${pct(s.cpu.whileQueued.mean)} while work was queued (p10 ${pct(s.cpu.whileQueued.p10)})</small></div>
  <div><b>${s.failures.failedPercent.toFixed(2)}%</b> of job attempts failed<br><small>${s.failures.finalFailedPercent.toFixed(2)}% of jobs failed for good</small></div>
  <div><b>${formatBytes(s.transfers.bytes)}</b> transferred<br><small>${num(s.transfers.files)} files, ${num(s.transfers.failedFiles)} failed</small></div>
</div>
<h3>Wait from submission to start</h3>
${table(["type", "jobs started", "p50", "p90", "p99", "max"], waits)}
<h3>Failures by class (share of ended attempts)</h3>
${
  failures.length > 0
    ? table(
        ["class", "attempts", "share", "configured chance (per attempt at a site; stage-in per file)"],
        failures,
      )
    : "<p>No failures.</p>"
}
<h3>Sites</h3>
${table(["site", "slots", "CPU utilisation", "slots held by pilots", "jobs finished", "storage peak"], siteRows)}
<div class="chart">${lineChart({
    title: "Queue depths (jobs waiting, by state)",
    xLabel: "simulated hours",
    yLabel: "jobs",
    series: [
      { name: "defined", points: column(grid, "defined") },
      { name: "assigned (stage-in)", points: column(grid, "assigned") },
      { name: "activated (queued)", points: column(grid, "activated") },
      { name: "throttled", points: column(grid, "throttled") },
    ],
  })}</div>
<div class="chart">${lineChart({
    title: "Running jobs per site",
    xLabel: "simulated hours",
    yLabel: "running jobs",
    series: siteSeries(sites, (r) => r.runningProduction + r.runningAnalysis),
  })}</div>
<div class="chart">${lineChart({
    title: "Wait from submission to start of jobs starting in each interval",
    xLabel: "simulated hours",
    yLabel: "minutes",
    series: [
      { name: "analysis p50", points: column(grid, "analysisWaitP50Sec", PER_MINUTE) },
      { name: "analysis p90", points: column(grid, "analysisWaitP90Sec", PER_MINUTE) },
      { name: "production p50", points: column(grid, "productionWaitP50Sec", PER_MINUTE) },
    ],
  })}</div>
<div class="chart">${lineChart({
    title: "CPU utilisation per interval (busy slots / slots)",
    xLabel: "simulated hours",
    yLabel: "utilisation",
    series: [{ name: "grid", points: column(grid, "utilisation") }],
  })}</div>
</section>`;
}

function comparison(summary: RunSummary, results: VariantResult[]): string {
  if (summary.variants.length < 2) return "";
  const rows = summary.comparison.map((c) => [
    c.variant,
    c.pilots,
    secs(c.analysisWaitP50Sec),
    secs(c.analysisWaitP90Sec),
    secs(c.analysisWaitP99Sec),
    `${c.analysisStartedPercent.toFixed(1)}%`,
    secs(c.productionWaitP50Sec),
    num(c.productionJobsPerDay),
    num(c.analysisJobsPerDay),
    pct(c.cpuUtilisation),
    `${c.failedPercent.toFixed(2)}%`,
  ]);
  const names = summary.comparison.map((c) => c.variant);
  return `
<section>
<h2>Strategies side by side</h2>
<p>Waits count the jobs that started; the share of submitted analysis jobs that started at all is beside them.</p>
${table(
  [
    "variant",
    "pilots",
    "analysis wait p50",
    "analysis wait p90",
    "analysis wait p99",
    "analysis jobs started",
    "production wait p50",
    "production jobs/day",
    "analysis jobs/day",
    "CPU utilisation",
    "attempts failed",
  ],
  rows,
)}
<div class="chart">${barChart({
    title: "Analysis wait from submission to start, by strategy (log scale)",
    yLabel: "wait",
    categories: names,
    measures: [
      { name: "p50", values: summary.comparison.map((c) => c.analysisWaitP50Sec) },
      { name: "p90", values: summary.comparison.map((c) => c.analysisWaitP90Sec) },
      { name: "p99", values: summary.comparison.map((c) => c.analysisWaitP99Sec) },
    ],
    // Seconds to days: on a linear axis the fast strategies' bars would not show.
    log: { min: 1, ticks: [10, 60, 600, 3600, 6 * 3600, 86_400, 4 * 86_400, 16 * 86_400] },
    format: shortDuration,
  })}</div>
<div class="chart">${barChart({
    title: "Production jobs finished per day, by strategy",
    yLabel: "jobs/day",
    categories: names,
    measures: [
      {
        name: "production jobs/day",
        values: summary.comparison.map((c) => Math.round(c.productionJobsPerDay)),
      },
    ],
  })}</div>
<div class="chart">${barChart({
    title: "CPU utilisation and analysis jobs started, by strategy",
    yLabel: "percent",
    categories: names,
    measures: [
      {
        name: "CPU utilisation %",
        values: summary.comparison.map((c) => Math.round(c.cpuUtilisation * 1000) / 10),
      },
      {
        name: "analysis jobs started %",
        values: summary.comparison.map((c) => Math.round(c.analysisStartedPercent * 10) / 10),
      },
    ],
  })}</div>
<div class="chart">${lineChart({
    title: "Analysis wait p50 of jobs starting in each interval, by strategy",
    xLabel: "simulated hours",
    yLabel: "minutes",
    series: results.map((r) => ({
      name: r.summary.variant,
      points: column(r.sampler.grid, "analysisWaitP50Sec", PER_MINUTE),
    })),
  })}</div>
</section>`;
}

/** One self-contained HTML page: summary tables and inline SVG charts, readable offline. */
export function renderReport(summary: RunSummary, results: VariantResult[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(summary.scenario)}: simulation report</title>
<style>
body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
.figures{display:flex;gap:16px;flex-wrap:wrap}.figures div{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:200px}
.figures b{font-size:20px}.chart{margin:12px 0}section{margin-bottom:32px}
</style></head><body>
<h1>${escapeHtml(summary.scenario)}</h1>
<p><b>Question:</b> ${escapeHtml(summary.question)}</p>
<p>Seed ${summary.seed}, ${formatDurationMs(summary.simulatedHours * 3_600_000)} simulated, ${summary.variants.length} variant(s).
Same scenario and seed give the same results; <code>summary.json</code> holds every figure, the CSV files every sample.</p>
${comparison(summary, results)}
${results.map((r, i) => variantSection(summary.variants[i]!, r)).join("\n")}
</body></html>
`;
}
