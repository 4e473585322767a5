/** The browser app's calls to the JSON API and the row types it reads. */
import type { ErrorRow, PilotView, Sample, SiteView } from "../shapes.js";
import { withToken } from "./auth.js";

export type { ErrorRow, PilotView, Sample, SiteView };

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

/** Listeners told when the server refuses the monitor's token (or asks for one): the login form shows. */
const unauthorizedListeners = new Set<(message: string) => void>();

export function onUnauthorized(listener: (message: string) => void): void {
  unauthorizedListeners.add(listener);
}

async function failure(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  const error = new ApiError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
  if (res.status === 401) for (const listener of unauthorizedListeners) listener(error.message);
  return error;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: withToken({ accept: "application/json" }) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** The text at `path`, or null when it cannot be read (a 401 still brings the login form up). */
export async function getText(path: string): Promise<string | null> {
  const res = await fetch(path, { headers: withToken() });
  if (res.ok) return res.text();
  if (res.status === 401) await failure(res);
  return null;
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : "";
}
