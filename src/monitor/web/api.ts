import type { PilotView, Sample, SiteView } from "../shapes.js";

export type { PilotView, Sample, SiteView };

/** The monitor's reads of the node's JSON API, and the shapes it relies on. */

export interface JobError {
  class: string;
  code: string;
  message: string;
}

export interface JobRow {
  jobId: string;
  taskId: string;
  attempt: number;
  state: string;
  site: string | null;
  type: string;
  user: string;
  priority: number;
  error: JobError | null;
  timestamps: Record<string, number>;
}

export interface TaskRow {
  taskId: string;
  state: string;
  user: string;
  type: string;
  jobCount: number;
  counts: Record<string, number>;
  outputDataset: string;
  timestamps: Record<string, number>;
}

export interface HistoryEntry {
  v: number;
  at: number;
  id: string;
  event: { type: string } & Record<string, unknown>;
  from: string | null;
  to: string;
  cause: string;
  refused?: { code: string; message: string };
}

export interface ActorView<C> {
  kind: string;
  id: string;
  version: number;
  state: string;
  status: string;
  context: C;
  history: HistoryEntry[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new ApiError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return (await res.json()) as T;
}

export async function getText(path: string): Promise<string | null> {
  const res = await fetch(path);
  return res.ok ? res.text() : null;
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : "";
}
