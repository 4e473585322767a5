/**
 * How a sandbox is named everywhere (task, job, job spec, URL): the sha256 of
 * its tar.gz bytes and their size. Content-addressed, so a name says exactly
 * which bytes it is and the same code uploaded twice is one sandbox.
 */
import { z } from "zod";

export const sha256HexSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "must be a sha256: 64 lowercase hex digits");

export const sandboxRefSchema = z.object({
  sha256: sha256HexSchema,
  sizeBytes: z.number().int().positive(),
});
export type SandboxRef = z.infer<typeof sandboxRefSchema>;

/** The path under which the sandbox store keeps a sandbox's archive on its storage element. */
export function sandboxPath(sha256: string): string {
  return `sandboxes/${sha256.slice(0, 2)}/${sha256}.tar.gz`;
}

/** The URL pilots and users fetch (GET), probe (HEAD) and upload (PUT) a sandbox at. */
export function sandboxUrl(baseUrl: string, sha256: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/sandboxes/${sha256}`;
}
