import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { QueueIndex } from "../store/queue-index.js";

export const incidentSourceSchema = z.enum(["site", "pilot", "server", "factory"]);
export const incidentLevelSchema = z.enum(["info", "warn", "error"]);

export const incidentSchema = z.object({
  id: z.string(),
  atMs: z.number(),
  source: incidentSourceSchema,
  level: incidentLevelSchema,
  message: z.string(),
  site: z.string().nullable(),
  jobId: z.string().nullable(),
  errorClass: z.string().nullable(),
  errorCode: z.string().nullable(),
  /** Who reported it: a pilot id, a token's user, `server`. */
  reporter: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type Incident = z.infer<typeof incidentSchema>;
export type NewIncident = Omit<Incident, "id">;

export interface IncidentQuery {
  /** Case-insensitive substring of the message, job, site, class or code. */
  q?: string | undefined;
  site?: string | undefined;
  source?: Incident["source"] | undefined;
  jobId?: string | undefined;
  sinceMs?: number | undefined;
  limit: number;
}

const QUEUE = "incidents";
/** Trim in steps, not on every record: one size check and one pop now and then. */
const TRIM_SLACK = 100;
const SEARCH_PAGE = 500;

function matches(incident: Incident, query: IncidentQuery, needle: string | undefined): boolean {
  if (query.site && incident.site !== query.site) return false;
  if (query.source && incident.source !== query.source) return false;
  if (query.jobId && incident.jobId !== query.jobId) return false;
  if (!needle) return true;
  const text = [incident.message, incident.jobId, incident.site, incident.errorClass, incident.errorCode]
    .join(" ")
    .toLowerCase();
  return text.includes(needle);
}

/**
 * The searchable log of incidents (a site turning itself brokeroff, a pilot's
 * failed job, a server error): records kept as JSON members of one ordered
 * index scored by time, so every node and a restart see the same log, bounded
 * to about the newest `capacity` records. A search filters them in memory,
 * newest first: bounded by the capacity, not a full-text index.
 */
export class IncidentLog {
  private recorded = 0;

  constructor(
    private readonly index: QueueIndex,
    private readonly capacity = 10_000,
  ) {}

  async record(incident: NewIncident): Promise<Incident> {
    const full: Incident = {
      id: `${incident.atMs.toString(36)}-${randomBytes(4).toString("hex")}`,
      ...incident,
    };
    await this.index.add(QUEUE, JSON.stringify(full), full.atMs);
    if (++this.recorded % TRIM_SLACK === 0) {
      const excess = (await this.index.size(QUEUE)) - this.capacity;
      if (excess > 0) await this.index.popMin(QUEUE, excess);
    }
    return full;
  }

  /** Newest first, reading the log backwards a page at a time until `limit` matches or `sinceMs` is passed. */
  async search(query: IncidentQuery): Promise<Incident[]> {
    const needle = query.q?.toLowerCase();
    const found: Incident[] = [];
    let end = await this.index.size(QUEUE);
    while (end > 0 && found.length < query.limit) {
      const start = Math.max(0, end - SEARCH_PAGE);
      const entries = await this.index.range(QUEUE, start, end - start);
      for (let i = entries.length - 1; i >= 0 && found.length < query.limit; i--) {
        const parsed = incidentSchema.safeParse(JSON.parse(entries[i]!.member));
        if (!parsed.success) continue;
        const incident = parsed.data;
        if (query.sinceMs !== undefined && incident.atMs < query.sinceMs) return found;
        if (matches(incident, query, needle)) found.push(incident);
      }
      end = start;
    }
    return found;
  }
}
