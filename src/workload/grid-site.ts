/**
 * A site as a grid's configuration (a sites file, `panda up`) gives it: the
 * site actor's input and the storage element its files live on.
 */
import type { z } from "zod";
import { siteInputSchema } from "../actors/site/schema.js";
import { storageConfigSchema } from "../transfer/storage-config.js";

export const gridSiteSchema = siteInputSchema.omit({ atMs: true }).extend({
  /** `{type: local}` (the default) or `{type: xrootd, endpoint: root://host:port/, basePath: /dir}`. */
  storage: storageConfigSchema.default({ type: "local" }),
});
export type GridSite = z.input<typeof gridSiteSchema>;
