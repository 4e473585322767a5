/**
 * A scenario as a run takes it: read from its file, checked against the
 * schema (`scenario-schema.ts`) with every issue named by its field, and each
 * variant's strategy resolved over the scenario's own.
 */
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { type Scenario, type Strategy, scenarioSchema, strategySchema } from "./scenario-schema.js";

export {
  type AnalysisWork,
  analysisSchema,
  burstSchema,
  expandedSiteNames,
  failuresSchema,
  type PilotMode,
  type ProductionKind,
  pilotDeliverySchema,
  pilotModeSchema,
  productionKindSchema,
  productionSchema,
  type Scenario,
  type ScenarioSite,
  type SimEvent,
  type Strategy,
  scenarioSchema,
  simEventSchema,
  siteSchema,
  strategySchema,
  variantSchema,
} from "./scenario-schema.js";

/** Zod's issues as `path: message`; a misspelt key is named in the path itself. */
function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: [...path, key].join("."), message: "unknown field" }));
    }
    return [{ path: path.length > 0 ? path.join(".") : "(root)", message: issue.message }];
  });
}

/** A scenario that does not validate: every issue with the path of its field. */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
  constructor(
    readonly source: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`${source}: invalid scenario\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`);
  }
}

export interface ResolvedVariant {
  name: string;
  description: string;
  strategy: Strategy;
}

/** A validated scenario with every variant's strategy resolved (at least one variant). */
export type ResolvedScenario = Omit<Scenario, "variants"> & { variants: ResolvedVariant[] };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; anything else in `override` replaces what `base` had. */
function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) merged[key] = deepMerge(base[key], value);
  return merged;
}

export function parseScenario(value: unknown, source = "scenario"): ResolvedScenario {
  const result = scenarioSchema.safeParse(value);
  if (!result.success) throw new ScenarioError(source, describeIssues(result.error));
  const scenario = result.data;
  // Variants override the strategy as written (units and all), so they are merged before parsing.
  const rawStrategy = isPlainObject(value) && isPlainObject(value.strategy) ? value.strategy : {};
  const issues: { path: string; message: string }[] = [];
  const variants = scenario.variants.map((variant, i) => {
    const parsed = strategySchema.safeParse(deepMerge(rawStrategy, variant.strategy));
    if (!parsed.success) {
      for (const issue of describeIssues(parsed.error))
        issues.push({ path: `variants.${i}.strategy.${issue.path}`, message: issue.message });
      return null;
    }
    return { name: variant.name, description: variant.description, strategy: parsed.data };
  });
  if (issues.length > 0) throw new ScenarioError(source, issues);
  const resolved = variants.filter((v): v is ResolvedVariant => v !== null);
  if (resolved.length === 0)
    resolved.push({ name: scenario.strategy.pilots, description: "", strategy: scenario.strategy });
  return { ...scenario, variants: resolved };
}

/** Reads a YAML (.yaml, .yml) or JSON scenario file and validates it. */
export function loadScenario(path: string): ResolvedScenario {
  const text = readFileSync(path, "utf8");
  let raw: unknown;
  try {
    raw = extname(path).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ScenarioError(path, [{ path: "(file)", message: (err as Error).message }]);
  }
  return parseScenario(raw, path);
}
