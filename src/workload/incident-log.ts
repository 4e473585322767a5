/** The incident log: records kept by id beside an index of their ids by time, searched newest first. */
import { createHash, randomBytes } from "node:crypto";
import { type Incident, incidentSchema, type NewIncident } from "../actors/shared/incident.js";
import { incidentQueues } from "../store/index-names.js";
import type { QueueIndex } from "../store/queue-index.js";

export {
  type Incident,
  incidentLevelSchema,
  incidentSchema,
  incidentSourceSchema,
  type NewIncident,
} from "../actors/shared/incident.js";

export interface IncidentQuery {
  /** Case-insensitive substring of the message, job, site, class or code. */
  q?: string | undefined;
  site?: string | undefined;
  source?: Incident["source"] | undefined;
  jobId?: string | undefined;
  sinceMs?: number | undefined;
  limit: number;
}

const LOG = incidentQueues.log;
/** Trim in steps, not on every record: one trim call now and then. */
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

/** An id sorted by time whose tail is fixed by `seed`: the same seed (an effect id) gives the same id. */
export function incidentId(atMs: number, seed?: string): string {
  const tail = seed
    ? createHash("sha256").update(seed).digest("hex").slice(0, 8)
    : randomBytes(4).toString("hex");
  return `${atMs.toString(36)}-${tail}`;
}

/** A record as stored: JSON of the incident. Members of the log written before records were kept are that JSON itself. */
function parseIncident(json: string | null): Incident | null {
  if (json === null) return null;
  try {
    const parsed = incidentSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The searchable log of incidents (a site turning brokeroff, a pilot's failed
 * job, a server error): each record kept under its id beside an index of ids
 * scored by time (`QueueIndex.putRecord`), so every node and a restart see
 * the same log, bounded to about the newest `capacity` records. An incident
 * raised by an actor's effect takes its id from the effect's, so a
 * redelivered effect writes the same record again, not a second one. A
 * search filters them in memory, newest first: bounded by the capacity, not a
 * full-text index.
 */
export class IncidentLog {
  private recorded = 0;

  constructor(
    private readonly index: QueueIndex,
    private readonly capacity = 10_000,
  ) {}

  /** `seed`: a stable id of what raised it (an effect id), for an idempotent record; random without. */
  async record(incident: NewIncident, seed?: string): Promise<Incident> {
    const full: Incident = { id: incidentId(incident.atMs, seed), ...incident };
    await this.index.putRecord(LOG, full.id, full.atMs, JSON.stringify(full));
    if (++this.recorded % TRIM_SLACK === 0) await this.index.trimRecords(LOG, this.capacity);
    return full;
  }

  /** Newest first, reading the log backwards a page at a time until `limit` matches or `sinceMs` is passed. */
  async search(query: IncidentQuery): Promise<Incident[]> {
    const needle = query.q?.toLowerCase();
    const found: Incident[] = [];
    let end = await this.index.size(LOG);
    while (end > 0 && found.length < query.limit) {
      const start = Math.max(0, end - SEARCH_PAGE);
      const ids = (await this.index.range(LOG, start, end - start)).map((e) => e.member);
      const records = await this.index.readRecords(LOG, ids);
      for (let i = ids.length - 1; i >= 0 && found.length < query.limit; i--) {
        // A member of an older node's log is the record itself.
        const incident = parseIncident(records[i] ?? (ids[i]!.startsWith("{") ? ids[i]! : null));
        if (!incident) continue;
        if (query.sinceMs !== undefined && incident.atMs < query.sinceMs) return found;
        if (matches(incident, query, needle)) found.push(incident);
      }
      end = start;
    }
    return found;
  }
}
