/** An incident as the incident log keeps it: the record schema shared by the kinds that raise them and the log. */
import { z } from "zod";

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
export const newIncidentSchema = incidentSchema.omit({ id: true });
export type NewIncident = Omit<Incident, "id">;
