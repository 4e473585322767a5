import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { pilotToken } from "../e2e/grid-fixture.js";
import { PilotProcess } from "../pilot/pilot-process.js";

/** `perSite` multitasking pilot processes for each site against `url`, work directories under `dir`. */
export function startSitePilots(url: string, sites: string[], perSite: number, dir: string): PilotProcess[] {
  return sites.flatMap((site) =>
    Array.from({ length: perSite }, (_, i) => {
      const workdir = mkdtempSync(join(dir, `pilot-${site}-${i}-`));
      return new PilotProcess(
        ["--server", url, "--site", site, "--workdir", workdir, "--multitask", "--stay"],
        {
          ...process.env,
          PANDA_PILOT_TOKEN: pilotToken(site),
        },
      );
    }),
  );
}

/** The site tokens a server needs for those pilots. */
export function sitePilotTokens(sites: string[]) {
  return sites.map((site) => ({ token: pilotToken(site), kind: "pilot" as const, site }));
}
