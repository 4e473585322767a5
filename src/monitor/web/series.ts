/** The dashboard's throughput series: loaded from the server's sampler and drawn as a chart. */
import { getJson, type Sample } from "./api.js";
import { colorOf, lineChart, type Series } from "./charts.js";

export interface SeriesResponse {
  nowMs: number;
  everyMs: number;
  samples: Sample[];
}

export function loadSeries(): Promise<SeriesResponse> {
  return getJson<SeriesResponse>("/api/v1/monitor/series");
}

function siteNamesOf(samples: Sample[]): string[] {
  return [...new Set(samples.flatMap((s) => Object.keys(s.sites)))].sort();
}

/** Jobs ended per minute, from the per-sample counts. */
export function throughputChart({ samples, everyMs }: SeriesResponse): HTMLElement {
  const perMin = 60_000 / everyMs;
  return lineChart("Throughput (jobs ended per minute)", [
    { name: "finished", color: "#16a34a", points: samples.map((s) => [s.atMs, s.finished * perMin]) },
    { name: "failed", color: "#dc2626", points: samples.map((s) => [s.atMs, s.failed * perMin]) },
  ]);
}

/** One line per site of a per-site number over time. */
export function perSiteChart(
  title: string,
  { samples }: SeriesResponse,
  pick: (site: Sample["sites"][string]) => number,
  only?: string,
): HTMLElement {
  const names = only ? [only] : siteNamesOf(samples);
  const series: Series[] = names.map((name, i) => ({
    name,
    color: colorOf(i),
    points: samples.flatMap((s) => {
      const site = s.sites[name];
      return site ? [[s.atMs, pick(site)] as [number, number]] : [];
    }),
  }));
  return lineChart(title, series);
}
